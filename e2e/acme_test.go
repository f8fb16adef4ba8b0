package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"

	"github.com/anx-gateway/anx/e2e/harness"
)

// The ACME tests run anx against Pebble (harness.StartPebble) on loopback.
// Pebble validates against anx's ports, so those are chosen first
// (harness.NewPlacement) and anx runs there (harness.StartAt). Every anx
// also serves localhost from its internal CA, as harness.Start expects.
const (
	acmeName  = "a.test"           // the name anx gets from Pebble
	acmeEmail = "test@example.com" // the ACME account's contact
	// issueRuns is how many issuances must succeed per challenge type.
	issueRuns = 10
	// issueLimit bounds one issuance, anx's start to the first verified
	// handshake: a safety net against a hang, sized for a -race anx on a
	// busy 2-core machine (an issuance takes 1 to 3s there; each is logged).
	issueLimit = 2 * time.Minute
	// issueValidity is the pinned lifetime of Pebble's certificates in the
	// tests that do not renew: long enough that nothing renews meanwhile.
	issueValidity = 24 * time.Hour
	// renewValidity is the pinned lifetime in the renewal test; with
	// renewal_window_ratio 0.9 anx renews about 6s after each issuance.
	renewValidity = 60 * time.Second
	// fallbackLimit bounds one run of TestACMEChallengeFallback, anx's start
	// to its certificate through a failed order and a second one: a safety net.
	fallbackLimit = 2 * time.Minute
	// certsLimit bounds the wait for an entry of `anx certs --json`: a safety net.
	certsLimit = time.Minute
	// logLimit bounds the wait for a log line: a safety net.
	logLimit = 2 * time.Minute
	// handshakeTimeout bounds a single TLS handshake of these tests: a
	// safety net (a refused one fails at once; waitCert tries again).
	handshakeTimeout = 30 * time.Second
)

// TestACMEIssue: anx gets a.test from Pebble with the challenge pinned to
// HTTP-01 and to TLS-ALPN-01 (flags --acme-ca, --acme-ca-root, --email,
// --acme-challenge), Pebble's validity profile pinned and its default noise
// on (5% of good nonces rejected). Per challenge, 10 of 10 issuances must
// succeed (each within the safety net issueLimit; the times are logged):
// 10 anx runs one after the other on the same
// ports, each with a fresh data dir and so a fresh ACME account (Pebble
// reuses authorizations only within an account, so every run solves a real
// challenge), against one Pebble. Each run is then checked with curl over
// h1 and h2 and the HTTP/3 curl over h3, trusting Pebble's issuing root,
// and with `anx certs --json`.
func TestACMEIssue(t *testing.T) {
	t.Parallel()
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) {
			t.Parallel()
			curl, curlH3 := harness.Peer(t, "curl"), harness.Peer(t, "curl-h3")
			pl := harness.NewPlacement(t)
			p := harness.StartPebble(t, harness.PebbleOptions{HTTPPort: pl.HTTPPort, TLSPort: pl.HTTPSPort, Validity: issueValidity})
			for i := range issueRuns {
				pl.Data = filepath.Join(t.TempDir(), "data")
				if !issueOnce(t, p, pl, challenge, curl, curlH3) {
					t.Fatalf("issuance %d of %d (%s) failed", i+1, issueRuns, challenge)
				}
			}
		})
	}
}

// issueOnce runs anx on pl until it serves a.test from Pebble, checks that
// run and stops anx. It reports whether the certificate came.
func issueOnce(t *testing.T, p *harness.Pebble, pl harness.Placement, challenge, curl, curlH3 string) bool {
	t.Helper()
	orders, httpChecks := p.Orders(), p.HTTPValidations()
	start := time.Now()
	s := harness.StartAt(t, harness.Options{Args: acmeFlags(p, challenge)}, pl)
	st, ok := waitCert(t, s, acmeName, p.IssuingRoots().Pool, start.Add(issueLimit))
	if !ok {
		return false
	}
	t.Logf("%s: certificate after %v", challenge, time.Since(start).Round(time.Millisecond))
	checkPebbleChain(t, p, st, issueValidity)
	if n := p.Orders() - orders; n != 1 {
		t.Errorf("%s: Pebble got %d orders for this run, want 1", challenge, n)
	}
	checkChallenge(t, challenge, p.HTTPValidations()-httpChecks)
	for _, c := range []struct{ curl, flag, version string }{
		{curl, "--http1.1", "1.1"}, {curl, "--http2", "2"}, {curlH3, "--http3-only", "3"},
	} {
		curlName(t, s, c.curl, p.IssuingRoots().Path, acmeName, c.version, c.flag)
	}
	checkCertsEntry(t, s, st.PeerCertificates[0])
	if code, err := s.Stop(); err != nil || code != 0 {
		t.Errorf("anx stop: exit %d, %v", code, err)
	}
	return true
}

