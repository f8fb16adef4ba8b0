package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/anx-gateway/anx/e2e/harness"
)

// nextRequest follows every bad request in the same write: it must get no
// answer, since the server closes after the 400.
const nextRequest = "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n"

// badRequests are HTTP/1.1 messages that must get 400 and a close.
var badRequests = []struct{ name, raw string }{
	{"request-line-extra", "GET /hello.txt HTTP/1.1 junk\r\nHost: localhost\r\n\r\n"},
	{"request-line-no-version", "GET /hello.txt\r\nHost: localhost\r\n\r\n"},
	{"method-bad-char", "G(T /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n"},
	{"header-space-in-name", "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nBad Name: x\r\n\r\n"},
	{"header-space-before-colon", "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-A : b\r\n\r\n"},
	{"header-no-colon", "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nNoColonHere\r\n\r\n"},
	{"missing-host", "GET /hello.txt HTTP/1.1\r\nAccept: */*\r\n\r\n"},
	{"cl-and-te", "POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	{"duplicate-different-cl", "POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"},
	{"te-gzip", "POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\nxxxxx"},
	{"te-on-http10", "POST /hello.txt HTTP/1.0\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	{"cl-negative", "POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n"},
}

// TestBadRequests: each bad message, over TLS and plain, gets exactly one
// 400 and the connection is closed without answering the request pipelined
// behind it.
func TestBadRequests(t *testing.T) {
	t.Parallel()
	s := harness.Start(t, harness.Options{HTTPMode: "serve"})
	var wg sync.WaitGroup
	for _, c := range badRequests {
		for _, transport := range []string{"tls", "plain"} {
			wg.Go(func() { badRequest(t, s, c.name, c.raw, transport) })
		}
	}
	wg.Wait()
}

// badRequest sends raw then nextRequest over transport and checks for one
// 400 and a close.
func badRequest(t *testing.T, s *harness.Server, name, raw, transport string) {
	what := fmt.Sprintf("%s over %s", name, transport)
	conn, err := s.Dial(transport)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	got, closed, err := harness.Exchange(conn, []byte(raw+nextRequest), harness.SafetyNet)
	conn.Close()
	res, rest := harness.ParseResponses(got)
	switch {
	case err != nil:
		t.Errorf("%s: %v", what, err)
	case len(res) != 1 || res[0].Status != http.StatusBadRequest:
		t.Errorf("%s: got %d responses %v, want exactly one 400:\n%q", what, len(res), statuses(res), got)
	case len(rest) > 0:
		t.Errorf("%s: %d bytes after the 400: %q", what, len(rest), rest)
	case !closed:
		t.Errorf("%s: connection still open %v after the 400", what, harness.SafetyNet)
	}
}

func statuses(res []harness.Response) []int {
	var out []int
	for _, r := range res {
		out = append(out, r.Status)
	}
	return out
}

// badConfigs are config files with one fault, on the line holding mark.
var badConfigs = []struct{ name, text, mark, key string }{
	{"wrong-type", "[timeouts]\nread_header = 10\n", "read_header = 10", "read_header"},
	{"unknown-key", "bogus_key = 1\n", "bogus_key", "bogus_key"},
	{"bad-http-mode", "[[site]]\nhosts = [\"localhost\"]\nroot = \"site\"\nhttp_mode = \"x\"\n", `http_mode = "x"`, "http_mode"},
	// A malformed ACME directory URL is a config error at load.
	{"acme-ca-bad-scheme", "email = \"test@example.com\"\nacme_ca = \"ht!tp://x\"\n", "acme_ca", "acme_ca"},
	{"acme-ca-not-a-url", "acme_ca = \"not a url\"\n", "acme_ca", "acme_ca"},
	{"fallback-not-a-path", "[[site]]\nhosts = [\"localhost\"]\nroot = \"site\"\nfallback = \"index.html\"\n", `fallback = "index.html"`, "fallback"},
	{"access-log-format", "[[site]]\nhosts = [\"localhost\"]\nroot = \"site\"\naccess_log_format = \"xml\"\n", `access_log_format = "xml"`, "access_log_format"},
	{"compress-unknown", "[[site]]\nhosts = [\"localhost\"]\nroot = \"site\"\ncompress = [\"lzma\"]\n", `compress = ["lzma"]`, "compress"},
	{"fallback-missing", "[[site]]\nhosts = [\"localhost\"]\nroot = \"site\"\nfallback = \"/missing.html\"\n", `fallback = "/missing.html"`, "fallback"},
	// Rate limits (issue 15): a malformed rate, a negative burst, an unknown key kind, an unknown option.
	{"rate-limit-rate", "[[site]]\nhosts = [\"localhost\"]\n[[site.route]]\npath = \"/\"\nrespond = \"ok\"\nrate_limit = { rate = \"100/fortnight\" }\n", "rate_limit", "rate_limit"},
	{"rate-limit-burst", "[[site]]\nhosts = [\"localhost\"]\n[[site.route]]\npath = \"/\"\nrespond = \"ok\"\nrate_limit = { rate = \"100/s\", burst = -1 }\n", "rate_limit", "burst"},
	{"rate-limit-key", "[[site]]\nhosts = [\"localhost\"]\n[[site.route]]\npath = \"/\"\nrespond = \"ok\"\nrate_limit = { rate = \"100/s\", key = \"cookie:sid\" }\n", "rate_limit", "cookie:sid"},
	// Connection limits (issue 15): a negative max_conns, a max_conns_per_ip that is no number.
	{"max-conns-negative", "[limits]\nmax_conns = -1\n", "max_conns = -1", "max_conns"},
	{"max-conns-per-ip-site", "[[site]]\nhosts = [\"localhost\"]\nroot = \"site\"\nmax_conns_per_ip = \"many\"\n", "max_conns_per_ip", "max_conns_per_ip"},
	// Upstream protection (issue 15): a breaker rate over 1, a queue without max_conns, a missing fallback file.
	{"breaker-error-rate", "[[site]]\nhosts = [\"localhost\"]\n[[site.route]]\npath = \"/\"\nproxy = [\"http://127.0.0.1:9\"]\nbreaker_error_rate = 1.5\n", "breaker_error_rate", "breaker_error_rate"},
	{"max-queue-alone", "[[site]]\nhosts = [\"localhost\"]\n[[site.route]]\npath = \"/\"\nproxy = [\"http://127.0.0.1:9\"]\nmax_queue = 10\n", "max_queue", "max_queue"},
	{"fallback-file-missing", "[[site]]\nhosts = [\"localhost\"]\n[[site.route]]\npath = \"/\"\nproxy = [\"http://127.0.0.1:9\"]\nfallback_file = \"/no/such/page.html\"\n", "fallback_file", "fallback_file"},
	{"rate-limit-option", "[[site]]\nhosts = [\"localhost\"]\n[[site.route]]\npath = \"/\"\nrespond = \"ok\"\nrate_limit = { rate = \"100/s\", zone = \"one\" }\n", "rate_limit", "zone"},
}

// TestBadConfig: `anx validate` and `anx run` on a faulty config exit
// non-zero with one line naming file:line and the key.
func TestBadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "site"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range badConfigs {
		head := fmt.Sprintf("https = \"127.0.0.1:%d\"\nhttp = \"127.0.0.1:%d\"\ndata = \"data\"\n\n",
			harness.FreePort(t), harness.FreeTCPPort(t))
		text := head + c.text
		if !strings.Contains(text, "[[site]]") {
			text += "\n[[site]]\nhosts = [\"localhost\"]\nroot = \"site\"\n"
		}
		line := strings.Count(text[:strings.Index(text, c.mark)], "\n") + 1
		path := filepath.Join(dir, c.name+".toml")
		harness.WriteFile(t, path, []byte(text))
		want := fmt.Sprintf("%s.toml:%d", c.name, line)
		for _, cmd := range []string{"validate", "run"} {
			r := harness.RunAnx(t, dir, harness.SafetyNet, cmd, "--config", path)
			what := fmt.Sprintf("anx %s --config %s.toml (%s)", cmd, c.name, c.name)
			if r.TimedOut || r.ExitCode == 0 {
				t.Errorf("%s: exit %d (timed out %v), want non-zero\nstderr: %s", what, r.ExitCode, r.TimedOut, r.Stderr)
				continue
			}
			ls := lines(r.Stderr)
			if len(ls) != 1 || !strings.Contains(ls[0], want) || !strings.Contains(ls[0], c.key) {
				t.Errorf("%s: stderr %q, want one line naming %q and key %q", what, r.Stderr, want, c.key)
			}
			noCrash(t, what, r)
		}
	}
}

// noCrash fails t if r's output shows a panic or a goroutine dump.
func noCrash(t *testing.T, what string, r harness.Result) {
	t.Helper()
	for _, bad := range []string{"panic", "goroutine "} {
		if strings.Contains(r.Stderr+r.Stdout, bad) {
			t.Errorf("%s: output contains %q:\n%s", what, bad, r.Stderr)
		}
	}
}

// TestMissingRoot: --root naming a missing directory exits non-zero with
// one line naming it, no stack trace.
func TestMissingRoot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root := filepath.Join(dir, "no-such-root")
	r := harness.RunAnx(t, dir, harness.SafetyNet, "run", "--root", root, "--domain", "localhost",
		"--https", "127.0.0.1:"+strconv.Itoa(harness.FreePort(t)), "--http", "127.0.0.1:"+strconv.Itoa(harness.FreeTCPPort(t)),
		"--data", filepath.Join(dir, "data"))
	checkOneLineError(t, "missing --root", r, root)
}

