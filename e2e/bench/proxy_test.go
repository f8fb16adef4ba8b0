package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// benchFiles writes the bench site and certificate into a directory the
// workers of nginx (nobody) can read, removed when the test ends.
func benchFiles(t *testing.T) (string, files) {
	t.Helper()
	dir, err := os.MkdirTemp("", "anx-bench-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := writeSite(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, f
}

// need returns the path of a server binary, or skips the test naming it.
func need(t *testing.T, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (e2e/bench/install.sh installs it; Caddy: make bench-caddy): %v", name, err)
	}
	return bin
}

// renderOnly writes sp's config of role r for an instance on fixed ports
// (nothing is started) and returns the instance and the arguments.
func renderOnly(t *testing.T, sp *spec, r role, f files, dir string) (*instance, []string) {
	t.Helper()
	up := &instance{httpPort: 18080}
	in := &instance{spec: sp, role: r, upstream: up, dir: dir, files: f, httpPort: 18081, httpsPort: 18443, h2cPort: 18082}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	args, err := sp.config(r)(in)
	if err != nil {
		t.Fatalf("%s %s config: %v", sp.name, r, err)
	}
	return in, args
}

// specNamed returns the spec named name.
func specNamed(t *testing.T, name string) *spec {
	t.Helper()
	for _, sp := range append(specs(), upstreamSpec()) {
		if sp.name == name {
			return sp
		}
	}
	t.Fatalf("no spec %q", name)
	return nil
}

// TestNginxConfigsAreValid checks the upstream's and the proxy_pass config
// with nginx -t, and that they say what the report claims.
func TestNginxConfigsAreValid(t *testing.T) {
	bin := need(t, "nginx")
	tmp, f := benchFiles(t)
	for _, c := range []struct {
		spec string
		r    role
		want []string
	}{
		{"upstream", serveFiles, []string{"worker_processes 1;", "listen 127.0.0.1:18081;", "keepalive_requests 10000000;"}},
		{"nginx", proxyToUpstream, []string{"worker_processes 2;", "server 127.0.0.1:18080;", "keepalive 32;",
			"proxy_pass http://app;", "proxy_http_version 1.1;", `proxy_set_header Connection "";`, "listen 127.0.0.1:18443 ssl http2;"}},
		{"nginx", serveFiles, []string{"worker_processes 2;", "root " + f.site, "listen 127.0.0.1:18443 ssl http2;",
			"listen 127.0.0.1:18082 http2;\n\t\tserver_name localhost;\n\t\tsendfile off;"}},
	} {
		dir := filepath.Join(tmp, c.spec+"-"+c.r.String())
		_, args := renderOnly(t, specNamed(t, c.spec), c.r, f, dir)
		conf := args[slices.Index(args, "-c")+1]
		b, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range c.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s %s config lacks %q:\n%s", c.spec, c.r, w, b)
			}
		}
		out, err := exec.Command(bin, append([]string{"-t"}, args...)...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "test is successful") {
			t.Errorf("nginx -t of the %s %s config: %v\n%s\n%s", c.spec, c.r, err, out, b)
		}
	}
}

