package e2e

import (
	"bufio"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anx-gateway/anx/e2e/harness"
	"github.com/anx-gateway/anx/internal/testlisten"
	"github.com/anx-gateway/anx/internal/testpki"
)

// upstreamProc is a running test upstream process (proxy_upstream_test.go).
// Its fields are set by startUpstream and only read afterwards, from any
// goroutine; the process is reaped by the goroutine that closes done.
type upstreamProc struct {
	Name  string
	Addrs upstreamAddrs
	cfg   upstreamConfig
	cmd   *exec.Cmd
	done  chan struct{} // closed once the process has exited and was reaped
}

// startUpstream starts this test binary as an upstream with cfg, waits for
// its addresses and kills it by pid in t.Cleanup.
func startUpstream(t testing.TB, cfg upstreamConfig) *upstreamProc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(cfg)
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), upstreamEnv+"="+string(js))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting upstream %s: %v", cfg.Name, err)
	}
	u := &upstreamProc{Name: cfg.Name, cfg: cfg, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(u.done)
	}()
	t.Cleanup(u.Kill)
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- l
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-line:
		if err := json.Unmarshal([]byte(l), &u.Addrs); err != nil {
			t.Fatalf("upstream %s: its first line %q: %v", cfg.Name, l, err)
		}
	case <-time.After(harness.SafetyNet):
		t.Fatalf("upstream %s printed no addresses within %v", cfg.Name, harness.SafetyNet)
	}
	return u
}

// Kill SIGKILLs the upstream by its pid and waits until it is reaped.
func (u *upstreamProc) Kill() {
	_ = u.cmd.Process.Kill()
	select {
	case <-u.done:
	case <-time.After(harness.SafetyNet):
	}
}

// Restart starts a new upstream process with the same config on the same
// http port (after Kill).
func (u *upstreamProc) Restart(t testing.TB) *upstreamProc {
	t.Helper()
	cfg := u.cfg
	cfg.HTTPAddr = u.Addrs.HTTP
	return startUpstream(t, cfg)
}

// URL returns "http://<http listener>".
func (u *upstreamProc) URL() string { return "http://" + u.Addrs.HTTP }

// Counts reads the upstream's request and connection counters.
func (u *upstreamProc) Counts(t testing.TB) upstreamCounts {
	t.Helper()
	var c upstreamCounts
	u.control(t, "/counts", &c)
	return c
}

// SetHealthy makes /health answer 200 (true) or 503.
func (u *upstreamProc) SetHealthy(t testing.TB, ok bool) {
	t.Helper()
	v := "0"
	if ok {
		v = "1"
	}
	u.control(t, "/health?ok="+v, nil)
}

// control GETs path of the control listener and decodes its JSON into v.
// It may run on any goroutine: it reports with t.Errorf.
func (u *upstreamProc) control(t testing.TB, path string, v any) {
	c := &http.Client{Timeout: harness.SafetyNet}
	res, err := c.Get("http://" + u.Addrs.Control + path)
	if err != nil {
		t.Errorf("upstream %s control %s: %v", u.Name, path, err)
		return
	}
	defer res.Body.Close()
	if v != nil {
		if err := json.NewDecoder(res.Body).Decode(v); err != nil {
			t.Errorf("upstream %s control %s: %v", u.Name, path, err)
		}
	}
}

// startUpstreams starts n plain upstreams named u1, u2, ...
func startUpstreams(t testing.TB, n int) []*upstreamProc {
	t.Helper()
	ups := make([]*upstreamProc, n)
	for i := range ups {
		ups[i] = startUpstream(t, upstreamConfig{Name: "u" + strconv.Itoa(i+1)})
	}
	return ups
}

// upstreamTLS is a throwaway CA and a certificate for 127.0.0.1 and
// upstream.test, written as PEM files for an upstream (cert, key) and for
// anx's tls_ca.
type upstreamTLS struct {
	PKI                       *testpki.PKI
	CertFile, KeyFile, CAFile string
}

