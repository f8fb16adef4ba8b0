package e2e

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anx-gateway/anx/e2e/harness"
)

// TestReload: SIGHUP serves the config file's new sites on the running
// listeners (a new host gets its certificate and its files), and a broken
// file is refused with its line while the running sites keep serving.
func TestReload(t *testing.T) {
	t.Parallel()
	curl := harness.Peer(t, "curl")
	s := harness.Start(t, harness.Options{Config: harness.Config{}.TOML()})
	if got := curlStatus(t, s, curl, "new.internal"); got != "000" {
		t.Fatalf("new.internal before the reload: status %s, want a failed handshake (000)", got)
	}
	original, err := os.ReadFile(s.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	added := string(original) + "\n[[site]]\nhosts = [\"new.internal\"]\nroot = \"" + s.Root + "\"\n"
	sighup(t, s, added, "msg=reloaded")
	for _, name := range []string{"new.internal", "localhost"} {
		if got := curlStatus(t, s, curl, name); got != "200" {
			t.Errorf("%s after the reload: status %s, want 200", name, got)
		}
	}
	broken := added + "\n[[site]]\nhosts = [\"broken.internal\"]\nroot = 7\n"
	line := sighup(t, s, broken, `msg="reload failed"`)
	if !strings.Contains(line, "anx.toml:") || !strings.Contains(line, "site.root") {
		t.Errorf("reload failure line %q: want the file, line and key", line)
	}
	for _, name := range []string{"new.internal", "localhost"} {
		if got := curlStatus(t, s, curl, name); got != "200" {
			t.Errorf("%s after a failed reload: status %s, want 200 (the running config)", name, got)
		}
	}
}

// sighup writes text as s's config file, sends SIGHUP and returns the
// first new log line that contains want.
func sighup(t *testing.T, s *harness.Server, text, want string) string {
	t.Helper()
	if err := os.WriteFile(s.ConfigPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	seen := strings.Count(s.Stderr(), want)
	if err := syscall.Kill(s.PID(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var found []string
		for line := range strings.SplitSeq(s.Stderr(), "\n") {
			if strings.Contains(line, want) {
				found = append(found, line)
			}
		}
		if len(found) > seen {
			return found[seen]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s within 10s of SIGHUP; stderr:\n%s", want, tail(s.Stderr(), 3000))
	return ""
}

// curlStatus GETs /hello.txt from name (resolved to anx) trusting anx's
// local CA, and returns the status code ("000" when curl got none).
func curlStatus(t *testing.T, s *harness.Server, curl, name string) string {
	t.Helper()
	p := strconv.Itoa(s.HTTPSPort)
	r := harness.RunCmd(t, s.Dir, harness.PeerTimeout, curl, "-s", "--max-time", "10", "--cacert", s.CAPath(),
		"--resolve", name+":"+p+":127.0.0.1", "-o", "/dev/null", "-w", "%{http_code}", "https://"+name+":"+p+"/hello.txt")
	return r.Stdout
}
