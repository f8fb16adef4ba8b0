package harness

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStartPebble: Pebble comes up on loopback with the pinned profile, its
// directory answers over the harness's API root, the issuing root and
// intermediate chain up, and every listener is on 127.0.0.1.
func TestStartPebble(t *testing.T) {
	t.Parallel()
	p := StartPebble(t, PebbleOptions{HTTPPort: FreeTCPPort(t), TLSPort: FreePort(t), Validity: time.Hour})
	dir := pebbleDirectory(t, p)
	for _, key := range []string{"newNonce", "newAccount", "newOrder", "renewalInfo"} {
		if _, ok := dir[key]; !ok {
			t.Errorf("directory has no %q: %v", key, dir)
		}
	}
	var meta struct {
		Profiles map[string]string `json:"profiles"`
	}
	if err := json.Unmarshal(dir["meta"], &meta); err != nil || len(meta.Profiles) != 1 || meta.Profiles["default"] == "" {
		t.Errorf("directory meta.profiles = %v (%v), want only \"default\"", meta.Profiles, err)
	}
	r := p.IssuingRoots()
	if _, err := r.Intermediate.Verify(x509.VerifyOptions{Roots: r.Pool}); err != nil {
		t.Errorf("intermediate does not chain to the issuing root: %v", err)
	}
	if b, err := os.ReadFile(r.Path); err != nil || string(b) != string(r.PEM) {
		t.Errorf("issuing root file %s: %v", r.Path, err)
	}
	for _, want := range []string{
		"Configured to reject 5% of good nonces",                                    // Pebble's default noise
		`Loaded profile "default" with certificate validity period of 3600 seconds`, // pinned
		"Disabling random VA sleeps",                                                // PEBBLE_VA_NOSLEEP
	} {
		if !strings.Contains(p.Log(), want) {
			t.Errorf("Pebble's log lacks %q:\n%s", want, p.Log())
		}
	}
	if p.Orders() != 0 || p.HTTPValidations() != 0 {
		t.Errorf("a fresh Pebble counts %d orders, %d HTTP validations", p.Orders(), p.HTTPValidations())
	}
	u, err := url.Parse(p.DirURL)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("::1", u.Port()), time.Second); err == nil {
		c.Close()
		t.Errorf("Pebble's API answers on ::1 too; want 127.0.0.1 only")
	}
}

// TestStartPebbleWrongRoot: a root from WriteRoot does not verify Pebble's API.
func TestStartPebbleWrongRoot(t *testing.T) {
	t.Parallel()
	p := StartPebble(t, PebbleOptions{HTTPPort: FreeTCPPort(t), TLSPort: FreePort(t)})
	path := filepath.Join(t.TempDir(), "wrong.pem")
	WriteRoot(t, path)
	pem, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if res, err := c.Get(p.DirURL); err == nil {
		res.Body.Close()
		t.Errorf("GET %s trusting an unrelated root: status %d, want a certificate error", p.DirURL, res.StatusCode)
	}
}

// pebbleDirectory fetches and decodes the ACME directory.
func pebbleDirectory(t *testing.T, p *Pebble) map[string]json.RawMessage {
	t.Helper()
	b, err := p.get(p.DirURL)
	if err != nil {
		t.Fatal(err)
	}
	var dir map[string]json.RawMessage
	if err := json.Unmarshal(b, &dir); err != nil {
		t.Fatalf("directory %s: %v", b, err)
	}
	return dir
}