// newUpstreamTLS mints the upstream's TLS files in a temporary directory.
func newUpstreamTLS(t testing.TB) upstreamTLS {
	t.Helper()
	pki := testpki.New(t, "upstream.test", "127.0.0.1")
	dir := t.TempDir()
	cert := pki.Certificate()
	var certPEM []byte
	for _, der := range cert.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	u := upstreamTLS{PKI: pki, CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"),
		CAFile: pki.CAFile(t)}
	harness.WriteFile(t, u.CertFile, certPEM)
	harness.WriteFile(t, u.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	return u
}

// proxyConfig is the TOML template (for harness.Options.Config) of one
// localhost site: top holds top-level lines (trusted_proxies ...), site the
// lines of the [[site]] table and its [[site.route]] tables. The site has
// no root unless site sets one (root = "{{.Root}}").
func proxyConfig(top, site string) string {
	return "https = \"{{.HTTPS}}\"\nhttp = \"{{.HTTP}}\"\ndata = \"{{.Data}}\"\n" + top +
		"\n[[site]]\nhosts = [\"localhost\"]\n" + site
}

// renderConfig fills a proxyConfig template with s's addresses and
// dirs, for Server.Reload.
func renderConfig(s *harness.Server, tmpl string) string {
	return strings.NewReplacer("{{.HTTPS}}", s.HTTPS, "{{.HTTP}}", s.HTTP, "{{.Data}}", s.Data, "{{.Root}}", s.Root).Replace(tmpl)
}

// route renders one [[site.route]] table: path, then the key = value lines
// of kv (values already in TOML).
func route(path string, kv ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n[[site.route]]\npath = %q\n", path)
	for _, l := range kv {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// proxyTo renders `proxy = [...]` for upstream URLs.
func proxyTo(urls ...string) string {
	q := make([]string, len(urls))
	for i, u := range urls {
		q[i] = strconv.Quote(u)
	}
	return "proxy = [" + strings.Join(q, ", ") + "]"
}

// urls returns the http URLs of ups.
func urls(ups []*upstreamProc) []string {
	out := make([]string, len(ups))
	for i, u := range ups {
		out[i] = u.URL()
	}
	return out
}

// proxyFailures are the ERROR lines a test that makes upstreams fail may
// provoke: anx logs each upstream failure with its route, upstream and
// reason (at ERROR or WARN; the pattern covers ERROR).
var proxyFailures = []string{`level=ERROR .*(proxy|upstream)`}

// startProxy starts anx with the config template cfg (see proxyConfig).
func startProxy(t testing.TB, cfg string, expectedErrors ...string) *harness.Server {
	t.Helper()
	return harness.Start(t, harness.Options{Config: cfg, ExpectedErrors: expectedErrors})
}

// echoOf decodes a response of the upstream's echo (or upload) path; it
// fails t if the response is not a 200 with such a body.
func echoOf(t testing.TB, what string, r harness.Response) echoReply {
	t.Helper()
	var e echoReply
	if r.Err != nil {
		t.Errorf("%s: %v", what, r.Err)
		return e
	}
	if r.Status != http.StatusOK {
		t.Errorf("%s: status %d, want 200 (body %q)", what, r.Status, clip(r.Body, 0))
		return e
	}
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Errorf("%s: not the upstream's echo: %v (body %q)", what, err, clip(r.Body, 0))
	}
	return e
}

// get sends a GET of target over p with c.
func get(s *harness.Server, p harness.Proto, c *http.Client, target string, header ...string) harness.Response {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Add(header[i], header[i+1])
	}
	return s.Do(p, c, harness.Request{Target: target, Header: h})
}

// checkErrorBody fails t unless an error answer's body is small and names
// no address, port, error text or stack.
func checkErrorBody(t testing.TB, what string, body []byte, ups ...string) {
	t.Helper()
	if len(body) > 512 {
		t.Errorf("%s: error body of %d bytes, want at most 512: %q", what, len(body), clip(body, 0))
	}
	for _, bad := range append([]string{"127.0.0.1", "dial", "refused", "goroutine", "i/o", "deadline", "context", "eof", ".go:"}, ups...) {
		if strings.Contains(strings.ToLower(string(body)), strings.ToLower(bad)) {
			t.Errorf("%s: error body names %q: %q", what, bad, body)
		}
	}
}

// hostPort returns the host:port of an http:// URL.
func hostPort(url string) string {
	_, hp, _ := strings.Cut(url, "://")
	return hp
}

// refusedURL returns an http URL on a loopback port where connects are
// refused, held by the test until it ends.
func refusedURL(t testing.TB) string {
	return "http://" + testlisten.RefusingAddr(t)
}

// processRSS reads the resident set of process pid, in bytes.
func processRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// waitFor polls cond every 20 ms until it holds or SafetyNet passes; it
// reports whether it held.
func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(harness.SafetyNet)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