// acmeFlags are the `anx run` flags that get a.test from p, pinned to challenge.
func acmeFlags(p *harness.Pebble, challenge string) []string {
	return []string{"--domain", acmeName, "--acme-ca", p.DirURL, "--acme-ca-root", p.APIRootPath,
		"--email", acmeEmail, "--acme-challenge", challenge}
}

// checkChallenge fails t unless the run's validations were of the pinned
// type: HTTP-01 requests for http-01, none for tls-alpn-01 (with one order
// and one name, the authorization was then solved by TLS-ALPN-01).
func checkChallenge(t *testing.T, challenge string, httpChecks int) {
	t.Helper()
	switch {
	case challenge == "http-01" && httpChecks == 0:
		t.Errorf("pinned to http-01, but Pebble made no HTTP-01 request")
	case challenge == "tls-alpn-01" && httpChecks != 0:
		t.Errorf("pinned to tls-alpn-01, but Pebble made %d HTTP-01 requests", httpChecks)
	}
}

// TestACMERestart: anx restarted on the same data dir serves the same
// certificate (same serial) from storage from its first handshake after
// ready, and Pebble gets no new order during the restarted anx's whole
// run: the orders are counted once it has exited (0, after SIGTERM), when
// nothing more can come from it.
func TestACMERestart(t *testing.T) {
	t.Parallel()
	pl := harness.NewPlacement(t)
	p := harness.StartPebble(t, harness.PebbleOptions{HTTPPort: pl.HTTPPort, TLSPort: pl.HTTPSPort, Validity: issueValidity})
	conf := acmeConfig{CA: p.DirURL, CARoot: p.APIRootPath, Hosts: []string{acmeName}}.TOML()
	s := harness.StartAt(t, harness.Options{Config: conf}, pl)
	first, ok := waitCert(t, s, acmeName, p.IssuingRoots().Pool, time.Now().Add(issueLimit))
	if !ok {
		t.Fatalf("no certificate for %s within %v", acmeName, issueLimit)
	}
	orders := p.Orders()
	if code, err := s.Stop(); err != nil || code != 0 {
		t.Fatalf("anx stop: exit %d, %v", code, err)
	}
	s = harness.StartAt(t, harness.Options{Config: conf}, pl)
	// The stored certificate is served from the first handshake after
	// ready: no wait, no retry.
	conn, err := dialName(s.HTTPS, acmeName, p.IssuingRoots().Pool, handshakeTimeout)
	if err != nil {
		t.Fatalf("after the restart, the first handshake for %s: %v", acmeName, err)
	}
	again := conn.ConnectionState()
	conn.Close()
	if a, b := serialHex(first.PeerCertificates[0]), serialHex(again.PeerCertificates[0]); a != b {
		t.Errorf("serial before the restart %s, after %s: want the stored certificate", a, b)
	}
	checkCertsEntry(t, s, again.PeerCertificates[0])
	if code, err := s.Stop(); err != nil || code != 0 {
		t.Errorf("anx stop after the restart: exit %d, %v", code, err)
	}
	if n := p.Orders() - orders; n != 0 {
		t.Errorf("Pebble got %d orders from the restarted anx, want 0", n)
	}
}

