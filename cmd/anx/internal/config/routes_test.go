package config

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/")

// dump writes what a config's sites and routes became, one fact a line,
// the proxy routes as the proxy.Config they give.
func dump(cfg *Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "trusted_proxies %v\n", cfg.TrustedProxies)
	for i, s := range cfg.Sites {
		fmt.Fprintf(&b, "site %d hosts=%v root=%q\n", i+1, s.Hosts, s.Root)
		for j := range s.Routes {
			r := &s.Routes[j]
			fmt.Fprintf(&b, "  route %d path=%q strip_prefix=%v kind=%s", j+1, r.Path, r.StripPrefix, r.Kind())
			switch r.Kind() {
			case "redirect":
				fmt.Fprintf(&b, " redirect=%q status=%d", r.Redirect, r.Status)
			case "respond":
				fmt.Fprintf(&b, " respond=%q status=%d", r.Respond, r.Status)
			}
			if r.Root != "" {
				fmt.Fprintf(&b, " root=%q", r.Root)
			}
			b.WriteString("\n")
			if strings.Contains(r.Kind(), "proxy") {
				pc := r.ProxyConfig(s.Hosts[0]+" "+r.Path, cfg.TrustedPrefixes(), nil)
				fmt.Fprintf(&b, "    tls_ca=%q loaded=%v\n", r.TLSCA, pc.TLS.RootCAs != nil)
				pc.TLS.RootCAs = nil
				fmt.Fprintf(&b, "    %+v\n", pc)
			}
		}
	}
	return b.String()
}

// TestRoutesGolden loads testdata/routes.toml, which sets every route
// key, and compares what it became with testdata/routes.golden (go test
// -update rewrites it).
func TestRoutesGolden(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "routes.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	got := dump(&cfg)
	golden := filepath.Join("testdata", "routes.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the parsed config differs from %s (go test -update rewrites it):\n%s", golden, got)
	}
	for _, r := range cfg.Sites[0].Routes {
		if r.Kind() == "proxy" {
			if c := r.ProxyConfig("x", nil, nil); c.Validate() != nil {
				t.Errorf("route %s: proxy.Config.Validate: %v", r.Path, c.Validate())
			}
		}
	}
}

