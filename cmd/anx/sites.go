package main

import (
	"fmt"

	"github.com/anx-gateway/anx/cmd/anx/internal/config"
	"github.com/anx-gateway/anx/core/limit"
	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/proxy"
	"github.com/anx-gateway/anx/core/route"
	"github.com/anx-gateway/anx/core/static"
)

// handlers are what a config's sites opened: the static and proxy
// handlers under the routing tables, to close when the tables are
// replaced or the gateway stops.
type handlers struct {
	statics []*static.Handler
	proxies []*proxy.Handler
	// routes names every route of the sites, a site's own files included,
	// in config order: what the metrics count by.
	routes   []*message.RouteInfo
	limiters map[limiterID]*limit.Limiter // the routes' rate limiters (ratelimit.go), which a reload keeps
}

// name wraps h so that it names its route in each request's Trace, and
// keeps the name.
func (h *handlers) name(site, path string, handler message.Handler) message.Handler {
	info := &message.RouteInfo{Site: site, Path: path}
	h.routes = append(h.routes, info)
	return route.Named{Info: info, Handler: handler}
}

// closeStatics closes the static handlers; errors do not matter any more.
func (h *handlers) closeStatics() {
	for _, s := range h.statics {
		_ = s.Close()
	}
}

// closeProxies stops the proxy handlers' health checks and gives their
// upstream connections back to the shared transports; requests in flight
// on them finish.
func (h *handlers) closeProxies() {
	for _, p := range h.proxies {
		_ = p.Close()
	}
}

// close closes everything.
func (h *handlers) close() {
	h.closeStatics()
	h.closeProxies()
}

// siteHandlers builds the handler of each site of cfg, in config order:
// its path routes over its root, or its root alone. Proxy routes share
// gw's transports and log to gw's logger. On error whatever was opened is
// in opened, for the caller to close.
func (gw *gateway) siteHandlers(cfg *config.Config, opened *handlers) ([]message.Handler, error) {
	out := make([]message.Handler, 0, len(cfg.Sites))
	for i := range cfg.Sites {
		h, err := gw.siteHandler(cfg, &cfg.Sites[i], opened)
		if err != nil {
			return nil, fmt.Errorf("site %d (%s): %w", i+1, siteName(&cfg.Sites[i]), err)
		}
		out = append(out, h)
	}
	return out, nil
}

// siteName names a site in messages: its first host.
func siteName(s *config.Site) string {
	if len(s.Hosts) == 0 {
		return "no host"
	}
	return s.Hosts[0]
}

// siteHandler builds one site's handler. A site without routes is served
// by its static handler alone, with nothing in between.
func (gw *gateway) siteHandler(cfg *config.Config, s *config.Site, opened *handlers) (message.Handler, error) {
	var root message.Handler
	if s.Root != "" {
		h, err := openStatic(static.Config{Root: s.Root, Browse: s.Browse, Fallback: s.Fallback.Path}, s, opened)
		if err != nil {
			return nil, err
		}
		root = opened.name(siteName(s), "", h)
	}
	if len(s.Routes) == 0 {
		return root, nil
	}
	paths := make([]route.Path, 0, len(s.Routes))
	for j := range s.Routes {
		r := &s.Routes[j]
		h, err := gw.routeHandler(cfg, s, r, opened)
		if err == nil {
			h, err = gw.rateLimited(cfg, s, r, h, opened)
		}
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", r.Path, err)
		}
		paths = append(paths, route.Path{Match: r.Path, StripPrefix: r.StripPrefix, Handler: opened.name(siteName(s), r.Path, h)})
	}
	return route.NewRoutes(paths, root)
}

// routeHandler builds what serves one route.
func (gw *gateway) routeHandler(cfg *config.Config, s *config.Site, r *config.Route, opened *handlers) (message.Handler, error) {
	switch r.Kind() {
	case "proxy":
		return gw.openProxy(cfg, s, r, opened)
	case "root":
		return openStatic(static.Config{Root: r.Root, Browse: s.Browse}, s, opened)
	case "root+proxy":
		// No listing here: a directory without an index file is the
		// application's to answer.
		files, err := openStatic(static.Config{Root: r.Root}, s, opened)
		if err != nil {
			return nil, err
		}
		app, err := gw.openProxy(cfg, s, r, opened)
		if err != nil {
			return nil, err
		}
		return route.TryFirst{Primary: files, Fallback: app}, nil
	case "redirect":
		return route.Redirect{To: r.Redirect, Status: r.Status}, nil
	case "respond":
		return route.Fixed{Status: r.Status, Body: r.Respond}, nil
	}
	return nil, fmt.Errorf("nothing serves it: give one of proxy, root, redirect and respond")
}

// openStatic opens a static handler for files with the site's symlink
// policy.
func openStatic(files static.Config, s *config.Site, opened *handlers) (*static.Handler, error) {
	files.AllowSymlinksOutside = s.AllowSymlinksOutsideRoot
	files.Compress, files.CompressMinSize = s.CompressSet(), s.CompressMinBytes()
	h, err := static.New(files)
	if err != nil {
		return nil, err
	}
	opened.statics = append(opened.statics, h)
	return h, nil
}

// openProxy builds a route's proxy handler on the gateway's shared
// transports, named "host path" in the logs.
func (gw *gateway) openProxy(cfg *config.Config, s *config.Site, r *config.Route, opened *handlers) (*proxy.Handler, error) {
	name := siteName(s) + " " + r.Path
	pc := r.ProxyConfig(name, cfg.TrustedPrefixes(), gw.log)
	pc.Compress, pc.CompressMinSize = s.CompressSet(), s.CompressMinBytes()
	h, err := proxy.New(pc, gw.transports)
	if err != nil {
		return nil, err
	}
	opened.proxies = append(opened.proxies, h)
	return h, nil
}
