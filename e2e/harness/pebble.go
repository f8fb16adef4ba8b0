package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PebbleVersion is the Pebble release this file is written against; e2e/install-peers.sh
// installs it (pebble and pebble-challtestsrv) into <repo>/.tools/bin.
const PebbleVersion = "v2.10.1"

// PebbleReadyTimeout bounds the wait for Pebble's and its DNS server's listeners.
const PebbleReadyTimeout = SafetyNet

// Lines of Pebble's log that the helpers count.
const (
	pebbleOrderLine = "Added order "                   // wfe: a new order is in the db
	pebbleHTTPLine  = "Attempting to validate w/ HTTP" // va: an HTTP-01 validation starts
	// va: a challenge's validation failed, the authorization is invalid
	pebbleInvalidLine = " set INVALID by completed challenge "
)

// PebbleOptions say what Pebble validates against and what it issues.
type PebbleOptions struct {
	// HTTPPort is the port Pebble's VA connects to for HTTP-01 (anx's plain HTTP port).
	HTTPPort int
	// TLSPort is the port Pebble's VA connects to for TLS-ALPN-01 (anx's HTTPS port).
	TLSPort int
	// Validity is the lifetime of the certificates of the only profile,
	// "default" (whole seconds); 0 means Pebble's default (90 days).
	Validity time.Duration
}

// Pebble is a running Pebble ACME CA (strict mode off, default noise: 5% of
// good nonces rejected, 50% authz reuse within an account, no VA sleeps)
// with a pebble-challtestsrv that answers every A query with 127.0.0.1 (and
// AAAA with nothing) as its DNS server. Everything listens on 127.0.0.1.
type Pebble struct {
	DirURL      string // "https://127.0.0.1:<port>/dir", the ACME directory
	MgmtURL     string // "https://127.0.0.1:<port>", Pebble's management API
	APIRootPath string // PEM of the CA that signs the API's certificate (anx's --acme-ca-root)
	DNS         string // "127.0.0.1:<port>", the DNS server Pebble's VA asks
	Dir         string // Pebble's temporary directory (config, API key and certificates)

	t      testing.TB
	pebble *process
	dns    *process
	client *http.Client // trusts the API root
	roots  IssuingRoots
}

// IssuingRoots is what Pebble issues under in this run; it changes each
// start. anx serves Pebble's chain as is: the leaf, then Intermediate.
type IssuingRoots struct {
	PEM          []byte            // the root (/roots/0 on the management API)
	Pool         *x509.CertPool    // holding only the root
	Path         string            // PEM written to a file, for curl --cacert
	Root         *x509.Certificate // the root, parsed
	Intermediate *x509.Certificate // /intermediates/0, the issuer of every leaf
}

// StartPebble starts pebble-challtestsrv and pebble on free loopback ports,
// waits until the directory and the issuing root answer, and stops both (by
// pid: SIGTERM, then SIGKILL) in t.Cleanup, logging their output if the test
// failed. The binaries come from PATH, else <repo>/.tools/bin; like Peer, a
// missing one skips the test under -short and fails it otherwise.
func StartPebble(t testing.TB, o PebbleOptions) *Pebble {
	t.Helper()
	pebbleBin, dnsBin := Peer(t, "pebble"), Peer(t, "pebble-challtestsrv")
	p := &Pebble{Dir: t.TempDir(), t: t}
	if err := p.writeAPICerts(); err != nil {
		t.Fatalf("harness: pebble: %v", err)
	}
	var last error
	for range 3 {
		if last = p.start(pebbleBin, dnsBin, o); last == nil {
			return p
		}
		if p.pebble != nil || !strings.Contains(last.Error(), "in use") {
			break // running, or failed for another reason than its ports
		}
	}
	t.Fatalf("harness: pebble did not start: %v", last)
	return nil
}

// start runs both processes once on fresh ports and waits for them; once
// both run, they are stopped in t.Cleanup.
func (p *Pebble) start(pebbleBin, dnsBin string, o PebbleOptions) error {
	dns, err := p.startDNS(dnsBin)
	if err != nil {
		return err
	}
	pebble, err := p.startPebble(pebbleBin, o)
	if err != nil {
		dns.stop()
		return err
	}
	p.dns, p.pebble = dns, pebble
	p.t.Cleanup(p.stopAll)
	p.roots, err = p.fetchRoots()
	return err
}

// startDNS runs pebble-challtestsrv with only its DNS and management
// servers, on 127.0.0.1.
func (p *Pebble) startDNS(bin string) (*process, error) {
	p.DNS = loopback(FreePort(p.t))
	mgmt := loopback(FreeTCPPort(p.t))
	args := []string{"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-dnsserver", p.DNS,
		"-management", mgmt, "-doh", "", "-http01", "", "-https01", "", "-tlsalpn01", ""}
	proc, err := startProcess("pebble-challtestsrv", p.Dir, bin, pebbleEnv(), args...)
	if err != nil {
		return nil, err
	}
	err = waitUntil(proc, func() error { return dialAll(p.DNS, mgmt) })
	if err != nil {
		proc.stop()
		return nil, fmt.Errorf("pebble-challtestsrv: %w; output:\n%s", err, proc.output())
	}
	return proc, nil
}

