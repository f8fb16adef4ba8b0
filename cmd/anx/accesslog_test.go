package main

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/anx-gateway/anx/cmd/anx/internal/config"
	"github.com/anx-gateway/anx/core/message"
)

// logSites is a config of sites a.test, b.test and c.test with the given
// access_log values (relative paths under dir).
func logSites(dir string, dests ...string) (*config.Config, []*message.RouteInfo) {
	cfg := &config.Config{}
	var routes []*message.RouteInfo
	for i, d := range dests {
		host := string(rune('a'+i)) + ".test"
		if d != config.AccessLogStderr && d != config.AccessLogOff {
			d = filepath.Join(dir, d)
		}
		cfg.Sites = append(cfg.Sites, config.Site{Hosts: []string{host}, AccessLog: config.AccessLog{Dest: d}})
		routes = append(routes, &message.RouteInfo{Site: host})
	}
	return cfg, routes
}

func TestAccessLogsShareOneWriterPerDestination(t *testing.T) {
	dir := t.TempDir()
	gw := &gateway{log: slog.New(slog.DiscardHandler)}
	cfg, routes := logSites(dir, "shared.log", "shared.log", "off")
	if err := gw.openAccessLogs(cfg, routes); err != nil {
		t.Fatal(err)
	}
	defer gw.access.close()
	c := gw.access.logger.Config()
	if c.Routes[routes[0]].Out == nil || c.Routes[routes[0]].Out != c.Routes[routes[1]].Out {
		t.Errorf("two sites naming one file have writers %p and %p, want one", c.Routes[routes[0]].Out, c.Routes[routes[1]].Out)
	}
	if c.Routes[routes[2]].Out != nil {
		t.Errorf("the site with access_log = \"off\" has a writer")
	}
	if c.Unrouted.Out != c.Routes[routes[0]].Out {
		t.Errorf("unrouted requests do not go to the first site's log")
	}
	b, _ := c.Hosts.Lookup("b.test")
	if cs, _ := c.Hosts.Lookup("c.test"); b.Out != c.Routes[routes[0]].Out || b.Name != "b.test" || cs.Out != nil {
		t.Errorf("the sites' hosts do not name their logs (for requests no route serves): b.test %+v, c.test %+v", b, cs)
	}
	if len(gw.access.writers) != 1 || len(gw.observers) != 1 {
		t.Errorf("%d writers and %d observers, want 1 and 1", len(gw.access.writers), len(gw.observers))
	}
}

func TestAccessLogsReloadKeepsAndRetiresWriters(t *testing.T) {
	dir := t.TempDir()
	gw := &gateway{log: slog.New(slog.DiscardHandler)}
	cfg, old := logSites(dir, "kept.log", "dropped.log")
	if err := gw.openAccessLogs(cfg, old); err != nil {
		t.Fatal(err)
	}
	defer gw.access.close()
	kept, dropped := gw.access.writers[filepath.Join(dir, "kept.log")], gw.access.writers[filepath.Join(dir, "dropped.log")]
	next, routes := logSites(dir, "kept.log", "new.log")
	plan, err := gw.access.prepare(next, routes)
	if err != nil {
		t.Fatal(err)
	}
	gw.access.use(plan, old, 0)
	c := gw.access.logger.Config()
	if c.Routes[routes[0]].Out != kept {
		t.Errorf("a file named before and after the reload got a new writer")
	}
	if c.Routes[old[1]].Out != c.Routes[routes[1]].Out || c.Routes[old[0]].Out != kept {
		t.Errorf("the old routes do not log to their sites' new destinations")
	}
	deadline := time.Now().Add(2 * time.Minute)
	for dropped.Append([]byte("x\n")) { // until the retired writer, closed, refuses lines
		if time.Now().After(deadline) {
			t.Fatal("the writer no config names was not closed after the linger")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, ok := gw.access.writers[filepath.Join(dir, "dropped.log")]; ok {
		t.Errorf("the retired writer is still in use")
	}
}

func TestAccessLogsDroppedCountsRetiredWriters(t *testing.T) {
	dir := t.TempDir()
	gw := &gateway{log: slog.New(slog.DiscardHandler)}
	cfg, old := logSites(dir, "first.log")
	if err := gw.openAccessLogs(cfg, old); err != nil {
		t.Fatal(err)
	}
	defer gw.access.close()
	first := gw.access.writers[filepath.Join(dir, "first.log")]
	next, routes := logSites(dir, "second.log")
	plan, err := gw.access.prepare(next, routes)
	if err != nil {
		t.Fatal(err)
	}
	gw.access.use(plan, old, time.Hour)
	first.Close()
	first.Append([]byte("after close\n")) // dropped and counted
	second := gw.access.writers[filepath.Join(dir, "second.log")]
	second.Close()
	second.Append([]byte("after close\n"))
	if got := gw.access.dropped(); got != 2 {
		t.Errorf("dropped = %d, want 2 (one from the retired writer, one from the current)", got)
	}
}
