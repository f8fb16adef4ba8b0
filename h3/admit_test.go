package h3

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/anx-gateway/anx/core/message"
)

// oneEach is an Admitter that takes one connection per address and
// checks that every Release matches an Admit.
type oneEach struct {
	t        *testing.T
	mu       sync.Mutex
	open     map[netip.Addr]bool // guarded by mu
	refused  int                 // guarded by mu
	released chan netip.Addr
}

func (o *oneEach) Admit(a netip.Addr) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.open[a] {
		o.refused++
		return false
	}
	o.open[a] = true
	return true
}

func (o *oneEach) Release(a netip.Addr) {
	o.mu.Lock()
	if !o.open[a] {
		o.t.Errorf("Release(%v) with no connection admitted", a)
	}
	delete(o.open, a)
	o.mu.Unlock()
	o.released <- a
}

// TestAdmitterRefusesBeforeHandshake: a connection over the Admitter's
// limit is refused with CONNECTION_REFUSED (the client fails at once,
// with no handshake), the handler never sees it, and the admitted one is
// released when it closes, which makes room for the next.
func TestAdmitterRefusesBeforeHandshake(t *testing.T) {
	adm := &oneEach{t: t, open: map[netip.Addr]bool{}, released: make(chan netip.Addr, 4)}
	var served atomic.Int64
	var last atomic.Pointer[message.Request]
	h := hello(&last)
	ts := start(t, &Server{Admitter: adm, Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		served.Add(1)
		h(w, r)
	})})
	first := ts.client(t)
	get(t, first, "GET", ts.url("/"))

	ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
	defer cancel()
	_, err := quic.DialAddr(ctx, ts.addr, ts.tlsConfig(), &quic.Config{})
	var te *quic.TransportError
	if !errors.As(err, &te) || te.ErrorCode != quic.ConnectionRefused {
		t.Fatalf("second connection from the same address: %v, want CONNECTION_REFUSED", err)
	}
	if n := served.Load(); n != 1 {
		t.Errorf("handler served %d requests, want 1", n)
	}

	first.Transport.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	if a := recv(t, adm.released); a != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("released %v, want 127.0.0.1", a)
	}
	if resp, _ := get(t, ts.client(t), "GET", ts.url("/")); resp.StatusCode != http.StatusOK {
		t.Errorf("after the release: status %d", resp.StatusCode)
	}
	adm.mu.Lock()
	defer adm.mu.Unlock()
	// Each Initial packet of the refused attempt is asked about: a
	// ClientHello with a post-quantum key share spans two.
	if adm.refused < 1 || adm.refused > 2 {
		t.Errorf("refused %d times, want 1 or 2 (one per Initial packet)", adm.refused)
	}
}

// recv returns what ch gives, failing the test after hangTimeout.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hangTimeout):
		t.Fatalf("nothing received in %v", hangTimeout)
	}
	panic("unreachable")
}
