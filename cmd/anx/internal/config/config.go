// Package config is anx's configuration: the built-in defaults, the TOML
// config file (sites, their path routes and upstreams, certificates,
// timeouts and limits) and the checks that no single key can make. Its
// errors name the file, the line and the key at fault. It builds the
// policies and configs of the packages below cmd/anx (certs.Policy,
// proxy.Config) but opens nothing.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/anx-gateway/anx/certs"
	"github.com/anx-gateway/anx/core/route"
)

// Config is what anx serves: listeners, data dir, timeouts, limits and
// sites. It comes from the built-in defaults, then the config file, then
// the flags, each overriding what the one before set.
type Config struct {
	HTTPS string `toml:"https"`
	HTTP  string `toml:"http"`
	Data  string `toml:"data"`

	// Admin is the admin listener's address (metrics, status page); off
	// when empty. It must be loopback unless AdminAllowRemote (admin.go).
	Admin            AdminAddr `toml:"admin"`
	AdminAllowRemote bool      `toml:"admin_allow_remote"`

	// Certificates: the ACME CA and its account, and renewal.
	ACMECA             URL            `toml:"acme_ca"`
	ACMECARoot         string         `toml:"acme_ca_root"`
	Email              string         `toml:"email"`
	ACMEChallenge      Challenge      `toml:"acme_challenge"`
	RenewInterval      Duration       `toml:"renew_interval"`
	RenewalWindowRatio Ratio          `toml:"renewal_window_ratio"`
	OnDemand           OnDemandLimits `toml:"on_demand"`

	// TrustedProxies lists the clients whose X-Forwarded-* and Forwarded
	// fields a proxy route keeps and appends to; from others they are
	// dropped.
	TrustedProxies []Prefix `toml:"trusted_proxies"`

	Timeouts Timeouts `toml:"timeouts"`
	Limits   Limits   `toml:"limits"`
	Files    Files    `toml:"files"`
	Sites    []Site   `toml:"site"`
}

// OnDemandLimits guards on-demand certificates (sites with on_demand = true).
type OnDemandLimits struct {
	Ask          URL      `toml:"ask"`
	AskTimeout   Duration `toml:"ask_timeout"`
	Rate         Count    `toml:"rate"`
	RateInterval Duration `toml:"rate_interval"`
}

// Timeouts bound how long a client may hold a connection without progress.
// A zero value means the protocol package's own default.
type Timeouts struct {
	Handshake  Duration `toml:"handshake"`
	ReadHeader Duration `toml:"read_header"`
	Idle       Duration `toml:"idle"`
	Write      Duration `toml:"write"`
	Drain      Duration `toml:"drain"`
}

// Limits bound the size of what a client may send. Zero means the
// built-in default.
type Limits struct {
	MaxHeaderBytes Size  `toml:"max_header_bytes"`
	MaxHeaderCount Count `toml:"max_header_count"`
	MaxBodyBytes   Size  `toml:"max_body_bytes"`
	ConnLimits           // max_conns, max_conns_per_ip (connlimits.go)
}

// Files tunes how file bodies are sent.
type Files struct {
	// DropBehind: a sendfile body of at least this many bytes drops its
	// pages from the page cache behind it, so that large downloads do not
	// push the small hot files out (nginx's directio, done with
	// posix_fadvise); -1 ("off") never.
	DropBehind Threshold `toml:"drop_behind"`
}

// Site declares one site: its host names, its files, its path routes
// and what the plain-HTTP listener does for it.
type Site struct {
	Hosts []string `toml:"hosts"`
	// Root serves what no route takes; empty: 404 (a site needs a root
	// or a route).
	Root string `toml:"root"`
	// Routes are tried in order; the first whose path matches serves.
	Routes                   []Route  `toml:"route"`
	HTTPMode                 HTTPMode `toml:"http_mode"`
	AllowSymlinksOutsideRoot bool     `toml:"allow_symlinks_outside_root"`
	Issuer                   Issuer   `toml:"issuer"`
	OnDemand                 bool     `toml:"on_demand"`
	HSTS                     HSTS     `toml:"hsts"`
	// AccessLog is where the site's requests are logged, AccessLogFormat
	// how (accesslog.go).
	AccessLog       AccessLog       `toml:"access_log"`
	AccessLogFormat AccessLogFormat `toml:"access_log_format"`
	// Browse lists a directory without an index file (its root's and
	// its root routes'); Fallback is served for a page that is no file
	// under its root (see fallback.go).
	Browse   bool         `toml:"browse"`
	Fallback FallbackPath `toml:"fallback"`
	// Compress lists the codings responses are compressed in on the fly
	// (nil: zstd, br, gzip; empty: none), CompressMinSize the smallest
	// response compressed (nil: 512 bytes); see compress.go.
	Compress        *[]Encoding `toml:"compress"`
	CompressMinSize *Size       `toml:"compress_min_size"`
	// MaxConnsPerIP bounds a client address's connections when the TLS
	// ClientHello names this site (connlimits.go); 0: no limit of its own.
	MaxConnsPerIP ConnLimit `toml:"max_conns_per_ip"`
}

