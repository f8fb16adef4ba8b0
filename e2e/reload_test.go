package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/e2e/harness"
)

// TestReload: SIGHUP serves the config file's new sites on the running
// listeners (a new host gets its certificate and its files), and a broken
// file is refused with its line while the running sites keep serving.
func TestReload(t *testing.T) {
	t.Parallel()
	curl := harness.Peer(t, "curl")
	s := harness.Start(t, harness.Options{Config: harness.Config{}.TOML(),
		// The broken file's reload is refused at ERROR, naming the file.
		ExpectedErrors: []string{`^time=\S+ level=ERROR msg="reload failed" err=".*/anx\.toml:\d+: `}})
	// curl exits 35 (CURLE_SSL_CONNECT_ERROR) when the TLS handshake fails,
	// and prints the status code 000 since no response came.
	if r := curlGet(t, s, curl, "new.internal"); r.Stdout != "000" || r.ExitCode != curlSSLConnectError {
		t.Fatalf("new.internal before the reload: status %s, curl exit %d, want a failed handshake (000, exit %d)\nstderr: %s",
			r.Stdout, r.ExitCode, curlSSLConnectError, r.Stderr)
	}
	original, err := os.ReadFile(s.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	added := string(original) + "\n[[site]]\nhosts = [\"new.internal\"]\nroot = \"" + s.Root + "\"\n"
	if line := s.Reload(t, added); !strings.Contains(line, "msg=reloaded") {
		t.Fatalf("reload with a new site: %s", line)
	}
	for _, name := range []string{"new.internal", "localhost"} {
		if got := curlStatus(t, s, curl, name); got != "200" {
			t.Errorf("%s after the reload: status %s, want 200", name, got)
		}
	}
	broken := added + "\n[[site]]\nhosts = [\"broken.internal\"]\nroot = 7\n"
	line := s.Reload(t, broken)
	if !strings.Contains(line, `msg="reload failed"`) || !strings.Contains(line, "anx.toml:") || !strings.Contains(line, "site.root") {
		t.Errorf("reload failure line %q: want the file, line and key", line)
	}
	for _, name := range []string{"new.internal", "localhost"} {
		if got := curlStatus(t, s, curl, name); got != "200" {
			t.Errorf("%s after a failed reload: status %s, want 200 (the running config)", name, got)
		}
	}
}

// curlSSLConnectError is curl's exit code for a failed TLS handshake
// (CURLE_SSL_CONNECT_ERROR, curl's libcurl-errors(3)).
const curlSSLConnectError = 35

// curlGet GETs /hello.txt from name (resolved to anx) trusting anx's local
// CA; its stdout is the status code ("000" when curl got none).
func curlGet(t *testing.T, s *harness.Server, curl, name string) harness.Result {
	t.Helper()
	return s.CurlAs(t, curl, s.CAPath(), "https", name, "/hello.txt", "-o", "/dev/null", "-w", "%{http_code}")
}

// curlStatus is curlGet's status code.
func curlStatus(t *testing.T, s *harness.Server, curl, name string) string {
	t.Helper()
	return curlGet(t, s, curl, name).Stdout
}

// TestReloadUnderLoad: ten SIGHUP reloads (each one reloaded, the config
// rewritten each time) while wrk (h1), h2load (h2) and Go h3 clients load
// anx: 0 failed requests on every protocol, and the loads ran across all
// ten.
func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	wrk, h2load := harness.Peer(t, "wrk"), harness.Peer(t, "h2load")
	s := harness.Start(t, harness.Options{Config: harness.Config{}.TOML()})
	config, err := os.ReadFile(s.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	load := startLoad(t, target{https: s.HTTPSPort, pool: s.CAPool(), dir: s.Dir}, wrk, h2load)
	for i := range 10 {
		next := string(config) + fmt.Sprintf("\n# reload %d\n", i)
		if line := s.Reload(t, next); !strings.Contains(line, "msg=reloaded") {
			t.Fatalf("reload %d: %s", i, line)
		}
	}
	load.mustBeRunning(t, "the tenth reload was done")
	load.check(t)
}