// A bad route names the file, the line and the key.
func TestBadRoutes(t *testing.T) {
	const site = "[[site]]\nhosts = [\"a.test\"]\n[[site.route]]\n" // the route's keys start on line 4
	cases := []struct {
		name, text, want string
	}{
		{"bad upstream URL", site + "path = \"/\"\nproxy = [\"ftp://x\"]\n", `:5: key "site.route.proxy": upstream "ftp://x": the scheme must be`},
		{"upstream with a path", site + "path = \"/\"\nproxy = [\"http://x/app\"]\n", `:5: key "site.route.proxy": upstream "http://x/app": give only scheme://host:port`},
		{"upstream without host", site + "path = \"/\"\nproxy = [\"http://:80\"]\n", `:5: key "site.route.proxy": upstream "http://:80" has no host`},
		{"unix without path", site + "path = \"/\"\nproxy = [\"unix:app.sock\"]\n", `:5: key "site.route.proxy": upstream "unix:app.sock": want unix:/path`},
		{"unknown key", site + "path = \"/\"\nproxy = [\"http://x\"]\nlb_polcy = \"first\"\n", `:6: unknown key "site.route.lb_polcy"`},
		{"bad policy", site + "path = \"/\"\nproxy = [\"http://x\"]\nlb_policy = \"fastest\"\n", `:6: key "site.route.lb_policy": unknown load-balancing policy "fastest"`},
		{"bad duration", site + "path = \"/\"\nproxy = [\"http://x\"]\nconnect_timeout = \"soon\"\n", `:6: key "site.route.connect_timeout": want a duration`},
		{"bad size", site + "path = \"/\"\nproxy = [\"http://x\"]\nretry_body_bytes = \"big\"\n", `:6: key "site.route.retry_body_bytes": want a size`},
		{"negative count", site + "path = \"/\"\nproxy = [\"http://x\"]\nkeepalive = -1\n", `:6: key "site.route.keepalive": want a whole number`},
		{"no path", site + "proxy = [\"http://x\"]\n", `:3: [[site.route]]: every route needs a path`},
		{"relative path", site + "path = \"api/\"\nproxy = [\"http://x\"]\n", `:4: key "site.route.path": the path must start with "/"`},
		{"strip on exact", site + "path = \"=/a\"\nstrip_prefix = true\nrespond = \"x\"\n", `:5: key "site.route.strip_prefix": strip_prefix does not go with an exact`},
		{"nothing serves", site + "path = \"/\"\n", `:3: [[site.route]]: a route needs exactly one of proxy, root, redirect and respond`},
		{"two answers", site + "path = \"/\"\nredirect = \"/x\"\nrespond = \"y\"\n", `:3: [[site.route]]: a route needs exactly one of`},
		{"root and redirect", site + "path = \"/\"\nroot = \".\"\nredirect = \"/x\"\n", `:3: [[site.route]]: a route needs exactly one of`},
		{"empty proxy list", site + "path = \"/\"\nproxy = []\n", `:5: key "site.route.proxy": the proxy list is empty`},
		{"proxy option without proxy", site + "path = \"/\"\nroot = \".\"\n\nmax_tries = 2\n", `:7: key "site.route.max_tries": max_tries is a proxy option, and this route has no proxy`},
		{"header table without proxy", site + "path = \"/\"\nrespond = \"x\"\n[site.route.header_up]\nset = { A = \"1\" }\n", `:6: key "site.route.header_up": header_up is a proxy option`},
		{"weights of another length", site + "path = \"/\"\nproxy = [\"http://a\", \"http://b\"]\nweights = [1]\n", `:6: key "site.route.weights": 1 weights for 2 upstreams`},
		{"zero weight", site + "path = \"/\"\nproxy = [\"http://a\"]\nweights = [0]\n", `:6: key "site.route.weights": weight 0`},
		{"header policy without header", site + "path = \"/\"\nproxy = [\"http://a\"]\nlb_policy = \"header\"\n", `:3: [[site.route]]: lb_policy = "header" needs lb_header`},
		{"lb_header with another policy", site + "path = \"/\"\nproxy = [\"http://a\"]\nlb_header = \"X\"\n", `:6: key "site.route.lb_header": lb_header goes with lb_policy = "header"`},
		{"lb_cookie with another policy", site + "path = \"/\"\nproxy = [\"http://a\"]\nlb_cookie = \"c\"\n", `:6: key "site.route.lb_cookie": lb_cookie goes with lb_policy = "cookie"`},
		{"health option without uri", site + "path = \"/\"\nproxy = [\"http://a\"]\nhealth_interval = \"1s\"\n", `:6: key "site.route.health_interval": health_interval needs health_uri`},
		{"relative health uri", site + "path = \"/\"\nproxy = [\"http://a\"]\nhealth_uri = \"health\"\n", `:6: key "site.route.health_uri": health check path "health"`},
		{"bad health status", site + "path = \"/\"\nproxy = [\"http://a\"]\nhealth_uri = \"/h\"\nhealth_status = 700\n", `:7: key "site.route.health_status": health check status 700`},
		{"zero passes", site + "path = \"/\"\nproxy = [\"http://a\"]\nhealth_uri = \"/h\"\nhealth_passes = 0\n", `:7: key "site.route.health_passes": health_passes must be 1 or more`},
		{"bad unhealthy status", site + "path = \"/\"\nproxy = [\"http://a\"]\nunhealthy_status = [42]\n", `:6: key "site.route.unhealthy_status": unhealthy status 42`},
		{"bad header name", site + "path = \"/\"\nproxy = [\"http://a\"]\nheader_up = { set = { \"X A\" = \"1\" } }\n", `:6: key "site.route.header_up": "X A" is not a header field name`},
		{"header value with a newline", site + "path = \"/\"\nproxy = [\"http://a\"]\nheader_down = { add = { \"X\" = \"a\\nb\" } }\n", `:6: key "site.route.header_down": the value of X holds a CR, LF or NUL`},
		{"missing tls_ca", site + "path = \"/\"\nproxy = [\"https://a\"]\ntls_ca = \"nope.pem\"\n", `:6: key "site.route.tls_ca": cannot read`},
		{"tls_ca not PEM", site + "path = \"/\"\nproxy = [\"https://a\"]\ntls_ca = \"anx.toml\"\n", `:6: key "site.route.tls_ca":`},
		{"status without an answer", site + "path = \"/\"\nproxy = [\"http://a\"]\nstatus = 200\n", `:6: key "site.route.status": status goes with redirect or respond only`},
		{"redirect status", site + "path = \"/\"\nredirect = \"/x\"\nstatus = 200\n", `:6: key "site.route.status": redirect status 200`},
		{"redirect with a space", site + "path = \"/\"\nredirect = \"/x y\"\n", `:5: key "site.route.redirect": redirect target "/x y"`},
		{"respond status", site + "path = \"/\"\nrespond = \"x\"\nstatus = 99\n", `:6: key "site.route.status": respond status 99`},
		{"bad trusted proxy", "trusted_proxies = [\"10.0.0.0/33\"]\n" + site + "path = \"/\"\nrespond = \"x\"\n", `:1: key "trusted_proxies": want an address or a CIDR`},
		{"route outside a site", "[[site.route]]\npath = \"/\"\n", `:1: [[site.route]]: a route needs exactly one of`},
		{"second site's route", site + "path = \"/\"\nrespond = \"x\"\n[[site]]\nhosts = [\"b.test\"]\n[[site.route]]\npath = \"/\"\nrespond = \"y\"\nweights = [1]\n", `:11: key "site.route.weights": weights is a proxy option`},
	}
	for _, c := range cases {
		path := writeConfig(t, c.text)
		_, err := Load(path)
		if err == nil {
			t.Errorf("%s: loaded without error", c.name)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, path) || !strings.Contains(msg, c.want) {
			t.Errorf("%s:\n got  %q\n want %q after the file name", c.name, msg, c.want)
		}
	}
}

