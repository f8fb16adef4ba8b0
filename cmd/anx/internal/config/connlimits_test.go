package config

import (
	"strings"
	"testing"
)

// TestConnLimitsLoad: [limits] max_conns and max_conns_per_ip and a
// site's max_conns_per_ip are read; left out, they are 0 (no limit).
func TestConnLimitsLoad(t *testing.T) {
	cfg, err := Load(writeConfig(t, `
[limits]
max_conns = 10000
max_conns_per_ip = 100
[[site]]
hosts = ["a.test"]
max_conns_per_ip = 20
[[site]]
hosts = ["b.test"]
`))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want int
	}{
		{"max_conns", cfg.Limits.MaxConns.N, 10000},
		{"max_conns_per_ip", cfg.Limits.MaxConnsPerIP.N, 100},
		{"site max_conns_per_ip", cfg.Sites[0].MaxConnsPerIP.N, 20},
		{"site without one", cfg.Sites[1].MaxConnsPerIP.N, 0},
		{"default max_conns", Default().Limits.MaxConns.N, 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, c.got, c.want)
		}
	}
}

// TestConnLimitsBadValues: a bad connection limit names the file, the
// line and the key.
func TestConnLimitsBadValues(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"negative max_conns", "[limits]\nmax_conns = -1\n", `:2: key "limits.max_conns": want a number of connections from 0 (no limit) to 1073741824, got "-1"`},
		{"string max_conns_per_ip", "[limits]\n\nmax_conns_per_ip = \"many\"\n", `:3: key "limits.max_conns_per_ip": want a number of connections`},
		{"huge", "[limits]\nmax_conns = 99999999999\n", `:2: key "limits.max_conns": want a number of connections`},
		{"fraction", "[limits]\nmax_conns_per_ip = 1.5\n", `:2: key "limits.max_conns_per_ip"`},
		{"negative on a site", "[[site]]\nhosts = [\"a.test\"]\nmax_conns_per_ip = -5\n", `:3: key "site.max_conns_per_ip": want a number of connections`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeConfig(t, c.text+"[[site]]\nhosts = [\"z.test\"]\n")
			_, err := Load(path)
			if err == nil || !strings.HasPrefix(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want %s%s", err, path, c.want)
			}
		})
	}
}

// TestConnLimitsReload: a reload takes new connection limits and is not
// told that [limits] changed; another [limits] key keeps its running
// value and is reported.
func TestConnLimitsReload(t *testing.T) {
	running := Default()
	next := Default()
	next.Limits.MaxConns, next.Limits.MaxConnsPerIP = ConnLimit{50}, ConnLimit{5}
	if changed := next.KeepRestartOnly(&running); len(changed) != 0 {
		t.Errorf("connection limits alone: restart-only keys %v, want none", changed)
	}
	if next.Limits.MaxConns.N != 50 || next.Limits.MaxConnsPerIP.N != 5 {
		t.Errorf("connection limits after reload: %+v, want 50 and 5", next.Limits.ConnLimits)
	}
	next.Limits.MaxBodyBytes = Size{1}
	changed := next.KeepRestartOnly(&running)
	if len(changed) != 1 || changed[0] != "limits" {
		t.Errorf("max_body_bytes changed: restart-only keys %v, want [limits]", changed)
	}
	if next.Limits.MaxBodyBytes != running.Limits.MaxBodyBytes || next.Limits.MaxConns.N != 50 {
		t.Errorf("after reload: %+v; want the running max_body_bytes and max_conns 50", next.Limits)
	}
}
