package main

import (
	"cmp"
	"slices"

	"github.com/anx-gateway/anx/cmd/anx/internal/admin"
	"github.com/anx-gateway/anx/cmd/anx/internal/config"
	"github.com/anx-gateway/anx/core/limit"
	"github.com/anx-gateway/anx/core/message"
)

// limiterID names a route's limiter across reloads: a reload keeps the
// limiter, and the buckets of its keys, of a route that keeps its site,
// its path and its limit.
type limiterID struct {
	site, path string
	cfg        limit.Config
	key        limit.Key
}

// rateLimited wraps h, the handler of route r of site s, in the route's
// rate limit when it has one. The limiter is the running config's for
// the same limiterID, else a new one; opened keeps it for the next
// reload.
func (gw *gateway) rateLimited(cfg *config.Config, s *config.Site, r *config.Route, h message.Handler, opened *handlers) (message.Handler, error) {
	if r.RateLimit == nil {
		return h, nil
	}
	id := limiterID{site: siteName(s), path: r.Path, cfg: r.RateLimit.LimitConfig(), key: r.RateLimit.Key.Key}
	l := gw.handlers.limiters[id]
	if l == nil {
		var err error
		if l, err = limit.New(id.cfg); err != nil {
			return nil, err
		}
	}
	if opened.limiters == nil {
		opened.limiters = map[limiterID]*limit.Limiter{}
	}
	opened.limiters[id] = l
	return &limit.Handler{Limiter: l, Key: id.key, Trusted: cfg.TrustedPrefixes(), Handler: h}, nil
}

// routeLimiter is a route's limiter, named for the metrics.
type routeLimiter struct {
	site, path string
	limiter    *limit.Limiter
}

// routeLimiters lists the limiters of h's routes by site and path.
func routeLimiters(h *handlers) *[]routeLimiter {
	out := make([]routeLimiter, 0, len(h.limiters))
	for id, l := range h.limiters {
		out = append(out, routeLimiter{site: id.site, path: id.path, limiter: l})
	}
	slices.SortFunc(out, func(a, b routeLimiter) int {
		return cmp.Or(cmp.Compare(a.site, b.site), cmp.Compare(a.path, b.path))
	})
	return &out
}

// rateLimits reads the counts of the routes' limiters, for the admin
// listener's goroutines.
func (a *adminState) rateLimits() []admin.RateLimit {
	ls := a.limiters.Load()
	if ls == nil {
		return nil
	}
	out := make([]admin.RateLimit, 0, len(*ls))
	for _, l := range *ls {
		out = append(out, admin.RateLimit{Site: l.site, Route: l.path, Limited: l.limiter.Limited(), Delayed: l.limiter.Delayed(), Keys: l.limiter.Len()})
	}
	return out
}