// TestPortInUse: an https port taken on TCP, or on UDP, makes anx exit
// non-zero with a line naming the address.
func TestPortInUse(t *testing.T) {
	t.Parallel()
	for _, network := range []string{"tcp", "udp"} {
		t.Run(network, func(t *testing.T) {
			dir := t.TempDir()
			harness.WriteSite(t, filepath.Join(dir, "site"))
			port := harness.FreePort(t)
			addr := "127.0.0.1:" + strconv.Itoa(port)
			closer := holdPort(t, network, addr)
			defer closer()
			r := harness.RunAnx(t, dir, harness.SafetyNet, "run", "--root", filepath.Join(dir, "site"), "--domain", "localhost",
				"--https", addr, "--http", "127.0.0.1:"+strconv.Itoa(harness.FreeTCPPort(t)), "--data", filepath.Join(dir, "data"))
			checkOneLineError(t, network+" port "+addr+" in use", r, addr)
		})
	}
}

// holdPort binds addr on network and returns the function that frees it.
func holdPort(t *testing.T, network, addr string) func() {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return func() { pc.Close() }
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return func() { ln.Close() }
}

// checkOneLineError fails t unless r exited non-zero in time, exactly one
// stderr line names name and that is the last line, and nothing crashed.
func checkOneLineError(t *testing.T, what string, r harness.Result, name string) {
	t.Helper()
	if r.TimedOut || r.ExitCode == 0 {
		t.Errorf("%s: exit %d (timed out %v), want a non-zero exit\nstderr:\n%s", what, r.ExitCode, r.TimedOut, r.Stderr)
		return
	}
	ls := lines(r.Stderr)
	naming := 0
	for _, l := range ls {
		if strings.Contains(l, name) {
			naming++
		}
	}
	if naming != 1 || !strings.Contains(ls[len(ls)-1], name) {
		t.Errorf("%s: want exactly one stderr line naming %q, the last one; stderr:\n%s", what, name, r.Stderr)
	}
	noCrash(t, what, r)
	t.Logf("%s: %s", what, bytes.TrimSpace([]byte(r.Stderr)))
}
