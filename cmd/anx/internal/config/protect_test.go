package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anx-gateway/anx/core/proxy"
)

func TestProtectionKeys(t *testing.T) {
	page := filepath.Join(t.TempDir(), "down.html")
	if err := os.WriteFile(page, []byte("down"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, `
[[site]]
hosts = ["a.test"]
[[site.route]]
path = "/api/"
proxy = ["http://127.0.0.1:9000", "http://127.0.0.1:9001"]
max_conns = 100
max_queue = 50
queue_timeout = "2s"
breaker_failures = 5
breaker_error_rate = "50%"
breaker_window = "30s"
breaker_min_requests = 40
breaker_open = "1m"
breaker_probes = 2
fallback_file = "`+page+`"
fallback_status = 200
[[site.route]]
path = "/"
proxy = ["http://127.0.0.1:9000"]
stale_if_error = "10m"
`)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Sites[0].Routes[0].ProxyConfig("", nil, nil).Protect
	want := proxy.Protection{MaxConns: 100, MaxQueue: 50, QueueTimeout: 2 * time.Second,
		Breaker:      proxy.Breaker{Failures: 5, ErrorRate: 0.5, Window: 30 * time.Second, MinRequests: 40, Open: time.Minute, Probes: 2},
		FallbackFile: page, FallbackStatus: 200}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got := cfg.Sites[0].Routes[1].ProxyConfig("", nil, nil).Protect; got != (proxy.Protection{StaleIfError: 10 * time.Minute}) {
		t.Errorf("stale route: %+v", got)
	}
}

func TestBadProtectionKeys(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`max_conns = -1`, `:6: key "site.route.max_conns"`},
		{`max_queue = 5`, `:6: key "site.route.max_queue": max_queue needs max_conns`},
		{`breaker_error_rate = 1.5`, `:6: key "site.route.breaker_error_rate"`},
		{`breaker_error_rate = "150%"`, `:6: key "site.route.breaker_error_rate"`},
		{`breaker_open = "soon"`, `:6: key "site.route.breaker_open"`},
		{`breaker_open = "1m"`, `:6: key "site.route.breaker_open": breaker_open needs breaker_failures`},
		{`fallback_status = 99`, `:6: key "site.route.fallback_status"`},
		{`fallback_file = "/no/such/file.html"`, `:6: key "site.route.fallback_file": cannot read /no/such/file.html`},
		{`stale_if_error = "-1m"`, `:6: key "site.route.stale_if_error"`},
	} {
		path := writeConfig(t, `
[[site]]
hosts = ["a.test"]
[[site.route]]
path = "/"
`+tc.line+`
proxy = ["http://127.0.0.1:9000"]
`)
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.line, err, tc.want)
		}
	}
	path := writeConfig(t, `
[[site]]
hosts = ["a.test"]
[[site.route]]
path = "/"
max_conns = 3
respond = "ok"
`)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), `:6: key "site.route.max_conns": max_conns is a proxy option`) {
		t.Errorf("max_conns without proxy: %v", err)
	}
}
