package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anx-gateway/anx/e2e/harness"
)

// accessLine is one JSON line of the access log.
type accessLine struct {
	Time           string  `json:"time"`
	Remote         string  `json:"remote"`
	Method         string  `json:"method"`
	Host           string  `json:"host"`
	URI            string  `json:"uri"`
	Proto          string  `json:"proto"`
	Status         int     `json:"status"`
	BytesSent      int64   `json:"bytes_sent"`
	DurationMS     float64 `json:"duration_ms"`
	TLS            string  `json:"tls"`
	SNI            string  `json:"sni"`
	Site           string  `json:"site"`
	Route          string  `json:"route"`
	RequestID      string  `json:"request_id"`
	Upstream       string  `json:"upstream"`
	UpstreamStatus int     `json:"upstream_status"`
	UpstreamMS     float64 `json:"upstream_ms"`
}

// accessLogConfig is a localhost site serving its root, with /api/
// proxied to upstream, logging with the given site lines (access_log ...).
func accessLogConfig(upstream string, siteLines ...string) string {
	return proxyConfig("", "root = \"{{.Root}}\"\n"+strings.Join(siteLines, "\n")+"\n"+route("/api/", proxyTo(upstream)))
}

// waitLines waits until the file at path has at least n lines and returns
// them all; the deadline is a safety net.
func waitLines(t *testing.T, path string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(harness.SafetyNet)
	for {
		b, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(b) > 0 && len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d lines after %v, want %d:\n%s", path, len(lines), harness.SafetyNet, n, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// parseAccessLines decodes JSON lines, failing t for any that is not one.
func parseAccessLines(t *testing.T, lines []string) []accessLine {
	t.Helper()
	out := make([]accessLine, 0, len(lines))
	for _, l := range lines {
		var a accessLine
		dec := json.NewDecoder(strings.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			t.Errorf("access log line %q: %v", l, err)
			continue
		}
		out = append(out, a)
	}
	return out
}

// wantProto is the proto field of each client protocol.
var wantProto = map[harness.Proto]string{harness.H1: "HTTP/1.1", harness.H2: "HTTP/2", harness.H3: "HTTP/3"}

// TestAccessLogJSON: a file and a proxied file over h1, h2 and h3 each
// give one JSON line with the right protocol, status, TLS version, SNI,
// route, and for the proxied ones the upstream, its status and time; the
// request id is the one the upstream got, not the one the client sent.
func TestAccessLogJSON(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "app"})
	s := startProxy(t, accessLogConfig(up.URL(), `access_log = "access.log"`))
	logPath := filepath.Join(s.Dir, "access.log")
	sentIDs := map[harness.Proto]string{}
	for _, p := range harness.Protos {
		if r := s.Get(p, "/hello.txt?p="+string(p)); r.Status != 200 {
			t.Fatalf("%s GET /hello.txt: status %d, err %v", p, r.Status, r.Err)
		}
		r := s.Do(p, s.Client(p), harness.Request{Target: "/api/echo?p=" + string(p),
			Header: http.Header{"X-Request-Id": {"forged-by-client"}}})
		e := echoOf(t, string(p)+" proxied", r)
		sentIDs[p] = e.Header.Get("X-Request-Id")
	}
	// Plain HTTP redirects to HTTPS (http_mode "redirect"): no route serves
	// it, and the line names the site by the request's host.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if res, err := noFollow.Get(s.HTTPURL("/hello.txt?redirect")); err != nil || res.StatusCode != 308 {
		t.Fatalf("plain GET: %v, %v; want a 308", res, err)
	} else {
		res.Body.Close()
	}
	lines := parseAccessLines(t, waitLines(t, logPath, 2*len(harness.Protos)+1))
	byURI := map[string]accessLine{}
	for _, l := range lines {
		byURI[l.URI] = l
	}
	if red := byURI["/hello.txt?redirect"]; red.Status != 308 || red.Site != "localhost" || red.Route != "" || red.TLS != "" || red.Proto != "HTTP/1.1" {
		t.Errorf("the plain redirect's line: %+v", red)
	}
	for _, p := range harness.Protos {
		file, ok := byURI["/hello.txt?p="+string(p)]
		if !ok {
			t.Errorf("%s: no line for /hello.txt; lines: %+v", p, lines)
			continue
		}
		if file.Proto != wantProto[p] || file.Status != 200 || file.BytesSent != int64(len("hello, anx\n")) ||
			file.TLS != "TLSv1.3" || file.SNI != "localhost" || file.Site != "localhost" || file.Route != "" ||
			file.Method != "GET" || file.Remote != "127.0.0.1" || file.Upstream != "" || len(file.RequestID) != 32 {
			t.Errorf("%s file line: %+v", p, file)
		}
		api, ok := byURI["/api/echo?p="+string(p)]
		if !ok {
			t.Errorf("%s: no line for /api/echo; lines: %+v", p, lines)
			continue
		}
		if api.Proto != wantProto[p] || api.Status != 200 || api.Route != "/api/" || api.Upstream != up.URL() ||
			api.UpstreamStatus != 200 || api.UpstreamMS <= 0 || api.UpstreamMS > api.DurationMS {
			t.Errorf("%s proxied line: %+v (upstream %s)", p, api, up.URL())
		}
		if api.RequestID != sentIDs[p] || api.RequestID == "forged-by-client" || len(api.RequestID) != 32 {
			t.Errorf("%s: the line's request_id %q, the upstream got %q: want the same id, made by anx", p, api.RequestID, sentIDs[p])
		}
	}
}

