package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/anx-gateway/anx/e2e/harness"
)

// upgradeLoad is how long each load runs, in seconds: long next to what it
// must span (an upgrade: the new process's start and the old one's drain,
// bounded by upgradeDrain; or ten reloads), which the tests check it did.
const upgradeLoad = 40

// upgradeDrain is the drain timeout of the upgraded anx.
const upgradeDrain = "10s"

// TestUpgrade: under load on h1 (wrk), h2 and h3 (Go clients: h2load
// stops at a GOAWAY, see startLoad; connections reused, and new ones for
// h3), SIGUSR2 to an anx started from a copy
// of the binary whose file has since been replaced by another copy: the
// new process (started from the new file) says ready, the old one exits 0,
// wrk and h2load count 0 failed requests, no h3 request fails, new h3
// connections succeed during and after, and the new process serves.
func TestUpgrade(t *testing.T) {
	t.Parallel()
	wrk := harness.Peer(t, "wrk")
	u := startUpgradable(t)
	load := startLoad(t, u.target(), wrk, "")
	replaceFile(t, u.bin, harness.Binary())
	if err := u.parent.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	child := u.waitUpgraded(t)
	during := make(chan struct{})
	go func() { // while the old anx drains; t.Errorf is safe here
		defer close(during)
		load.newConnections(t, "during the upgrade")
	}()
	if code := u.waitParent(t); code != 0 {
		t.Errorf("the old anx (pid %d) exited %d after the upgrade, want 0", u.parent.Process.Pid, code)
	}
	load.mustBeRunning(t, "the old anx exited")
	<-during
	load.checkServedAfter(t)
	load.newConnections(t, "after the upgrade")
	load.check(t)
	if !alive(child) {
		t.Fatalf("the new anx (pid %d) is not running", child)
	}
	r := harness.Send(load.h3.client, harness.H3, newGet(t, load.url))
	if r.Err != nil || r.Status != http.StatusOK {
		t.Errorf("h3 GET after the old anx exited: status %d, err %v", r.Status, r.Err)
	}
	u.stopChild(t, child)
	u.checkLog(t)
}

// TestUpgradeFailed: SIGUSR2 when the file at the binary's path is a
// script that exits 1: anx logs why the upgrade failed (the exit status),
// keeps serving h1, h2 and h3, and stops with 0 on SIGTERM.
func TestUpgradeFailed(t *testing.T) {
	t.Parallel()
	u := startUpgradable(t)
	script := filepath.Join(t.TempDir(), "broken")
	harness.WriteFile(t, script, []byte("#!/bin/sh\necho 'this binary is broken' >&2\nexit 1\n"))
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	replaceFile(t, u.bin, script)
	if err := u.parent.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	line := u.waitLine(t, `msg="upgrade failed; serving on"`)
	if !strings.Contains(line, "exited before it was ready (exit status 1)") {
		t.Errorf("upgrade failure line %q: want the new process's exit status 1", line)
	}
	tg := u.target()
	for _, p := range harness.Protos {
		r := harness.Send(tg.client(t, p), p, newGet(t, tg.url("/hello.txt")))
		if r.Err != nil || r.Status != http.StatusOK {
			t.Errorf("%s GET after the failed upgrade: status %d, err %v", p, r.Status, r.Err)
		}
	}
	if err := u.parent.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := u.waitParent(t); code != 0 {
		t.Errorf("anx exited %d after SIGTERM, want 0", code)
	}
	u.checkLog(t, `^time=\S+ level=ERROR msg="upgrade failed; serving on" `)
}

// upgradable is an anx started from its own copy of the binary, so that
// the test can replace the file; its stderr (and its successor's) goes to
// a file.
type upgradable struct {
	dir, bin, root, data, log string
	https, http               int
	parent                    *exec.Cmd
	exited                    chan struct{} // closed when the parent has exited
	code                      int           // the parent's exit code, once exited
}

