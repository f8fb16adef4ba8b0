package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// hangTimeout is the safety net of every wait in these tests: it only
// turns a hang into a failure, and is sized for -race on a busy 2-core
// machine and for qemu emulation. No test waits it out when it passes.
const hangTimeout = 3 * time.Minute

// certmagicRetry is how long certmagic waits before it tries a failed
// obtain again (its first retry interval, for ACME names in the
// background and for on-demand names unless the error is ErrNoRetry). A
// test that says something fails or returns "at once", rather than
// waiting for a retry, checks that it took less than this.
const certmagicRetry = time.Minute

// syncBuffer is a bytes.Buffer safe for concurrent writes, for logs
// written by certmagic's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLogger returns a logger into a buffer that is printed if the test
// fails.
func testLogger(t *testing.T) (*slog.Logger, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf)
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// openManager opens a Manager on dir, closed at the end of the test.
func openManager(t *testing.T, dir string) (*Manager, *syncBuffer) {
	t.Helper()
	logger, buf := testLogger(t)
	m, err := Open(dir, logger)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(m.Close)
	return m, buf
}

// applyManager opens a Manager on dir and applies p.
func applyManager(t *testing.T, dir string, p Policy) *Manager {
	t.Helper()
	m, _ := openManager(t, dir)
	apply(t, m, p)
	return m
}

// apply applies p to m.
func apply(t *testing.T, m *Manager, p Policy) {
	t.Helper()
	if err := m.Apply(p); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// serve accepts connections on ln and runs a TLS handshake with m on each
// until ln is closed; the test waits for it at its end. The handshakes'
// context, which certmagic gets, ends with the test.
func serve(t *testing.T, ln net.Listener, m *Manager) {
	t.Helper()
	ctx := t.Context()
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { ln.Close() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(hangTimeout))
				tls.Server(conn, &tls.Config{GetCertificate: m.GetCertificate}).HandshakeContext(ctx)
			})
		}
	})
}

// listen serves TLS handshakes with m on a new socket of 127.0.0.1 and
// returns its address.
func listen(t *testing.T, m *Manager) string {
	t.Helper()
	return listenOn(t, "127.0.0.1:0", m)
}

// listenOn is listen on addr; it skips the test if addr is not available
// (e.g. no IPv6).
func listenOn(t *testing.T, addr string, m *Manager) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if strings.HasPrefix(addr, "[") {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		t.Fatal(err)
	}
	serve(t, ln, m)
	return ln.Addr().String()
}

// dial handshakes with the server at addr. serverName "" sends no SNI;
// roots nil checks nothing.
func dial(addr, serverName string, roots *x509.CertPool) (*tls.ConnectionState, error) {
	return dialWithin(addr, serverName, roots, hangTimeout)
}

// dialWithin is dial with a timeout for the connection and handshake.
func dialWithin(addr, serverName string, roots *x509.CertPool, timeout time.Duration) (*tls.ConnectionState, error) {
	// With ServerName empty, tls.Dial checks the host of addr, an IP
	// address, which is never sent as SNI.
	cfg := &tls.Config{ServerName: serverName, RootCAs: roots, InsecureSkipVerify: roots == nil}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	cs := conn.ConnectionState()
	return &cs, nil
}

// handshake runs one handshake with m on 127.0.0.1 and returns the leaf the
// client got. serverName "" sends no SNI.
func handshake(t *testing.T, m *Manager, serverName string) (*x509.Certificate, error) {
	t.Helper()
	cs, err := dial(listen(t, m), serverName, nil)
	if err != nil {
		return nil, err
	}
	return cs.PeerCertificates[0], nil
}

// leafName returns the single name of a leaf, DNS or IP.
func leafName(leaf *x509.Certificate) string {
	names := slices.Clone(leaf.DNSNames)
	names = append(names, ipStrings(leaf.IPAddresses)...)
	return strings.Join(names, ",")
}

// rootPool returns a pool holding only m's root.
func rootPool(m *Manager) *x509.CertPool {
	roots := x509.NewCertPool()
	roots.AddCert(m.CA().Root())
	return roots
}

// storedCert returns the path of name's certificate from the internal CA
// under dir, as certmagic stores it.
func storedCert(dir, name string) string {
	return filepath.Join(dir, "certificates", InternalIssuerKey, name, name+".crt")
}

// storedNames lists the names with a certificate of the internal CA in
// storage.
func storedNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "certificates", InternalIssuerKey))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestManagerHandshake(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		sni    string
		want   string // name of the certificate; "" when the handshake must fail
	}{
		{"allowed SNI", Policy{Sites: []Site{{Names: []string{"localhost"}}}}, "localhost", "localhost"},
		{"SNI case and dot", Policy{Sites: []Site{{Names: []string{"localhost"}}}}, "LocalHost.", "localhost"},
		{"exact name written with case and dot", Policy{Sites: []Site{{Names: []string{"API.Internal."}}}}, "api.internal", "api.internal"},
		{"exact name with underscore", Policy{Sites: []Site{{Names: []string{"under_score.internal"}}}}, "under_score.internal", "under_score.internal"},
		{"wildcard internal name", Policy{Sites: []Site{{Names: []string{"*.internal"}}}}, "db.internal", "db.internal"},
		{"wildcard, SNI case", Policy{Sites: []Site{{Names: []string{"*.internal"}}}}, "DB.Internal", "db.internal"},
		{"wildcard, two labels deeper", Policy{Sites: []Site{{Names: []string{"*.internal"}}}}, "a.db.internal", ""},
		{"wildcard, the suffix itself", Policy{Sites: []Site{{Names: []string{"*.svc.internal"}}}}, "svc.internal", ""},
		{"internal any", Policy{Sites: []Site{{Names: []string{"*"}, Issuer: IssuerInternal}}}, "whatever.example", "whatever.example"},
		{"unknown SNI", Policy{Sites: []Site{{Names: []string{"localhost"}}}, DefaultName: "localhost"}, "evil.example", ""},
		{"no SNI, local IP allowed", Policy{Sites: []Site{{Names: []string{"127.0.0.1", "localhost"}}}, DefaultName: "localhost"}, "", "127.0.0.1"},
		{"no SNI, default name", Policy{Sites: []Site{{Names: []string{"::1", "localhost"}}}, DefaultName: "localhost"}, "", "localhost"},
		{"no SNI, nothing", Policy{Sites: []Site{{Names: []string{"localhost"}}}}, "", ""},
		{"no SNI, only wildcards", Policy{Sites: []Site{{Names: []string{"*.internal"}}}}, "", ""},
		{"no sites", Policy{}, "localhost", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := applyManager(t, t.TempDir(), tt.policy)
			leaf, err := handshake(t, m, tt.sni)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("handshake got a certificate for %q, want a failure", leafName(leaf))
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if got := leafName(leaf); got != tt.want {
				t.Errorf("certificate for %q, want %q", got, tt.want)
			}
			if leaf.Issuer.CommonName != m.CA().inter.Subject.CommonName {
				t.Errorf("issuer got %q, want the internal intermediate", leaf.Issuer.CommonName)
			}
		})
	}
}

