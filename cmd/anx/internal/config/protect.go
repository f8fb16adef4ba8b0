package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/anx-gateway/anx/core/proxy"
)

// Protection holds a proxy route's keys for protecting its upstreams and
// degrading when they fail (proxy.Protection), embedded in Route so that
// they are keys of [[site.route]] itself. README.md documents them.
type Protection struct {
	MaxConns     Count    `toml:"max_conns"`
	MaxQueue     Count    `toml:"max_queue"`
	QueueTimeout Duration `toml:"queue_timeout"`

	BreakerFailures    Count    `toml:"breaker_failures"`
	BreakerErrorRate   Fraction `toml:"breaker_error_rate"`
	BreakerWindow      Duration `toml:"breaker_window"`
	BreakerMinRequests Count    `toml:"breaker_min_requests"`
	BreakerOpen        Duration `toml:"breaker_open"`
	BreakerProbes      Count    `toml:"breaker_probes"`

	FallbackFile   string   `toml:"fallback_file"`
	FallbackStatus int      `toml:"fallback_status"`
	StaleIfError   Duration `toml:"stale_if_error"`
}

// Fraction is a share from 0 to 1, written 0.5 or "50%".
type Fraction struct{ V float64 }

// UnmarshalText parses a number from 0 to 1 or a percentage.
func (f *Fraction) UnmarshalText(b []byte) error {
	text, scale := string(b), 1.0
	if p, ok := strings.CutSuffix(text, "%"); ok {
		text, scale = p, 100
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
	if err != nil || v/scale < 0 || v/scale > 1 {
		return valueError(b, "want a share from 0 to 1 such as 0.5, or a percentage such as \"50%%\", got %q", b)
	}
	f.V = v / scale
	return nil
}

// checkProtection checks the protection keys against each other, and
// reports the key at fault.
func (r *Route) checkProtection() (key string, err error) {
	p := &r.Protection
	switch {
	case r.has("max_queue") && !r.has("max_conns"):
		return "max_queue", errors.New("max_queue needs max_conns (requests wait for a slot below max_conns)")
	case r.has("queue_timeout") && !r.has("max_queue"):
		return "queue_timeout", errors.New("queue_timeout needs max_queue (without a queue nothing waits)")
	case r.has("queue_timeout") && p.QueueTimeout.Duration == 0:
		return "queue_timeout", errors.New("queue_timeout must be more than 0")
	case r.has("fallback_status") && (p.FallbackStatus < 200 || p.FallbackStatus > 599):
		return "fallback_status", fmt.Errorf("%d is not a status from 200 to 599", p.FallbackStatus)
	case r.has("fallback_status") && p.FallbackFile == "":
		return "fallback_status", errors.New("fallback_status goes with fallback_file")
	case r.has("fallback_file") && p.FallbackFile == "":
		return "fallback_file", errors.New("want the path of a file, such as \"/srv/maintenance.html\"")
	}
	if p.BreakerFailures.N == 0 && p.BreakerErrorRate.V == 0 {
		for _, k := range []string{"breaker_window", "breaker_min_requests", "breaker_open", "breaker_probes"} {
			if r.has(k) {
				return k, fmt.Errorf("%s needs breaker_failures or breaker_error_rate (the breaker is off without them)", k)
			}
		}
	}
	for _, k := range []string{"breaker_window", "breaker_open"} {
		if r.has(k) && r.duration(k) == 0 {
			return k, fmt.Errorf("%s must be more than 0", k)
		}
	}
	if r.has("breaker_probes") && p.BreakerProbes.N == 0 {
		return "breaker_probes", errors.New("breaker_probes must be 1 or more")
	}
	if r.has("breaker_min_requests") && p.BreakerErrorRate.V == 0 {
		return "breaker_min_requests", errors.New("breaker_min_requests goes with breaker_error_rate")
	}
	return "", nil
}

// duration returns the value of a breaker Duration key.
func (r *Route) duration(key string) int64 {
	if key == "breaker_window" {
		return int64(r.BreakerWindow.Duration)
	}
	return int64(r.BreakerOpen.Duration)
}

// loadFallbackFile resolves fallback_file from dir and checks that it is
// a regular file anx can read, within the size the proxy keeps in memory.
func (r *Route) loadFallbackFile(dir string) error {
	if r.FallbackFile == "" {
		return nil
	}
	r.FallbackFile = resolve(dir, r.FallbackFile)
	st, err := os.Stat(r.FallbackFile)
	switch {
	case err != nil:
		return fmt.Errorf("cannot read %s: %v", r.FallbackFile, errors.Unwrap(err))
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", r.FallbackFile)
	case st.Size() > 1<<20:
		return fmt.Errorf("%s is larger than 1 MiB, the most a fallback file may be", r.FallbackFile)
	}
	f, err := os.Open(r.FallbackFile)
	if err != nil {
		return fmt.Errorf("cannot read %s: %v", r.FallbackFile, errors.Unwrap(err))
	}
	return f.Close()
}

// protection maps the keys onto proxy.Protection.
func (p *Protection) protection() proxy.Protection {
	return proxy.Protection{
		MaxConns:     p.MaxConns.N,
		MaxQueue:     p.MaxQueue.N,
		QueueTimeout: p.QueueTimeout.Duration,
		Breaker: proxy.Breaker{
			Failures:    p.BreakerFailures.N,
			ErrorRate:   p.BreakerErrorRate.V,
			Window:      p.BreakerWindow.Duration,
			MinRequests: p.BreakerMinRequests.N,
			Open:        p.BreakerOpen.Duration,
			Probes:      p.BreakerProbes.N,
		},
		FallbackFile:   p.FallbackFile,
		FallbackStatus: p.FallbackStatus,
		StaleIfError:   p.StaleIfError.Duration,
	}
}