// TestHAProxyConfigIsValid checks the generated config with haproxy -c and
// that the PEM it loads holds the chain and the key.
func TestHAProxyConfigIsValid(t *testing.T) {
	bin := need(t, "haproxy")
	tmp, f := benchFiles(t)
	in, args := renderOnly(t, specNamed(t, "haproxy"), proxyToUpstream, f, filepath.Join(tmp, "haproxy"))
	if want := []string{"-f", filepath.Join(in.dir, "haproxy.cfg"), "-db"}; !slices.Equal(args, want) {
		t.Errorf("args = %q, want %q", args, want)
	}
	pem, err := os.ReadFile(filepath.Join(in.dir, "haproxy.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if n, k := strings.Count(string(pem), "BEGIN CERTIFICATE"), strings.Count(string(pem), "BEGIN PRIVATE KEY"); n != 2 || k != 1 {
		t.Errorf("haproxy.pem holds %d certificates and %d keys, want 2 and 1", n, k)
	}
	cfg, err := os.ReadFile(args[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"nbthread 2", "http-reuse always", "mode http", "bind 127.0.0.1:18081\n",
		"bind 127.0.0.1:18443 ssl crt " + filepath.Join(in.dir, "haproxy.pem") + " alpn h2,http/1.1", "server up 127.0.0.1:18080"} {
		if !strings.Contains(string(cfg), w) {
			t.Errorf("haproxy.cfg lacks %q:\n%s", w, cfg)
		}
	}
	out, err := exec.Command(bin, "-c", "-f", args[1]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Configuration file is valid") {
		t.Errorf("haproxy -c: %v\n%s\n%s", err, out, cfg)
	}
}

// TestCaddyProxyConfigIsValid checks the Caddyfile with caddy adapt, when
// Caddy is on PATH (make bench-caddy).
func TestCaddyProxyConfigIsValid(t *testing.T) {
	bin := need(t, "caddy")
	tmp, f := benchFiles(t)
	_, args := renderOnly(t, specNamed(t, "caddy"), proxyToUpstream, f, filepath.Join(tmp, "caddy"))
	conf := args[slices.Index(args, "--config")+1]
	out, err := exec.Command(bin, "adapt", "--adapter", "caddyfile", "--config", conf, "--validate").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"upstreams":[{"dial":"127.0.0.1:18080"}]`) {
		t.Errorf("caddy adapt --validate: %v\n%s", err, out)
	}
}

// TestAnxProxyArgs checks anx's proxy config: the quick start (a catch-all
// route to the upstream) with the bench's ports, plain HTTP serving and
// the access log off.
func TestAnxProxyArgs(t *testing.T) {
	tmp, f := benchFiles(t)
	in, args := renderOnly(t, specNamed(t, "anx"), proxyToUpstream, f, filepath.Join(tmp, "anx"))
	conf := filepath.Join(in.dir, "anx.toml")
	if want := []string{"run", "--config", conf}; !slices.Equal(args, want) {
		t.Fatalf("args = %q\nwant %q", args, want)
	}
	text, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{`https = "127.0.0.1:18443"`, `http  = "127.0.0.1:18081"`, `data  = "` + filepath.Join(in.dir, "data") + `"`,
		`hosts = ["localhost"]`, `http_mode = "serve"`, `access_log = "off"`, `path = "/"`, `proxy = ["http://127.0.0.1:18080"]`} {
		if !strings.Contains(string(text), line+"\n") {
			t.Errorf("anx.toml lacks the line %s:\n%s", line, text)
		}
	}
}

// TestProxiesReachTheUpstream starts the upstream nginx and each anchor
// proxy that is installed on real loopback ports, and fetches the small
// file through each over plain HTTP/1.1, TLS and h2 (start itself waits
// for the first two). Every process is stopped by its process group.
func TestProxiesReachTheUpstream(t *testing.T) {
	need(t, "nginx")
	tmp, f := benchFiles(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a safety net
	defer cancel()
	up, err := startUpstream(ctx, filepath.Join(tmp, "upstream"), f)
	if err != nil {
		t.Fatal(err)
	}
	defer up.stop()
	for _, name := range []string{"nginx", "haproxy", "caddy"} {
		t.Run(name, func(t *testing.T) {
			sp := specNamed(t, name)
			bin := need(t, name)
			dir := filepath.Join(tmp, name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			in, err := start(ctx, sp, proxyToUpstream, up, bin, dir, f)
			if err != nil {
				t.Fatal(err)
			}
			defer in.stop()
			res, err := h2Client().Get(in.httpsURL("/" + smallFile))
			if err != nil {
				t.Fatal(err)
			}
			if res.Proto != "HTTP/2.0" {
				t.Errorf("through %s over TLS with h2 offered: %s, want HTTP/2.0", name, res.Proto)
			}
			if err := readSmall(res); err != nil {
				t.Errorf("through %s over h2: %v", name, err)
			}
		})
	}
	// The direct measurement of the latency load goes to the upstream itself.
	res, err := http.Get(up.httpURL("/" + smallFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := readSmall(res); err != nil {
		t.Errorf("upstream: %v", err)
	}
}

// h2Client offers h2 and http/1.1 by ALPN without verifying, like h2load.
func h2Client() *http.Client {
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		TLSClientConfig: clientTLS("h2", "http/1.1"), ForceAttemptHTTP2: true}}
}

// TestOpenLoopThroughNginx runs the proxy latency load for a second at a
// low rate (a slow machine keeps up with it) through nginx and checks every value it reports is there and
// consistent: no failures, p50 <= p99, added = through - direct.
func TestOpenLoopThroughNginx(t *testing.T) {
	bin := need(t, "nginx")
	tmp, f := benchFiles(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	up, err := startUpstream(ctx, filepath.Join(tmp, "upstream"), f)
	if err != nil {
		t.Fatal(err)
	}
	defer up.stop()
	dir := filepath.Join(tmp, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := start(ctx, specNamed(t, "nginx"), proxyToUpstream, up, bin, dir, f)
	if err != nil {
		t.Fatal(err)
	}
	defer in.stop()
	vals, err := proxyLatencyLoad(50)(ctx, in, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"p99_ms", "direct_p99_ms", "p50_ms", "direct_p50_ms"} {
		if vals[k] <= 0 {
			t.Errorf("%s = %v, want > 0 (all: %v)", k, vals[k], vals)
		}
	}
	if vals["errors"] != 0 || vals["p50_ms"] > vals["p99_ms"] || !near(vals["added_p99_ms"], vals["p99_ms"]-vals["direct_p99_ms"]) {
		t.Errorf("inconsistent values: %v", vals)
	}
}

func TestQuantileMS(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	if got := quantileMS(lat, 0.99); got != 99 {
		t.Errorf("p99 of 1..100 ms = %v, want 99", got)
	}
	if got := quantileMS(lat, 0.50); got != 50 {
		t.Errorf("p50 of 1..100 ms = %v, want 50", got)
	}
	if got := quantileMS(nil, 0.99); got != 0 {
		t.Errorf("p99 of nothing = %v, want 0", got)
	}
}

// TestServersTakeTheirLoads: the proxy loads run on the servers that proxy,
// the file loads on those that serve files, and a server that can take no
// selected load gets no column.
func TestServersTakeTheirLoads(t *testing.T) {
	selected := func(names ...string) []*loadReport {
		var lrs []*loadReport
		for _, n := range names {
			lrs = append(lrs, &loadReport{Name: n})
		}
		return lrs
	}
	tests := []struct {
		loads []string
		want  []string
	}{
		{[]string{"proxy-h1", "proxy-h1-tls", "proxy-h2", "proxy-latency"}, []string{"anx", "anx-limit", "nginx", "haproxy", "caddy"}},
		{[]string{"h1-plain-1k"}, []string{"anx", "anx-log", "nginx", "h2o", "caddy"}},
		{[]string{"h3-1k"}, []string{"anx", "anx-log", "caddy"}},
		{[]string{"h2c-1k"}, []string{"anx", "nginx", "h2o"}},
		{[]string{"h2-c1000", "idle-rss-h2"}, []string{"anx", "nginx", "h2o", "caddy"}},
		{[]string{"h1-plain-1k", "proxy-h1"}, []string{"anx", "anx-log", "anx-limit", "nginx", "h2o", "haproxy", "caddy"}},
		{[]string{"proxy-latency"}, []string{"anx", "nginx", "haproxy", "caddy"}},
		{[]string{"h1-plain-10m"}, []string{"anx", "nginx", "h2o", "caddy"}},
	}
	for _, tt := range tests {
		var got []string
		for _, sp := range specs() {
			if takesAny(sp, selected(tt.loads...)) {
				got = append(got, sp.name)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("servers for %v = %v, want %v", tt.loads, got, tt.want)
		}
	}
	if o, err := parseFlags([]string{"-only", "proxy-h1,proxy-latency", "-servers", "anx,haproxy"}, io.Discard); err != nil ||
		!slices.Equal(o.only, []string{"proxy-h1", "proxy-latency"}) || !slices.Equal(o.servers, []string{"anx", "haproxy"}) {
		t.Errorf("parseFlags: %+v, %v", o, err)
	}
}
