package route

import (
	"testing"

	"github.com/anx-gateway/anx/core/message"
)

// nonBlocking marks a handler as never blocking.
type nonBlocking struct{ message.Handler }

func (nonBlocking) NonBlocking() bool { return true }

func serve(h message.Handler, r *message.Request) *recorder {
	w := &recorder{}
	h.Serve(w, r)
	return w
}

func mustTable(t *testing.T, sites ...Site) *Table {
	t.Helper()
	table, err := New(sites)
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// A Live serves the table stored last; requests see the swap at once.
func TestLiveSwapsTables(t *testing.T) {
	var zero Live
	if w := serve(&zero, &message.Request{Method: "GET", Host: "a.test", Path: "/"}); w.status != 503 {
		t.Errorf("zero Live: status %d, want 503", w.status)
	}
	old := mustTable(t, Site{Hosts: []string{"a.test"}, Handler: nonBlocking{named("old")}})
	l := NewLive(old)
	req := &message.Request{Method: "GET", Host: "a.test", Path: "/"}
	if w := serve(l, req); w.body.String() != "old" {
		t.Fatalf("got %q, want old", w.body.String())
	}
	if !l.NonBlocking() {
		t.Error("Live over a non-blocking table is not NonBlocking")
	}
	fresh := mustTable(t, Site{Hosts: []string{"a.test"}, Handler: nonBlocking{named("new")}})
	l.Store(fresh)
	if w := serve(l, req); w.body.String() != "new" {
		t.Errorf("after Store: got %q, want new", w.body.String())
	}
	// A table with a handler that may block replaces a non-blocking one
	// (front ends ask per request), and the front end learns it.
	blocking := mustTable(t, Site{Hosts: []string{"a.test"}, Handler: named("blocking")})
	l.Store(blocking)
	if w := serve(l, req); w.body.String() != "blocking" || message.IsNonBlockingFor(l, req) {
		t.Errorf("after storing a blocking table: got %q, IsNonBlockingFor %v; want blocking, false", w.body.String(), message.IsNonBlockingFor(l, req))
	}
}

func TestWithHeader(t *testing.T) {
	h := WithHeader{Name: "Strict-Transport-Security", Value: "max-age=1", Handler: nonBlocking{named("x")}}
	w := serve(h, &message.Request{Method: "GET", Path: "/"})
	if got := w.header.Get("Strict-Transport-Security"); got != "max-age=1" || w.body.String() != "x" {
		t.Errorf("header %q body %q", got, w.body.String())
	}
	if !h.NonBlocking() || (WithHeader{Handler: named("b")}).NonBlocking() {
		t.Error("WithHeader does not pass NonBlocking through")
	}
}

func TestHTTPChallenge(t *testing.T) {
	const path = ACMEHTTP01Prefix + "tok3n"
	solve := func(host, p string) (string, bool) {
		if host == "a.test" && p == path {
			return "tok3n.thumb", true
		}
		return "", false
	}
	h := HTTPChallenge{Solve: solve, Handler: RedirectHTTPS{}}
	cases := []struct {
		name, method, host, path string
		status                   int
		body                     string
	}{
		{"answer", "GET", "a.test:80", path, 200, "tok3n.thumb"},
		{"host case", "GET", "A.TEST", path, 200, "tok3n.thumb"},
		{"HEAD", "HEAD", "a.test", path, 200, ""},
		{"other host", "GET", "b.test", path, 308, "308 Permanent Redirect\n"},
		{"unknown token", "GET", "a.test", ACMEHTTP01Prefix + "other", 308, "308 Permanent Redirect\n"},
		{"POST", "POST", "a.test", path, 308, "308 Permanent Redirect\n"},
		{"prefix only", "GET", "a.test", ACMEHTTP01Prefix, 308, "308 Permanent Redirect\n"},
		{"other path", "GET", "a.test", "/index.html", 308, "308 Permanent Redirect\n"},
	}
	for _, c := range cases {
		w := serve(h, &message.Request{Method: c.method, Host: c.host, Path: c.path})
		if w.status != c.status || w.body.String() != c.body {
			t.Errorf("%s: got %d %q, want %d %q", c.name, w.status, w.body.String(), c.status, c.body)
		}
	}
}
