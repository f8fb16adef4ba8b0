package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/anx-gateway/anx/core/proxy"
	"github.com/anx-gateway/anx/core/route"
)

// Route is one [[site.route]] table: a path and what serves it. Exactly
// one of Proxy, Root, Redirect and Respond is set, except that Root and
// Proxy together mean "a file under Root if it exists, else the proxy".
// The proxy options apply only with Proxy. README.md documents every key
// and its default; keep the two in step.
type Route struct {
	Path        string `toml:"path"`
	StripPrefix bool   `toml:"strip_prefix"`

	Proxy    []Upstream `toml:"proxy"`
	Root     string     `toml:"root"`
	Redirect string     `toml:"redirect"`
	Respond  string     `toml:"respond"`
	Status   int        `toml:"status"`

	RateLimit *RateLimit `toml:"rate_limit"` // ratelimit.go

	LBPolicy Policy `toml:"lb_policy"`
	LBHeader string `toml:"lb_header"`
	LBCookie string `toml:"lb_cookie"`
	Weights  []int  `toml:"weights"`

	HealthURI      string   `toml:"health_uri"`
	HealthHost     string   `toml:"health_host"`
	HealthInterval Duration `toml:"health_interval"`
	HealthTimeout  Duration `toml:"health_timeout"`
	HealthStatus   int      `toml:"health_status"`
	HealthPasses   Count    `toml:"health_passes"`
	HealthFails    Count    `toml:"health_fails"`

	MaxFails        Count    `toml:"max_fails"`
	FailDuration    Duration `toml:"fail_duration"`
	UnhealthyStatus []int    `toml:"unhealthy_status"`
	SlowStart       Duration `toml:"slow_start"`

	TryDuration    Duration `toml:"try_duration"`
	MaxTries       Count    `toml:"max_tries"`
	RetryBodyBytes Size     `toml:"retry_body_bytes"`

	ConnectTimeout        Duration `toml:"connect_timeout"`
	ResponseHeaderTimeout Duration `toml:"response_header_timeout"`
	ReadTimeout           Duration `toml:"read_timeout"`
	KeepAlive             Count    `toml:"keepalive"`
	KeepAliveTimeout      Duration `toml:"keepalive_timeout"`

	HostHeader string    `toml:"host_header"`
	Forwarded  bool      `toml:"forwarded"`
	HeaderUp   HeaderOps `toml:"header_up"`
	HeaderDown HeaderOps `toml:"header_down"`

	TLSCA                 string `toml:"tls_ca"`
	TLSServerName         string `toml:"tls_server_name"`
	TLSInsecureSkipVerify bool   `toml:"tls_insecure_skip_verify"`

	Protection // max_conns, breaker_*, fallback_file, stale_if_error: protect.go

	// RootCAs holds the certificates of TLSCA, read by Load.
	RootCAs *x509.CertPool `toml:"-"`
	// keys holds the keys the file set in this table, each with its line
	// (Load fills it): options whose zero value means something
	// (max_fails = 0 is "off") and the checks need to know.
	keys map[string]int
}

// HeaderOps is a header_up or header_down table: fields to set, to add
// and to delete.
type HeaderOps struct {
	Set    map[string]string `toml:"set"`
	Add    map[string]string `toml:"add"`
	Delete []string          `toml:"delete"`
}

// Upstream is one entry of a route's proxy list, checked by
// proxy.ParseUpstream as it is decoded.
type Upstream struct{ URL string }

// UnmarshalText checks the URL.
func (u *Upstream) UnmarshalText(b []byte) error {
	if _, err := proxy.ParseUpstream(string(b)); err != nil {
		return valueError(b, "%s", strings.TrimPrefix(err.Error(), "proxy: "))
	}
	u.URL = string(b)
	return nil
}

// Policy is a load-balancing policy by its name.
type Policy struct{ proxy.Policy }

