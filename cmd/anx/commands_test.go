package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/certs"
)

func runCommand(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCAPrintsRootAndTrustSteps(t *testing.T) {
	data := t.TempDir()
	code, out, errOut := runCommand("ca", "--data", data)
	if code != exitOK {
		t.Fatalf("anx ca: exit %d, stderr %q", code, errOut)
	}
	root := filepath.Join(data, "ca", "root.pem")
	if first, _, _ := strings.Cut(out, "\n"); first != root {
		t.Errorf("first line %q, want the root's path %q", first, root)
	}
	if _, err := os.Stat(root); err != nil {
		t.Errorf("root not created: %v", err)
	}
	for _, want := range []string{"--cacert", "update-ca-certificates", "Firefox"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	before, _ := os.ReadFile(root)
	runCommand("ca", "--data", data)
	if after, _ := os.ReadFile(root); !bytes.Equal(before, after) {
		t.Errorf("a second anx ca replaced the root")
	}
}

func TestValidate(t *testing.T) {
	good := writeConfig(t, "[[site]]\nhosts = [\"localhost\"]\nroot = \".\"\n")
	if code, out, errOut := runCommand("validate", "--config", good); code != exitOK || !strings.Contains(out, "ok") {
		t.Errorf("valid file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	missingRoot := writeConfig(t, "[[site]]\nhosts = [\"localhost\"]\nroot = \"nowhere\"\n")
	code, _, errOut := runCommand("validate", "--config", missingRoot)
	if code != exitError || !strings.Contains(errOut, "nowhere: no such directory") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("missing root: exit %d, stderr %q; want 1 and one line naming the directory", code, errOut)
	}
	if code, _, _ := runCommand("validate"); code != exitUsage {
		t.Errorf("validate without --config: exit %d, want %d", code, exitUsage)
	}
}

func TestRunRefusesMissingRootInOneLine(t *testing.T) {
	code, _, errOut := runCommand("run", "--root", "/nonexistent/anx-site", "--data", t.TempDir(), "--https", "127.0.0.1:0", "--http", "127.0.0.1:0")
	if code != exitError || errOut != "anx: site 1 (localhost): root /nonexistent/anx-site: no such directory\n" {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestUnknownCommandAndVersion(t *testing.T) {
	if code, _, errOut := runCommand("serve"); code != exitUsage || !strings.Contains(errOut, `unknown command "serve"`) {
		t.Errorf("unknown command: exit %d, stderr %q", code, errOut)
	}
	if code, out, _ := runCommand("version"); code != exitOK || !strings.HasPrefix(out, "anx ") {
		t.Errorf("version: exit %d, stdout %q", code, out)
	}
}

// anx certs lists what a Manager stored, as a table and as JSON.
func TestCertsListsStoredCertificates(t *testing.T) {
	data := t.TempDir()
	if code, out, errOut := runCommand("certs", "--data", data, "--json"); code != exitOK || strings.TrimSpace(out) != "[]" {
		t.Fatalf("empty data dir: exit %d, stdout %q, stderr %q; want []", code, out, errOut)
	}
	m, err := certs.Open(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = m.Apply(certs.Policy{Sites: []certs.Site{{Names: []string{"localhost", "127.0.0.1"}}}})
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCommand("certs", "--data", data, "--json")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var list []certs.Status
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if len(list) != 2 || list[0].Names[0] != "127.0.0.1" || list[1].Names[0] != "localhost" {
		t.Fatalf("got %+v, want 127.0.0.1 and localhost", list)
	}
	for _, s := range list {
		if s.Issuer != certs.InternalIssuerKey || s.NotAfter.IsZero() || !s.RenewAt.Before(s.NotAfter) || s.LastError != "" {
			t.Errorf("%+v: want the internal issuer, a renewal before expiry, no error", s)
		}
	}
	code, out, _ = runCommand("certs", "--data", data)
	if code != exitOK || !strings.HasPrefix(out, "NAMES") || !strings.Contains(out, "localhost") || !strings.Contains(out, "anx-internal") {
		t.Errorf("table: exit %d, stdout %q", code, out)
	}
}
