package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anx-gateway/anx/cmd/anx/internal/config"
)

// upstream is a real HTTP server on loopback that answers "<name> <path>"
// (the request target as it arrived) and counts its requests.
type upstream struct {
	name string
	url  string
	srv  *http.Server
	hits chan string // each request's target, as it arrived

	conns  atomic.Int32  // connections accepted
	closed chan struct{} // gets a value for each connection closed
}

func startUpstream(t *testing.T, name string) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{name: name, url: "http://" + ln.Addr().String(), hits: make(chan string, 100), closed: make(chan struct{}, 100)}
	u.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case u.hits <- r.RequestURI:
		default:
		}
		fmt.Fprintf(w, "%s %s", name, r.RequestURI)
	}), ConnState: func(_ net.Conn, state http.ConnState) {
		switch state {
		case http.StateNew:
			u.conns.Add(1)
		case http.StateClosed:
			u.closed <- struct{}{}
		}
	}}
	go u.srv.Serve(ln) // returns when Close is called below
	t.Cleanup(func() { u.srv.Close() })
	return u
}

// startGateway runs a gateway over cfg on loopback ports chosen now, with
// plain HTTP serving the sites, and its log in the test's.
func startGateway(t *testing.T, cfg config.Config) *gateway {
	t.Helper()
	return startGatewayLoggingTo(t, cfg, testLog{t})
}

// startGatewayLoggingTo is startGateway with the gateway's log written
// to w.
func startGatewayLoggingTo(t *testing.T, cfg config.Config, w io.Writer) *gateway {
	t.Helper()
	cfg.HTTPS, cfg.HTTP, cfg.Data = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	for i := range cfg.Sites {
		cfg.Sites[i].HTTPMode = config.HTTPServe
	}
	gw, err := newGateway(cfg, slog.New(slog.NewTextHandler(w, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gw.start(); err != nil {
		gw.shutdown()
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.shutdown() })
	return gw
}

// testLog sends the gateway's log to the test's.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// get sends one plain HTTP/1.1 GET for target (sent as it is, not
// cleaned) with Host localhost and returns the status and body.
func get(t *testing.T, gw *gateway, target string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", gw.httpAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute)) // a safety net against a hang
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", target)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", target, err)
	}
	return resp.StatusCode, string(body)
}

// getKeepAlive sends a GET for target on the keep-alive connection c,
// whose reader is br, and returns the body of a 200 answer.
func getKeepAlive(t *testing.T, c net.Conn, br *bufio.Reader, target string) string {
	t.Helper()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", target)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d, body: %v", target, resp.StatusCode, err)
	}
	return string(body)
}

func runConfig(t *testing.T, args ...string) config.Config {
	t.Helper()
	f, err := parseRunFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadRunConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// --proxy alone sends everything upstream, and nothing comes from the
// current directory, which holds this test's source.
func TestProxyFlagAlone(t *testing.T) {
	app := startUpstream(t, "app")
	gw := startGateway(t, runConfig(t, "--proxy", app.url))
	for _, target := range []string{"/", "/proxy_test.go", "/a/b?c=d"} {
		if status, body := get(t, gw, target); status != 200 || body != "app "+target {
			t.Errorf("GET %s: %d %q, want 200 %q", target, status, body, "app "+target)
		}
	}
}

// --root with --proxy: a file that exists is served from the root, any
// other request goes to the app.
func TestProxyFlagWithRoot(t *testing.T) {
	app := startUpstream(t, "app")
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "style.css"), []byte("css"), 0o644); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, runConfig(t, "--root", root, "--proxy", app.url))
	cases := []struct{ target, body string }{
		{"/style.css", "css"},
		{"/login", "app /login"},
		{"/", "app /"},
		{"/.env", "app /.env"},
	}
	for _, c := range cases {
		if status, body := get(t, gw, c.target); status != 200 || body != c.body {
			t.Errorf("GET %s: %d %q, want 200 %q", c.target, status, body, c.body)
		}
	}
}

