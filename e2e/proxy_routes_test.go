package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anx-gateway/anx/e2e/harness"
)

// quickStart is an `anx run --domain localhost --proxy URL...` started by
// hand, without the harness's --root, in a working directory that holds
// files which must not be served.
// Its fields are set by startQuickStart and only read afterwards.
type quickStart struct {
	https  string       // the https address
	dir    string       // the working directory, with its unservable files
	client *http.Client // HTTP/1.1 to https, trusting anx's root
}

// startQuickStart runs anx with args after `run --domain localhost
// --https --http --data` in a directory holding index.html and
// secret.txt, waits for its ready line, and stops it by pid (SIGTERM) in
// t.Cleanup, failing t on an exit other than 0 or a problem in its log.
func startQuickStart(t *testing.T, args ...string) *quickStart {
	t.Helper()
	dir := t.TempDir()
	harness.WriteFile(t, filepath.Join(dir, "index.html"), []byte("cwd index\n"))
	harness.WriteFile(t, filepath.Join(dir, "secret.txt"), []byte("CWD-SECRET\n"))
	https := "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
	data := filepath.Join(t.TempDir(), "data")
	all := append([]string{"run", "--domain", "localhost", "--https", https,
		"--http", "127.0.0.1:" + strconv.Itoa(harness.FreeTCPPort(t)), "--data", data}, args...)
	cmd := exec.Command(harness.Binary(), all...)
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	var mu sync.Mutex
	ready, exited := make(chan struct{}), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), "msg=ready") {
				once.Do(func() { close(ready) })
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	logText := func() string { mu.Lock(); defer mu.Unlock(); return log.String() }
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(harness.StopTimeout):
			_ = cmd.Process.Kill()
			<-exited
		}
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("anx %q exited %d after SIGTERM, want 0", args, code)
		}
		for _, p := range harness.LogProblems(logText(), nil) {
			t.Errorf("anx: %s", p)
		}
		if t.Failed() {
			t.Logf("anx stderr:\n%s", logText())
		}
	})
	select {
	case <-ready:
	case <-exited:
		t.Fatalf("anx %q exited before ready:\n%s", all, logText())
	case <-time.After(harness.ReadyTimeout):
		t.Fatalf("anx %q: no msg=ready within %v:\n%s", all, harness.ReadyTimeout, logText())
	}
	return &quickStart{https: https, dir: dir, client: quickStartClient(t, filepath.Join(data, "ca", "root.pem"), https)}
}

// quickStartClient is an HTTP/1.1 client to addr trusting the root at ca.
func quickStartClient(t *testing.T, ca, addr string) *http.Client {
	t.Helper()
	pemBytes, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: harness.SafetyNet}
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: harness.RequestTimeout}
}

// get GETs path and returns the status, the body and the X-Upstream field.
func (q *quickStart) get(t *testing.T, path string) (int, string, string) {
	t.Helper()
	res, err := q.client.Get("https://localhost" + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, string(body), res.Header.Get("X-Upstream")
}

// TestProxyQuickStart: `anx run --proxy URL` without --root forwards every
// request to the upstream, a file in the working directory included: the
// default root does not apply.
func TestProxyQuickStart(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "app"})
	q := startQuickStart(t, "--proxy", up.URL())
	for _, path := range []string{"/", "/secret.txt", "/index.html", "/any/thing?x=1"} {
		status, body, from := q.get(t, path)
		if status != http.StatusOK || from != "app" {
			t.Errorf("GET %s: status %d from upstream %q, want 200 from the upstream \"app\" (body %q)", path, status, from, body)
		}
		if strings.Contains(body, "CWD-SECRET") || strings.Contains(body, "cwd index") {
			t.Errorf("GET %s served a file of the working directory: %q", path, body)
		}
	}
	if n := up.Counts(t).Total; n != 4 {
		t.Errorf("the upstream counted %d requests, want 4", n)
	}
}

// TestProxyRootAndProxy: `--root DIR --proxy URL` serves a file that exists
// under the root and proxies every other request.
func TestProxyRootAndProxy(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "app"})
	s := harness.Start(t, harness.Options{Args: []string{"--proxy", up.URL()}})
	c := s.Client(harness.H1)
	file := get(s, harness.H1, c, "/hello.txt")
	if file.Status != http.StatusOK || string(file.Body) != string(s.File("hello.txt")) || file.Header.Get("X-Upstream") != "" {
		t.Errorf("GET /hello.txt: status %d, X-Upstream %q, body %q; want 200 and the root's file", file.Status,
			file.Header.Get("X-Upstream"), clip(file.Body, 0))
	}
	e := echoOf(t, "GET /api/missing?q=1", get(s, harness.H1, c, "/api/missing?q=1"))
	if e.Server != "app" || e.Target != "/api/missing?q=1" {
		t.Errorf("GET /api/missing?q=1: upstream %q got target %q, want \"app\" and the target as sent", e.Server, e.Target)
	}
	if n := up.Counts(t).Paths["/hello.txt"]; n != 0 {
		t.Errorf("the upstream got %d requests for /hello.txt, a file of the root; want 0", n)
	}
}

