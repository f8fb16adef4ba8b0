package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/anx-gateway/anx/core/limit"
)

// RateLimit is a route's rate_limit table, nginx's limit_req for the
// route: rate = "100/s" (also /m, /h), burst (default 0), key (default
// "client_ip"; "header:NAME", "path", "global"), nodelay and delay.
// README.md documents each key; keep the two in step.
type RateLimit struct {
	Rate    LimitRate   `toml:"rate"`
	Burst   LimitBurst  `toml:"burst"`
	Key     LimitKey    `toml:"key"`
	NoDelay bool        `toml:"nodelay"`
	Delay   *LimitDelay `toml:"delay"`
}

// LimitBurst is a rate limit's burst: a count of requests. (go-toml names
// only the rate_limit table for a bad value inside it, so the message
// names the key.)
type LimitBurst struct{ N int }

// UnmarshalText parses a whole number of zero or more.
func (c *LimitBurst) UnmarshalText(b []byte) error { return parseLimitCount("burst", b, &c.N) }

// LimitDelay is a rate limit's delay: how many requests of the burst are
// not delayed.
type LimitDelay struct{ N int }

// UnmarshalText parses a whole number of zero or more.
func (c *LimitDelay) UnmarshalText(b []byte) error { return parseLimitCount("delay", b, &c.N) }

func parseLimitCount(key string, b []byte, n *int) error {
	var c Count
	if err := c.UnmarshalText(b); err != nil {
		return valueError(b, "%s: want a whole number of zero or more, got %q", key, b)
	}
	*n = c.N
	return nil
}

// LimitRate is a rate as limit.ParseRate reads it.
type LimitRate struct{ limit.Rate }

// UnmarshalText parses "100/s", "30/m" or "500/h". An error names the
// key: go-toml names only the rate_limit table.
func (r *LimitRate) UnmarshalText(b []byte) error {
	v, err := limit.ParseRate(string(b))
	if err != nil {
		return valueError(b, "%s", strings.TrimPrefix(err.Error(), "limit: "))
	}
	r.Rate = v
	return nil
}

// LimitKey is what a rate limit counts by, as limit.ParseKey reads it.
type LimitKey struct{ limit.Key }

// UnmarshalText parses "client_ip", "header:NAME", "path" or "global".
func (k *LimitKey) UnmarshalText(b []byte) error {
	v, err := limit.ParseKey(string(b))
	if err != nil {
		return valueError(b, "%s", strings.TrimPrefix(err.Error(), "limit: "))
	}
	k.Key = v
	return nil
}

// check reports what is wrong with the table as a whole (each value was
// checked as it was read), with the key at fault; a route without one
// has nothing wrong.
func (rl *RateLimit) check() (key string, err error) {
	switch {
	case rl == nil:
		return "", nil
	case rl.Rate.N == 0:
		return "rate_limit", errors.New("rate_limit needs a rate, such as rate = \"100/s\"")
	case rl.Burst.N > limit.MaxBurst:
		return "rate_limit", fmt.Errorf("burst %d: want at most %d", rl.Burst.N, limit.MaxBurst)
	case rl.Delay != nil && rl.NoDelay:
		return "rate_limit", errors.New("delay and nodelay together: nodelay lets the whole burst through at once, delay = N only its first N")
	case rl.Delay != nil && rl.Delay.N > rl.Burst.N:
		return "rate_limit", fmt.Errorf("delay %d is more than the burst (%d): at most the burst goes through undelayed", rl.Delay.N, rl.Burst.N)
	}
	if err := rl.LimitConfig().Validate(); err != nil {
		return "rate_limit", errors.New(strings.TrimPrefix(err.Error(), "limit: "))
	}
	return "", nil
}

// LimitConfig returns what the limiter of the route enforces.
func (rl *RateLimit) LimitConfig() limit.Config {
	c := limit.Config{Rate: rl.Rate.Rate, Burst: rl.Burst.N, NoDelay: rl.NoDelay}
	if rl.Delay != nil {
		c.Delay = rl.Delay.N
	}
	return c
}
