package route

import (
	"strings"
	"testing"

	"github.com/anx-gateway/anx/core/message"
)

// recorder is a message.ResponseWriter that keeps what it is given.
type recorder struct {
	header message.Header
	status int
	body   strings.Builder
}

func (r *recorder) Header() *message.Header { return &r.header }
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(200)
	return r.body.Write(p)
}

func named(name string) message.Handler {
	return message.HandlerFunc(func(w message.ResponseWriter, _ *message.Request) {
		_, _ = w.Write([]byte(name))
	})
}

func TestTableRoutesByHost(t *testing.T) {
	table, err := New([]Site{
		{Hosts: []string{"example.com", "WWW.Example.com"}, Handler: named("example")},
		{Hosts: []string{"*.apps.test"}, Handler: named("apps")},
		{Hosts: []string{"::1", "127.0.0.1"}, Handler: named("loopback")},
		{Handler: named("default")},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ host, want string }{
		{"example.com", "example"},
		{"EXAMPLE.COM:8443", "example"},
		{"www.example.com.", "example"},
		{"a.apps.test", "apps"},
		{"a.b.apps.test", "default"}, // a wildcard covers one label only
		{"apps.test", "default"},
		{"[::1]:8443", "loopback"},
		{"127.0.0.1:80", "loopback"},
		{"other.org", "default"},
		{"", "default"},
	}
	for _, c := range cases {
		var w recorder
		table.Serve(&w, &message.Request{Method: "GET", Path: "/", Host: c.host})
		if got := w.body.String(); got != c.want {
			t.Errorf("Host %q: served by %q, want %q", c.host, got, c.want)
		}
	}
}

func TestTableWithoutDefaultAnswers421(t *testing.T) {
	table, err := New([]Site{{Hosts: []string{"example.com"}, Handler: named("example")}})
	if err != nil {
		t.Fatal(err)
	}
	var w recorder
	table.Serve(&w, &message.Request{Method: "GET", Path: "/", Host: "other.org"})
	if w.status != 421 {
		t.Errorf("unknown host: status %d, want 421 (RFC 9110 section 15.5.20)", w.status)
	}
}

func TestNewRejectsConflicts(t *testing.T) {
	cases := map[string][]Site{
		"same host twice": {{Hosts: []string{"a.test"}, Handler: named("1")}, {Hosts: []string{"A.test."}, Handler: named("2")}},
		"two defaults":    {{Handler: named("1")}, {Handler: named("2")}},
		"no handler":      {{Hosts: []string{"a.test"}}},
		"bad wildcard":    {{Hosts: []string{"a.*.test"}, Handler: named("1")}},
		"bad host":        {{Hosts: []string{"a/b"}, Handler: named("1")}},
	}
	for name, sites := range cases {
		if _, err := New(sites); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func TestRedirectHTTPS(t *testing.T) {
	cases := []struct {
		port            int
		host, path, qry string
		method          string
		status          int
		location        string
	}{
		{8443, "localhost:8080", "/a/b%20c", "x=1", "GET", 308, "https://localhost:8443/a/b%20c?x=1"},
		{443, "Example.com", "/", "", "POST", 308, "https://example.com/"},
		{8443, "[::1]:8080", "/", "", "GET", 308, "https://[::1]:8443/"},
		{8443, "localhost", "*", "", "OPTIONS", 308, "https://localhost:8443/"},
		{8443, "", "/", "", "GET", 400, ""},
	}
	for _, c := range cases {
		var w recorder
		RedirectHTTPS{Port: c.port}.Serve(&w, &message.Request{Method: c.method, Host: c.host, Path: c.path, RawQuery: c.qry})
		if w.status != c.status || w.header.Get("Location") != c.location {
			t.Errorf("%s %s%s: got %d Location %q, want %d %q", c.method, c.host, c.path, w.status, w.header.Get("Location"), c.status, c.location)
		}
	}
}

func TestRespondOmitsBodyForHEAD(t *testing.T) {
	var w recorder
	Respond(&w, &message.Request{Method: "HEAD"}, 404, "404 Not Found\n")
	if w.status != 404 || w.body.Len() != 0 || w.header.Get("Content-Length") != "14" {
		t.Errorf("HEAD 404: status %d body %q length %q; want 404, no body, length 14", w.status, w.body.String(), w.header.Get("Content-Length"))
	}
}
