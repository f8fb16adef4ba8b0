// Package accesslog is anx's access log: a message.Observer that writes one
// line per request, as JSON or in nginx's combined format, to each site's
// destination. Lines are formatted on the caller's goroutine (often an
// event loop) into a reused buffer, without allocating, and handed to a
// Writer, whose own goroutine writes them: a slow or full disk costs
// dropped lines, counted and reported, never a stalled loop.
package accesslog

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/pool"
	"github.com/anx-gateway/anx/core/route"
)

// Site is where and how the requests of a site are logged.
type Site struct {
	// Out is the destination; nil logs nothing ("off").
	Out *Writer
	// Format is the lines' format.
	Format Format
	// Name is the site's name, logged for a request that no route of
	// it served (found by Config.Hosts); a routed request logs its
	// RouteInfo's.
	Name string
}

// Config says which Site each request is logged to.
type Config struct {
	// Routes maps each route to its site's log. A route that is not in it
	// logs nothing.
	Routes map[*message.RouteInfo]Site
	// Hosts maps host names and wildcards to the Site that logs the
	// requests for them that no route served (a redirect to HTTPS, a
	// refusal of the front end).
	Hosts route.Hosts[Site]
	// Unrouted logs the requests that no route served and no host of
	// Hosts names (421).
	Unrouted Site
	// TrustedProxies lists the peers whose X-Forwarded-For names the
	// client and whose X-Request-ID is taken as the request's id.
	TrustedProxies []netip.Prefix
}

// Logger is the access log's Observer. Its config can be replaced while it
// observes (a reload).
type Logger struct {
	cfg   atomic.Pointer[Config]
	clock clockText
}

// New makes a Logger with cfg, which it keeps: the caller must not change
// it after.
func New(cfg *Config) *Logger {
	l := &Logger{}
	l.Set(cfg)
	return l
}

// Set makes cfg the config from the next request on; it keeps cfg.
func (l *Logger) Set(cfg *Config) { l.cfg.Store(cfg) }

// Config returns the config in use; the caller must not change it.
func (l *Logger) Config() *Config { return l.cfg.Load() }

// lineBytes is the buffer a line is formatted into; a longer line grows
// it (and then allocates).
const lineBytes = 4 << 10

// Observe implements message.Observer: it formats r's line and queues it
// on its site's Writer. When the request has no id yet it takes a trusted
// proxy's X-Request-ID, or makes one, and sets it in r's Trace.
func (l *Logger) Observe(r *message.Request, o *message.Outcome) {
	cfg := l.cfg.Load()
	var site Site
	if r.Trace.Route != nil {
		site = cfg.Routes[r.Trace.Route]
	} else {
		site = cfg.siteOfHost(r.Host)
	}
	if site.Out == nil {
		return
	}
	e := newEntry(r, o, cfg.TrustedProxies, site.Format, &l.clock)
	if r.Trace.Route == nil {
		e.site = site.Name
	}
	// Formatted apart, then copied in under the Writer's lock: formatting
	// under it made the event loops wait for each other (in make bench,
	// h1 over TLS lost 15% to logging so, 0 to 2% this way).
	buf := pool.Get(lineBytes)
	line := appendLine((*buf)[:0], site.Format, &e)
	site.Out.Append(line)
	if cap(line) == cap(*buf) {
		pool.Put(buf)
	}
}

// siteOfHost returns the Site of the host an authority names, else
// Unrouted. It allocates nothing.
func (c *Config) siteOfHost(authority string) Site {
	if s, ok := c.Hosts.Lookup(authority); ok {
		return s
	}
	return c.Unrouted
}

// newEntry gathers what the line of r in format f says.
func newEntry(r *message.Request, o *message.Outcome, trusted []netip.Prefix, f Format, clock *clockText) entry {
	e := entry{r: r, o: o, when: o.End, proto: protoName(r), tls: tlsName(r.TLSVersion)}
	e.remote = message.ClientAddr(r, trusted)
	e.id = requestID(r, message.IsTrusted(r.RemoteAddr.Addr().Unmap(), trusted))
	if e.when.IsZero() {
		e.when = time.Now()
	}
	e.second = clock.second(e.when)
	if !o.Start.IsZero() {
		e.elapsed = e.when.Sub(o.Start)
	}
	if rt := r.Trace.Route; rt != nil {
		e.site, e.route = rt.Site, rt.Path
	}
	if f == Combined {
		e.referer, e.userAgent = r.Header.Get("Referer"), r.Header.Get("User-Agent")
	}
	return e
}

// requestID returns r's id: the one it has, else the X-Request-ID field
// when the peer is a trusted proxy, else a new one. It sets it in r.
func requestID(r *message.Request, fromTrustedProxy bool) string {
	if r.Trace.ID != "" {
		return r.Trace.ID
	}
	if fromTrustedProxy {
		if id := r.Header.Get("X-Request-ID"); id != "" {
			r.Trace.ID = id
			return id
		}
	}
	return r.Trace.MakeID()
}