// Default returns the built-in defaults: one site for localhost
// served from the current directory, and the same timeouts and limits for
// every protocol. README.md lists them; keep the two in step.
func Default() Config {
	return Config{
		HTTPS: ":8443",
		HTTP:  ":8080",
		Data:  defaultDataDir(),
		Timeouts: Timeouts{
			Handshake:  Duration{10 * time.Second},
			ReadHeader: Duration{10 * time.Second},
			Idle:       Duration{60 * time.Second},
			Write:      Duration{60 * time.Second},
			Drain:      Duration{10 * time.Second},
		},
		Limits: Limits{MaxHeaderBytes: Size{32 << 10}, MaxHeaderCount: Count{100}, MaxBodyBytes: Size{10 << 20}},
		Files:  Files{DropBehind: Threshold{64 << 20}},
		Sites:  []Site{{Hosts: []string{"localhost"}, Root: "."}},
	}
}

// defaultDataDir is $XDG_DATA_HOME/anx, or ~/.local/share/anx.
func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "anx")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "anx")
	}
	return ".anx"
}

// Load reads a TOML config file over the defaults. Relative
// paths in it are taken from the file's directory. Errors name the file,
// the line and the key.
func Load(path string) (Config, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg := Default()
	cfg.Sites = nil
	dec := toml.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, describeDecodeError(path, err)
	}
	if len(cfg.Sites) == 0 {
		return Config{}, fmt.Errorf("%s: no [[site]] declared", path)
	}
	lines := findKeyLines(text)
	if err := cfg.loadAdmin(path, &lines); err != nil {
		return Config{}, err
	}
	dir := filepath.Dir(path)
	cfg.Data = resolve(dir, cfg.Data)
	cfg.ACMECARoot = resolve(dir, cfg.ACMECARoot)
	for i := range cfg.Sites {
		s := &cfg.Sites[i]
		s.Root = resolve(dir, s.Root)
		s.AccessLog = resolveAccessLog(dir, s.AccessLog)
		if err := checkFallback(path, &lines, i, s); err != nil {
			return Config{}, err
		}
		for j := range s.Routes {
			if err := loadRoute(path, dir, &s.Routes[j], lines.route(i, j)); err != nil {
				return Config{}, err
			}
		}
	}
	return cfg, nil
}

// loadRoute checks a route of the file at path, resolves its paths from
// dir and reads its tls_ca. Errors name the file, the line and the key.
func loadRoute(path, dir string, r *Route, at routeTable) error {
	r.keys = at.keys
	fail := func(key string, err error) error {
		if line, ok := at.keys[key]; ok && key != "" {
			return fmt.Errorf("%s:%d: key \"site.route.%s\": %v", path, line, key, err)
		}
		return fmt.Errorf("%s:%d: [[site.route]]: %v", path, at.line, err)
	}
	if key, err := r.check(); err != nil {
		return fail(key, err)
	}
	r.Root = resolve(dir, r.Root)
	if err := r.loadFallbackFile(dir); err != nil {
		return fail("fallback_file", err)
	}
	if r.TLSCA != "" {
		r.TLSCA = resolve(dir, r.TLSCA)
		pool, err := loadCA(r.TLSCA)
		if err != nil {
			return fail("tls_ca", err)
		}
		r.RootCAs = pool
	}
	return nil
}

// describeDecodeError turns go-toml's errors into "file:line: key "k": why".
func describeDecodeError(path string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		e := strict.Errors[0]
		line, _ := e.Position()
		return fmt.Errorf("%s:%d: unknown key %q", path, line, strings.Join(e.Key(), "."))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if key := de.Key(); len(key) > 0 {
			return fmt.Errorf("%s:%d: key %q: %s", path, line, strings.Join(key, "."), msg)
		}
		return fmt.Errorf("%s:%d: %s", path, line, msg)
	}
	return fmt.Errorf("%s: %w", path, err)
}

