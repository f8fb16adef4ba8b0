package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anx-gateway/anx/e2e/harness"
)

// On-demand names: the site serves *.example.test; the ask endpoint of a
// test allows onDemandOK only.
const (
	onDemandHosts = "*.example.test"
	onDemandOK    = "ok.example.test"
	onDemandNo    = "no.example.test"
	// askTimeout is the config's ask_timeout.
	askTimeout = time.Second
	// askSlow is how long the slow ask endpoint sleeps before allowing:
	// longer than any test, so a handshake that waited for its answer
	// would hang until the safety net.
	askSlow = 10 * time.Minute
	// firstHandshakeLimit bounds the handshake that waits for an issuance:
	// a safety net, sized for a -race anx on a busy 2-core machine.
	firstHandshakeLimit = 2 * time.Minute
	// refuseLimit bounds a refused handshake: a safety net against a hang.
	refuseLimit = time.Minute
)

// TestACMEOnDemand: a site with hosts = ["*.example.test"] and on_demand =
// true, Pebble as its ACME CA, and an ask endpoint of the test's. A name the
// endpoint allows gets a certificate at its first handshake; a refused one
// gets none and a TLS alert; an endpoint that is down (a closed port)
// refuses too, and one that never answers refuses once ask_timeout has
// passed, not before, and never hangs the handshake. Pebble gets an order
// only for the allowed name.
func TestACMEOnDemand(t *testing.T) {
	t.Parallel()
	t.Run("allowed", func(t *testing.T) {
		t.Parallel()
		ask := startAsk(t, 0)
		p, s := startOnDemand(t, ask.URL+"/ask")
		start := time.Now()
		c, err := dialName(s.HTTPS, onDemandOK, p.IssuingRoots().Pool, firstHandshakeLimit)
		if err != nil {
			t.Fatalf("first handshake for %s (after %v): %v\nanx stderr:\n%s", onDemandOK, time.Since(start), err, tail(s.Stderr(), 4000))
		}
		st := c.ConnectionState()
		c.Close()
		t.Logf("first handshake for %s took %v", onDemandOK, time.Since(start).Round(time.Millisecond))
		if names := st.PeerCertificates[0].DNSNames; !slices.Equal(names, []string{onDemandOK}) {
			t.Errorf("leaf names %q, want [%s]", names, onDemandOK)
		}
		checkAsked(t, ask, onDemandOK)
		again, ok := waitCert(t, s, onDemandOK, p.IssuingRoots().Pool, time.Now().Add(refuseLimit))
		if ok && serialHex(again.PeerCertificates[0]) != serialHex(st.PeerCertificates[0]) {
			t.Errorf("the second handshake got another certificate")
		}
		if n := p.Orders(); n != 1 {
			t.Errorf("Pebble got %d orders, want 1", n)
		}
	})
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		ask := startAsk(t, 0)
		p, s := startOnDemand(t, ask.URL+"/ask")
		for range 2 {
			checkHandshakeRefused(t, s, p, onDemandNo, 0)
		}
		checkAsked(t, ask, onDemandNo)
	})
	t.Run("ask-down", func(t *testing.T) {
		t.Parallel()
		closed := "http://127.0.0.1:" + strconv.Itoa(harness.FreeTCPPort(t)) + "/ask"
		p, s := startOnDemand(t, closed)
		checkHandshakeRefused(t, s, p, onDemandOK, 0)
	})
	t.Run("ask-slow", func(t *testing.T) {
		t.Parallel()
		ask := startAsk(t, askSlow)
		p, s := startOnDemand(t, ask.URL+"/ask")
		checkHandshakeRefused(t, s, p, onDemandOK, askTimeout)
		checkAsked(t, ask, onDemandOK)
	})
}

// startOnDemand starts Pebble and anx with the on-demand site asking askURL.
func startOnDemand(t *testing.T, askURL string) (*harness.Pebble, *harness.Server) {
	t.Helper()
	pl := harness.NewPlacement(t)
	p := harness.StartPebble(t, harness.PebbleOptions{HTTPPort: pl.HTTPPort, TLSPort: pl.HTTPSPort, Validity: issueValidity})
	onDemand := fmt.Sprintf("[on_demand]\nask = %q\nask_timeout = %q\nrate = 10\nrate_interval = \"1m\"", askURL, askTimeout)
	conf := acmeConfig{CA: p.DirURL, CARoot: p.APIRootPath, Hosts: []string{onDemandHosts},
		Tables: []string{onDemand}, Site: []string{"on_demand = true"}}.TOML()
	return p, harness.StartAt(t, harness.Options{Config: conf}, pl)
}

// checkHandshakeRefused fails t unless a handshake for name fails with a TLS
// alert, not before atLeast and within the safety net refuseLimit, and
// Pebble got no order.
func checkHandshakeRefused(t *testing.T, s *harness.Server, p *harness.Pebble, name string, atLeast time.Duration) {
	t.Helper()
	start := time.Now()
	c, err := dialName(s.HTTPS, name, p.IssuingRoots().Pool, refuseLimit)
	took := time.Since(start)
	switch {
	case err == nil:
		leaf := c.ConnectionState().PeerCertificates[0]
		c.Close()
		t.Errorf("handshake for %s succeeded (leaf %q), want it refused", name, leaf.DNSNames)
	case !strings.Contains(err.Error(), "remote error: tls: "):
		t.Errorf("handshake for %s failed after %v with %v, want a TLS alert from anx", name, took, err)
	case took < atLeast:
		t.Errorf("refused handshake for %s after %v, want at least %v (ask_timeout)", name, took, atLeast)
	default:
		t.Logf("handshake for %s refused after %v: %v", name, took.Round(time.Millisecond), err)
	}
	if n := p.Orders(); n != 0 {
		t.Errorf("Pebble got %d orders, want none for a refused name", n)
	}
}

// askServer is a test's on-demand ask endpoint: 200 for onDemandOK, 403
// for any other name, after sleeping delay (or until the request is
// cancelled); it records every name asked.
type askServer struct {
	*httptest.Server
	delay time.Duration
	mu    sync.Mutex
	asked []string
}

// startAsk starts an ask endpoint on 127.0.0.1, closed in t.Cleanup.
func startAsk(t *testing.T, delay time.Duration) *askServer {
	a := &askServer{delay: delay}
	a.Server = httptest.NewServer(a)
	t.Cleanup(a.Close)
	return a
}

// ServeHTTP answers one ?domain= question.
func (a *askServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("domain")
	a.mu.Lock()
	a.asked = append(a.asked, name)
	a.mu.Unlock()
	select {
	case <-time.After(a.delay):
	case <-r.Context().Done():
		return
	}
	if r.URL.Path != "/ask" || name != onDemandOK {
		http.Error(w, "not allowed", http.StatusForbidden)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// checkAsked fails t unless name was asked about.
func checkAsked(t *testing.T, a *askServer, name string) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if !slices.Contains(a.asked, name) {
		t.Errorf("the ask endpoint was asked about %q, want %s among them", a.asked, name)
	}
}