// combinedRE is nginx's combined format with the request id after it.
var combinedRE = regexp.MustCompile(`^127\.0\.0\.1 - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET (/\S*) (HTTP/1\.1|HTTP/2|HTTP/3)" (\d{3}) (\d+) "([^"]*)" "([^"]*)" "([0-9a-f]{32})"$`)

// TestAccessLogCombined: access_log_format = "combined" gives nginx's
// combined lines, with the status, the protocol and the User-Agent of each
// request.
func TestAccessLogCombined(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "app"})
	s := startProxy(t, accessLogConfig(up.URL(), `access_log = "combined.log"`, `access_log_format = "combined"`))
	want := map[string]string{} // target -> "proto status"
	for _, p := range harness.Protos {
		for target, status := range map[string]int{"/hello.txt?" + string(p): 200, "/missing?" + string(p): 404, "/api/echo?" + string(p): 200} {
			r := s.Do(p, s.Client(p), harness.Request{Target: target, Header: http.Header{"User-Agent": {`agent "quoted"`}}})
			if r.Status != status {
				t.Fatalf("%s %s: status %d, want %d (err %v)", p, target, r.Status, status, r.Err)
			}
			want[target] = fmt.Sprintf("%s %d", wantProto[p], status)
		}
	}
	lines := waitLines(t, filepath.Join(s.Dir, "combined.log"), len(want))
	for _, l := range lines {
		m := combinedRE.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("line %q does not match the combined format", l)
			continue
		}
		if got := m[2] + " " + m[3]; got != want[m[1]] {
			t.Errorf("%s: logged %q, want %q", m[1], got, want[m[1]])
		}
		if m[6] != `agent \x22quoted\x22` {
			t.Errorf("%s: user agent logged as %q, want the quotes escaped as \\x22", m[1], m[6])
		}
		delete(want, m[1])
	}
	if len(want) > 0 {
		t.Errorf("no line for %v", want)
	}
}

// TestAccessLogReopen: logrotate's way: after mv and SIGUSR1, new lines go
// to a new file at the configured path, and the moved file keeps the old
// ones.
func TestAccessLogReopen(t *testing.T) {
	t.Parallel()
	s := harness.Start(t, harness.Options{Config: harness.Config{Site: []string{`access_log = "access.log"`}}.TOML()})
	path := filepath.Join(s.Dir, "access.log")
	if r := s.Get(harness.H1, "/hello.txt?before"); r.Status != 200 {
		t.Fatalf("status %d, err %v", r.Status, r.Err)
	}
	waitLines(t, path, 1)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if !s.WaitLog(`msg="access logs reopened"`, harness.SafetyNet) {
		t.Fatalf("no reopen logged after SIGUSR1:\n%s", s.Stderr())
	}
	if r := s.Get(harness.H2, "/hello.txt?after"); r.Status != 200 {
		t.Fatalf("status %d, err %v", r.Status, r.Err)
	}
	after := parseAccessLines(t, waitLines(t, path, 1))
	if len(after) != 1 || after[0].URI != "/hello.txt?after" {
		t.Errorf("the new file has %+v, want only the request after SIGUSR1", after)
	}
	old, err := os.ReadFile(path + ".1")
	if err != nil {
		t.Fatal(err)
	}
	if lines := parseAccessLines(t, strings.Split(strings.TrimSpace(string(old)), "\n")); len(lines) != 1 || lines[0].URI != "/hello.txt?before" {
		t.Errorf("the moved file has %+v, want only the request before SIGUSR1", lines)
	}
}

