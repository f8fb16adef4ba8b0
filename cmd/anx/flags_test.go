package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/cmd/anx/internal/config"
	"github.com/anx-gateway/anx/core/route"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "anx.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Flags win over the file; site flags need a file with one site.
func TestFlagsOverrideFile(t *testing.T) {
	path := writeConfig(t, "https = \":1\"\nhttp = \":2\"\n[[site]]\nhosts = [\"a.test\"]\nroot = \"a\"\n")
	f, err := parseRunFlags([]string{"--config", path, "--https", "127.0.0.1:3", "--domain", "b.test", "--domain", "c.test", "--http-mode", "serve"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadRunConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPS != "127.0.0.1:3" || cfg.HTTP != ":2" {
		t.Errorf("listeners: https %q http %q, want 127.0.0.1:3 and :2", cfg.HTTPS, cfg.HTTP)
	}
	s := cfg.Sites[0]
	if strings.Join(s.Hosts, ",") != "b.test,c.test" || s.HTTPMode != config.HTTPServe || s.Root != filepath.Join(filepath.Dir(path), "a") {
		t.Errorf("site: %+v, want hosts b.test,c.test, mode serve, root from the file", s)
	}

	two := writeConfig(t, "[[site]]\nhosts = [\"a.test\"]\nroot = \"a\"\n[[site]]\nhosts = [\"b.test\"]\nroot = \"b\"\n")
	f, _ = parseRunFlags([]string{"--config", two, "--root", "x"}, os.Stderr)
	if _, err := loadRunConfig(f); err == nil || !strings.Contains(err.Error(), "declares 2") {
		t.Errorf("--root with a two-site file: err %v, want a refusal", err)
	}
	f, _ = parseRunFlags([]string{"--http-mode", "sometimes"}, os.Stderr)
	if _, err := loadRunConfig(f); err == nil {
		t.Errorf("--http-mode sometimes: accepted")
	}
}

func TestDefaults(t *testing.T) {
	f, err := parseRunFlags(nil, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadRunConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPS != ":8443" || cfg.HTTP != ":8080" || len(cfg.Sites) != 1 || cfg.Sites[0].Hosts[0] != "localhost" || cfg.Sites[0].Root != "." {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := config.Load("../../examples/anx.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := checkRoots(cfg); err != nil {
		t.Fatal(err)
	}
}

// The HTTPS routes of a site with public and local names send HSTS for the
// public ones only, and "*" becomes the default site.
func TestHSTSSites(t *testing.T) {
	h := route.RedirectHTTPS{}
	got := hstsSites(config.HSTS{}, []string{"example.com", "localhost", "*"}, h)
	if len(got) != 3 {
		t.Fatalf("got %d route sites, want 3: %+v", len(got), got)
	}
	for _, s := range got {
		_, wrapped := s.Handler.(route.WithHeader)
		public := len(s.Hosts) == 0 || s.Hosts[0] == "example.com"
		if wrapped != public {
			t.Errorf("hosts %v: HSTS wrapper %v, want %v", s.Hosts, wrapped, public)
		}
	}
}

func TestACMEFlags(t *testing.T) {
	f, err := parseRunFlags([]string{"--acme-ca", "https://ca.test/dir", "--acme-ca-root", "r.pem", "--email", "a@b.test", "--acme-challenge", "http-01"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadRunConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ACMECA.URL != "https://ca.test/dir" || cfg.ACMECARoot != "r.pem" || cfg.Email != "a@b.test" || cfg.ACMEChallenge.Type != "http-01" {
		t.Errorf("got %+v %q %q %+v", cfg.ACMECA, cfg.ACMECARoot, cfg.Email, cfg.ACMEChallenge)
	}
	for _, args := range [][]string{{"--acme-ca", "ca.test"}, {"--acme-challenge", "dns-01"}} {
		f, err := parseRunFlags(args, os.Stderr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := loadRunConfig(f); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

// anx run --help says how --proxy combines with --root and --config.
func TestRunHelpExplainsProxy(t *testing.T) {
	code, _, errOut := runCommand("run", "--help")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"-proxy URL", "--root ./public --proxy", "--config anx.toml --proxy", "nothing is served from the current\n      directory"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("anx run --help lacks %q:\n%s", want, errOut)
		}
	}
}

func TestAccessLogFlagAppliesToEverySite(t *testing.T) {
	cfg := config.Default()
	cfg.Sites = append(cfg.Sites, config.Site{Hosts: []string{"example.com"}, Root: "."})
	f, err := parseRunFlags([]string{"--access-log", "off"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := applyFlags(&cfg, f); err != nil {
		t.Fatal(err)
	}
	for i, s := range cfg.Sites {
		if got := s.AccessLog.Destination(); got != "off" {
			t.Errorf("site %d: access log %q, want off", i+1, got)
		}
	}
	f, err = parseRunFlags([]string{"--access-log", ""}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := applyFlags(&cfg, f); err == nil {
		t.Error("--access-log \"\" accepted, want an error")
	}
}