// TestManagerExactNamesAtApply checks that Apply issues the certificates of
// exact internal names before it returns: they are in storage without any
// handshake.
func TestManagerExactNamesAtApply(t *testing.T) {
	dir := t.TempDir()
	applyManager(t, dir, Policy{Sites: []Site{{Names: []string{"localhost", "127.0.0.1", "*.svc.internal"}}}})
	got := storedNames(t, dir)
	slices.Sort(got)
	if want := []string{"127.0.0.1", "localhost"}; !slices.Equal(got, want) {
		t.Errorf("stored after Apply got %q, want %q", got, want)
	}
}

// TestManagerNoSNIIPv6 connects to [::1] without SNI.
func TestManagerNoSNIIPv6(t *testing.T) {
	m := applyManager(t, t.TempDir(), Policy{Sites: []Site{{Names: []string{"::1", "localhost"}}}, DefaultName: "localhost"})
	addr := listenOn(t, "[::1]:0", m)
	cs, err := dial(addr, "", rootPool(m))
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if got := leafName(cs.PeerCertificates[0]); got != "::1" {
		t.Errorf("certificate for %q, want ::1", got)
	}
}

// TestManagerVerifiedHandshake is a client that trusts only the root and
// connects to 127.0.0.1 without SNI, then with SNI, to exact and wildcard
// names.
func TestManagerVerifiedHandshake(t *testing.T) {
	m := applyManager(t, t.TempDir(), Policy{Sites: []Site{{Names: []string{"localhost", "127.0.0.1", "*.svc.internal"}}}})
	addr := listen(t, m)
	roots := rootPool(m)
	for _, serverName := range []string{"", "localhost", "a.svc.internal"} {
		cs, err := dial(addr, serverName, roots)
		if err != nil {
			t.Errorf("ServerName %q: %v", serverName, err)
			continue
		}
		if n := len(cs.PeerCertificates); n != 2 {
			t.Errorf("ServerName %q: chain of %d certificates, want 2 (leaf + intermediate)", serverName, n)
		}
	}
	// Another CA's root does not verify.
	other, _ := openTestCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(other.Root())
	if _, err := dial(addr, "localhost", pool); err == nil {
		t.Error("verified against another CA's root")
	}
}

// TestManagerRefusesWithoutIssuing checks that names outside the policy are
// refused with ErrNotAllowed and that nothing is issued for them.
func TestManagerRefusesWithoutIssuing(t *testing.T) {
	dir := t.TempDir()
	m := applyManager(t, dir, Policy{Sites: []Site{{Names: []string{"*.svc.internal"}}}})
	for _, sni := range []string{"evil.example", "bad name", "127.0.0.1", "a.b.svc.internal", "svc.internal", "*.svc.internal"} {
		_, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: sni})
		if !errors.Is(err, ErrNotAllowed) || !strings.HasPrefix(err.Error(), "certs: ") {
			t.Errorf("GetCertificate(%q) error got %v, want ErrNotAllowed", sni, err)
		}
	}
	if got := storedNames(t, dir); len(got) != 0 {
		t.Errorf("stored after refusals: %q, want nothing", got)
	}
}

func TestManagerBeforeApply(t *testing.T) {
	m, _ := openManager(t, t.TempDir())
	_, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "localhost"})
	if !errors.Is(err, ErrNotAllowed) {
		t.Errorf("GetCertificate before Apply got %v, want ErrNotAllowed", err)
	}
}

func TestManagerCA(t *testing.T) {
	dir := t.TempDir()
	m, _ := openManager(t, dir)
	abs, _ := filepath.Abs(dir)
	if got, want := m.CA().RootPath(), filepath.Join(abs, "ca", "root.pem"); got != want {
		t.Errorf("CA().RootPath() got %q, want %q", got, want)
	}
}

func TestOpenBadCA(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "ca"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca", "root.pem"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if m, err := Open(dir, nil); err == nil {
		m.Close()
		t.Error("Open with a root.pem but no root.key got no error")
	}
}

// TestManagerStorage checks that certificates are stored under
// <dir>/certificates/anx-internal/<name>/ and that a second Manager on the
// same directory serves the same ones, exact names and on-demand names.
func TestManagerStorage(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		sni    string
	}{
		{"exact name", Policy{Sites: []Site{{Names: []string{"localhost"}}}}, "localhost"},
		{"wildcard name", Policy{Sites: []Site{{Names: []string{"*.svc.internal"}}}}, "a.svc.internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			first, _ := openManager(t, dir)
			apply(t, first, tt.policy)
			leaf1, err := handshake(t, first, tt.sni)
			if err != nil {
				t.Fatalf("first handshake: %v", err)
			}
			root := first.CA().Root()
			first.Close()

			crt := storedCert(dir, tt.sni)
			stored, err := readCert(crt)
			if err != nil {
				t.Fatalf("stored certificate: %v", err)
			}
			if stored.SerialNumber.Cmp(leaf1.SerialNumber) != 0 {
				t.Errorf("%s holds serial %v, served %v", crt, stored.SerialNumber, leaf1.SerialNumber)
			}
			key := strings.TrimSuffix(crt, ".crt") + ".key"
			if fi, err := os.Stat(key); err != nil {
				t.Errorf("stored key: %v", err)
			} else if fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s has mode %v, want no access for group and others", key, fi.Mode().Perm())
			}

			second := applyManager(t, dir, tt.policy)
			if !second.CA().Root().Equal(root) {
				t.Error("second Manager has another root")
			}
			leaf2, err := handshake(t, second, tt.sni)
			if err != nil {
				t.Fatalf("second handshake: %v", err)
			}
			if leaf2.SerialNumber.Cmp(leaf1.SerialNumber) != 0 {
				t.Errorf("second Manager served serial %v, want the stored %v", leaf2.SerialNumber, leaf1.SerialNumber)
			}
		})
	}
}