func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// Validate checks what no single key can: every site has hosts and a
// root or routes, every route is whole, and no host belongs to two sites.
func (c *Config) Validate() error {
	if err := checkAddr("https", c.HTTPS); err != nil {
		return err
	}
	if err := checkAddr("http", c.HTTP); err != nil {
		return err
	}
	if err := c.checkAdmin(); err != nil {
		return fmt.Errorf("config: admin: %w", err)
	}
	if len(c.Sites) == 0 {
		return errors.New("config: no site to serve")
	}
	seen := map[string]int{}
	for i, s := range c.Sites {
		if len(s.Hosts) == 0 {
			return fmt.Errorf("config: site %d: hosts is empty", i+1)
		}
		if s.Root == "" && len(s.Routes) == 0 {
			return fmt.Errorf("config: site %d: it needs a root or at least one [[site.route]]", i+1)
		}
		for j := range s.Routes {
			r := &s.Routes[j]
			if key, err := r.check(); err != nil {
				if key != "" {
					key = " " + key
				}
				return fmt.Errorf("config: site %d, route %d (%s)%s: %w", i+1, j+1, r.Path, key, err)
			}
		}
		for _, h := range s.Hosts {
			if h == "*" {
				continue // any host: the certificate policy checks it
			}
			name, err := route.NormalizeHost(h)
			if err != nil {
				return fmt.Errorf("config: site %d: %w", i+1, err)
			}
			if prev, dup := seen[name]; dup {
				return fmt.Errorf("config: host %q is in site %d and site %d", h, prev, i+1)
			}
			seen[name] = i + 1
		}
	}
	p := c.CertPolicy(0, 0)
	if err := p.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

func checkAddr(key, addr string) error {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return fmt.Errorf("config: %s = %q: want host:port, such as \":8443\" or \"127.0.0.1:8443\"", key, addr)
	}
	return nil
}

// valueError reports a bad value from an UnmarshalText method. go-toml
// gives the line and key of such an error only when it is a ParserError
// over the value's bytes, which it passes in place: for a non-string value
// (read_header = 10) it would otherwise drop the position.
func valueError(value []byte, format string, args ...any) error {
	return unstable.NewParserError(value, format, args...)
}

// Duration is a time.Duration written as "10s", "2m" or "1h30m".
type Duration struct{ time.Duration }

// UnmarshalText parses a non-negative Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return valueError(b, "want a duration such as \"10s\", got %q", b)
	}
	if v < 0 {
		return valueError(b, "want a duration of zero or more, got %q", b)
	}
	d.Duration = v
	return nil
}

// Size is a byte count written as an integer or a string with a unit:
// "512", "64KiB", "10MiB", "1GiB" (also KB, MB, GB as powers of 1000).
type Size struct{ Bytes int64 }