// UnmarshalText accepts the names of proxy.ParsePolicy.
func (p *Policy) UnmarshalText(b []byte) error {
	v, err := proxy.ParsePolicy(string(b))
	if err != nil {
		return valueError(b, "%s", strings.TrimPrefix(err.Error(), "proxy: "))
	}
	p.Policy = v
	return nil
}

// Prefix is an address range of trusted_proxies: a CIDR, or one address.
type Prefix struct{ netip.Prefix }

// UnmarshalText parses "10.0.0.0/8" or "192.0.2.1".
func (p *Prefix) UnmarshalText(b []byte) error {
	if v, err := netip.ParsePrefix(string(b)); err == nil {
		p.Prefix = v.Masked()
		return nil
	}
	a, err := netip.ParseAddr(string(b))
	if err != nil {
		return valueError(b, "want an address or a CIDR such as \"10.0.0.0/8\", got %q", b)
	}
	p.Prefix = netip.PrefixFrom(a, a.BitLen())
	return nil
}

// TrustedPrefixes returns trusted_proxies as proxy.Config takes them.
func (c *Config) TrustedPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range c.TrustedProxies {
		out = append(out, p.Prefix)
	}
	return out
}

// proxyOptions are the keys that only a route with proxy may set.
var proxyOptions = []string{
	"lb_policy", "lb_header", "lb_cookie", "weights",
	"health_uri", "health_host", "health_interval", "health_timeout", "health_status", "health_passes", "health_fails",
	"max_fails", "fail_duration", "unhealthy_status", "slow_start",
	"try_duration", "max_tries", "retry_body_bytes",
	"connect_timeout", "response_header_timeout", "read_timeout", "keepalive", "keepalive_timeout",
	"host_header", "forwarded", "header_up", "header_down",
	"tls_ca", "tls_server_name", "tls_insecure_skip_verify",
	"max_conns", "max_queue", "queue_timeout", "breaker_failures", "breaker_error_rate", "breaker_window", // protect.go
	"breaker_min_requests", "breaker_open", "breaker_probes", "fallback_file", "fallback_status", "stale_if_error",
}

// Kind names what serves the route: "proxy", "root", "root+proxy",
// "redirect" or "respond"; "" when none or several are set.
func (r *Route) Kind() string {
	var kinds []string
	if len(r.Proxy) > 0 || r.has("proxy") {
		kinds = append(kinds, "proxy")
	}
	if r.Root != "" || r.has("root") {
		kinds = append(kinds, "root")
	}
	if r.Redirect != "" || r.has("redirect") {
		kinds = append(kinds, "redirect")
	}
	if r.Respond != "" || r.has("respond") {
		kinds = append(kinds, "respond")
	}
	switch k := strings.Join(kinds, "+"); k {
	case "proxy", "root", "redirect", "respond":
		return k
	case "proxy+root":
		return "root+proxy"
	}
	return ""
}

// has reports whether the file set key in this route.
func (r *Route) has(key string) bool {
	_, ok := r.keys[key]
	return ok
}

// check reports what is wrong with the route as a whole, and the key at
// fault ("" for the table).
func (r *Route) check() (key string, err error) {
	if r.Path == "" {
		return "path", errors.New("every route needs a path, such as \"/api/\" or \"=/health\"")
	}
	if _, err := route.NewRoutes([]route.Path{{Match: r.Path, StripPrefix: r.StripPrefix, Handler: route.Fixed{}}}, nil); err != nil {
		k := "path"
		if r.StripPrefix {
			k = "strip_prefix"
		}
		_, why, _ := strings.Cut(err.Error(), "): ")
		return k, errors.New(why)
	}
	kind := r.Kind()
	if kind == "" {
		return "", errors.New("a route needs exactly one of proxy, root, redirect and respond (or root and proxy together: files first, else the proxy)")
	}
	if !strings.Contains(kind, "proxy") {
		for _, k := range proxyOptions {
			if r.has(k) {
				return k, fmt.Errorf("%s is a proxy option, and this route has no proxy", k)
			}
		}
	}
	if r.has("status") && kind != "redirect" && kind != "respond" {
		return "status", errors.New("status goes with redirect or respond only")
	}
	switch kind {
	case "redirect":
		if err := (route.Redirect{To: r.Redirect, Status: r.Status}).Validate(); err != nil {
			return r.keyOf("status", r.Status != 0, "redirect"), trimPackage(err)
		}
	case "respond":
		if err := (route.Fixed{Status: r.Status, Body: r.Respond}).Validate(); err != nil {
			return "status", trimPackage(err)
		}
	}
	if key, err := r.RateLimit.check(); err != nil {
		return key, err
	}
	if strings.Contains(kind, "proxy") {
		return r.checkProxy()
	}
	return "", nil
}