// TestManagerReload re-applies a changed policy: removed names are refused,
// new ones served, kept ones keep their certificate; a policy that fails
// leaves the previous one in force.
func TestManagerReload(t *testing.T) {
	dir := t.TempDir()
	m, _ := openManager(t, dir)
	apply(t, m, Policy{Sites: []Site{{Names: []string{"localhost", "old.internal", "*.old.internal"}}}})
	addr := listen(t, m)
	serial := map[string]string{}
	for _, sni := range []string{"localhost", "old.internal", "a.old.internal"} {
		cs, err := dial(addr, sni, nil)
		if err != nil {
			t.Fatalf("before reload, %q: %v", sni, err)
		}
		serial[sni] = cs.PeerCertificates[0].SerialNumber.String()
	}

	apply(t, m, Policy{Sites: []Site{{Names: []string{"localhost", "new.internal", "*.new.internal"}}}})
	tests := []struct {
		sni   string
		serve bool
	}{
		{"localhost", true},
		{"old.internal", false},
		{"a.old.internal", false},
		{"new.internal", true},
		{"b.new.internal", true},
	}
	for _, tt := range tests {
		cs, err := dial(addr, tt.sni, nil)
		if (err == nil) != tt.serve {
			t.Errorf("after reload, %q: handshake error %v, want served %v", tt.sni, err, tt.serve)
			continue
		}
		if err == nil && tt.sni == "localhost" && cs.PeerCertificates[0].SerialNumber.String() != serial["localhost"] {
			t.Error("localhost got a new certificate on reload")
		}
	}

	// A failing Apply keeps the policy in force.
	bad := []Policy{
		{Sites: []Site{{Names: []string{"bad name"}}}},
		{Sites: []Site{{Names: []string{"other.internal"}}}, ACME: ACME{RootFile: filepath.Join(dir, "missing.pem")}},
	}
	for _, p := range bad {
		if err := m.Apply(p); err == nil {
			t.Errorf("Apply(%+v) got no error", p)
		}
		if _, err := dial(addr, "new.internal", nil); err != nil {
			t.Errorf("after a failed Apply, new.internal: %v", err)
		}
		if _, err := dial(addr, "other.internal", nil); err == nil {
			t.Error("after a failed Apply, other.internal is served")
		}
	}
}

// TestApplyBadRootFile checks that Apply reads ACME.RootFile and fails
// on a file that is missing or holds no certificate.
func TestApplyBadRootFile(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, _ := openManager(t, dir)
	for _, file := range []string{filepath.Join(dir, "missing.pem"), garbage} {
		p := Policy{Sites: []Site{{Names: []string{"localhost"}}}, ACME: ACME{RootFile: file}}
		if err := p.Validate(); err != nil {
			t.Errorf("Validate reads no file, got %v", err)
		}
		if err := m.Apply(p); err == nil || !strings.Contains(err.Error(), "acme_ca_root") {
			t.Errorf("Apply with RootFile %s got %v, want an acme_ca_root error", file, err)
		}
	}
}

// TestApplyNegativeRate applies a policy without on-demand sites but with
// a negative rate: Apply must fail (or ignore it), not panic in the
// limiter.
func TestApplyNegativeRate(t *testing.T) {
	m, _ := openManager(t, t.TempDir())
	p := Policy{Sites: []Site{{Names: []string{"*.svc.internal"}}}, OnDemand: OnDemand{Rate: -1}}
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("Apply panicked: %v", r)
				err = errors.New("panic")
			}
		}()
		err = m.Apply(p)
	}()
	if err == nil {
		t.Error("Apply with a negative on-demand rate got no error")
	}
}

func TestManagerClose(t *testing.T) {
	before := goleak.IgnoreCurrent()
	dir := t.TempDir()
	logger, _ := testLogger(t)
	m, err := Open(dir, logger)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, m, Policy{Sites: []Site{{Names: []string{"*.svc.internal"}}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		tls.Server(conn, &tls.Config{GetCertificate: m.GetCertificate}).Handshake()
	}()
	if _, err := dial(ln.Addr().String(), "a.svc.internal", nil); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	<-done
	m.Close()
	m.Close() // a second Close does nothing
	if err := m.Apply(Policy{Sites: []Site{{Names: []string{"localhost"}}}}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Apply after Close got %v, want an error saying closed", err)
	}
	// certmagic keeps a lock file fresh for a few seconds after an
	// obtain; that goroutine ends by itself.
	goleak.VerifyNone(t, before, goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.keepLockfileFresh"))
}

func TestHTTPChallengeUnknown(t *testing.T) {
	m := applyManager(t, t.TempDir(), Policy{Sites: []Site{{Names: []string{"localhost"}}}})
	for _, tt := range []struct{ host, path string }{
		{"example.com", "/.well-known/acme-challenge/abc"},
		{"localhost", "/.well-known/acme-challenge/abc"},
		{"", "/.well-known/acme-challenge/"},
		{"example.com", "/"},
	} {
		if got, ok := m.HTTPChallenge(tt.host, tt.path); ok || got != "" {
			t.Errorf("HTTPChallenge(%q, %q) got %q %v, want \"\" false", tt.host, tt.path, got, ok)
		}
	}
}

// askServer is an ask endpoint for on-demand tests: it answers with the
// status decide returns for a domain and records the domains asked.
type askServer struct {
	*httptest.Server
	mu     sync.Mutex
	asked  []string
	decide func(domain string) int
}

func newAskServer(t *testing.T, decide func(domain string) int) *askServer {
	t.Helper()
	a := &askServer{decide: decide}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		domain := r.URL.Query().Get("domain")
		a.mu.Lock()
		a.asked = append(a.asked, domain)
		decide := a.decide
		a.mu.Unlock()
		w.WriteHeader(decide(domain))
	}))
	t.Cleanup(a.Close)
	return a
}

