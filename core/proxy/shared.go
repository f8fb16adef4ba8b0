package proxy

import (
	"sync"
)

// Transports holds the upstream transports, and so the pooled
// connections, of every route of a gateway. Routes that name the same
// upstream with the same connection options share one transport; a route
// built for a reload with the same Transports keeps using the connections
// of the upstreams that remain. Its zero value is not usable: call
// NewTransports. It is safe for concurrent use.
type Transports struct {
	mu       sync.Mutex
	entries  []*sharedTransport
	breakers kept[routeUpstream, *breaker] // by route name and upstream URL (breaker.go)
	stales   kept[string, *staleCache]     // by route name (degrade.go)
}

// sharedTransport is one transport and how many handlers use it.
type sharedTransport struct {
	url   string
	opts  transportOptions
	tr    transport
	users int
}

// NewTransports returns an empty set of transports.
func NewTransports() *Transports { return &Transports{} }

// acquire returns the transport for url with opts, building it if no
// handler holds one.
func (s *Transports) acquire(url string, t Target, opts *transportOptions) transport {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		if e.url == url && e.opts.equal(opts) {
			e.users++
			return e.tr
		}
	}
	e := &sharedTransport{url: url, opts: *opts, tr: newTransport(t, opts), users: 1}
	s.entries = append(s.entries, e)
	return e.tr
}

// release gives back a transport; when its last handler gives it back,
// its idle connections are closed (requests still in flight finish).
func (s *Transports) release(tr transport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range s.entries {
		if e.tr != tr {
			continue
		}
		if e.users--; e.users == 0 {
			s.entries = append(s.entries[:i], s.entries[i+1:]...)
			tr.closeIdle()
		}
		return
	}
}

// newTransport builds the transport for an upstream's scheme.
func newTransport(t Target, o *transportOptions) transport {
	switch t.Scheme {
	case "https":
		return newHTTPSTransport(t, o)
	case "h2c":
		return newH2CTransport(t, o)
	}
	return newH1Transport(t, o)
}
