package proxy

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/anx-gateway/anx/core/encode"
)

// Config describes one proxy route: where requests go and how. Its zero
// value is not usable (it has no upstream); every other field left at its
// zero value takes the default documented on it. cmd/anx fills it from the
// config file's [[site.route]] tables and --proxy flags.
type Config struct {
	// Name identifies the route in logs ("example.com /api/").
	Name string

	// Upstreams lists where requests go, at least one.
	Upstreams []Upstream

	// Policy picks an upstream per request. Default RoundRobin.
	Policy Policy
	// HashHeader is the request field whose value HeaderHash hashes.
	HashHeader string
	// Cookie is the cookie that Cookie stickiness sets and reads.
	// Default "anx_upstream".
	Cookie string

	// Health configures active health checks; off when Health.Path is
	// empty.
	Health HealthCheck
	// Passive configures passive health: failures seen on real traffic.
	Passive PassiveHealth
	// SlowStart is how long an upstream that comes back (healthy again,
	// or added) takes to get its full share of requests; its weight
	// grows linearly from a tenth. Zero: at once.
	SlowStart time.Duration

	// TryDuration bounds the time spent retrying one request: no attempt
	// starts once it has passed since the first (an attempt under way
	// runs to its own timeouts). Default 5s.
	TryDuration time.Duration
	// MaxTries bounds the attempts for one request. Default: the number
	// of upstreams, at most 3.
	MaxTries int
	// RetryBodyBytes bounds how much of a request body is kept so that
	// the request can be sent again; a larger body is streamed and its
	// request is retried only before any byte went out. Default 64 KiB;
	// negative: never keep.
	RetryBodyBytes int64

	// ConnectTimeout bounds connecting (and the TLS handshake) to an
	// upstream. Default 5s.
	ConnectTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response head once
	// the request is sent. Default 60s.
	ResponseHeaderTimeout time.Duration
	// ReadTimeout bounds each wait for upstream response body bytes (as
	// nginx's proxy_read_timeout). Default 60s.
	ReadTimeout time.Duration

	// KeepAlive is how many idle connections to each upstream are kept
	// for reuse. Default 256 (an idle one costs a socket and a few hundred
	// bytes; fewer than the concurrent requests means reconnecting under
	// load); negative: none.
	KeepAlive int
	// KeepAliveTimeout closes a pooled connection left idle this long.
	// Default 60s; an upstream's own shorter "Keep-Alive: timeout=N"
	// wins.
	KeepAliveTimeout time.Duration

	// HostHeader, when set, replaces the Host sent upstream; by default
	// the client's Host is passed on.
	HostHeader string
	// Forwarded adds an RFC 7239 Forwarded field beside the
	// X-Forwarded-* ones.
	Forwarded bool
	// TrustedProxies lists the client addresses whose X-Forwarded-* and
	// Forwarded fields are kept and appended to; from any other client
	// they are dropped.
	TrustedProxies []netip.Prefix
	// RequestHeaders changes the request before it goes upstream.
	RequestHeaders HeaderOps
	// ResponseHeaders changes the response before it goes to the client.
	ResponseHeaders HeaderOps

	// Compress is the set of codings responses are compressed in on the
	// fly when the client accepts one (see compress.go). Zero: none.
	Compress encode.Set
	// CompressMinSize is the smallest Content-Length compressed; a
	// response without one is compressed whatever its length. Zero
	// means encode.DefaultMinSize (512 bytes).
	CompressMinSize int64

	// TLS configures https:// upstreams.
	TLS TLS

	// Protect bounds the requests to each upstream, breaks the circuit
	// to failing ones, and says what to answer when none can (protect.go).
	Protect Protection

	// Logger receives upstream failures and health changes. Default:
	// slog.Default().
	Logger *slog.Logger
}

// Upstream is one place requests may go.
type Upstream struct {
	// URL is http://host:port, https://host:port, h2c://host:port (HTTP/2
	// with prior knowledge) or unix:/path/to.sock (HTTP/1.1 over a Unix
	// socket). It has no path, query or user.
	URL string
	// Weight is the upstream's share under WeightedRoundRobin, and its
	// number of points on the hash ring. Default 1.
	Weight int
}

// Policy picks an upstream for each request.
type Policy uint8

// The load-balancing policies.
const (
	RoundRobin         Policy = iota // each upstream in turn
	WeightedRoundRobin               // in turn, by Weight (smooth, as nginx)
	LeastConn                        // fewest requests in flight, ties in turn
	RandomTwo                        // two at random, the less loaded wins
	First                            // the first available, in the listed order
	IPHash                           // consistent hash of the client address
	URIHash                          // consistent hash of the path and query
	HeaderHash                       // consistent hash of HashHeader's value
	CookieSticky                     // the upstream named by Cookie; else RoundRobin, and set it
)

var policyNames = [...]string{
	RoundRobin:         "round_robin",
	WeightedRoundRobin: "weighted_round_robin",
	LeastConn:          "least_conn",
	RandomTwo:          "random_two",
	First:              "first",
	IPHash:             "ip_hash",
	URIHash:            "uri_hash",
	HeaderHash:         "header",
	CookieSticky:       "cookie",
}

// String returns the policy's name as written in the config.
func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", p)
}

// ParsePolicy returns the policy called name.
func ParsePolicy(name string) (Policy, error) {
	for p, n := range policyNames {
		if n == name {
			return Policy(p), nil
		}
	}
	return 0, fmt.Errorf("proxy: unknown load-balancing policy %q (want one of %s)", name, strings.Join(policyNames[:], ", "))
}