// setDecide replaces the decision.
func (a *askServer) setDecide(decide func(string) int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.decide = decide
}

// domains returns the domains asked so far.
func (a *askServer) domains() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.asked)
}

// allowPrefix allows domains that start with "ok" and refuses the others.
func allowPrefix(domain string) int {
	if strings.HasPrefix(domain, "ok") {
		return http.StatusOK
	}
	return http.StatusForbidden
}

// onDemandPolicy is an internal on-demand site under *.od.internal. Its
// AskTimeout is only a safety net (hangTimeout): the tests' ask endpoints
// answer at once, and a test of the timeout sets its own.
func onDemandPolicy(ask string) Policy {
	return Policy{
		Sites:    []Site{{Names: []string{"*.od.internal"}, Issuer: IssuerInternal, OnDemand: true}},
		OnDemand: OnDemand{Ask: ask, AskTimeout: hangTimeout},
	}
}

func TestOnDemandAsk(t *testing.T) {
	ask := newAskServer(t, allowPrefix)
	dir := t.TempDir()
	m := applyManager(t, dir, onDemandPolicy(ask.URL+"/ask?token=x"))
	addr := listen(t, m)

	cs, err := dial(addr, "OK1.OD.internal.", rootPool(m))
	if err != nil {
		t.Fatalf("allowed name: %v", err)
	}
	if got := leafName(cs.PeerCertificates[0]); got != "ok1.od.internal" {
		t.Errorf("certificate for %q, want ok1.od.internal", got)
	}
	if got := ask.domains(); !slices.Equal(got, []string{"ok1.od.internal"}) {
		t.Errorf("asked %q, want [ok1.od.internal]", got)
	}

	if _, err := dial(addr, "no.od.internal", nil); err == nil {
		t.Error("refused name (403) got a certificate")
	}
	if got := storedNames(t, dir); !slices.Equal(got, []string{"ok1.od.internal"}) {
		t.Errorf("stored %q, want only ok1.od.internal", got)
	}

	// A refusal is not remembered: once allowed, the name is served.
	ask.setDecide(func(string) int { return http.StatusNoContent })
	if _, err := dial(addr, "no.od.internal", nil); err != nil {
		t.Errorf("name allowed after a refusal: %v", err)
	}
	// A cached name is not asked again.
	n := len(ask.domains())
	if _, err := dial(addr, "ok1.od.internal", nil); err != nil {
		t.Error(err)
	}
	if got := len(ask.domains()); got != n {
		t.Errorf("a cached name was asked again (%d questions, want %d)", got, n)
	}
	// Names outside the site are never asked.
	if _, err := dial(addr, "a.b.od.internal", nil); err == nil {
		t.Error("a.b.od.internal got a certificate")
	}
	if got := len(ask.domains()); got != n {
		t.Errorf("a name outside the policy was asked (%q)", ask.domains())
	}
}

// TestOnDemandAskStatus checks which answers of the ask endpoint allow.
func TestOnDemandAskStatus(t *testing.T) {
	tests := []struct {
		status int
		allow  bool
	}{
		{http.StatusOK, true},
		{http.StatusNoContent, true},
		{http.StatusMovedPermanently, false},
		{http.StatusBadRequest, false},
		{http.StatusForbidden, false},
		{http.StatusNotFound, false},
		{http.StatusInternalServerError, false},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			ask := newAskServer(t, func(string) int { return tt.status })
			m := applyManager(t, t.TempDir(), onDemandPolicy(ask.URL))
			_, err := handshake(t, m, "s.od.internal")
			if (err == nil) != tt.allow {
				t.Errorf("status %d: handshake error %v, want allowed %v", tt.status, err, tt.allow)
			}
		})
	}
}

// TestOnDemandAskDown points the ask URL at a closed port: the handshake
// is refused at once, without waiting for AskTimeout (a minute here, so
// that a slow machine cannot come near it).
func TestOnDemandAskDown(t *testing.T) {
	dir := t.TempDir()
	p := onDemandPolicy("http://" + closedAddr(t) + "/ask")
	p.OnDemand.AskTimeout = time.Minute
	m := applyManager(t, dir, p)
	start := time.Now()
	if _, err := handshake(t, m, "ok.od.internal"); err == nil {
		t.Error("handshake succeeded with the ask endpoint down")
	}
	if d := time.Since(start); d >= p.OnDemand.AskTimeout {
		t.Errorf("refusal took %v, want it before AskTimeout %v", d, p.OnDemand.AskTimeout)
	}
	if got := storedNames(t, dir); len(got) != 0 {
		t.Errorf("stored %q, want nothing", got)
	}
}

// TestOnDemandAskSlow has an ask endpoint that answers only when the test
// ends: the handshake fails once AskTimeout (300ms) has passed, not
// before, and the refusal is logged. That it fails at all while the
// endpoint has not answered shows that AskTimeout ended it.
func TestOnDemandAskSlow(t *testing.T) {
	release := make(chan struct{})
	ask := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(ask.Close)
	t.Cleanup(func() { close(release) })
	m, buf := openManager(t, t.TempDir())
	p := onDemandPolicy(ask.URL)
	p.OnDemand.AskTimeout = 300 * time.Millisecond
	apply(t, m, p)
	addr := listen(t, m)
	start := time.Now()
	_, err := dial(addr, "ok.od.internal", nil)
	d := time.Since(start)
	if err == nil {
		t.Fatal("handshake succeeded with a slow ask endpoint")
	}
	if d < p.OnDemand.AskTimeout {
		t.Errorf("refusal took %v, before the ask timeout of %v", d, p.OnDemand.AskTimeout)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("the client gave up (%v), not the server", err)
	}
	if !strings.Contains(buf.String(), "on-demand certificate refused") {
		t.Errorf("no refusal logged; log:\n%s", buf)
	}
}