// startPebble writes the config and runs pebble against the DNS server.
func (p *Pebble) startPebble(bin string, o PebbleOptions) (*process, error) {
	api, mgmt := loopback(FreeTCPPort(p.t)), loopback(FreeTCPPort(p.t))
	p.DirURL, p.MgmtURL = "https://"+api+"/dir", "https://"+mgmt
	cfg := filepath.Join(p.Dir, "pebble-config.json")
	if err := writePebbleConfig(cfg, p.Dir, api, mgmt, o); err != nil {
		return nil, err
	}
	args := []string{"-config", cfg, "-dnsserver", p.DNS, "-strict=false"}
	proc, err := startProcess("pebble", p.Dir, bin, pebbleEnv("PEBBLE_VA_NOSLEEP=1"), args...)
	if err != nil {
		return nil, err
	}
	err = waitUntil(proc, func() error {
		if _, err := p.get(p.DirURL); err != nil {
			return err
		}
		_, err := p.get(p.MgmtURL + "/roots/0")
		return err
	})
	if err != nil {
		proc.stop()
		return nil, fmt.Errorf("pebble: %w; output:\n%s", err, proc.output())
	}
	return proc, nil
}

// pebbleConfig is Pebble's JSON config file (cmd/pebble/main.go's config).
type pebbleConfig struct {
	Pebble struct {
		ListenAddress                  string                   `json:"listenAddress"`
		ManagementListenAddress        string                   `json:"managementListenAddress"`
		Certificate                    string                   `json:"certificate"`
		PrivateKey                     string                   `json:"privateKey"`
		HTTPPort                       int                      `json:"httpPort"`
		TLSPort                        int                      `json:"tlsPort"`
		OCSPResponderURL               string                   `json:"ocspResponderURL"`
		ExternalAccountBindingRequired bool                     `json:"externalAccountBindingRequired"`
		KeyAlgorithm                   string                   `json:"keyAlgorithm"`
		Profiles                       map[string]pebbleProfile `json:"profiles"`
	} `json:"pebble"`
}

// pebbleProfile is one entry of the config's profiles.
type pebbleProfile struct {
	Description    string `json:"description"`
	ValidityPeriod uint64 `json:"validityPeriod"` // seconds; 0: Pebble's default
}

// writePebbleConfig writes the config of a Pebble listening on api and
// mgmt. It declares exactly one profile: an order without a profile gets a
// random one of those declared, so a single one pins the validity.
func writePebbleConfig(path, dir, api, mgmt string, o PebbleOptions) error {
	var c pebbleConfig
	c.Pebble.ListenAddress, c.Pebble.ManagementListenAddress = api, mgmt
	c.Pebble.Certificate, c.Pebble.PrivateKey = filepath.Join(dir, "api.pem"), filepath.Join(dir, "api.key")
	c.Pebble.HTTPPort, c.Pebble.TLSPort = o.HTTPPort, o.TLSPort
	c.Pebble.KeyAlgorithm = "ecdsa" // of its roots and intermediates: quicker to start than RSA
	secs := uint64((o.Validity + time.Second - 1) / time.Second)
	c.Pebble.Profiles = map[string]pebbleProfile{
		"default": {Description: "pinned by the anx e2e harness", ValidityPeriod: secs},
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// pebbleEnv is the environment without any PEBBLE_ variable of the
// caller's (so that Pebble's defaults apply), plus extra.
func pebbleEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PEBBLE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// IssuingRoots returns the root Pebble issues under in this run (fetched
// from its management API at start, written to <Dir>/issuing-root.pem) and
// its intermediate.
func (p *Pebble) IssuingRoots() IssuingRoots { return p.roots }

// fetchRoots gets /roots/0 and /intermediates/0 and writes the root's PEM.
func (p *Pebble) fetchRoots() (IssuingRoots, error) {
	var r IssuingRoots
	var err error
	if r.PEM, err = p.get(p.MgmtURL + "/roots/0"); err != nil {
		return r, err
	}
	if r.Root, err = parsePEMCert(r.PEM); err != nil {
		return r, fmt.Errorf("pebble /roots/0: %w", err)
	}
	im, err := p.get(p.MgmtURL + "/intermediates/0")
	if err != nil {
		return r, err
	}
	if r.Intermediate, err = parsePEMCert(im); err != nil {
		return r, fmt.Errorf("pebble /intermediates/0: %w", err)
	}
	r.Pool = x509.NewCertPool()
	r.Pool.AddCert(r.Root)
	r.Path = filepath.Join(p.Dir, "issuing-root.pem")
	return r, os.WriteFile(r.Path, r.PEM, 0o644)
}

// get fetches url from Pebble's API or management API, wanting 200.
func (p *Pebble) get(url string) ([]byte, error) {
	res, err := p.client.Get(url)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: status %d", url, res.StatusCode)
	}
	return b, err
}

// Log returns what Pebble wrote so far (it logs each request it handles).
func (p *Pebble) Log() string { return p.pebble.output() }

// Orders returns how many orders Pebble has created so far.
func (p *Pebble) Orders() int { return strings.Count(p.Log(), pebbleOrderLine) }

// HTTPValidations returns how many HTTP-01 validation requests Pebble has
// made so far (several per challenge: one per simulated vantage point). Pebble
// logs no such line for TLS-ALPN-01: a run that got a certificate on one order
// with no HTTP-01 request solved TLS-ALPN-01.
func (p *Pebble) HTTPValidations() int { return strings.Count(p.Log(), pebbleHTTPLine) }

// InvalidAuthzs returns how many authorizations Pebble has set invalid so
// far, each after a failed validation of one of its challenges.
func (p *Pebble) InvalidAuthzs() int { return strings.Count(p.Log(), pebbleInvalidLine) }

// stopAll stops both processes and logs their output if the test failed.
func (p *Pebble) stopAll() {
	for _, proc := range []*process{p.pebble, p.dns} {
		proc.stop()
		if p.t.Failed() {
			p.t.Logf("%s output (pid %d):\n%s", proc.name, proc.pid(), tailString(proc.output(), 32<<10))
		}
	}
}

// writeAPICerts makes a CA and a leaf for 127.0.0.1, ::1 and localhost
// signed by it: api.pem and api.key serve Pebble's API, api-root.pem is
// APIRootPath. It also sets up the client that trusts the CA.
func (p *Pebble) writeAPICerts() error {
	ca, err := newTestCA("anx e2e Pebble API root")
	if err != nil {
		return err
	}
	leafPEM, keyPEM, err := ca.issueLoopback()
	if err != nil {
		return err
	}
	p.APIRootPath = filepath.Join(p.Dir, "api-root.pem")
	files := map[string][]byte{"api.pem": leafPEM, "api.key": keyPEM, "api-root.pem": ca.pem}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(p.Dir, name), b, 0o600); err != nil {
			return err
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	p.client = &http.Client{
		Timeout:   SafetyNet,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true},
	}
	return nil
}