// TestProxyRoutes: a config's routes in order — exact "=/health", a
// prefix with strip_prefix, a later prefix it shadows (first match wins),
// redirect, respond, a root route, a second proxy, and the site's own root
// for the rest; matching is on the normalised path, and the request goes
// upstream with the path as the client sent it.
func TestProxyRoutes(t *testing.T) {
	t.Parallel()
	a, b := startUpstream(t, upstreamConfig{Name: "a"}), startUpstream(t, upstreamConfig{Name: "b"})
	static := t.TempDir()
	harness.WriteFile(t, filepath.Join(static, "s.txt"), []byte("static route file\n"))
	site := "root = \"{{.Root}}\"\n" +
		route("=/health", `respond = "route-health"`) +
		route("/api/", proxyTo(a.URL()), "strip_prefix = true") +
		route("/api/v2/", proxyTo(b.URL())) +
		route("/old/", `redirect = "https://example.com{uri}"`, "status = 301") +
		route("/static/", "root = "+strconv.Quote(static), "strip_prefix = true") +
		route("/b/", proxyTo(b.URL()))
	s := startProxy(t, proxyConfig("", site))
	cases := []struct {
		target, raw       string // raw: sent by hand over h1 (a target Go's client would clean)
		status            int
		body, location    string
		upstream, target2 string // the upstream that must answer, and the target it must see
	}{
		{target: "/health", status: 200, body: "route-health"},
		{target: "/health/x", status: 404},
		{target: "/api/x?q=1", status: 200, upstream: "a", target2: "/x?q=1"},
		{target: "/api/v2/y", status: 200, upstream: "a", target2: "/v2/y"},
		{target: "/old/p?q=2", status: 301, location: "https://example.com/old/p?q=2"},
		{target: "/static/s.txt", status: 200, body: "static route file\n"},
		{target: "/b/z", status: 200, upstream: "b", target2: "/b/z"},
		{raw: "/x/../b/z", status: 200, upstream: "b", target2: "/x/../b/z"},
		{raw: "/b//z", status: 200, upstream: "b", target2: "/b//z"},
		{target: "/hello.txt", status: 200, body: "hello, anx\n"},
		{target: "/nowhere", status: 404},
	}
	for _, p := range harness.Protos {
		c := s.Client(p)
		for _, tc := range cases {
			req := harness.Request{Target: tc.target}
			if tc.raw != "" {
				if p != harness.H1 {
					continue
				}
				req = harness.Request{Target: tc.raw, Raw: true}
			}
			r := s.Do(p, c, req)
			what := string(p) + " GET " + req.Target
			if r.Err != nil || r.Status != tc.status {
				t.Errorf("%s: status %d (err %v), want %d (body %q)", what, r.Status, r.Err, tc.status, clip(r.Body, 0))
				continue
			}
			if tc.body != "" && string(r.Body) != tc.body {
				t.Errorf("%s: body %q, want %q", what, r.Body, tc.body)
			}
			if got := r.Header.Get("Location"); tc.location != "" && got != tc.location {
				t.Errorf("%s: Location %q, want %q", what, got, tc.location)
			}
			if tc.upstream != "" {
				if e := echoOf(t, what, r); e.Server != tc.upstream || e.Target != tc.target2 {
					t.Errorf("%s: upstream %q saw target %q, want %q to see %q", what, e.Server, e.Target, tc.upstream, tc.target2)
				}
			}
			if tc.upstream == "" && r.Header.Get("X-Upstream") != "" {
				t.Errorf("%s: answered by upstream %q, want no upstream", what, r.Header.Get("X-Upstream"))
			}
		}
	}
}

// badRouteConfigs are route tables with one fault, on the line holding
// mark, whose error must name key.
var badRouteConfigs = []struct{ name, route, mark, key string }{
	{"bad-upstream-scheme", "path = \"/\"\nproxy = [\"ftp://127.0.0.1:21\"]\n", "ftp://", "proxy"},
	{"upstream-with-path", "path = \"/\"\nproxy = [\"http://127.0.0.1:3000/app\"]\n", "/app", "proxy"},
	{"unknown-route-key", "path = \"/\"\nproxy = [\"http://127.0.0.1:3000\"]\nproxy_timeout = \"5s\"\n", "proxy_timeout", "proxy_timeout"},
	{"bad-policy", "path = \"/\"\nproxy = [\"http://127.0.0.1:3000\"]\nlb_policy = \"fastest\"\n", "lb_policy", "lb_policy"},
	{"proxy-option-without-proxy", "path = \"/\"\nrespond = \"x\"\nlb_policy = \"first\"\n", "lb_policy", "lb_policy"},
	{"strip-exact", "path = \"=/x\"\nstrip_prefix = true\nrespond = \"x\"\n", "strip_prefix", "strip_prefix"},
	{"bad-duration", "path = \"/\"\nproxy = [\"http://127.0.0.1:3000\"]\nconnect_timeout = \"soon\"\n", "connect_timeout", "connect_timeout"},
}

// TestProxyBadConfig: `anx validate` and `anx run` on a config whose route
// has a bad upstream URL, an unknown key or a bad value exit non-zero with
// one line naming file:line and the key.
func TestProxyBadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range badRouteConfigs {
		text := fmt.Sprintf("https = \"127.0.0.1:%d\"\nhttp = \"127.0.0.1:%d\"\ndata = \"data\"\n\n[[site]]\nhosts = [\"localhost\"]\n\n[[site.route]]\n%s",
			harness.FreePort(t), harness.FreeTCPPort(t), c.route)
		line := strings.Count(text[:strings.Index(text, c.mark)], "\n") + 1
		path := filepath.Join(dir, c.name+".toml")
		harness.WriteFile(t, path, []byte(text))
		want := fmt.Sprintf("%s.toml:%d", c.name, line)
		for _, cmd := range []string{"validate", "run"} {
			r := harness.RunAnx(t, dir, harness.SafetyNet, cmd, "--config", path)
			what := fmt.Sprintf("anx %s --config %s.toml", cmd, c.name)
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
