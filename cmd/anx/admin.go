package main

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anx-gateway/anx/certs"
	"github.com/anx-gateway/anx/cmd/anx/internal/admin"
	"github.com/anx-gateway/anx/core/proxy"
	"github.com/anx-gateway/anx/tls/onloop"
)

// adminState is the admin listener of a gateway and what it reads: the
// request counters (an Observer of every exchange) and the proxy routes
// of the config being served. Nil when the config has no admin address.
type adminState struct {
	requests *admin.Requests
	server   *admin.Server
	// proxies are the proxy handlers under the live tables: written on
	// the main goroutine at each (re)load, read by the admin's.
	proxies atomic.Pointer[[]*proxy.Handler]
	// limiters are the rate limiters of the routes under the live
	// tables (ratelimit.go), written and read as proxies is.
	limiters atomic.Pointer[[]routeLimiter]
	certs    certCache
}

// openAdmin opens the admin listener, when the config has one, and adds
// its request counters to the observers; call it before buildServers.
func (gw *gateway) openAdmin() error {
	if gw.cfg.Admin.Addr == "" {
		return nil
	}
	a := &adminState{requests: admin.NewRequests()}
	a.server = &admin.Server{Requests: a.requests, Sources: gw.adminSources(a), Logger: gw.log}
	if err := a.server.Listen(gw.cfg.Admin.Addr); err != nil {
		return listenError("admin", gw.cfg.Admin.Addr, err)
	}
	gw.admin = a
	gw.observers = append(gw.observers, a.requests)
	return nil
}

// adminRoutes tells the admin listener the routes and proxy handlers
// served from now on (at start and at each reload).
func (gw *gateway) adminRoutes(h *handlers) {
	if gw.admin == nil {
		return
	}
	gw.admin.requests.SetRoutes(h.routes)
	proxies := slices.Clone(h.proxies)
	gw.admin.proxies.Store(&proxies)
	gw.admin.limiters.Store(routeLimiters(h))
}

// startAdmin serves the admin listener, when there is one.
func (gw *gateway) startAdmin() error {
	if gw.admin == nil {
		return nil
	}
	if err := gw.admin.server.Start(); err != nil {
		return err
	}
	gw.log.Info("admin listener: metrics at /metrics, status page at /", "addr", gw.admin.server.Addr().String())
	return nil
}

// shutdownAdmin stops the admin listener, when there is one.
func (gw *gateway) shutdownAdmin(ctx context.Context) error {
	if gw.admin == nil {
		return nil
	}
	return gw.admin.server.Shutdown(ctx)
}

// adminSources are where the admin listener reads the gateway's figures.
func (gw *gateway) adminSources(a *adminState) admin.Sources {
	return admin.Sources{
		Connections:  gw.connectionCounts,
		Handshakes:   gw.handshakeCounts,
		Certificates: func() []admin.Certificate { return a.certs.get(gw) },
		Upstreams:    a.upstreams,
		Loops:        gw.loopCounts,
		Refused:      func() map[string]uint64 { return gw.conns.refused() }, // gw.conns is set after openAdmin
		RateLimits:   a.rateLimits,
	}
}

// connectionCounts adds up the open connections of both TCP ports by
// protocol, and HTTP/3's.
func (gw *gateway) connectionCounts() []admin.Connections {
	secure, plain := gw.h1TLS.ConnStats(), gw.h1Plain.ConnStats()
	return []admin.Connections{
		{Proto: "tls", State: "handshake", Open: secure.Choosing},
		{Proto: "plain", State: "handshake", Open: plain.Choosing},
		{Proto: "h1", State: "open", Open: secure.HTTP1 + plain.HTTP1},
		{Proto: "h2", State: "open", Open: secure.HTTP2 + plain.HTTP2},
		{Proto: "h3", State: "open", Open: gw.h3.Conns()},
	}
}

// handshakeCounts reads the TLS handshakes of the HTTPS port.
func (gw *gateway) handshakeCounts() admin.Handshakes {
	st := gw.h1TLS.ConnStats()
	h := admin.Handshakes{Completed: st.Handshakes, Failed: map[string]uint64{}}
	for i, n := range st.Failed {
		h.Failed[onloop.FailureReasons[i]] = n
	}
	return h
}

// loopCounts reads the event loops of both TCP ports.
func (gw *gateway) loopCounts() []admin.Loop {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var out []admin.Loop
	for _, st := range gw.h1TLS.LoopStats(ctx) {
		out = append(out, admin.Loop{Listener: "https", Index: st.Index, Wakeups: st.Wakeups, Conns: int64(st.Conns), Queued: st.Queued})
	}
	for _, st := range gw.h1Plain.LoopStats(ctx) {
		out = append(out, admin.Loop{Listener: "http", Index: st.Index, Wakeups: st.Wakeups, Conns: int64(st.Conns), Queued: st.Queued})
	}
	return out
}

// upstreams reads the upstreams of every proxy route being served.
func (a *adminState) upstreams() []admin.Upstream {
	p := a.proxies.Load()
	if p == nil {
		return nil
	}
	var out []admin.Upstream
	for _, h := range *p {
		for _, u := range h.Stats() {
			out = append(out, admin.Upstream{Route: h.Name(), URL: u.URL, Up: u.Up, Requests: u.Requests,
				Failures: u.Failures, Retries: u.Retries, InFlight: u.InFlight, Pooled: u.Pooled, Breaker: u.Breaker})
		}
	}
	return out
}

// certCache keeps the list of stored certificates for a few seconds:
// reading it reads every certificate file, and Prometheus may scrape
// every second.
type certCache struct {
	mu   sync.Mutex // guards the fields below; held by the admin's goroutines
	at   time.Time
	list []admin.Certificate
}

// certCacheFor is how long a list of certificates is reused.
const certCacheFor = 10 * time.Second

// get returns the certificates, read again when the list is old.
func (c *certCache) get(gw *gateway) []admin.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) < certCacheFor {
		return c.list
	}
	list, err := gw.certs.Certificates()
	if err != nil {
		gw.log.Warn("admin: cannot list the certificates", "error", err.Error())
		return c.list
	}
	c.list, c.at = certificates(list), time.Now()
	return c.list
}

// certificates turns the stored certificates into one entry per name
// and issuer: the one that expires last (a renewed certificate and the
// one it replaced may both be stored).
func certificates(list []certs.Status) []admin.Certificate {
	type key struct{ name, issuer string }
	at := map[key]int{}
	var out []admin.Certificate
	for _, s := range list {
		for _, name := range s.Names {
			c := admin.Certificate{Name: name, Issuer: s.Issuer, NotAfter: s.NotAfter, LastError: s.LastError}
			k := key{name, s.Issuer}
			if i, seen := at[k]; seen {
				if c.NotAfter.After(out[i].NotAfter) {
					out[i] = c
				}
				continue
			}
			at[k] = len(out)
			out = append(out, c)
		}
	}
	return out
}

// closeAdmin closes the admin listener at once, if there is one.
func (gw *gateway) closeAdmin() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = gw.shutdownAdmin(ctx)
}