// keyOf returns key when cond, else other.
func (r *Route) keyOf(key string, cond bool, other string) string {
	if cond {
		return key
	}
	return other
}

// checkProxy checks the proxy options against each other and through
// proxy.Config.Validate.
func (r *Route) checkProxy() (key string, err error) {
	if len(r.Proxy) == 0 {
		return "proxy", errors.New("the proxy list is empty")
	}
	if (r.has("weights") || len(r.Weights) > 0) && len(r.Weights) != len(r.Proxy) {
		return "weights", fmt.Errorf("%d weights for %d upstreams: give one per proxy entry", len(r.Weights), len(r.Proxy))
	}
	for _, w := range r.Weights {
		if w < 1 {
			return "weights", fmt.Errorf("weight %d: want 1 or more", w)
		}
	}
	if r.LBPolicy.Policy == proxy.HeaderHash && r.LBHeader == "" {
		return "lb_header", errors.New("lb_policy = \"header\" needs lb_header, the field to hash")
	}
	if r.has("lb_header") && r.LBPolicy.Policy != proxy.HeaderHash {
		return "lb_header", errors.New("lb_header goes with lb_policy = \"header\"")
	}
	if r.has("lb_cookie") && r.LBPolicy.Policy != proxy.CookieSticky {
		return "lb_cookie", errors.New("lb_cookie goes with lb_policy = \"cookie\"")
	}
	if r.HealthURI == "" {
		for _, k := range []string{"health_host", "health_interval", "health_timeout", "health_status", "health_passes", "health_fails"} {
			if r.has(k) {
				return k, fmt.Errorf("%s needs health_uri (active checks are off without it)", k)
			}
		}
	}
	for _, k := range []string{"health_passes", "health_fails", "max_tries"} {
		if r.has(k) && r.count(k) == 0 {
			return k, fmt.Errorf("%s must be 1 or more", k)
		}
	}
	for name, ops := range map[string]HeaderOps{"header_up": r.HeaderUp, "header_down": r.HeaderDown} {
		if err := ops.check(); err != nil {
			return name, err
		}
	}
	if key, err := r.checkProtection(); err != nil {
		return key, err
	}
	cfg := r.ProxyConfig("", nil, nil)
	if err := cfg.Validate(); err != nil {
		return r.proxyKey(err), trimPackage(err)
	}
	return "", nil
}

// count returns the value of a Count key.
func (r *Route) count(key string) int {
	switch key {
	case "health_passes":
		return r.HealthPasses.N
	case "health_fails":
		return r.HealthFails.N
	case "max_tries":
		return r.MaxTries.N
	}
	return -1
}

// proxyKey guesses the key behind an error of proxy.Config.Validate.
func (r *Route) proxyKey(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "health check path"):
		return "health_uri"
	case strings.Contains(msg, "health check status"):
		return "health_status"
	case strings.Contains(msg, "unhealthy status"):
		return "unhealthy_status"
	case strings.Contains(msg, "header"):
		return "lb_header"
	}
	return "proxy"
}

func (h HeaderOps) check() error {
	for _, m := range []map[string]string{h.Set, h.Add} {
		for name, value := range m {
			if err := checkField(name, value); err != nil {
				return err
			}
		}
	}
	for _, name := range h.Delete {
		if err := checkField(name, ""); err != nil {
			return err
		}
	}
	return nil
}