// HealthCheck configures active health checks: a GET of Path on each
// upstream every Interval.
type HealthCheck struct {
	// Path is the request target checked, such as "/health". Empty: no
	// active checks.
	Path string
	// Host is the Host sent with a check. Default: the upstream's
	// address.
	Host string
	// Interval between checks of one upstream. Default 10s.
	Interval time.Duration
	// Timeout bounds one check. Default 5s.
	Timeout time.Duration
	// Status is the status a healthy upstream answers: a code (200) or a
	// class (2, for any 2xx). Default: any 2xx.
	Status int
	// Passes is how many checks in a row must pass to mark an upstream
	// healthy again. Default 1.
	Passes int
	// Fails is how many checks in a row must fail to mark it unhealthy.
	// Default 1.
	Fails int
}

// PassiveHealth marks an upstream down after failures on real traffic:
// MaxFails failures within FailDuration take it out of rotation until
// FailDuration has passed since the last of them (as nginx's max_fails
// and fail_timeout).
type PassiveHealth struct {
	// MaxFails failures within FailDuration mark the upstream down.
	// Default 1; negative turns passive health off.
	MaxFails int
	// FailDuration is both the window that failures are counted in and
	// how long the upstream then stays down. Default 10s.
	FailDuration time.Duration
	// UnhealthyStatus lists response statuses that count as failures
	// (e.g. 502, 503); by default only errors (refused, reset, timeout)
	// count.
	UnhealthyStatus []int
}

// HeaderOps edits header fields: Delete first, then Set (replacing), then
// Add (appending).
type HeaderOps struct {
	Set    []Field
	Add    []Field
	Delete []string
}

// Field is one header field an edit writes.
type Field struct{ Name, Value string }

// TLS configures connections to https:// upstreams.
type TLS struct {
	// RootCAs verifies upstream certificates. Nil: the system roots.
	RootCAs *x509.CertPool
	// ServerName is the SNI and the name the certificate must carry.
	// Default: the upstream URL's host.
	ServerName string
	// InsecureSkipVerify accepts any certificate. Only an explicitly
	// named config option sets it.
	InsecureSkipVerify bool
}

// Defaults for Config's zero values.
const (
	defaultCookie           = "anx_upstream"
	defaultTryDuration      = 5 * time.Second
	defaultMaxTries         = 3
	defaultRetryBodyBytes   = 64 << 10
	defaultConnectTimeout   = 5 * time.Second
	defaultResponseTimeout  = 60 * time.Second
	defaultReadTimeout      = 60 * time.Second
	defaultKeepAlive        = 256
	defaultKeepAliveTimeout = 60 * time.Second
	defaultHealthInterval   = 10 * time.Second
	defaultHealthTimeout    = 5 * time.Second
	defaultFailDuration     = 10 * time.Second
)

// Validate checks the config: at least one upstream, each a URL anx can
// reach, and options that fit the policy. Its errors name the upstream or
// option at fault.
func (c *Config) Validate() error {
	if len(c.Upstreams) == 0 {
		return errors.New("proxy: no upstream")
	}
	for _, u := range c.Upstreams {
		if _, err := ParseUpstream(u.URL); err != nil {
			return err
		}
		if u.Weight < 0 {
			return fmt.Errorf("proxy: upstream %s: weight %d is negative", u.URL, u.Weight)
		}
	}
	if c.Policy == HeaderHash && c.HashHeader == "" {
		return errors.New("proxy: the header policy needs the name of the header to hash")
	}
	if int(c.Policy) >= len(policyNames) {
		return fmt.Errorf("proxy: unknown policy %d", c.Policy)
	}
	if p := c.Health.Path; p != "" && !strings.HasPrefix(p, "/") {
		return fmt.Errorf("proxy: health check path %q does not start with /", p)
	}
	if s := c.Health.Status; s != 0 && !(s >= 1 && s <= 5 || s >= 100 && s <= 599) {
		return fmt.Errorf("proxy: health check status %d is not a status code or class", s)
	}
	for _, s := range c.Passive.UnhealthyStatus {
		if s < 100 || s > 599 {
			return fmt.Errorf("proxy: unhealthy status %d is not a status code", s)
		}
	}
	return c.Protect.validate()
}

// Target is a parsed upstream address.
type Target struct {
	// Scheme is "http", "https", "h2c" or "unix".
	Scheme string
	// Addr is host:port for TCP (the port defaulted from the scheme), or
	// the socket's path for unix.
	Addr string
	// Host is the host part, for SNI and a health check's Host.
	Host string
}

// ParseUpstream parses and checks an upstream URL.
func ParseUpstream(raw string) (Target, error) {
	if path, ok := strings.CutPrefix(raw, "unix:"); ok {
		path = strings.TrimPrefix(path, "//")
		if !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, ".") {
			return Target{}, fmt.Errorf("proxy: upstream %q: want unix:/path/to.sock", raw)
		}
		return Target{Scheme: "unix", Addr: path, Host: "localhost"}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, fmt.Errorf("proxy: upstream %q: %w", raw, err)
	}
	port := map[string]string{"http": "80", "https": "443", "h2c": "80"}[u.Scheme]
	switch {
	case port == "":
		return Target{}, fmt.Errorf("proxy: upstream %q: the scheme must be http, https, h2c or unix", raw)
	case u.Host == "" || u.Hostname() == "":
		return Target{}, fmt.Errorf("proxy: upstream %q has no host", raw)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		return Target{}, fmt.Errorf("proxy: upstream %q: give only scheme://host:port (no path, query or user)", raw)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	host := u.Hostname()
	addr := host + ":" + port
	if strings.Contains(host, ":") {
		addr = "[" + host + "]:" + port
	}
	return Target{Scheme: u.Scheme, Addr: addr, Host: host}, nil
}
