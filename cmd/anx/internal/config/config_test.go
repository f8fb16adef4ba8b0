package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "anx.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfigFile(t *testing.T) {
	path := writeConfig(t, `
https = "127.0.0.1:9443"
data = "state"
[timeouts]
read_header = "2s"
[limits]
max_header_bytes = "32KiB"
max_body_bytes = 1048576
max_header_count = 50
[files]
drop_behind = "off"
[[site]]
hosts = ["localhost"]
root = "site"
http_mode = "serve"
[[site]]
hosts = ["b.test"]
root = "/srv/b"
`)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	checks := []struct {
		name      string
		got, want any
	}{
		{"https", cfg.HTTPS, "127.0.0.1:9443"},
		{"http keeps its default", cfg.HTTP, ":8080"},
		{"data is relative to the file", cfg.Data, filepath.Join(dir, "state")},
		{"read_header", cfg.Timeouts.ReadHeader.Duration, 2 * time.Second},
		{"max_header_bytes with a unit", cfg.Limits.MaxHeaderBytes, Size{32 << 10}},
		{"max_body_bytes as an integer", cfg.Limits.MaxBodyBytes, Size{1 << 20}},
		{"max_header_count", cfg.Limits.MaxHeaderCount, Count{50}},
		{"drop_behind off", cfg.Files.DropBehind, Threshold{-1}},
		{"sites", len(cfg.Sites), 2},
		{"site root is relative to the file", cfg.Sites[0].Root, filepath.Join(dir, "site")},
		{"http_mode", cfg.Sites[0].HTTPMode, HTTPServe},
		{"http_mode default", cfg.Sites[1].HTTPMode, HTTPRedirect},
		{"absolute root", cfg.Sites[1].Root, "/srv/b"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("validate: %v", err)
	}
}