// checkField checks a header field name (an RFC 9110 token) and value
// (no CR, LF or NUL).
func checkField(name, value string) error {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", r)
	}) {
		return fmt.Errorf("%q is not a header field name", name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("the value of %s holds a CR, LF or NUL", name)
	}
	return nil
}

func trimPackage(err error) error {
	msg := err.Error()
	for _, p := range []string{"proxy: ", "route: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return errors.New(msg)
}

// ProxyConfig maps the route's proxy options onto a proxy.Config, with
// name for the logs, the config's trusted_proxies and logger.
func (r *Route) ProxyConfig(name string, trusted []netip.Prefix, logger *slog.Logger) proxy.Config {
	c := proxy.Config{
		Name:       name,
		Policy:     r.LBPolicy.Policy,
		HashHeader: r.LBHeader,
		Cookie:     r.LBCookie,
		Health: proxy.HealthCheck{
			Path:     r.HealthURI,
			Host:     r.HealthHost,
			Interval: r.HealthInterval.Duration,
			Timeout:  r.HealthTimeout.Duration,
			Status:   r.HealthStatus,
			Passes:   r.HealthPasses.N,
			Fails:    r.HealthFails.N,
		},
		Passive: proxy.PassiveHealth{
			MaxFails:        r.MaxFails.N,
			FailDuration:    r.FailDuration.Duration,
			UnhealthyStatus: slices.Clone(r.UnhealthyStatus),
		},
		SlowStart:             r.SlowStart.Duration,
		TryDuration:           r.TryDuration.Duration,
		MaxTries:              r.MaxTries.N,
		RetryBodyBytes:        r.RetryBodyBytes.Bytes,
		ConnectTimeout:        r.ConnectTimeout.Duration,
		ResponseHeaderTimeout: r.ResponseHeaderTimeout.Duration,
		ReadTimeout:           r.ReadTimeout.Duration,
		KeepAlive:             r.KeepAlive.N,
		KeepAliveTimeout:      r.KeepAliveTimeout.Duration,
		HostHeader:            r.HostHeader,
		Forwarded:             r.Forwarded,
		TrustedProxies:        slices.Clone(trusted),
		RequestHeaders:        r.HeaderUp.ops(),
		ResponseHeaders:       r.HeaderDown.ops(),
		TLS: proxy.TLS{
			RootCAs:            r.RootCAs,
			ServerName:         r.TLSServerName,
			InsecureSkipVerify: r.TLSInsecureSkipVerify,
		},
		Protect: r.Protection.protection(),
		Logger:  logger,
	}
	// In the file, 0 turns these off; in proxy.Config, 0 is the default
	// and a negative value is off.
	if r.has("max_fails") && r.MaxFails.N == 0 {
		c.Passive.MaxFails = -1
	}
	if r.has("keepalive") && r.KeepAlive.N == 0 {
		c.KeepAlive = -1
	}
	if r.has("retry_body_bytes") && r.RetryBodyBytes.Bytes == 0 {
		c.RetryBodyBytes = -1
	}
	for i, u := range r.Proxy {
		up := proxy.Upstream{URL: u.URL}
		if i < len(r.Weights) {
			up.Weight = r.Weights[i]
		}
		c.Upstreams = append(c.Upstreams, up)
	}
	return c
}

// ops turns the table into proxy.HeaderOps, fields sorted by name so that
// the order does not depend on a map's.
func (h HeaderOps) ops() proxy.HeaderOps {
	return proxy.HeaderOps{Set: sortedFields(h.Set), Add: sortedFields(h.Add), Delete: slices.Clone(h.Delete)}
}

func sortedFields(m map[string]string) []proxy.Field {
	var out []proxy.Field
	for _, name := range slices.Sorted(maps.Keys(m)) {
		out = append(out, proxy.Field{Name: name, Value: m[name]})
	}
	return out
}

// loadCA reads the PEM certificates of tls_ca.
func loadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, errors.Unwrap(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