// WriteRoot writes to path the PEM of a fresh self-signed ECDSA root that
// signs nothing anyone serves: a wrong trust root, for tests.
func WriteRoot(t testing.TB, path string) {
	t.Helper()
	ca, err := newTestCA("anx e2e unrelated root")
	if err != nil {
		t.Fatal(err)
	}
	WriteFile(t, path, ca.pem)
}

// testCA is a throwaway ECDSA CA.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// newTestCA makes a self-signed CA valid for a day.
func newTestCA(cn string) (*testCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &testCA{cert: cert, key: key, pem: pemBlock("CERTIFICATE", der)}, nil
}

// issueLoopback returns the PEM of a server leaf for 127.0.0.1, ::1 and
// localhost, and of its key.
func (ca *testCA) issueLoopback() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", kder), nil
}

// randSerial returns a random 128-bit serial number.
func randSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

// pemBlock encodes der as one PEM block of type typ.
func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// parsePEMCert parses the first certificate of a PEM text.
func parsePEMCert(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// dialAll returns nil once every addr accepts a TCP connection.
func dialAll(addrs ...string) error {
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			return err
		}
		c.Close()
	}
	return nil
}

// waitUntil calls ready every 50ms until it returns nil, the process
// exits or reports an address in use (its listeners start in the
// background: pebble-challtestsrv only logs such a failure), or
// PebbleReadyTimeout passes.
func waitUntil(proc *process, ready func() error) error {
	deadline := time.Now().Add(PebbleReadyTimeout)
	for {
		err := ready()
		switch {
		case strings.Contains(proc.output(), "address already in use"):
			return errors.New("address already in use")
		case err == nil:
			return nil
		case proc.exited():
			return fmt.Errorf("exited before ready (last: %v)", err)
		case time.Now().After(deadline):
			return fmt.Errorf("not ready within %v (last: %v)", PebbleReadyTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// process is a helper program started by the harness and stopped by pid.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when it has exited
	once sync.Once
}

// startProcess starts bin in dir with env and args, stdout and stderr
// both captured.
func startProcess(name, dir, bin string, env []string, args ...string) (*process, error) {
	p := &process{name: name, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir, p.cmd.Env = dir, env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid returns the process id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// output returns stdout and stderr so far, interleaved.
func (p *process) output() string { return p.out.String() }

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM by pid, waits 5s, then SIGKILLs and waits for the
// exit. Later calls do nothing.
func (p *process) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			return
		case <-time.After(5 * time.Second):
		}
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
	})
}

// syncBuffer is an io.Writer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends b.
func (s *syncBuffer) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(b)
}

// String returns everything written so far.
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tailString returns the last n bytes of s.
func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