// UnmarshalText parses a byte count.
func (s *Size) UnmarshalText(b []byte) error {
	text := strings.TrimSpace(string(b))
	units := []struct {
		suffix string
		scale  int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	scale := int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(text, u.suffix); ok {
			text, scale = strings.TrimSpace(n), u.scale
			break
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/scale {
		return valueError(b, "want a size such as 65536 or \"64KiB\", got %q", b)
	}
	s.Bytes = n * scale
	return nil
}

// Threshold is a positive size, or "off" (-1).
type Threshold struct{ Bytes int64 }

// UnmarshalText parses a positive size or "off".
func (t *Threshold) UnmarshalText(b []byte) error {
	if string(b) == "off" {
		t.Bytes = -1
		return nil
	}
	var s Size
	if err := s.UnmarshalText(b); err != nil || s.Bytes == 0 {
		return valueError(b, "want a size such as \"64MiB\", or \"off\", got %q", b)
	}
	t.Bytes = s.Bytes
	return nil
}

// Count is a non-negative number of things.
type Count struct{ N int }

// UnmarshalText parses a non-negative integer.
func (c *Count) UnmarshalText(b []byte) error {
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 0 {
		return valueError(b, "want a whole number of zero or more, got %q", b)
	}
	c.N = n
	return nil
}

// HTTPMode is what the plain-HTTP listener does for a site.
type HTTPMode uint8

const (
	HTTPRedirect HTTPMode = iota // redirect to HTTPS (the default)
	HTTPServe                    // serve the site over plain HTTP as well
)

// UnmarshalText accepts "redirect" or "serve".
func (m *HTTPMode) UnmarshalText(b []byte) error {
	switch string(b) {
	case "redirect":
		*m = HTTPRedirect
	case "serve":
		*m = HTTPServe
	default:
		return valueError(b, "want \"redirect\" or \"serve\", got %q", b)
	}
	return nil
}

// String returns the mode as written in the config.
func (m HTTPMode) String() string {
	if m == HTTPServe {
		return "serve"
	}
	return "redirect"
}

// URL is an absolute http:// or https:// URL, or empty.
type URL struct{ URL string }

// UnmarshalText checks the URL.
func (u *URL) UnmarshalText(b []byte) error {
	if err := certs.CheckURL(string(b)); err != nil {
		return valueError(b, "%v", err)
	}
	u.URL = string(b)
	return nil
}

// Challenge pins the ACME challenge type, or is empty for both.
type Challenge struct{ Type string }

// UnmarshalText accepts "http-01" or "tls-alpn-01".
func (c *Challenge) UnmarshalText(b []byte) error {
	switch string(b) {
	case certs.ChallengeHTTP01, certs.ChallengeTLSALPN01:
		c.Type = string(b)
		return nil
	}
	return valueError(b, "want %q or %q, got %q", certs.ChallengeHTTP01, certs.ChallengeTLSALPN01, b)
}

// Ratio is a fraction strictly between 0 and 1, or 0 for the default.
type Ratio struct{ F float64 }

// UnmarshalText parses a number such as 0.33.
func (r *Ratio) UnmarshalText(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f <= 0 || f >= 1 {
		return valueError(b, "want a fraction between 0 and 1 such as 0.33, got %q", b)
	}
	r.F = f
	return nil
}

// Issuer picks where a site's certificates come from.
type Issuer struct{ Kind certs.Issuer }

// UnmarshalText accepts "auto", "acme" or "internal".
func (i *Issuer) UnmarshalText(b []byte) error {
	switch string(b) {
	case "auto":
		i.Kind = certs.IssuerAuto
	case "acme":
		i.Kind = certs.IssuerACME
	case "internal":
		i.Kind = certs.IssuerInternal
	default:
		return valueError(b, "want \"auto\", \"acme\" or \"internal\", got %q", b)
	}
	return nil
}

// DefaultHSTS is the Strict-Transport-Security value sent for public names
// by default: one year, this host only (includeSubDomains and preload are
// promises about other hosts, which only the site's owner can make).
const DefaultHSTS = "max-age=31536000"

// HSTS is a site's Strict-Transport-Security policy: auto (the zero
// value: DefaultHSTS for public names only), off, or a header value.
type HSTS struct {
	Off   bool
	Value string // set: sent for every host of the site
}

// UnmarshalText accepts "auto", "off" or a header value with max-age.
func (h *HSTS) UnmarshalText(b []byte) error {
	v := strings.TrimSpace(string(b))
	switch {
	case v == "auto":
		*h = HSTS{}
	case v == "off":
		*h = HSTS{Off: true}
	case validHSTS(v):
		*h = HSTS{Value: v}
	default:
		return valueError(b, "want \"auto\", \"off\" or a header value such as \"max-age=63072000; includeSubDomains\", got %q", b)
	}
	return nil
}

// validHSTS checks a Strict-Transport-Security value: directives
// separated by ";", one of them max-age=<seconds> (RFC 6797 section 6.1).
func validHSTS(v string) bool {
	maxAge := false
	for d := range strings.SplitSeq(v, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(name) {
		case "max-age":
			_, err := strconv.ParseUint(strings.Trim(value, "\""), 10, 63)
			maxAge = err == nil
		case "includesubdomains", "preload":
		default:
			return false
		}
	}
	return maxAge
}

// HeaderFor returns the Strict-Transport-Security value for one host of
// the site, or "" for none.
func (h HSTS) HeaderFor(host string) string {
	switch {
	case h.Off:
		return ""
	case h.Value != "":
		return h.Value
	case host == "*" || certs.Public(strings.ToLower(strings.TrimPrefix(host, "*."))):
		return DefaultHSTS
	}
	return ""
}

// KeepRestartOnly sets in c the running values of what only a restart
// changes (the listeners, the data dir, timeouts, limits and [files]) and
// returns the keys whose value c had changed.
func (c *Config) KeepRestartOnly(running *Config) (changed []string) {
	keep := func(key string, differs bool) {
		if differs {
			changed = append(changed, key)
		}
	}
	keep("https", c.HTTPS != running.HTTPS)
	keep("http", c.HTTP != running.HTTP)
	keep("data", c.Data != running.Data)
	keep("admin", c.Admin != running.Admin || c.AdminAllowRemote != running.AdminAllowRemote)
	keep("timeouts", c.Timeouts != running.Timeouts)
	keep("limits", c.Limits.withConns(running.Limits.ConnLimits) != running.Limits)
	keep("files", c.Files != running.Files)
	c.HTTPS, c.HTTP, c.Data = running.HTTPS, running.HTTP, running.Data
	c.Admin, c.AdminAllowRemote = running.Admin, running.AdminAllowRemote
	c.Timeouts, c.Limits, c.Files = running.Timeouts, running.Limits.withConns(c.Limits.ConnLimits), running.Files
	return changed
}