// TestOnDemandRateLimit allows 2 issuances an hour: the third new name is
// refused, names already issued are still served.
func TestOnDemandRateLimit(t *testing.T) {
	ask := newAskServer(t, func(string) int { return http.StatusOK })
	p := onDemandPolicy(ask.URL)
	p.OnDemand.Rate, p.OnDemand.RateInterval = 2, time.Hour
	dir := t.TempDir()
	m := applyManager(t, dir, p)
	addr := listen(t, m)
	tests := []struct {
		sni   string
		serve bool
	}{
		{"a.od.internal", true},
		{"b.od.internal", true},
		{"c.od.internal", false},
		{"a.od.internal", true},
		{"d.od.internal", false},
	}
	for _, tt := range tests {
		if _, err := dial(addr, tt.sni, nil); (err == nil) != tt.serve {
			t.Errorf("%q: handshake error %v, want served %v", tt.sni, err, tt.serve)
		}
	}
	got := storedNames(t, dir)
	slices.Sort(got)
	if want := []string{"a.od.internal", "b.od.internal"}; !slices.Equal(got, want) {
		t.Errorf("stored %q, want %q", got, want)
	}
}

// TestOnDemandStoredNotRateLimited: a restart serves the on-demand names
// already in storage whatever the rate limit, which counts issuances, not
// loads from storage.
func TestOnDemandStoredNotRateLimited(t *testing.T) {
	ask := newAskServer(t, func(string) int { return http.StatusOK })
	dir := t.TempDir()
	first := applyManager(t, dir, onDemandPolicy(ask.URL))
	names := []string{"a.od.internal", "b.od.internal", "c.od.internal"}
	for _, n := range names {
		if _, err := handshake(t, first, n); err != nil {
			t.Fatalf("%q: %v", n, err)
		}
	}
	first.Close()

	p := onDemandPolicy(ask.URL)
	p.OnDemand.Rate, p.OnDemand.RateInterval = 1, time.Hour
	second := applyManager(t, dir, p)
	for _, n := range names {
		if _, err := handshake(t, second, n); err != nil {
			t.Errorf("stored %q after restart with rate 1/h: %v", n, err)
		}
	}
}

// TestOnDemandNotAskedForInternalWildcard checks that an internal wildcard
// without OnDemand issues without asking.
func TestOnDemandNotAskedForInternalWildcard(t *testing.T) {
	ask := newAskServer(t, func(string) int { return http.StatusForbidden })
	p := Policy{
		Sites:    []Site{{Names: []string{"*.svc.internal"}}, {Names: []string{"*.od.internal"}, Issuer: IssuerInternal, OnDemand: true}},
		OnDemand: OnDemand{Ask: ask.URL},
	}
	m := applyManager(t, t.TempDir(), p)
	if _, err := handshake(t, m, "a.svc.internal"); err != nil {
		t.Errorf("internal wildcard name: %v", err)
	}
	if _, err := handshake(t, m, "a.od.internal"); err == nil {
		t.Error("refused on-demand name got a certificate")
	}
	if got := ask.domains(); !slices.Equal(got, []string{"a.od.internal"}) {
		t.Errorf("asked %q, want only [a.od.internal]", got)
	}
}

// TestOnDemandACMERefused refuses an ACME on-demand name at the ask
// endpoint: the handshake fails at once, without any ACME traffic (the CA
// records every request it gets).
func TestOnDemandACMERefused(t *testing.T) {
	ask := newAskServer(t, func(string) int { return http.StatusForbidden })
	var acmeRequests atomic.Int32
	ca := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		acmeRequests.Add(1)
		http.NotFound(w, r)
	}))
	t.Cleanup(ca.Close)
	p := Policy{
		Sites:    []Site{{Names: []string{"*.example.com"}, OnDemand: true}},
		OnDemand: OnDemand{Ask: ask.URL},
		ACME:     ACME{CA: ca.URL + "/directory"},
	}
	m := applyManager(t, t.TempDir(), p)
	start := time.Now()
	if _, err := handshake(t, m, "www.example.com"); err == nil {
		t.Error("refused ACME name got a certificate")
	}
	if d := time.Since(start); d >= certmagicRetry {
		t.Errorf("refusal took %v, want it before certmagic's retry after %v", d, certmagicRetry)
	}
	if n := acmeRequests.Load(); n != 0 {
		t.Errorf("the ACME CA got %d requests for a refused name, want none", n)
	}
	if got := ask.domains(); !slices.Equal(got, []string{"www.example.com"}) {
		t.Errorf("asked %q, want [www.example.com]", got)
	}
}

// TestOnDemandParallel runs 32 handshakes for one new on-demand name at
// once: all succeed with the same certificate, issued once.
func TestOnDemandParallel(t *testing.T) {
	ask := newAskServer(t, func(string) int { return http.StatusOK })
	p := onDemandPolicy(ask.URL)
	p.OnDemand.Rate = 100
	dir := t.TempDir()
	m := applyManager(t, dir, p)
	addr := listen(t, m)
	const n = 32
	serials := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			cs, err := dial(addr, "burst.od.internal", rootPool(m))
			if err != nil {
				errs[i] = err
				return
			}
			serials[i] = cs.PeerCertificates[0].SerialNumber.String()
		})
	}
	close(start)
	wg.Wait()
	want := ""
	for i := range n {
		switch {
		case errs[i] != nil:
			t.Errorf("handshake %d: %v", i, errs[i])
		case want == "":
			want = serials[i]
		case serials[i] != want:
			t.Errorf("handshake %d got serial %s, want %s: issued more than once", i, serials[i], want)
		}
	}
	if got := storedNames(t, dir); !slices.Equal(got, []string{"burst.od.internal"}) {
		t.Errorf("stored %q", got)
	}
	t.Logf("ask endpoint asked %d times", len(ask.domains()))
}