// TestACMERenewal: with Pebble's certificates living 60s, renewal_window_ratio
// 0.9 and renew_interval 1s, anx renews in the background while a client
// runs throughout, each request on a new connection (h1, h2 and h3 in turn):
// new serials appear and not one request fails.
func TestACMERenewal(t *testing.T) {
	t.Parallel()
	pl := harness.NewPlacement(t)
	p := harness.StartPebble(t, harness.PebbleOptions{HTTPPort: pl.HTTPPort, TLSPort: pl.HTTPSPort, Validity: renewValidity})
	conf := acmeConfig{CA: p.DirURL, CARoot: p.APIRootPath, Hosts: []string{acmeName},
		Top: []string{`renew_interval = "1s"`, "renewal_window_ratio = 0.9"}}.TOML()
	s := harness.StartAt(t, harness.Options{Config: conf}, pl)
	if _, ok := waitCert(t, s, acmeName, p.IssuingRoots().Pool, time.Now().Add(issueLimit)); !ok {
		t.Fatalf("no certificate for %s within %v", acmeName, issueLimit)
	}
	tc := &tls.Config{ServerName: acmeName, RootCAs: p.IssuingRoots().Pool}
	loop := startLoop(s, tc, s.File("hello.txt"))
	ok := loop.waitSerials(3, 45*time.Second) // the first certificate and two renewals
	st := loop.stop()
	t.Logf("%d requests, %d failed, serials %v", st.requests, len(st.failures), st.serials)
	if len(st.failures) > 0 {
		t.Errorf("%d of %d requests failed during renewal; first: %v", len(st.failures), st.requests, st.failures[0])
	}
	if !ok {
		t.Errorf("the client saw serials %v within 45s, want 3 (two renewals)", st.serials)
	}
	for _, leaf := range st.leaves {
		if got := leaf.NotAfter.Sub(leaf.NotBefore); got != renewValidity-time.Second {
			t.Errorf("serial %s lives %v, want Pebble's pinned %v", serialHex(leaf), got, renewValidity-time.Second)
		}
	}
}

// TestACMEBadCA: an ACME CA that cannot be reached, or whose API is not
// signed by acme_ca_root, is logged at ERROR with the name and the reason,
// shows as a.test's last error in `anx certs --json`, and the localhost
// site (internal CA) keeps serving over h1, h2 and h3.
func TestACMEBadCA(t *testing.T) {
	t.Parallel()
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		wrong := filepath.Join(t.TempDir(), "root.pem")
		harness.WriteRoot(t, wrong)
		ca := "https://127.0.0.1:" + strconv.Itoa(harness.FreeTCPPort(t)) + "/dir" // closed
		const reason = "connection refused"
		s := harness.Start(t, harness.Options{Config: acmeConfig{CA: ca, CARoot: wrong, Hosts: []string{acmeName}}.TOML(),
			ExpectedErrors: badCAErrors(reason)})
		checkBadCA(t, s, reason)
	})
	t.Run("wrong-root", func(t *testing.T) {
		t.Parallel()
		pl := harness.NewPlacement(t)
		p := harness.StartPebble(t, harness.PebbleOptions{HTTPPort: pl.HTTPPort, TLSPort: pl.HTTPSPort, Validity: issueValidity})
		wrong := filepath.Join(t.TempDir(), "root.pem")
		harness.WriteRoot(t, wrong)
		const reason = "certificate signed by unknown authority"
		s := harness.StartAt(t, harness.Options{Config: acmeConfig{CA: p.DirURL, CARoot: wrong, Hosts: []string{acmeName}}.TOML(),
			ExpectedErrors: badCAErrors(reason)}, pl)
		checkBadCA(t, s, reason)
		if n := p.Orders(); n != 0 {
			t.Errorf("Pebble got %d orders over an API anx must not trust", n)
		}
	})
}

// badCAErrors are the ERROR lines a failing ACME CA may cause: each names
// a.test and the reason (certmagic's "could not get certificate from
// issuer" and "will retry", anx's "certificate failed"), or is the pending
// retry's job cancelled when anx stops.
func badCAErrors(reason string) []string {
	return []string{
		`level=ERROR msg=.*\ba\.test\b.*` + regexp.QuoteMeta(reason),
		`level=ERROR msg="job failed" component=certmagic error="a\.test: obtaining certificate: context canceled"`,
	}
}

// checkBadCA waits for the ERROR line naming a.test and reason, then checks
// that localhost is served and that `anx certs` shows the error.
func checkBadCA(t *testing.T, s *harness.Server, reason string) {
	t.Helper()
	line, ok := waitLogLine(s, logLimit, "level=ERROR", acmeName, reason)
	if !ok {
		t.Errorf("no level=ERROR line naming %s and %q within %v; stderr:\n%s", acmeName, reason, logLimit, tail(s.Stderr(), 4000))
	} else {
		t.Logf("logged: %s", line)
	}
	for _, p := range harness.Protos {
		if r := s.Get(p, "/hello.txt"); r.Err != nil || r.Status != http.StatusOK {
			t.Errorf("localhost over %s while %s fails: status %d, %v", p, acmeName, r.Status, r.Err)
		}
	}
	e, ok := waitCertsEntry(t, s, acmeName, certsLimit, func(e certEntry) bool { return e.LastError != "" })
	switch {
	case !ok:
		t.Errorf("anx certs --json: no entry for %s with a last_error within %v (last %+v)", acmeName, certsLimit, e)
	case !strings.Contains(e.LastError, reason):
		t.Errorf("anx certs --json: %s last_error %q, want it to contain %q", acmeName, e.LastError, reason)
	case e.LastErrorAt == "":
		t.Errorf("anx certs --json: %s has a last_error but no last_error_at", acmeName)
	}
}

