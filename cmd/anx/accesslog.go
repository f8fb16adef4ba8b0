package main

import (
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/anx-gateway/anx/cmd/anx/internal/config"
	"github.com/anx-gateway/anx/core/accesslog"
	"github.com/anx-gateway/anx/core/message"
)

// accessLogs is the gateway's access log: the Observer, and its Writers,
// one per destination ("stderr" or a file's path) whichever sites share
// it. The main goroutine owns it (newGateway, reload, SIGUSR1, shutdown);
// the Observer runs on the protocol servers' goroutines, and a Writer no
// longer used is closed by a timer's goroutine.
type accessLogs struct {
	logger  *accesslog.Logger
	writers map[string]*accesslog.Writer // by destination
	retired []*accesslog.Writer          // no longer used: closed after a linger, or at shutdown
	log     *slog.Logger
	// ever lists every Writer opened, retired ones included, so that the
	// drop count only grows; the metrics read it from their goroutine.
	ever atomic.Pointer[[]*accesslog.Writer]
}

// accessPlan is the access log of a config, its new files open, not yet
// serving (prepareAccessLog, then use or discard).
type accessPlan struct {
	cfg     *accesslog.Config
	writers map[string]*accesslog.Writer // every destination it writes to
	opened  []*accesslog.Writer          // the writers opened for it
}

// openAccessLogs starts the access log of cfg's sites, whose routes are
// named by routes (handlers.routes, in config order), and adds it to the
// gateway's observers.
func (gw *gateway) openAccessLogs(cfg *config.Config, routes []*message.RouteInfo) error {
	a := &accessLogs{writers: map[string]*accesslog.Writer{}, log: gw.log}
	plan, err := a.prepare(cfg, routes)
	if err != nil {
		return err
	}
	a.writers = plan.writers
	a.logger = accesslog.New(plan.cfg)
	a.publish(plan.opened)
	gw.access = a
	gw.observers = append(gw.observers, a.logger)
	return nil
}

// prepare opens what cfg's access logs need that a is not writing to yet.
// A request that no route served is logged by the site of its host, or
// else by the first site.
func (a *accessLogs) prepare(cfg *config.Config, routes []*message.RouteInfo) (*accessPlan, error) {
	plan := &accessPlan{
		cfg:     &accesslog.Config{Routes: map[*message.RouteInfo]accesslog.Site{}, TrustedProxies: cfg.TrustedPrefixes()},
		writers: map[string]*accesslog.Writer{},
	}
	bySite := map[string]accesslog.Site{}
	for i := range cfg.Sites {
		s := &cfg.Sites[i]
		site, err := a.site(plan, s)
		if err != nil {
			plan.discard()
			return nil, err
		}
		bySite[siteName(s)] = site
		if i == 0 {
			plan.cfg.Unrouted = site
		}
		for _, h := range config.SiteHosts(*s, cfg.Sites) {
			if h != "*" {
				_ = plan.cfg.Hosts.Add(h, site) // the config has no bad or repeated host: the routing table refused it
			}
		}
	}
	for _, rt := range routes {
		plan.cfg.Routes[rt] = bySite[rt.Site]
	}
	return plan, nil
}

// site is where plan logs the requests of s, opening its file if nobody
// writes to it yet.
func (a *accessLogs) site(plan *accessPlan, s *config.Site) (accesslog.Site, error) {
	format := accesslog.JSON
	if s.AccessLogFormat == config.AccessLogCombined {
		format = accesslog.Combined
	}
	dest := s.AccessLog.Destination()
	if dest == config.AccessLogOff {
		return accesslog.Site{Name: siteName(s)}, nil
	}
	w := plan.writers[dest]
	if w == nil {
		w = a.writers[dest]
	}
	if w == nil {
		var err error
		if w, err = a.open(dest); err != nil {
			return accesslog.Site{}, err
		}
		plan.opened = append(plan.opened, w)
	}
	plan.writers[dest] = w
	return accesslog.Site{Out: w, Format: format, Name: siteName(s)}, nil
}

// open starts the Writer of a destination.
func (a *accessLogs) open(dest string) (*accesslog.Writer, error) {
	if dest == config.AccessLogStderr {
		return accesslog.NewStream(os.Stderr, 0, a.log), nil
	}
	return accesslog.OpenFile(dest, 0, a.log)
}

// discard closes what the plan opened: it will not serve.
func (p *accessPlan) discard() {
	for _, w := range p.opened {
		w.Close()
	}
}

// use makes plan the access log from the next request on. The routes of
// the config it replaces (old) keep logging, to their site's new settings
// or, for a site that is gone, to its old ones, while the requests they
// serve end; a Writer that no destination uses any more is closed after
// linger, and what is written to it after that is counted as dropped.
func (a *accessLogs) use(plan *accessPlan, old []*message.RouteInfo, linger time.Duration) {
	bySite := map[string]accesslog.Site{}
	for rt, s := range plan.cfg.Routes {
		bySite[rt.Site] = s
	}
	previous := a.logger.Config()
	for _, rt := range old {
		if s, ok := bySite[rt.Site]; ok {
			plan.cfg.Routes[rt] = s
		} else if s, ok := previous.Routes[rt]; ok {
			plan.cfg.Routes[rt] = s
		}
	}
	a.logger.Set(plan.cfg)
	a.publish(plan.opened)
	var unused []*accesslog.Writer
	for dest, w := range a.writers {
		if plan.writers[dest] != w {
			unused = append(unused, w)
		}
	}
	a.writers = plan.writers
	if len(unused) > 0 {
		a.retired = append(a.retired, unused...)
		time.AfterFunc(linger, func() { closeWriters(unused) })
	}
}

// reopen opens every log file again (SIGUSR1, after logrotate moved them).
func (a *accessLogs) reopen() {
	if a == nil {
		return
	}
	for _, w := range a.writers {
		w.Reopen()
	}
	a.log.Info("access logs reopened", "files", a.files())
}

// files counts the destinations that are files.
func (a *accessLogs) files() int {
	n := 0
	for _, w := range a.writers {
		if w.Path() != "" {
			n++
		}
	}
	return n
}

// publish adds opened to the Writers that dropped counts.
func (a *accessLogs) publish(opened []*accesslog.Writer) {
	var all []*accesslog.Writer
	if p := a.ever.Load(); p != nil {
		all = *p
	}
	all = append(slices.Clip(all), opened...)
	a.ever.Store(&all)
}

// dropped is the number of lines the access logs dropped since anx
// started (a full buffer, a failed write), for the metrics: it never goes
// down. Any goroutine may call it.
func (a *accessLogs) dropped() uint64 {
	if a == nil {
		return 0
	}
	var n uint64
	if p := a.ever.Load(); p != nil {
		for _, w := range *p {
			n += w.Dropped()
		}
	}
	return n
}

// close writes what is queued and closes every file, the retired ones
// too (closing one twice is harmless).
func (a *accessLogs) close() {
	if a == nil {
		return
	}
	closeWriters(a.retired)
	for _, w := range a.writers {
		w.Close()
	}
}

// closeWriters closes writers; they log their own problems.
func closeWriters(ws []*accesslog.Writer) {
	for _, w := range ws {
		w.Close()
	}
}