// startUpgradable copies the binary, starts it on free ports and waits for
// its ready line. The parent is stopped (SIGTERM, then SIGKILL, by pid) in
// t.Cleanup if it still runs.
func startUpgradable(t *testing.T) *upgradable {
	t.Helper()
	dir := t.TempDir()
	u := &upgradable{dir: dir, bin: filepath.Join(dir, "anx"), root: filepath.Join(dir, "site"),
		data: filepath.Join(dir, "data"), log: filepath.Join(dir, "anx.log"),
		https: harness.FreePort(t), http: harness.FreeTCPPort(t), exited: make(chan struct{})}
	harness.WriteSite(t, u.root)
	copyFile(t, harness.Binary(), u.bin)
	config := fmt.Sprintf("https = \"127.0.0.1:%d\"\nhttp = \"127.0.0.1:%d\"\ndata = %q\n\n[timeouts]\ndrain = %q\n\n[[site]]\nhosts = [\"localhost\"]\nroot = %q\n",
		u.https, u.http, u.data, upgradeDrain, u.root)
	cfgPath := filepath.Join(dir, "anx.toml")
	harness.WriteFile(t, cfgPath, []byte(config))
	logFile, err := os.Create(u.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the processes have their own copies
	u.parent = exec.Command(u.bin, "run", "--config", cfgPath)
	u.parent.Dir, u.parent.Stderr = dir, logFile
	if err := u.parent.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { // exits with the parent
		_ = u.parent.Wait()
		u.code = u.parent.ProcessState.ExitCode()
		close(u.exited)
	}()
	t.Cleanup(u.stopParent)
	u.waitLine(t, "msg=ready")
	return u
}

// stopParent stops the parent if it still runs: SIGTERM, then SIGKILL
// after the safety net.
func (u *upgradable) stopParent() {
	select {
	case <-u.exited:
		return
	default:
	}
	_ = u.parent.Process.Signal(syscall.SIGTERM)
	select {
	case <-u.exited:
	case <-time.After(harness.StopTimeout):
		_ = u.parent.Process.Kill()
		<-u.exited
	}
}

// waitParent waits for the parent to exit and returns its exit code.
func (u *upgradable) waitParent(t *testing.T) int {
	t.Helper()
	select {
	case <-u.exited:
		return u.code
	case <-time.After(harness.SafetyNet):
		t.Fatalf("the old anx (pid %d) still runs %v later", u.parent.Process.Pid, harness.SafetyNet)
		return 0
	}
}

// upgradeReady matches the old process's line naming the new one.
var upgradeReady = regexp.MustCompile(`msg="upgrade: new process ready; draining" pid=(\d+)`)

// waitUpgraded waits for the old process's line that the new one is
// ready, and returns the new pid, which is stopped in t.Cleanup.
func (u *upgradable) waitUpgraded(t *testing.T) int {
	t.Helper()
	line := u.waitLine(t, `msg="upgrade`)
	m := upgradeReady.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("upgrade: %s\nlog:\n%s", line, u.logText())
	}
	pid, _ := strconv.Atoi(m[1])
	t.Cleanup(func() { u.stopChild(t, pid) })
	return pid
}