// A bad config file names the file, the line and the key.
func TestBadConfigNamesFileLineAndKey(t *testing.T) {
	cases := []struct {
		name, text, want string
	}{
		{"bad http_mode", "[[site]]\nhosts = [\"a.test\"]\nroot = \".\"\nhttp_mode = \"proxy\"\n", `:4: key "site.http_mode": want "redirect" or "serve", got "proxy"`},
		{"unknown key", "https = \":1\"\n[[site]]\nhosts = [\"a.test\"]\nrooot = \".\"\n", `:4: unknown key "site.rooot"`},
		{"wrong type", "https = 8443\n", `:1: key "https"`},
		{"bad duration", "[timeouts]\nidle = \"5 minutes\"\n", `:2: key "timeouts.idle": want a duration`},
		{"negative duration", "[timeouts]\nidle = \"-5s\"\n", `:2: key "timeouts.idle": want a duration of zero or more`},
		{"bad size", "[limits]\nmax_body_bytes = \"lots\"\n", `:2: key "limits.max_body_bytes": want a size`},
		{"integer for a duration", "[timeouts]\n\nread_header = 10\n", `:3: key "timeouts.read_header": want a duration such as "10s", got "10"`},
		{"bool for a mode", "[[site]]\nhosts = [\"a.test\"]\nhttp_mode = true\n", `:3: key "site.http_mode": want "redirect" or "serve", got "true"`},
		{"negative count", "[limits]\nmax_header_count = -5\n", `:2: key "limits.max_header_count": want a whole number of zero or more, got "-5"`},
		{"negative size", "[limits]\nmax_body_bytes = -1\n", `:2: key "limits.max_body_bytes": want a size`},
		{"zero drop_behind", "[files]\ndrop_behind = 0\n", `:2: key "files.drop_behind": want a size such as "64MiB", or "off", got "0"`},
		{"malformed acme_ca", "acme_ca = \"not a url\"\n", `:1: key "acme_ca": want an absolute https://`},
		{"acme_ca of another scheme", "\nacme_ca = \"ftp://ca.example/dir\"\n", `:2: key "acme_ca": want an absolute https://`},
		{"bad challenge", "acme_challenge = \"dns-01\"\n", `:1: key "acme_challenge": want "http-01" or "tls-alpn-01", got "dns-01"`},
		{"ratio of 1", "renewal_window_ratio = 1.0\n", `:1: key "renewal_window_ratio": want a fraction between 0 and 1`},
		{"bad ask", "[on_demand]\nask = \"/relative\"\n", `:2: key "on_demand.ask": want an absolute https://`},
		{"bad issuer", "[[site]]\nhosts = [\"a.test\"]\nissuer = \"letsencrypt\"\n", `:3: key "site.issuer": want "auto", "acme" or "internal"`},
		{"bad hsts", "[[site]]\nhosts = [\"a.test\"]\nhsts = \"yes please\"\n", `:3: key "site.hsts": want "auto", "off" or a header value`},
		{"hsts without max-age", "[[site]]\nhosts = [\"a.test\"]\nhsts = \"includeSubDomains\"\n", `:3: key "site.hsts"`},
		{"syntax", "https = \n", `:1:`},
		{"no site", "https = \":1\"\n", `no [[site]] declared`},
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

func TestValidateRejects(t *testing.T) {
	site := func(hosts ...string) Site { return Site{Hosts: hosts, Root: "."} }
	cases := map[string]Config{
		"host in two sites": {HTTPS: ":1", HTTP: ":2", Sites: []Site{site("a.test"), site("A.test")}},
		"site without host": {HTTPS: ":1", HTTP: ":2", Sites: []Site{site()}},
		"bad address":       {HTTPS: "8443", HTTP: ":2", Sites: []Site{site("a.test")}},
		"no site":           {HTTPS: ":1", HTTP: ":2"},
		"on_demand without ask": {HTTPS: ":1", HTTP: ":2", Sites: []Site{
			{Hosts: []string{"*.example.com"}, Root: ".", OnDemand: true}}},
		"ACME wildcard without on_demand": {HTTPS: ":1", HTTP: ":2", Sites: []Site{site("*.example.com")}},
		"any host twice":                  {HTTPS: ":1", HTTP: ":2", Sites: []Site{site("*"), site("*")}},
	}
	for name, cfg := range cases {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: validate accepted it", name)
		}
	}
}

func TestCertificateKeys(t *testing.T) {
	path := writeConfig(t, `
acme_ca = "https://127.0.0.1:14000/dir"
acme_ca_root = "pebble.pem"
email = "ops@example.com"
acme_challenge = "tls-alpn-01"
renew_interval = "1s"
renewal_window_ratio = 0.9
[on_demand]
ask = "http://127.0.0.1:5555/ask"
ask_timeout = "2s"
rate = 3
rate_interval = "1h"
[[site]]
hosts = ["a.test"]
root = "."
issuer = "acme"
hsts = "off"
[[site]]
hosts = ["*"]
root = "."
on_demand = true
hsts = "max-age=63072000; includeSubDomains; preload"
`)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p := cfg.CertPolicy(80, 443)
	checks := []struct {
		name      string
		got, want any
	}{
		{"acme_ca", p.ACME.CA, "https://127.0.0.1:14000/dir"},
		{"acme_ca_root is relative to the file", p.ACME.RootFile, filepath.Join(filepath.Dir(path), "pebble.pem")},
		{"email", p.ACME.Email, "ops@example.com"},
		{"challenge", p.ACME.Challenge, "tls-alpn-01"},
		{"ports", [2]int{p.ACME.HTTPPort, p.ACME.TLSPort}, [2]int{80, 443}},
		{"renew_interval", p.RenewInterval, time.Second},
		{"renewal_window_ratio", p.RenewalWindowRatio, 0.9},
		{"ask", p.OnDemand.Ask, "http://127.0.0.1:5555/ask"},
		{"ask_timeout", p.OnDemand.AskTimeout, 2 * time.Second},
		{"rate", [2]any{p.OnDemand.Rate, p.OnDemand.RateInterval}, [2]any{3, time.Hour}},
		{"issuer", string(p.Sites[0].Issuer), "acme"},
		{"on_demand", p.Sites[1].OnDemand, true},
		{"default name", p.DefaultName, "a.test"},
		{"hsts off", cfg.Sites[0].HSTS.HeaderFor("a.test"), ""},
		{"hsts value", cfg.Sites[1].HSTS.HeaderFor("shop.example.com"), "max-age=63072000; includeSubDomains; preload"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

// HSTS by default: public names only, never localhost, IPs or internal names.
func TestHSTSAuto(t *testing.T) {
	var auto HSTS
	for host, want := range map[string]string{
		"example.com":     DefaultHSTS,
		"*.example.com":   DefaultHSTS,
		"WWW.Example.COM": DefaultHSTS,
		"*":               DefaultHSTS,
		"localhost":       "",
		"127.0.0.1":       "",
		"::1":             "",
		"api.internal":    "",
		"a.test":          "",
		"printer.local":   "",
		"intranet":        "",
	} {
		if got := auto.HeaderFor(host); got != want {
			t.Errorf("%s: got %q, want %q", host, got, want)
		}
	}
}

// A reload keeps the running listeners, data dir, timeouts, limits and
// [files], and names the keys whose change it ignored.
func TestKeepRestartOnly(t *testing.T) {
	running := Default()
	next := Default()
	next.HTTPS, next.Data = ":9443", "/elsewhere"
	next.Timeouts.Idle = Duration{time.Minute * 5}
	next.Sites = []Site{{Hosts: []string{"b.test"}, Root: "."}}
	changed := next.KeepRestartOnly(&running)
	if got := strings.Join(changed, ","); got != "https,data,timeouts" {
		t.Errorf("changed %q, want https,data,timeouts", got)
	}
	if next.HTTPS != running.HTTPS || next.Data != running.Data || next.Timeouts != running.Timeouts {
		t.Errorf("restart-only values not kept: %q %q %+v", next.HTTPS, next.Data, next.Timeouts)
	}
	if next.Sites[0].Hosts[0] != "b.test" {
		t.Errorf("sites not taken from the new config: %+v", next.Sites)
	}
}