// A config's routes: the first that takes the normalised path serves,
// the upstream gets the path as the client sent it, and the site's root
// serves the rest.
func TestConfigRoutes(t *testing.T) {
	api, app := startUpstream(t, "api"), startUpstream(t, "app")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("home"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, fmt.Sprintf(`
[[site]]
hosts = ["localhost"]
root = %q
[[site.route]]
path = "=/health"
respond = "ok"
[[site.route]]
path = "/old/"
redirect = "https://example.com{uri}"
status = 301
[[site.route]]
path = "/api/"
proxy = [%q]
[[site.route]]
path = "/app/"
strip_prefix = true
proxy = [%q]
`, dir, api.url, app.url))
	gw := startGateway(t, runConfig(t, "--config", path))
	cases := []struct {
		target string
		status int
		body   string
	}{
		{"/health", 200, "ok"},
		{"/health/x", 404, "404 Not Found\n"},
		{"/", 200, "home"},
		{"/api/users?id=1", 200, "api /api/users?id=1"},
		{"/%61pi/users", 200, "api /%61pi/users"},
		{"/x/../api/users", 200, "api /x/../api/users"},
		{"/app/page?q", 200, "app /page?q"},
		{"/%61pp/page", 200, "app /page"},
		{"/old/a?b", 301, "301 Moved Permanently\n"},
	}
	for _, c := range cases {
		if status, body := get(t, gw, c.target); status != c.status || body != c.body {
			t.Errorf("GET %s: %d %q, want %d %q", c.target, status, body, c.status, c.body)
		}
	}
}

// --proxy with a config file adds its catch-all after the file's routes,
// with the file's root tried first; a file of two sites is refused.
func TestProxyFlagWithConfig(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, fmt.Sprintf("[[site]]\nhosts = [\"localhost\"]\nroot = %q\n[[site.route]]\npath = \"=/health\"\nrespond = \"ok\"\n", dir))
	cfg := runConfig(t, "--config", path, "--proxy", "http://127.0.0.1:9")
	s := cfg.Sites[0]
	if len(s.Routes) != 2 || s.Routes[0].Path != "=/health" || s.Routes[1].Path != "/" || s.Routes[1].Kind() != "root+proxy" || s.Routes[1].Root != dir || s.Root != "" {
		t.Errorf("site: root %q routes %+v; want =/health, then / with root %s and proxy", s.Root, s.Routes, dir)
	}
	two := writeConfig(t, "[[site]]\nhosts = [\"a.test\"]\nroot = \".\"\n[[site]]\nhosts = [\"b.test\"]\nroot = \".\"\n")
	f, _ := parseRunFlags([]string{"--config", two, "--proxy", "http://127.0.0.1:9"}, io.Discard)
	if _, err := loadRunConfig(f); err == nil || !strings.Contains(err.Error(), "declares 2") {
		t.Errorf("--proxy with a two-site file: %v, want a refusal", err)
	}
	for _, bad := range []string{"ftp://x", "127.0.0.1:3000", "http://x/path"} {
		f, _ := parseRunFlags([]string{"--proxy", bad}, io.Discard)
		if _, err := loadRunConfig(f); err == nil || !strings.HasPrefix(err.Error(), "--proxy: ") {
			t.Errorf("--proxy %s: %v, want a refusal naming --proxy", bad, err)
		}
	}
}

// A reload swaps the upstreams of a running gateway; a reload that fails
// keeps the running routes.
func TestReloadSwapsUpstreams(t *testing.T) {
	a, b := startUpstream(t, "a"), startUpstream(t, "b")
	gw := startGateway(t, runConfig(t, "--proxy", a.url))
	if _, body := get(t, gw, "/x"); body != "a /x" {
		t.Fatalf("before the reload: %q, want a /x", body)
	}
	next := gw.cfg
	next.Sites = []config.Site{{Hosts: []string{"localhost"}, HTTPMode: config.HTTPServe,
		Routes: []config.Route{{Path: "/", Proxy: []config.Upstream{{URL: b.url}}}}}}
	if err := gw.reload(next); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, gw, "/x"); body != "b /x" {
		t.Errorf("after the reload: %q, want b /x", body)
	}
	broken := gw.cfg
	broken.Sites = []config.Site{{Hosts: []string{"localhost"}, HTTPMode: config.HTTPServe,
		Routes: []config.Route{
			{Path: "/", Proxy: []config.Upstream{{URL: a.url}}},
			{Path: "/files/", Root: filepath.Join(t.TempDir(), "missing")},
		}}}
	if err := gw.reload(broken); err == nil {
		t.Fatal("a reload with a missing root succeeded")
	}
	if _, body := get(t, gw, "/x"); body != "b /x" {
		t.Errorf("after a failed reload: %q, want b /x (the running routes)", body)
	}
}