// TestResumptionAcrossReload: a second TLS connection resumes the first's
// session (Go's client session cache), and so does one after a config
// reload (SIGHUP); the same with openssl s_client -sess_out/-sess_in when
// openssl is installed. The internal CA serves localhost: no ACME here.
func TestResumptionAcrossReload(t *testing.T) {
	t.Parallel()
	s := harness.Start(t, harness.Options{Config: harness.Config{}.TOML()})
	cache := tls.NewLRUClientSessionCache(8)
	if resumedGet(t, s, cache) {
		t.Errorf("the first connection resumed a session it never had")
	}
	if !resumedGet(t, s, cache) {
		t.Errorf("the second connection did not resume")
	}
	reload(t, s)
	if !resumedGet(t, s, cache) {
		t.Errorf("the connection after the reload did not resume")
	}
	t.Run("openssl", func(t *testing.T) { opensslResumption(t, s) })
}

// resumedGet GETs /hello.txt on a new TLS connection with cache and
// reports whether the handshake resumed. Reading the response also reads
// the TLS 1.3 session ticket into cache.
func resumedGet(t *testing.T, s *harness.Server, cache tls.ClientSessionCache) bool {
	t.Helper()
	cfg := s.TLSConfig("http/1.1")
	cfg.ClientSessionCache = cache
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: handshakeTimeout}, Config: cfg}
	c, err := d.Dial("tcp", s.HTTPS)
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer c.Close()
	tc := c.(*tls.Conn)
	_ = tc.SetDeadline(time.Now().Add(harness.RequestTimeout))
	if _, err := io.WriteString(tc, "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, _, _ := harness.ReadUntilClose(tc, harness.RequestTimeout)
	if got, _ := harness.ParseResponses(res); len(got) != 1 || got[0].Status != http.StatusOK {
		t.Errorf("GET /hello.txt: want one 200, got %q", res)
	}
	return tc.ConnectionState().DidResume
}

// reload rewrites the config file (same settings, a new comment), sends
// SIGHUP and waits for the msg=reloaded line.
func reload(t *testing.T, s *harness.Server) {
	t.Helper()
	config, err := os.ReadFile(s.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	config = fmt.Appendf(config, "# reloaded at %s\n", time.Now().Format(time.RFC3339Nano))
	if line := s.Reload(t, string(config)); !strings.Contains(line, "msg=reloaded") {
		t.Fatalf("reload: %s", line)
	}
}

// opensslResumption: s_client saves the session, resumes it ("Reused"),
// and resumes again after a reload.
func opensslResumption(t *testing.T, s *harness.Server) {
	openssl := harness.Peer(t, "openssl")
	dir := t.TempDir()
	sess := func(i int) string { return filepath.Join(dir, fmt.Sprintf("sess%d.pem", i)) }
	if out := sClient(t, s, openssl, "", sess(0)); !strings.Contains(out, "New, TLS") {
		t.Errorf("first s_client: want \"New, TLS…\" in its output:\n%s", tail(out, 2000))
	}
	if out := sClient(t, s, openssl, sess(0), sess(1)); !strings.Contains(out, "Reused, TLS") {
		t.Errorf("s_client -sess_in: want \"Reused, TLS…\":\n%s", tail(out, 2000))
	}
	reload(t, s)
	if out := sClient(t, s, openssl, sess(1), sess(2)); !strings.Contains(out, "Reused, TLS") {
		t.Errorf("s_client -sess_in after a reload: want \"Reused, TLS…\":\n%s", tail(out, 2000))
	}
}

// sClient runs openssl s_client against localhost with a GET on stdin
// (Connection: close, so the server ends it), saving the session to out
// and resuming in if set. It returns stdout.
func sClient(t *testing.T, s *harness.Server, openssl, in, out string) string {
	t.Helper()
	args := []string{"s_client", "-connect", s.HTTPS, "-servername", "localhost", "-CAfile", s.CAPath(),
		"-verify_return_error", "-alpn", "http/1.1", "-ign_eof", "-sess_out", out}
	if in != "" {
		args = append(args, "-sess_in", in)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, openssl, args...) // killed by pid on timeout
	cmd.Stdin = strings.NewReader("GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %q: %v\n%s", args, err, stdout)
	}
	return string(stdout)
}