func TestList(t *testing.T) {
	dir := t.TempDir()
	m := applyManager(t, dir, Policy{Sites: []Site{{Names: []string{"*.svc.internal"}}}})
	served := map[string]*x509.Certificate{}
	for _, n := range []string{"b.svc.internal", "a.svc.internal"} {
		leaf, err := handshake(t, m, n)
		if err != nil {
			t.Fatal(err)
		}
		served[n] = leaf
	}

	for _, ratio := range []float64{0, 1.0 / 3, 0.5} {
		list, err := List(dir, ratio)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range list {
			names = append(names, strings.Join(s.Names, ","))
		}
		if want := []string{"a.svc.internal", "b.svc.internal"}; !slices.Equal(names, want) {
			t.Fatalf("ratio %v: List names got %q, want %q (sorted)", ratio, names, want)
		}
		r := ratio
		if r == 0 {
			r = DefaultRenewalWindowRatio
		}
		for _, s := range list {
			leaf := served[s.Names[0]]
			if s.Issuer != "anx-internal" {
				t.Errorf("%s: Issuer got %q, want anx-internal", s.Names[0], s.Issuer)
			}
			if !s.NotAfter.Equal(leaf.NotAfter) {
				t.Errorf("%s: NotAfter got %v, want %v", s.Names[0], s.NotAfter, leaf.NotAfter)
			}
			lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
			want := leaf.NotAfter.Add(-time.Duration(float64(lifetime) * r))
			if !s.RenewAt.Equal(want) || !s.RenewAt.After(leaf.NotBefore) || !s.RenewAt.Before(leaf.NotAfter) {
				t.Errorf("%s, ratio %v: RenewAt got %v, want %v", s.Names[0], ratio, s.RenewAt, want)
			}
			if s.LastError != "" || !s.LastErrorAt.IsZero() {
				t.Errorf("%s: LastError got %q at %v, want none", s.Names[0], s.LastError, s.LastErrorAt)
			}
		}
	}

	// Failures: one for a name with a certificate, one for a name without.
	m.status.failed("a.svc.internal", errors.New("renewal went wrong"))
	m.status.failed("none.svc.internal", errors.New("obtain went wrong"))
	m.status.failed("nil.svc.internal", nil)
	list, err := List(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Status{}
	for _, s := range list {
		byName[s.Names[0]] = s
	}
	if len(list) != 4 {
		t.Errorf("List got %d entries, want 4: %+v", len(list), list)
	}
	tests := []struct {
		name, lastError, issuer string
		hasCert                 bool
	}{
		{"a.svc.internal", "renewal went wrong", "anx-internal", true},
		{"b.svc.internal", "", "anx-internal", true},
		{"nil.svc.internal", "unknown error", "", false},
		{"none.svc.internal", "obtain went wrong", "", false},
	}
	for _, tt := range tests {
		s, ok := byName[tt.name]
		if !ok {
			t.Errorf("%s missing from List", tt.name)
			continue
		}
		if s.LastError != tt.lastError || (tt.lastError != "") == s.LastErrorAt.IsZero() {
			t.Errorf("%s: LastError got %q at %v, want %q", tt.name, s.LastError, s.LastErrorAt, tt.lastError)
		}
		if s.Issuer != tt.issuer || s.NotAfter.IsZero() == tt.hasCert {
			t.Errorf("%s: Issuer %q NotAfter %v, want issuer %q, certificate %v", tt.name, s.Issuer, s.NotAfter, tt.issuer, tt.hasCert)
		}
	}

	// The failures outlive the Manager; a success clears one.
	m.Close()
	again, _ := openManager(t, dir)
	again.status.obtained("none.svc.internal")
	list, err = List(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range list {
		names = append(names, s.Names[0]+"="+s.LastError)
	}
	if want := []string{"a.svc.internal=renewal went wrong", "b.svc.internal=", "nil.svc.internal=unknown error"}; !slices.Equal(names, want) {
		t.Errorf("after reopen and a success: List got %q, want %q", names, want)
	}
}

// TestListIP lists IP certificates under their addresses.
func TestListIP(t *testing.T) {
	dir := t.TempDir()
	applyManager(t, dir, Policy{Sites: []Site{{Names: []string{"10.9.8.7", "::FFFF:10.9.8.6", "2001:db8::1"}}}})
	list, err := List(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range list {
		got = append(got, strings.Join(s.Names, ",")+" "+s.Issuer)
	}
	if want := []string{"10.9.8.6 anx-internal", "10.9.8.7 anx-internal", "2001:db8::1 anx-internal"}; !slices.Equal(got, want) {
		t.Errorf("List got %q, want %q", got, want)
	}
}

func TestListEmptyAndBroken(t *testing.T) {
	dir := t.TempDir()
	if list, err := List(filepath.Join(dir, "missing"), 0); err != nil || len(list) != 0 {
		t.Errorf("List of a missing dir got %v %v, want nothing", list, err)
	}
	// A corrupt status file reads as no failures.
	if err := os.WriteFile(filepath.Join(dir, statusFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if list, err := List(dir, 0); err != nil || len(list) != 0 {
		t.Errorf("List with a corrupt status file got %v %v, want nothing", list, err)
	}
	// A corrupt certificate is an error naming it.
	bad := storedCert(dir, "bad.internal")
	if err := os.MkdirAll(filepath.Dir(bad), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := List(dir, 0); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("List with a corrupt certificate got %v, want an error naming %s", err, bad)
	}
}

// TestOnEvent feeds certmagic's events to the Manager: a failure is logged
// and listed, a success clears it.
func TestOnEvent(t *testing.T) {
	dir := t.TempDir()
	m, buf := openManager(t, dir)
	ctx := context.Background()
	m.onEvent(ctx, "cert_failed", map[string]any{"identifier": "x.example.com", "renewal": true, "error": errors.New("acme: boom")})
	m.onEvent(ctx, "cert_obtaining", map[string]any{"identifier": "y.example.com"})
	list, err := List(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Names[0] != "x.example.com" || list[0].LastError != "acme: boom" {
		t.Errorf("after cert_failed, List got %+v", list)
	}
	log := buf.String()
	for _, want := range []string{"level=ERROR", `msg="certificate failed"`, "name=x.example.com", "renewal=true", `err="acme: boom"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	m.onEvent(ctx, "cert_obtained", map[string]any{"identifier": "x.example.com", "issuer": "acme-v02.api.letsencrypt.org-directory"})
	if list, _ := List(dir, 0); len(list) != 0 {
		t.Errorf("after cert_obtained, List got %+v, want nothing", list)
	}
	if !strings.Contains(buf.String(), `msg="certificate obtained"`) {
		t.Errorf("success not logged:\n%s", buf)
	}
}

// storedSerial returns the serial of name's stored certificate, or "".
func storedSerial(dir, name string) string {
	cert, err := readCert(storedCert(dir, name))
	if err != nil {
		return ""
	}
	return cert.SerialNumber.String()
}

// TestManagerRenewsInBackground has a renewal window so wide that a new
// certificate is due at once, and a short RenewInterval: maintenance
// renews the exact name in storage and serves the new certificate.
func TestManagerRenewsInBackground(t *testing.T) {
	// Not t.TempDir: Close does not wait for a renewal job that
	// certmagic's job manager already runs, which may still write here.
	dir, err := os.MkdirTemp("", "anx-renew-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var err error
		for deadline := time.Now().Add(hangTimeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if err = os.RemoveAll(dir); err == nil {
				return
			}
		}
		t.Errorf("cannot remove %s: %v", dir, err)
	})
	m := applyManager(t, dir, Policy{
		Sites:              []Site{{Names: []string{"localhost"}}},
		RenewInterval:      100 * time.Millisecond,
		RenewalWindowRatio: 0.995, // 7 days left of 7d1h is less
	})
	// In the end, stop renewing at every check.
	defer apply(t, m, Policy{Sites: []Site{{Names: []string{"localhost"}}}, RenewInterval: 100 * time.Millisecond})
	first := storedSerial(dir, "localhost")
	if first == "" {
		t.Fatal("localhost not stored after Apply")
	}
	// Both loops poll at a pace that spares the CPU; hangTimeout is
	// their safety net.
	deadline := time.Now().Add(hangTimeout)
	for storedSerial(dir, "localhost") == first {
		if time.Now().After(deadline) {
			t.Fatalf("localhost not renewed in storage within %v with RenewInterval 100ms", hangTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		leaf, err := handshake(t, m, "localhost")
		if err != nil {
			t.Fatal(err)
		}
		if leaf.SerialNumber.String() != first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate is not served")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestManagerReloadRenewInterval re-applies the policy with another
// RenewInterval, which replaces certmagic's cache: the certificates
// already issued are still served, not issued again.
func TestManagerReloadRenewInterval(t *testing.T) {
	dir := t.TempDir()
	p := Policy{Sites: []Site{{Names: []string{"localhost", "*.svc.internal"}}}}
	m, _ := openManager(t, dir)
	apply(t, m, p)
	addr := listen(t, m)
	serials := map[string]string{}
	for _, sni := range []string{"localhost", "a.svc.internal"} {
		cs, err := dial(addr, sni, nil)
		if err != nil {
			t.Fatal(err)
		}
		serials[sni] = cs.PeerCertificates[0].SerialNumber.String()
	}
	for _, every := range []time.Duration{time.Minute, 2 * time.Minute, 0} {
		p.RenewInterval = every
		apply(t, m, p)
		for sni, want := range serials {
			cs, err := dial(addr, sni, nil)
			if err != nil {
				t.Errorf("RenewInterval %v, %q: %v", every, sni, err)
				continue
			}
			if got := cs.PeerCertificates[0].SerialNumber.String(); got != want {
				t.Errorf("RenewInterval %v, %q: serial %s, want %s", every, sni, got, want)
			}
		}
	}
}

// TestOnDemandIssueFailureFailsFast makes the internal CA fail (its
// intermediate expired and cannot be renewed) when a name is issued at
// its first handshake: the handshake fails at once and the failure is
// listed. certmagic retries a failed on-demand obtain after a minute
// (then 2, ...) unless the issuer's error is a certmagic.ErrNoRetry; the
// internal CA's failures do not heal in a minute, and the client would
// wait for them.
func TestOnDemandIssueFailureFailsFast(t *testing.T) {
	dir := t.TempDir()
	m := applyManager(t, dir, Policy{Sites: []Site{{Names: []string{"*.svc.internal"}}}})
	late := m.ca.inter.NotAfter.Add(time.Hour)
	m.ca.now = func() time.Time { return late }
	m.ca.caDir = filepath.Join(m.ca.caDir, "missing")
	addr := listen(t, m)

	start := time.Now()
	_, err := dial(addr, "a.svc.internal", nil)
	if d := time.Since(start); err == nil || d >= certmagicRetry {
		t.Errorf("handshake got error %v after %v, want a failure before certmagic's retry after %v", err, d, certmagicRetry)
	}
	list, err := List(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Names[0] != "a.svc.internal" || !strings.Contains(list[0].LastError, "intermediate") {
		t.Errorf("List got %+v, want the failure of a.svc.internal", list)
	}
}

// closedAddr returns the address of a TCP port of 127.0.0.1 that nothing
// listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestACMEFailureListed has an exact ACME name whose CA does not answer:
// Apply returns at once, the failure is logged and listed, the name is
// refused meanwhile (without waiting), and Close ends the retries.
func TestACMEFailureListed(t *testing.T) {
	dir := t.TempDir()
	m, buf := openManager(t, dir)
	start := time.Now()
	err := m.Apply(Policy{
		Sites: []Site{{Names: []string{"www.example.com", "localhost"}}},
		ACME:  ACME{CA: "http://" + closedAddr(t) + "/directory"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d >= certmagicRetry {
		t.Errorf("Apply took %v, longer than certmagic's retry after %v; ACME names are obtained in the background", d, certmagicRetry)
	}
	// Poll (at a pace that spares the CPU) for the failure to be listed.
	var list []Status
	for deadline := time.Now().Add(hangTimeout); ; {
		if list, err = List(dir, 0); err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(list, func(s Status) bool { return s.LastError != "" }) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var got []string
	for _, s := range list {
		got = append(got, s.Names[0]+" "+s.Issuer)
	}
	if want := []string{"localhost anx-internal", "www.example.com "}; !slices.Equal(got, want) {
		t.Fatalf("List got %q, want %q", got, want)
	}
	if s := list[1]; !strings.Contains(s.LastError, "connection refused") || s.LastErrorAt.IsZero() {
		t.Errorf("www.example.com: LastError %q at %v, want the CA's connection refused", s.LastError, s.LastErrorAt)
	}
	if log := buf.String(); !strings.Contains(log, `msg="certificate failed" name=www.example.com`) {
		t.Errorf("failure not logged:\n%s", log)
	}
	start = time.Now()
	if _, err := handshake(t, m, "www.example.com"); err == nil {
		t.Error("www.example.com served without a certificate")
	}
	if d := time.Since(start); d >= certmagicRetry {
		t.Errorf("refusing www.example.com took %v, longer than certmagic's retry after %v", d, certmagicRetry)
	}
	if _, err := handshake(t, m, "localhost"); err != nil {
		t.Errorf("localhost: %v", err)
	}
}

// TestTLSALPNWithoutChallenge sends an ACME TLS-ALPN-01 validation
// ClientHello (ALPN acme-tls/1 only) when no challenge is in progress:
// it fails rather than get the name's certificate.
func TestTLSALPNWithoutChallenge(t *testing.T) {
	m := applyManager(t, t.TempDir(), Policy{Sites: []Site{{Names: []string{"localhost"}}}})
	conn := fakeConn{local: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}}
	hello := &tls.ClientHelloInfo{ServerName: "localhost", SupportedProtos: []string{"acme-tls/1"}, Conn: remoteConn{conn}}
	if cert, err := m.GetCertificate(hello); err == nil {
		t.Errorf("acme-tls/1 ClientHello got a certificate (%v), want an error", cert.Leaf.DNSNames)
	}
	hello.SupportedProtos = []string{"h2", "acme-tls/1"}
	if _, err := m.GetCertificate(hello); err != nil {
		t.Errorf("ClientHello offering acme-tls/1 among others: %v", err)
	}
}

// remoteConn adds a remote address to a fakeConn, for certmagic's logs.
type remoteConn struct{ fakeConn }

func (remoteConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 50000}
}

// TestWildcardUnderscoreName asks for a name with an underscore under a
// wildcard. names.go allows underscores ("internal names use them"), and
// exact ones are served; certmagic refuses to obtain one at handshake time
// (its idna.Lookup profile rejects "_").
func TestWildcardUnderscoreName(t *testing.T) {
	// certmagic cannot obtain a name with an underscore at handshake
	// time; anx refuses it cleanly, with a reason, instead of issuing.
	m := applyManager(t, t.TempDir(), Policy{Sites: []Site{{Names: []string{"*.svc.internal", "exact_db.internal"}}}})
	if _, err := handshake(t, m, "my_db.svc.internal"); err == nil {
		t.Error("my_db.svc.internal got a certificate through a wildcard, want a refusal")
	}
	if _, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "my_db.svc.internal"}); !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "underscore") {
		t.Errorf("error %v, want ErrNotAllowed naming the underscore", err)
	}
	leaf, err := handshake(t, m, "exact_db.internal")
	if err != nil {
		t.Fatalf("exact_db.internal: %v", err)
	}
	if got := leafName(leaf); got != "exact_db.internal" {
		t.Errorf("certificate for %q", got)
	}
}

// TestGetCertificateIPSNI serves a ClientHello whose SNI is an IP address,
// which some clients send although RFC 6066 forbids it.
func TestGetCertificateIPSNI(t *testing.T) {
	m := applyManager(t, t.TempDir(), Policy{Sites: []Site{{Names: []string{"127.0.0.1", "::1"}}}})
	tests := []struct{ sni, want string }{
		{"127.0.0.1", "127.0.0.1"},
		{"::ffff:127.0.0.1", "127.0.0.1"},
		{"::1", "::1"},
		{"[::1]", ""},
		{"127.0.0.2", ""},
	}
	for _, tt := range tests {
		cert, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: tt.sni})
		if tt.want == "" {
			if err == nil {
				t.Errorf("SNI %q got a certificate, want an error", tt.sni)
			}
			continue
		}
		if err != nil {
			t.Errorf("SNI %q: %v", tt.sni, err)
			continue
		}
		if got := leafName(cert.Leaf); got != tt.want {
			t.Errorf("SNI %q: certificate for %q, want %q", tt.sni, got, tt.want)
		}
	}
}

// TestManagerConcurrentApply reloads policies (some with another
// RenewInterval, which replaces the cache) while handshakes run, for the
// race detector; localhost, in every policy, is always served. The
// clients keep handshaking until every policy has been applied twice, so
// that the reloads and the handshakes overlap however fast either is.
func TestManagerConcurrentApply(t *testing.T) {
	m := applyManager(t, t.TempDir(), Policy{Sites: []Site{{Names: []string{"localhost"}}}})
	addr := listen(t, m)
	policies := []Policy{
		{Sites: []Site{{Names: []string{"localhost", "a.internal"}}}},
		{Sites: []Site{{Names: []string{"localhost", "b.internal"}}}, RenewInterval: time.Minute},
		{Sites: []Site{{Names: []string{"localhost"}}, {Names: []string{"*.svc.internal"}}}, RenewalWindowRatio: 0.5},
	}
	applied := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(applied)
		for i := range 2 * len(policies) {
			if err := m.Apply(policies[i%len(policies)]); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for i := range 30 {
		wg.Go(func() {
			for {
				if _, err := dial(addr, "localhost", rootPool(m)); err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				select {
				case <-applied:
					return
				default:
				}
			}
		})
	}
	wg.Wait()
}

// TestOnDemandBurst opens handshakes for 20 distinct new names at once,
// far below the rate limit (1000 a minute): all are served.
// certmagic's RingBufferRateLimiter.Allow succeeds only while the
// limiter's goroutine waits to hand out a ticket; after each ticket it
// needs a moment to come back, and an Allow meanwhile is refused.
func TestOnDemandBurst(t *testing.T) {
	p := Policy{Sites: []Site{{Names: []string{"*.svc.internal"}}}, OnDemand: OnDemand{Rate: 1000}}
	m := applyManager(t, t.TempDir(), p)
	addr := listen(t, m)
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = dial(addr, "n"+strconv.Itoa(i)+".svc.internal", nil)
		})
	}
	close(start)
	wg.Wait()
	refused := 0
	for _, err := range errs {
		if err != nil {
			refused++
		}
	}
	if refused > 0 {
		t.Errorf("%d of %d new names refused with a limit of 1000 a minute", refused, n)
	}
}