// Validate checks routes built without a file (from flags) as Load does,
// and a site with routes needs no root.
func TestValidateRoutes(t *testing.T) {
	good := Config{HTTPS: ":1", HTTP: ":2", Sites: []Site{{Hosts: []string{"a.test"},
		Routes: []Route{{Path: "/", Proxy: []Upstream{{"http://127.0.0.1:3000"}}}}}}}
	if err := good.Validate(); err != nil {
		t.Errorf("a site with a proxy route and no root: %v", err)
	}
	bad := map[string]Route{
		"no upstream, nothing else": {Path: "/"},
		"relative path":             {Path: "x", Respond: "x"},
		"weights":                   {Path: "/", Proxy: []Upstream{{"http://a"}}, Weights: []int{1, 2}},
	}
	for name, r := range bad {
		cfg := good
		cfg.Sites = []Site{{Hosts: []string{"a.test"}, Routes: []Route{r}}}
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
	noRoot := good
	noRoot.Sites = []Site{{Hosts: []string{"a.test"}}}
	if err := noRoot.Validate(); err == nil || !strings.Contains(err.Error(), "needs a root or at least one") {
		t.Errorf("a site with neither root nor route: %v", err)
	}
}

// The file's 0 for max_fails, keepalive and retry_body_bytes turns them
// off, which proxy.Config spells as a negative value; left out, they are
// the proxy's defaults (zero).
func TestZeroTurnsOff(t *testing.T) {
	path := writeConfig(t, "[[site]]\nhosts = [\"a.test\"]\n[[site.route]]\npath = \"/\"\nproxy = [\"http://a\"]\nmax_fails = 0\nkeepalive = 0\nretry_body_bytes = 0\n[[site.route]]\npath = \"/\"\nproxy = [\"http://a\"]\n")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	off := cfg.Sites[0].Routes[0].ProxyConfig("", nil, nil)
	if off.Passive.MaxFails != -1 || off.KeepAlive != -1 || off.RetryBodyBytes != -1 {
		t.Errorf("zeros: max_fails %d keepalive %d retry_body_bytes %d, want -1 each", off.Passive.MaxFails, off.KeepAlive, off.RetryBodyBytes)
	}
	def := cfg.Sites[0].Routes[1].ProxyConfig("", nil, nil)
	if def.Passive.MaxFails != 0 || def.KeepAlive != 0 || def.RetryBodyBytes != 0 {
		t.Errorf("unset: max_fails %d keepalive %d retry_body_bytes %d, want 0 each (the defaults)", def.Passive.MaxFails, def.KeepAlive, def.RetryBodyBytes)
	}
}