// TestAccessLogFullFilesystem: with the log on a 64 KiB tmpfs that fills
// up, every request is still served; the lost lines are reported.
func TestAccessLogFullFilesystem(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a small tmpfs here (%v); core/accesslog's tests cover a stuck destination with a pipe", err)
	}
	t.Cleanup(func() { // after anx has stopped (cleanups run last-in first-out)
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	s := harness.Start(t, harness.Options{Config: harness.Config{
		Site: []string{fmt.Sprintf("access_log = %q", filepath.Join(dir, "access.log"))}}.TOML()})
	c := s.Client(harness.H1)
	const n = 3000 // about 1 MB of lines: 64 KiB hold fewer than 300
	for i := range n {
		r := s.Do(harness.H1, c, harness.Request{Target: fmt.Sprintf("/hello.txt?%d", i)})
		if r.Status != 200 {
			t.Fatalf("request %d with the log's filesystem full: status %d, err %v", i, r.Status, r.Err)
		}
	}
	if !s.WaitLog("no space left on device", harness.SafetyNet) {
		t.Fatalf("the failed writes were not reported:\n%s", s.Stderr())
	}
	for _, p := range harness.Protos {
		if r := s.Get(p, "/hello.txt"); r.Status != 200 {
			t.Errorf("%s after the disk filled: status %d, err %v", p, r.Status, r.Err)
		}
	}
}

// TestAccessLogReloadLosesNoLine: a reload that moves the site's log to
// another file, in another format, while requests keep coming, logs every
// request exactly once: those before it (and in flight) in the old file as
// JSON, the later ones in the new file as combined lines.
func TestAccessLogReloadLosesNoLine(t *testing.T) {
	t.Parallel()
	s := harness.Start(t, harness.Options{Config: harness.Config{Site: []string{`access_log = "a.log"`}}.TOML()})
	config, err := os.ReadFile(s.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	const n = 400
	halfway, done := make(chan struct{}), make(chan error, 1)
	go func() { // the load; it ends by itself after n requests
		c := s.Client(harness.H1)
		for i := range n {
			if i == n/2 {
				close(halfway)
			}
			if r := s.Do(harness.H1, c, harness.Request{Target: fmt.Sprintf("/hello.txt?%d", i)}); r.Status != 200 {
				done <- fmt.Errorf("request %d: status %d, err %v", i, r.Status, r.Err)
				return
			}
		}
		done <- nil
	}()
	<-halfway
	next := strings.Replace(string(config), `access_log = "a.log"`, `access_log = "b.log"`+"\naccess_log_format = \"combined\"", 1)
	if line := s.Reload(t, next); !strings.Contains(line, "msg=reloaded") {
		t.Fatalf("reload: %s", line)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	deadline := time.Now().Add(harness.SafetyNet)
	for len(seen) < n && time.Now().Before(deadline) {
		clear(seen)
		a, _ := os.ReadFile(filepath.Join(s.Dir, "a.log"))
		b, _ := os.ReadFile(filepath.Join(s.Dir, "b.log"))
		for _, l := range strings.Split(strings.TrimSpace(string(a)), "\n") {
			var line accessLine
			if json.Unmarshal([]byte(l), &line) == nil {
				seen[line.URI]++
			}
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if m := combinedRE.FindStringSubmatch(l); m != nil {
				seen[m[1]]++
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range n {
		if uri := fmt.Sprintf("/hello.txt?%d", i); seen[uri] != 1 {
			t.Errorf("%s logged %d times, want once", uri, seen[uri])
		}
	}
	if a, _ := os.ReadFile(filepath.Join(s.Dir, "a.log")); !strings.Contains(string(a), `"uri":"/hello.txt?0"`) {
		t.Errorf("the first request is not in the old file as JSON")
	}
	if b, _ := os.ReadFile(filepath.Join(s.Dir, "b.log")); !strings.Contains(string(b), fmt.Sprintf(`"GET /hello.txt?%d HTTP/1.1" 200`, n-1)) {
		t.Errorf("the last request is not in the new file as a combined line")
	}
}

// TestAccessLogTrustedProxy: behind a trusted proxy (127.0.0.1 is in
// trusted_proxies), the line names the client its X-Forwarded-For names,
// and the proxy's X-Request-ID is the request's id, logged and sent
// upstream.
func TestAccessLogTrustedProxy(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "app"})
	s := startProxy(t, proxyConfig(`trusted_proxies = ["127.0.0.1"]`,
		"root = \"{{.Root}}\"\naccess_log = \"access.log\"\n"+route("/api/", proxyTo(up.URL()))))
	for _, target := range []string{"/hello.txt?trusted", "/api/echo?trusted"} {
		r := s.Do(harness.H2, s.Client(harness.H2), harness.Request{Target: target, Header: http.Header{
			"X-Forwarded-For": {"203.0.113.7, 127.0.0.1"}, "X-Request-Id": {"edge-77"}}})
		if r.Status != 200 {
			t.Fatalf("%s: status %d, err %v", target, r.Status, r.Err)
		}
		if strings.HasPrefix(target, "/api/") {
			if got := echoOf(t, target, r).Header.Get("X-Request-Id"); got != "edge-77" {
				t.Errorf("the upstream got X-Request-ID %q, want the trusted proxy's", got)
			}
		}
	}
	for _, l := range parseAccessLines(t, waitLines(t, filepath.Join(s.Dir, "access.log"), 2)) {
		if l.Remote != "203.0.113.7" || l.RequestID != "edge-77" {
			t.Errorf("%s: remote %q, request_id %q; want the client X-Forwarded-For names and the proxy's id", l.URI, l.Remote, l.RequestID)
		}
	}
}