// acmeConfig renders a config template (for harness.Options.Config) with
// the ACME settings, a localhost site (internal CA) and a site for Hosts.
type acmeConfig struct {
	CA, CARoot string   // acme_ca, acme_ca_root
	Hosts      []string // the ACME site's hosts
	Top        []string // more top-level lines, e.g. `renew_interval = "1s"`
	Tables     []string // raw tables before the sites, e.g. [on_demand]
	Site       []string // more lines of the ACME site
}

// TOML returns the template; {{.HTTPS}} and the like are left to the harness.
func (c acmeConfig) TOML() string {
	var b strings.Builder
	b.WriteString("https = \"{{.HTTPS}}\"\nhttp = \"{{.HTTP}}\"\ndata = \"{{.Data}}\"\n")
	fmt.Fprintf(&b, "acme_ca = %q\nacme_ca_root = %q\nemail = %q\n", c.CA, c.CARoot, acmeEmail)
	for _, l := range c.Top {
		b.WriteString(l + "\n")
	}
	for _, l := range c.Tables {
		b.WriteString("\n" + l + "\n")
	}
	b.WriteString("\n[[site]]\nhosts = [\"localhost\"]\nroot = \"{{.Root}}\"\n")
	hosts := make([]string, len(c.Hosts))
	for i, h := range c.Hosts {
		hosts[i] = strconv.Quote(h)
	}
	fmt.Fprintf(&b, "\n[[site]]\nhosts = [%s]\nroot = \"{{.Root}}\"\n", strings.Join(hosts, ", "))
	for _, l := range c.Site {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// dialName opens a TLS connection to addr with SNI name, verifying against
// pool, connection and handshake within limit.
func dialName(addr, name string, pool *x509.CertPool, limit time.Duration) (*tls.Conn, error) {
	d := &tls.Dialer{Config: &tls.Config{ServerName: name, RootCAs: pool, NextProtos: []string{"http/1.1"}}}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return c.(*tls.Conn), nil
}

// waitCert polls handshakes for name until one verifies against pool or
// deadline passes; it returns that connection's state.
func waitCert(t *testing.T, s *harness.Server, name string, pool *x509.CertPool, deadline time.Time) (tls.ConnectionState, bool) {
	t.Helper()
	var last error
	for time.Now().Before(deadline) {
		c, err := dialName(s.HTTPS, name, pool, handshakeTimeout)
		if err == nil {
			st := c.ConnectionState()
			c.Close()
			return st, true
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("no verified handshake for %s by the deadline; last error: %v\nanx stderr:\n%s", name, last, tail(s.Stderr(), 4000))
	return tls.ConnectionState{}, false
}

// checkPebbleChain fails t unless the connection got the leaf for a.test
// then Pebble's intermediate, the leaf living Pebble's pinned validity
// (Pebble sets notAfter = notBefore + validity - 1s).
func checkPebbleChain(t *testing.T, p *harness.Pebble, st tls.ConnectionState, validity time.Duration) {
	t.Helper()
	certs := st.PeerCertificates
	if len(certs) != 2 || !certs[1].Equal(p.IssuingRoots().Intermediate) {
		t.Errorf("served chain has %d certificates, want the leaf and Pebble's intermediate", len(certs))
	}
	leaf := certs[0]
	if !slices.Equal(leaf.DNSNames, []string{acmeName}) {
		t.Errorf("leaf names %q, want [%s]", leaf.DNSNames, acmeName)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != validity-time.Second {
		t.Errorf("leaf lives %v, want Pebble's pinned %v", got, validity-time.Second)
	}
}

// curlName GETs /hello.txt from https://name:<https port>/ with the curl at
// path and flag, trusting root, resolving name to 127.0.0.1; it wants 200,
// the exact bytes and HTTP version.
func curlName(t *testing.T, s *harness.Server, path, root, name, version, flag string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	r := s.CurlAs(t, path, root, "https", name, "/hello.txt", flag, "-o", out, "-w", "%{http_code} %{http_version}")
	if want := "200 " + version; r.ExitCode != 0 || r.Stdout != want {
		t.Errorf("curl %s https://%s/hello.txt: exit %d, -w %q, want %q\nstderr: %s", flag, name, r.ExitCode, r.Stdout, want, r.Stderr)
		return
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "curl "+flag+" https://"+name+"/hello.txt", got, s.File("hello.txt"))
}

// certEntry is one element of `anx certs --json`.
type certEntry struct {
	Names       []string `json:"names"`
	Issuer      string   `json:"issuer"`
	NotAfter    string   `json:"not_after"`
	RenewAt     string   `json:"renew_at"`
	LastError   string   `json:"last_error"`
	LastErrorAt string   `json:"last_error_at"`
}

// anxCerts runs `anx certs --data <s.Data> --json` and decodes it.
func anxCerts(t *testing.T, s *harness.Server) []certEntry {
	t.Helper()
	r := harness.RunAnx(t, s.Dir, 15*time.Second, "certs", "--data", s.Data, "--json")
	var out []certEntry
	if r.ExitCode != 0 || r.TimedOut {
		t.Fatalf("anx certs --json: exit %d (timed out %v)\nstderr: %s", r.ExitCode, r.TimedOut, r.Stderr)
	}
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("anx certs --json: %v\nstdout: %s", err, r.Stdout)
	}
	return out
}

// waitCertsEntry polls `anx certs --json` until name's entry satisfies ok,
// or timeout passes; it returns the last entry seen for name.
func waitCertsEntry(t *testing.T, s *harness.Server, name string, timeout time.Duration, ok func(certEntry) bool) (certEntry, bool) {
	t.Helper()
	var last certEntry
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		for _, e := range anxCerts(t, s) {
			if slices.Contains(e.Names, name) {
				last = e
				if ok(e) {
					return e, true
				}
			}
		}
	}
	return last, false
}

// checkCertsEntry fails t unless `anx certs --json` lists a.test with an
// issuer, leaf's not_after, a renew_at within its lifetime and no error.
func checkCertsEntry(t *testing.T, s *harness.Server, leaf *x509.Certificate) {
	t.Helper()
	e, ok := waitCertsEntry(t, s, acmeName, certsLimit, func(e certEntry) bool { return e.NotAfter != "" })
	if !ok {
		t.Errorf("anx certs --json: no entry for %s with a not_after (last %+v)", acmeName, e)
		return
	}
	notAfter, err1 := time.Parse(time.RFC3339, e.NotAfter)
	renewAt, err2 := time.Parse(time.RFC3339, e.RenewAt)
	switch {
	case e.Issuer == "" || e.LastError != "":
		t.Errorf("anx certs --json: %s: issuer %q, last_error %q; want an issuer and no error", acmeName, e.Issuer, e.LastError)
	case err1 != nil || err2 != nil:
		t.Errorf("anx certs --json: %s: not_after %q, renew_at %q: want RFC 3339 (%v, %v)", acmeName, e.NotAfter, e.RenewAt, err1, err2)
	case !notAfter.Truncate(time.Second).Equal(leaf.NotAfter.Truncate(time.Second)):
		t.Errorf("anx certs --json: %s: not_after %v, the served leaf's %v", acmeName, notAfter, leaf.NotAfter)
	case renewAt.Before(leaf.NotBefore.Truncate(time.Second)) || renewAt.After(leaf.NotAfter):
		t.Errorf("anx certs --json: %s: renew_at %v outside the lifetime %v – %v", acmeName, renewAt, leaf.NotBefore, leaf.NotAfter)
	}
}

// waitLogLine waits up to timeout for a stderr line of s containing every
// one of parts, and returns it.
func waitLogLine(s *harness.Server, timeout time.Duration, parts ...string) (string, bool) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, l := range strings.Split(s.Stderr(), "\n") {
			if containsAll(l, parts) {
				return l, true
			}
		}
	}
	return "", false
}

// containsAll reports whether s contains every one of parts.
func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// serialHex returns a certificate's serial number in hex.
func serialHex(c *x509.Certificate) string { return c.SerialNumber.Text(16) }

// loop is a client that GETs a file over and over, each request on a new
// connection (h1, h2, h3 in turn), and records the serials it is served.
type loop struct {
	s    *harness.Server
	tc   *tls.Config
	want []byte
	done chan struct{}
	quit chan struct{}

	mu   sync.Mutex
	st   loopStats
	seen chan struct{} // signalled at each new serial
}

// loopStats is what a loop saw.
type loopStats struct {
	requests int
	failures []error
	serials  []string            // in the order first seen
	leaves   []*x509.Certificate // one per serial
}

// startLoop starts the client against s's https port with tc.
func startLoop(s *harness.Server, tc *tls.Config, want []byte) *loop {
	l := &loop{s: s, tc: tc, want: want, done: make(chan struct{}), quit: make(chan struct{}), seen: make(chan struct{}, 1)}
	go l.run()
	return l
}

// run requests until quit is closed.
func (l *loop) run() {
	defer close(l.done)
	for i := 0; ; i++ {
		select {
		case <-l.quit:
			return
		default:
		}
		leaf, err := l.once(harness.Protos[i%len(harness.Protos)])
		l.record(leaf, err)
		// The client's pace, not a synchronisation: a slower machine
		// makes fewer requests, and any number of them will do.
		time.Sleep(20 * time.Millisecond)
	}
}

// once makes one request over p on a new connection and returns the leaf.
func (l *loop) once(p harness.Proto) (*x509.Certificate, error) {
	c, closeConn := freshClient(p, l.s.HTTPS, l.tc)
	defer closeConn()
	url := "https://" + l.tc.ServerName + ":" + strconv.Itoa(l.s.HTTPSPort) + "/hello.txt"
	res, err := c.Get(url)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: body: %w", p, err)
	case res.StatusCode != http.StatusOK || string(body) != string(l.want):
		return nil, fmt.Errorf("%s: status %d, body %q", p, res.StatusCode, body)
	case res.TLS == nil || len(res.TLS.PeerCertificates) == 0:
		return nil, fmt.Errorf("%s: no TLS state", p)
	}
	return res.TLS.PeerCertificates[0], nil
}

