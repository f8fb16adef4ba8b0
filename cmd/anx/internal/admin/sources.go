package admin

import "time"

// Sources are where the collector reads what the gateway's packages
// count. Each is called at scrape time (and by the status page), from the
// admin listener's goroutines, and must be safe for that; a nil one is
// left out.
type Sources struct {
	Connections  func() []Connections
	Handshakes   func() Handshakes
	Certificates func() []Certificate
	Upstreams    func() []Upstream
	Loops        func() []Loop
	// Refused counts the client connections refused by a connection
	// limit, by the config key that refused them.
	Refused func() map[string]uint64
	// RateLimits are the routes' rate limiters.
	RateLimits func() []RateLimit
}

// RateLimit is the rate limiter of one route.
type RateLimit struct {
	Site    string `json:"site"`
	Route   string `json:"route"`
	Limited uint64 `json:"limited"` // requests refused with 429
	Delayed uint64 `json:"delayed"` // requests delayed within the burst
	Keys    int    `json:"keys"`    // keys tracked now
}

// Connections counts the open connections of one protocol in one state.
type Connections struct {
	// Proto is "h1", "h2" or "h3", or "tls" and "plain" for a connection
	// whose protocol is not chosen yet.
	Proto string `json:"proto"`
	// State is "handshake" (TLS, or the wait for the bytes that choose
	// the protocol) or "open".
	State string `json:"state"`
	Open  int64  `json:"open"`
}

// Handshakes counts the TLS handshakes that ended.
type Handshakes struct {
	// Completed counts those that succeeded.
	Completed uint64 `json:"completed"`
	// Failed counts those that failed, by reason ("timeout", "eof",
	// "no_certificate", "protocol_version", "bad_record", "other").
	Failed map[string]uint64 `json:"failed"`
}

// Certificate is one managed certificate.
type Certificate struct {
	// Name is the name it is for (a DNS name, a wildcard or an IP).
	Name string `json:"name"`
	// Issuer says who issued it ("internal", or the ACME CA's name).
	Issuer string `json:"issuer"`
	// NotAfter is when it expires; zero when none is held yet.
	NotAfter time.Time `json:"not_after"`
	// LastError is why its last obtain or renewal failed; empty when it
	// did not.
	LastError string `json:"last_error"`
}

// Upstream is one upstream of one proxy route.
type Upstream struct {
	Route    string `json:"route"`             // the route's name: its site and path
	URL      string `json:"url"`               // the upstream as configured
	Up       bool   `json:"up"`                // requests may go to it (health checks and passive health)
	Requests uint64 `json:"requests"`          // attempts sent to it, retries included
	Failures uint64 `json:"failures"`          // attempts that failed (no response)
	Retries  uint64 `json:"retries"`           // attempts that were retries of a failed one
	InFlight int64  `json:"in_flight"`         // requests being served through it now
	Breaker  string `json:"breaker,omitempty"` // its circuit breaker: closed, open or half_open; "" without one
	// Pooled is how many idle connections to it are kept for reuse
	// (shared by the routes naming it); -1 when its transport does not
	// count them (HTTP/2 and TLS upstreams).
	Pooled int64 `json:"pooled"`
}

// Loop is one event loop of one listener.
type Loop struct {
	Listener string `json:"listener"` // "https" or "http"
	Index    int    `json:"index"`
	// Wakeups counts the loop's returns from epoll_wait.
	Wakeups uint64 `json:"wakeups"`
	// Conns is how many connections the loop holds.
	Conns int64 `json:"conns"`
	// Queued is the output queued on its connections (bytes the sockets
	// did not take yet).
	Queued int64 `json:"queued"`
}
