package config

import (
	"strings"
	"testing"
	"time"

	"github.com/anx-gateway/anx/core/limit"
)

func TestRateLimitKeys(t *testing.T) {
	path := writeConfig(t, `
[[site]]
hosts = ["a.test"]
[[site.route]]
path = "/api/"
respond = "ok"
rate_limit = { rate = "100/s", burst = 20, key = "client_ip" }
[[site.route]]
path = "/login"
respond = "ok"
rate_limit = { rate = "30/m", key = "header:X-Api-Key", nodelay = true, burst = 5 }
[[site.route]]
path = "/slow"
respond = "ok"
rate_limit = { rate = "500/h", burst = 8, delay = 4, key = "path" }
[[site.route]]
path = "/all"
respond = "ok"
rate_limit = { rate = "1/s", key = "global" }
[[site.route]]
path = "/free"
respond = "ok"
`)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	routes := cfg.Sites[0].Routes
	want := []struct {
		cfg limit.Config
		key string
	}{
		{limit.Config{Rate: limit.Rate{N: 100, Period: time.Second}, Burst: 20}, "client_ip"},
		{limit.Config{Rate: limit.Rate{N: 30, Period: time.Minute}, Burst: 5, NoDelay: true}, "header:X-Api-Key"},
		{limit.Config{Rate: limit.Rate{N: 500, Period: time.Hour}, Burst: 8, Delay: 4}, "path"},
		{limit.Config{Rate: limit.Rate{N: 1, Period: time.Second}}, "global"},
	}
	for i, w := range want {
		rl := routes[i].RateLimit
		if rl == nil {
			t.Errorf("route %d: no rate limit", i+1)
			continue
		}
		if got := rl.LimitConfig(); got != w.cfg || rl.Key.String() != w.key {
			t.Errorf("route %d: %+v by %s, want %+v by %s", i+1, got, rl.Key, w.cfg, w.key)
		}
	}
	if routes[4].RateLimit != nil {
		t.Errorf("route 5: a rate limit it does not set: %+v", routes[4].RateLimit)
	}
}

// A bad rate_limit names the file, the line and the key.
func TestBadRateLimit(t *testing.T) {
	route := "[[site]]\nhosts = [\"a.test\"]\n[[site.route]]\npath = \"/\"\nrespond = \"ok\"\n"
	cases := []struct{ name, text, want string }{
		{"malformed rate", route + `rate_limit = { rate = "100/fortnight" }` + "\n", `:6: key "site.route.rate_limit": rate "100/fortnight": the unit must be s, m or h`},
		{"rate without unit", route + `rate_limit = { rate = "100" }` + "\n", `:6: key "site.route.rate_limit": rate "100": want requests per unit`},
		{"zero rate", route + `rate_limit = { rate = "0/s" }` + "\n", `:6: key "site.route.rate_limit"`},
		{"negative burst", route + `rate_limit = { rate = "1/s", burst = -1 }` + "\n", `:6: key "site.route.rate_limit": burst: want a whole number of zero or more, got "-1"`},
		{"unknown key kind", route + `rate_limit = { rate = "1/s", key = "cookie:sid" }` + "\n", `:6: key "site.route.rate_limit": key "cookie:sid": want "client_ip", "header:NAME", "path" or "global"`},
		{"bad header name", route + `rate_limit = { rate = "1/s", key = "header:a b" }` + "\n", `:6: key "site.route.rate_limit"`},
		{"unknown option", route + `rate_limit = { rate = "1/s", zone = "one" }` + "\n", `:6: unknown key "site.route.zone"`},
		{"no rate", route + "\n" + `rate_limit = { burst = 5 }` + "\n", `:7: key "site.route.rate_limit": rate_limit needs a rate`},
		{"delay and nodelay", route + `rate_limit = { rate = "1/s", burst = 5, delay = 2, nodelay = true }` + "\n", `:6: key "site.route.rate_limit": delay and nodelay together`},
		{"delay over burst", route + `rate_limit = { rate = "1/s", burst = 5, delay = 6 }` + "\n", `:6: key "site.route.rate_limit": delay 6 is more than the burst`},
		{"huge burst", route + `rate_limit = { rate = "1/s", burst = 2000000 }` + "\n", `:6: key "site.route.rate_limit": burst 2000000: want at most 1000000`},
		{"delay too long", route + `rate_limit = { rate = "10/m", burst = 6 }` + "\n", `:6: key "site.route.rate_limit": without nodelay the burst's last request would wait 36s (burst / rate), more than 30s`},
		{"not a table", route + `rate_limit = "100/s"` + "\n", `:6: key "site.route.rate_limit"`},
	}
	for _, c := range cases {
		path := writeConfig(t, c.text)
		_, err := Load(path)
		if err == nil {
			t.Errorf("%s: loaded without error", c.name)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, path) || !strings.Contains(msg, c.want) {
			t.Errorf("%s: error %q, want it to start with the path and contain %q", c.name, msg, c.want)
		}
	}
}