// record counts one request's outcome.
func (l *loop) record(leaf *x509.Certificate, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.requests++
	if err != nil {
		l.st.failures = append(l.st.failures, err)
		return
	}
	if sn := serialHex(leaf); !slices.Contains(l.st.serials, sn) {
		l.st.serials = append(l.st.serials, sn)
		l.st.leaves = append(l.st.leaves, leaf)
		select {
		case l.seen <- struct{}{}:
		default:
		}
	}
}

// waitSerials waits until n distinct serials were served, or timeout.
func (l *loop) waitSerials(n int, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		got := len(l.st.serials)
		l.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-l.seen:
		case <-deadline:
			return false
		}
	}
}

// stop ends the loop and returns what it saw.
func (l *loop) stop() loopStats {
	close(l.quit)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st
}

// freshClient returns a client over p whose one connection goes to addr
// with tc, and the function that closes it.
func freshClient(p harness.Proto, addr string, tc *tls.Config) (*http.Client, func()) {
	var rt http.RoundTripper
	var closeRT func()
	switch p {
	case harness.H1:
		tr := &http.Transport{TLSClientConfig: tlsWith(tc, "http/1.1"), DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{Timeout: handshakeTimeout}).DialContext(ctx, network, addr)
			}}
		rt, closeRT = tr, tr.CloseIdleConnections
	case harness.H2:
		tr := &http2.Transport{TLSClientConfig: tlsWith(tc, "h2"),
			DialTLSContext: func(ctx context.Context, network, _ string, cfg *tls.Config) (net.Conn, error) {
				return (&tls.Dialer{NetDialer: &net.Dialer{Timeout: handshakeTimeout}, Config: cfg}).DialContext(ctx, network, addr)
			}}
		rt, closeRT = tr, tr.CloseIdleConnections
	default:
		tr := &http3.Transport{TLSClientConfig: tlsWith(tc, http3.NextProtoH3),
			QUICConfig: &quic.Config{HandshakeIdleTimeout: handshakeTimeout},
			Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
				return quic.DialAddr(ctx, addr, tc, qc)
			}}
		rt, closeRT = tr, func() { _ = tr.Close() }
	}
	return &http.Client{Transport: rt, Timeout: harness.RequestTimeout}, closeRT
}