// waitLine polls (every 20ms, up to the safety net) for the first log line
// containing substr, and returns it.
func (u *upgradable) waitLine(t *testing.T, substr string) string {
	t.Helper()
	deadline := time.Now().Add(harness.SafetyNet)
	for time.Now().Before(deadline) {
		for line := range strings.SplitSeq(u.logText(), "\n") {
			if strings.Contains(line, substr) && !strings.Contains(line, "starting the new binary") {
				return line
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no log line with %q within %v; log:\n%s", substr, harness.SafetyNet, u.logText())
	return ""
}

// logText returns the log so far.
func (u *upgradable) logText() string {
	b, _ := os.ReadFile(u.log)
	return string(b)
}

// checkLog fails t for a race, a panic or an ERROR line that matches none
// of expected, and logs the log when t failed.
func (u *upgradable) checkLog(t *testing.T, expected ...string) {
	t.Helper()
	var res []*regexp.Regexp
	for _, e := range expected {
		res = append(res, regexp.MustCompile(e))
	}
	for _, p := range harness.LogProblems(u.logText(), res) {
		t.Errorf("anx log: %s", p)
	}
	if t.Failed() || os.Getenv("ANX_UPGRADE_LOG") != "" {
		t.Logf("anx log:\n%s", u.logText())
	}
}

// stopChild stops the new process by pid (it is not the test's child:
// its parent was the old anx) and waits until it is gone.
func (u *upgradable) stopChild(t *testing.T, pid int) {
	if !alive(pid) {
		return
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return
	}
	deadline := time.Now().Add(harness.StopTimeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("the new anx (pid %d) still runs %v after SIGTERM", pid, harness.StopTimeout)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(u.logText(), "msg=stopped") {
		t.Errorf("the new anx logged no msg=stopped")
	}
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

// copyFile copies an executable file.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// replaceFile puts a copy of from in path's place by rename, as an
// install does: the running process keeps its file, os.Executable names
// the new one.
func replaceFile(t *testing.T, path, from string) {
	t.Helper()
	tmp := path + ".new"
	copyFile(t, from, tmp)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// target is where the loads go: anx's HTTPS port, trusting its root.
type target struct {
	https int
	pool  *x509.CertPool
	dir   string
}

// target returns the upgradable anx as a target.
func (u *upgradable) target() target {
	return target{https: u.https, pool: mustPool(u.data), dir: u.dir}
}

// mustPool loads anx's internal root from the data dir.
func mustPool(data string) *x509.CertPool {
	pem, err := os.ReadFile(filepath.Join(data, "ca", "root.pem"))
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return pool
}

// url is https://localhost:<port><path>.
func (tg target) url(path string) string { return "https://localhost:" + strconv.Itoa(tg.https) + path }

// addr is the HTTPS port on loopback.
func (tg target) addr() string { return "127.0.0.1:" + strconv.Itoa(tg.https) }

// tlsConfig trusts anx's root for localhost.
func (tg target) tlsConfig(alpn ...string) *tls.Config {
	return &tls.Config{RootCAs: tg.pool, ServerName: "localhost", NextProtos: alpn}
}

// client returns a client of protocol p to the target, closed in
// t.Cleanup.
func (tg target) client(t *testing.T, p harness.Proto) *http.Client {
	var rt http.RoundTripper
	switch p {
	case harness.H3:
		rt = tg.h3Transport()
	default:
		tr := &http.Transport{TLSClientConfig: tg.tlsConfig(), ForceAttemptHTTP2: p == harness.H2}
		if p == harness.H1 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		rt = tr
	}
	t.Cleanup(func() {
		if c, ok := rt.(io.Closer); ok {
			c.Close()
		}
		if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	})
	return &http.Client{Transport: rt, Timeout: harness.RequestTimeout}
}

// h3Transport dials the target over QUIC.
func (tg target) h3Transport() *http3.Transport {
	return &http3.Transport{
		TLSClientConfig: tg.tlsConfig(http3.NextProtoH3),
		QUICConfig:      &quic.Config{HandshakeIdleTimeout: harness.SafetyNet, MaxIdleTimeout: harness.SafetyNet},
		Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
			return quic.DialAddr(ctx, tg.addr(), tc, qc)
		},
	}
}

// newGet is a GET of url.
func newGet(t *testing.T, url string) *http.Request {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// load is wrk (h1), h2load (h2; only when given) and Go clients (h3, and
// h2 when given) against one target, for upgradeLoad seconds.
type load struct {
	tg        target
	url       string
	wrk, h2   <-chan harness.Result // h2 is nil without h2load
	h3        *clientLoad
	h2Go      *clientLoad // nil unless asked for
	wrkDone   bool
	h2Done    bool
	wrkResult harness.Result
	h2Result  harness.Result
}

// startLoad starts the loads and returns once each has had a request
// answered (wrk's and h2load's connections are established, the Go
// clients have had a response). h2load is left out when its path is
// empty: it does not open a new connection after a GOAWAY (nghttp2 1.52
// ends the client, and with -n counts every request left as failed), so it
// cannot load a server through a drain; Go's HTTP/2 client then loads h2.
func startLoad(t *testing.T, tg target, wrk, h2load string) *load {
	t.Helper()
	l := &load{tg: tg, url: tg.url("/hello.txt")}
	d := strconv.Itoa(upgradeLoad)
	l.wrk = harness.GoCmd(t, tg.dir, harness.PeerTimeout, wrk, "-t1", "-c8", "-d"+d+"s", "--timeout", "60s", l.url)
	established := 8
	if h2load != "" {
		l.h2 = harness.GoCmd(t, tg.dir, harness.PeerTimeout, h2load, "-c8", "-m4", "-D", d, "-N", "10s", l.url)
		established += 8
	} else {
		l.h2Go = startClientLoad(t, tg, harness.H2)
	}
	l.h3 = startClientLoad(t, tg, harness.H3)
	waitEstablished(t, tg.https, established)
	return l
}

// waitEstablished polls (every 20ms, up to the safety net) until at least
// n TCP connections to port are established (ss), so that the peers'
// loads run.
func waitEstablished(t *testing.T, port, n int) {
	t.Helper()
	deadline := time.Now().Add(harness.SafetyNet)
	for time.Now().Before(deadline) {
		out, _ := exec.Command("ss", "-Htn", "state", "established", fmt.Sprintf("( dport = :%d )", port)).Output()
		if strings.Count(string(out), "\n") >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("fewer than %d connections to port %d after %v", n, port, harness.SafetyNet)
}

// mustBeRunning fails t unless wrk and h2load still run: what the test
// just waited for happened under their load.
func (l *load) mustBeRunning(t *testing.T, what string) {
	t.Helper()
	select {
	case r := <-l.wrk:
		l.wrkDone, l.wrkResult = true, r
		t.Errorf("wrk had finished when %s: not under load", what)
	default:
	}
	select {
	case r := <-l.h2: // never ready when nil
		l.h2Done, l.h2Result = true, r
		t.Errorf("h2load had finished when %s: not under load", what)
	default:
	}
}

// checkServedAfter fails t unless the Go clients' requests go on after
// the old process has exited (they are then answered by the new one).
func (l *load) checkServedAfter(t *testing.T) {
	t.Helper()
	for _, c := range []*clientLoad{l.h2Go, l.h3} {
		if c == nil {
			continue
		}
		before := c.ok.Load()
		deadline := time.Now().Add(harness.SafetyNet)
		for c.ok.Load() < before+100 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := c.ok.Load() - before; got < 100 {
			t.Errorf("%s: %d requests succeeded in the %v after the old anx exited, want 100", c.proto, got, harness.SafetyNet)
		}
	}
}

// newConnections makes 5 h3 requests, each on a new connection, which must
// all succeed. It may run on a goroutine of its own (it only calls
// t.Errorf and t.Cleanup).
func (l *load) newConnections(t *testing.T, when string) {
	t.Helper()
	for i := range 5 {
		req, _ := http.NewRequest(http.MethodGet, l.url, nil) // a valid URL: no error
		r := harness.Send(l.tg.client(t, harness.H3), harness.H3, req)
		if r.Err != nil || r.Status != http.StatusOK {
			t.Errorf("a new h3 connection %s (%d): status %d, err %v", when, i, r.Status, r.Err)
		}
	}
}

// Summaries of the peers' output.
var (
	wrkRequests = regexp.MustCompile(`(\d+) requests in`)
	wrkErrors   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	// h2loadTimeouts is the end of h2load's summary line: requests whose
	// connection went silent for -N (a stream the server dropped).
	h2loadTimeouts = regexp.MustCompile(`errored, (\d+) timeout`)
)

// check waits for the loads to end and fails t for any failed request.
func (l *load) check(t *testing.T) {
	t.Helper()
	if !l.wrkDone {
		l.wrkResult = <-l.wrk
	}
	if !l.h2Done && l.h2 != nil {
		l.h2Result = <-l.h2
	}
	l.h3.stop()
	checkWrk(t, l.wrkResult)
	if l.h2 != nil {
		checkH2load(t, l.h2Result)
	}
	if l.h2Go != nil {
		l.h2Go.stop()
		l.h2Go.check(t)
	}
	l.h3.check(t)
}

// checkWrk fails t unless wrk made requests with no socket error and no
// status other than 2xx or 3xx.
func checkWrk(t *testing.T, r harness.Result) {
	t.Helper()
	t.Logf("wrk:\n%s", r.Stdout)
	m := wrkRequests.FindStringSubmatch(r.Stdout)
	if r.ExitCode != 0 || m == nil || m[1] == "0" {
		t.Errorf("wrk: exit %d, no requests made: %s%s", r.ExitCode, r.Stdout, r.Stderr)
		return
	}
	if e := wrkErrors.FindStringSubmatch(r.Stdout); e != nil {
		t.Errorf("wrk (h1): socket errors connect %s, read %s, write %s, timeout %s; want none", e[1], e[2], e[3], e[4])
	}
	if e := wrkNon2xx.FindStringSubmatch(r.Stdout); e != nil {
		t.Errorf("wrk (h1): %s responses not 2xx or 3xx; want none", e[1])
	}
}

// checkH2load fails t unless h2load's requests all succeeded. With -D,
// "started" exceeds "done" by the streams in flight when the duration
// ends, which h2load abandons (-c times -m of them, in every run, reload
// or not): those are not failures, and done must equal succeeded.
func checkH2load(t *testing.T, r harness.Result) {
	t.Helper()
	t.Logf("h2load:\n%s", r.Stdout)
	m := h2loadSummary.FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Errorf("h2load printed no summary (exit %d): %s", r.ExitCode, r.Stderr)
		return
	}
	timedOut := h2loadTimeouts.FindStringSubmatch(r.Stdout)
	if m[4] == "0" || m[5] != "0" || m[6] != "0" || m[3] != m[4] || timedOut == nil || timedOut[1] != "0" {
		t.Errorf("h2load (h2): %s; want all done succeeded, 0 failed, 0 errored, 0 timeout", strings.TrimSpace(m[0]))
	}
}

// clientLoad is Go clients of one protocol in a loop: loadClients
// goroutines, each with its own transport (so its own connections), GET
// after GET until stopped. Go's HTTP/2 client, as browsers do, sends again
// a request that a GOAWAY says was not processed, which h2load does not.
type clientLoad struct {
	proto  harness.Proto
	client *http.Client // one more, for single requests
	stopCh chan struct{}
	wg     sync.WaitGroup // the goroutines
	ok     atomic.Int64
	mu     sync.Mutex
	errs   []string // guarded by mu
}

// loadClients is how many goroutines make requests, per protocol.
const loadClients = 4

// startClientLoad starts the goroutines and returns once each has had a
// response (or an error, which check reports).
func startClientLoad(t *testing.T, tg target, p harness.Proto) *clientLoad {
	l := &clientLoad{proto: p, client: tg.client(t, p), stopCh: make(chan struct{})}
	started := make(chan struct{}, loadClients)
	for range loadClients {
		c := tg.client(t, p)
		l.wg.Go(func() { l.run(c, tg.url("/hello.txt"), started) })
	}
	for range loadClients {
		<-started
	}
	t.Cleanup(l.stop)
	return l
}

// run is one goroutine: it exits when stopCh is closed.
func (l *clientLoad) run(c *http.Client, url string, started chan<- struct{}) {
	first := true
	for {
		select {
		case <-l.stopCh:
			return
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		r := harness.Send(c, l.proto, req)
		switch {
		case r.Err != nil || r.Status != http.StatusOK:
			l.mu.Lock()
			l.errs = append(l.errs, fmt.Sprintf("status %d, err %v", r.Status, r.Err))
			l.mu.Unlock()
		default:
			l.ok.Add(1)
		}
		if first {
			started <- struct{}{}
			first = false
		}
	}
}

// stop ends the goroutines and waits for them.
func (l *clientLoad) stop() {
	select {
	case <-l.stopCh:
	default:
		close(l.stopCh)
	}
	l.wg.Wait()
}

// check fails t for every failed request (a few, quoted), and unless
// some succeeded.
func (l *clientLoad) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("%s (Go clients): %d requests succeeded, %d failed", l.proto, l.ok.Load(), len(l.errs))
	if len(l.errs) > 0 {
		t.Errorf("%s: %d requests failed, want none; first: %s", l.proto, len(l.errs), strings.Join(l.errs[:min(3, len(l.errs))], "; "))
	}
	if l.ok.Load() == 0 {
		t.Errorf("%s: no request succeeded", l.proto)
	}
}