// A path that starts with "//" goes upstream as the client sent it, in
// origin form: not as an absolute URI whose host is its first segment
// ("http://api//users" would name the host "api" to the upstream).
func TestDoubleSlashPathReachesUpstreamAsSent(t *testing.T) {
	api := startUpstream(t, "api")
	gw := startGateway(t, runConfig(t, "--proxy", api.url))
	for _, target := range []string{"//api//users", "//evil.example/x?y"} {
		if status, body := get(t, gw, target); status != 200 || body != "api "+target {
			t.Errorf("GET %s: %d %q, want 200 %q", target, status, body, "api "+target)
		}
	}
}

// A reload that keeps an upstream keeps its pooled connection (the new
// route's handler shares the gateway's transports); one that drops an
// upstream closes its idle connections.
func TestReloadKeepsConnectionsToUpstreamsThatRemain(t *testing.T) {
	a, b := startUpstream(t, "a"), startUpstream(t, "b")
	gw := startGateway(t, runConfig(t, "--proxy", a.url))
	routeTo := func(urls ...string) config.Config {
		next := gw.cfg
		r := config.Route{Path: "/"}
		for _, u := range urls {
			r.Proxy = append(r.Proxy, config.Upstream{URL: u})
		}
		next.Sites = []config.Site{{Hosts: []string{"localhost"}, HTTPMode: config.HTTPServe, Routes: []config.Route{r}}}
		return next
	}
	// One keep-alive client connection: it stays on one event loop, whose
	// own pool holds the upstream connection (each loop has its own).
	client, err := net.Dial("tcp", gw.httpAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	client.SetDeadline(time.Now().Add(2 * time.Minute)) // a safety net against a hang
	br := bufio.NewReader(client)
	if body := getKeepAlive(t, client, br, "/1"); body != "a /1" {
		t.Fatalf("first request: %q", body)
	}
	if err := gw.reload(routeTo(a.url)); err != nil {
		t.Fatal(err)
	}
	if body := getKeepAlive(t, client, br, "/2"); body != "a /2" {
		t.Fatalf("after a reload with the same upstream: %q", body)
	}
	if n := a.conns.Load(); n != 1 {
		t.Errorf("upstream a saw %d connections over a reload that kept it, want 1 (the pooled one reused)", n)
	}
	if err := gw.reload(routeTo(b.url)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.closed: // the idle connection to a, which no route names now
	case <-time.After(2 * time.Minute): // a safety net
		t.Error("the idle connection to a dropped upstream is still open")
	}
	if _, body := get(t, gw, "/3"); body != "b /3" {
		t.Errorf("after a reload to b: %q", body)
	}
}

// A reload may add a proxy route to a gateway that served only files:
// front ends decide per request whether a handler runs on their loop.
func TestReloadAddsProxyToStaticSite(t *testing.T) {
	app := startUpstream(t, "app")
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "a.txt"), []byte("file"), 0o644); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, runConfig(t, "--root", root))
	if status, _ := get(t, gw, "/api/x"); status != 404 {
		t.Fatalf("before the reload: /api/x answered %d, want 404", status)
	}
	next := gw.cfg
	next.Sites = []config.Site{{Hosts: []string{"localhost"}, Root: root, HTTPMode: config.HTTPServe,
		Routes: []config.Route{{Path: "/api/", Proxy: []config.Upstream{{URL: app.url}}}}}}
	if err := gw.reload(next); err != nil {
		t.Fatalf("a reload that adds a proxy route: %v", err)
	}
	for target, want := range map[string]string{"/api/x": "app /api/x", "/a.txt": "file"} {
		if status, body := get(t, gw, target); status != 200 || body != want {
			t.Errorf("after the reload: GET %s: %d %q, want 200 %q", target, status, body, want)
		}
	}
}