// tlsWith returns a copy of tc offering alpn.
func tlsWith(tc *tls.Config, alpn string) *tls.Config {
	c := tc.Clone()
	c.NextProtos = []string{alpn}
	return c
}

// fallbackRuns bounds the anx runs of TestACMEChallengeFallback. acmez
// tries the challenge types in an order it shuffles once per process, so a
// run tries the broken type first with probability 1/2: 30 runs all
// trying the working one first happen once in a billion. A run that tries
// the working one first takes about a second.
const fallbackRuns = 30

// TestACMEChallengeFallback: with both challenges offered (no
// --acme-challenge), anx still gets its certificate when Pebble cannot
// reach one of them: HTTP-01 validations sent to a closed port, then
// TLS-ALPN-01 validations sent to a closed port. acmez picks the first
// type at random, so anx runs again (fresh data dir and account, same
// Pebble) until a run tried the broken type first (at most fallbackRuns):
// in that run, anx logs the failed validation of the broken type, Pebble
// sets the authorization invalid, and the certificate comes from a second
// order, solved by the other challenge. Every run must get the certificate.
func TestACMEChallengeFallback(t *testing.T) {
	t.Parallel()
	for _, broken := range []string{"http-01", "tls-alpn-01"} {
		t.Run("broken "+broken, func(t *testing.T) {
			t.Parallel()
			pl := harness.NewPlacement(t)
			opts := harness.PebbleOptions{HTTPPort: pl.HTTPPort, TLSPort: pl.HTTPSPort, Validity: issueValidity}
			if broken == "http-01" {
				opts.HTTPPort = harness.FreeTCPPort(t)
			} else {
				opts.TLSPort = harness.FreeTCPPort(t)
			}
			p := harness.StartPebble(t, opts)
			for run := 1; run <= fallbackRuns; run++ {
				pl.Data = filepath.Join(t.TempDir(), "data")
				if fallbackRun(t, p, pl, broken) {
					t.Logf("run %d tried %s first", run, broken)
					return
				}
			}
			t.Fatalf("in %d runs, anx never tried %s first (acmez shuffles the order: 1 chance in 2 each)", fallbackRuns, broken)
		})
	}
}

// failedChallengeLine returns a pattern of acmez's ERROR line for a failed
// validation of a.test by challenge, with the problem Pebble reported.
func failedChallengeLine(challenge string) string {
	return `level=ERROR msg="challenge failed" component=\S+ identifier=a\.test challenge_type=` + regexp.QuoteMeta(challenge) + ` problem=`
}

// fallbackRun runs anx on pl until it serves a.test from p, and stops it.
// It reports whether the run tried the broken challenge first; if so, it
// checks the fallback: the failed validation in anx's log, the invalid
// authorization in Pebble's and two orders, the second one issued.
func fallbackRun(t *testing.T, p *harness.Pebble, pl harness.Placement, broken string) bool {
	t.Helper()
	failed := regexp.MustCompile(failedChallengeLine(broken))
	orders, invalid := p.Orders(), p.InvalidAuthzs()
	args := []string{"--domain", acmeName, "--acme-ca", p.DirURL, "--acme-ca-root", p.APIRootPath, "--email", acmeEmail}
	start := time.Now()
	s := harness.StartAt(t, harness.Options{Args: args, ExpectedErrors: []string{
		failed.String(),
		// acmez then gives up the order, before it places the next one.
		`level=ERROR msg="validating authorization" component=\S+ identifier=a\.test problem=`,
	}}, pl)
	if _, ok := waitCert(t, s, acmeName, p.IssuingRoots().Pool, start.Add(fallbackLimit)); !ok {
		t.Fatalf("no certificate within %v with %s unreachable", fallbackLimit, broken)
	}
	took := time.Since(start).Round(time.Millisecond)
	if code, err := s.Stop(); err != nil || code != 0 {
		t.Errorf("anx stop: exit %d, %v", code, err)
	}
	if !failed.MatchString(s.Stderr()) {
		t.Logf("certificate after %v; this run tried the working challenge first", took)
		return false
	}
	t.Logf("certificate after %v with %s unreachable, tried first", took, broken)
	if n := p.InvalidAuthzs() - invalid; n != 1 {
		t.Errorf("Pebble set %d authorizations invalid in this run, want 1 (the broken %s)", n, broken)
	}
	if n := p.Orders() - orders; n != 2 {
		t.Errorf("Pebble got %d orders in this run, want 2: the one %s failed, then the one the other challenge solved", n, broken)
	}
	return true
}
