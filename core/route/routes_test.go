package route

import (
	"testing"

	"github.com/anx-gateway/anx/core/message"
)

func TestNormalizePath(t *testing.T) {
	cases := []struct{ in, want string }{
		{"/", "/"},
		{"/api/x", "/api/x"},
		{"/%61pi/x", "/api/x"},
		{"/%41%5a%7e%2D%2e%5F", "/AZ~-._"},
		{"/a%2Fb", "/a%2Fb"}, // a reserved character stays escaped
		{"/a%20b", "/a%20b"},
		{"/x/../api/y", "/api/y"},
		{"/x/%2e%2e/api/y", "/api/y"},
		{"/%2E%2E/%2e%2E/api", "/api"},
		{"/../../api", "/api"},
		{"//api//x", "/api/x"},
		{"/api/./x/.", "/api/x/"},
		{"/api/x/..", "/api/"},
		{"/a/b/", "/a/b/"},
		{"/.hidden", "/.hidden"},
		{"/a%zz", "/a%zz"},
		{"/a%6", "/a%6"},
		{"*", "*"},
	}
	for _, c := range cases {
		if got := NormalizePath(c.in); got != c.want {
			t.Errorf("NormalizePath(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestNormalizePathDoesNotAllocateForCleanPaths(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() { _ = NormalizePath("/static/css/site.css") })
	if allocs != 0 {
		t.Errorf("%v allocations for a clean path, want 0", allocs)
	}
}

// pathEcho answers with the path its request has while it serves.
func pathEcho(name string) message.Handler {
	return message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		_, _ = w.Write([]byte(name + " " + r.Path))
	})
}

func mustRoutes(t *testing.T, fallback message.Handler, paths ...Path) *Routes {
	t.Helper()
	rs, err := NewRoutes(paths, fallback)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// The first route that takes the normalised path serves, with the path as
// the client sent it; no spelling of a path reaches another route than
// its normal form does.
func TestRoutesMatchNormalisedPaths(t *testing.T) {
	rs := mustRoutes(t, pathEcho("files"),
		Path{Match: "=/health", Handler: pathEcho("health")},
		Path{Match: "/api/", Handler: pathEcho("api")},
		Path{Match: "/app", Handler: pathEcho("app")},
	)
	cases := []struct{ path, want string }{
		{"/api/x", "api /api/x"},
		{"/%61pi/x", "api /%61pi/x"},
		{"/x/../api/y", "api /x/../api/y"},
		{"/%2e%2e/api/y", "api /%2e%2e/api/y"},
		{"//api/x", "api //api/x"},
		{"/api/./x", "api /api/./x"},
		{"/api/x/../../index.html", "files /api/x/../../index.html"},
		{"/api", "files /api"},
		{"/API/x", "files /API/x"},
		{"/apix", "files /apix"},
		{"/health", "health /health"},
		{"/health/", "files /health/"},
		{"/x/../health", "health /x/../health"},
		{"/healthz", "files /healthz"},
		{"/app", "app /app"},
		{"/apps/x", "app /apps/x"},
		{"/", "files /"},
		{"*", "files *"},
	}
	for _, c := range cases {
		w := serve(rs, &message.Request{Method: "GET", Path: c.path})
		if got := w.body.String(); got != c.want {
			t.Errorf("%s: served as %q, want %q", c.path, got, c.want)
		}
	}
}

func TestRoutesWithoutDefaultAnswer404(t *testing.T) {
	rs := mustRoutes(t, nil, Path{Match: "/api/", Handler: pathEcho("api")})
	if w := serve(rs, &message.Request{Method: "GET", Path: "/other"}); w.status != 404 {
		t.Errorf("unrouted path: status %d, want 404", w.status)
	}
}

// StripPrefix hands the handler the normalised path without the prefix,
// and the request gets its own path back afterwards.
func TestRoutesStripPrefix(t *testing.T) {
	rs := mustRoutes(t, nil,
		Path{Match: "/api/", StripPrefix: true, Handler: pathEcho("api")},
		Path{Match: "/v1", StripPrefix: true, Handler: pathEcho("v1")},
	)
	cases := []struct{ path, want string }{
		{"/api/x", "api /x"},
		{"/api/", "api /"},
		{"/%61pi/x%2Fy", "api /x%2Fy"},
		{"/api/../api/x", "api /x"},
		{"/api//x", "api /x"},
		{"/v1", "v1 /"},
		{"/v1/users", "v1 /users"},
		{"/v1x", "v1 /x"},
	}
	for _, c := range cases {
		r := &message.Request{Method: "GET", Path: c.path}
		w := serve(rs, r)
		if got := w.body.String(); got != c.want {
			t.Errorf("%s: handler saw %q, want %q", c.path, got, c.want)
		}
		if r.Path != c.path {
			t.Errorf("%s: the request's path is %q after Serve", c.path, r.Path)
		}
	}
}

func TestNewRoutesRejects(t *testing.T) {
	h := named("x")
	cases := map[string]Path{
		"no handler":        {Match: "/"},
		"relative":          {Match: "api/", Handler: h},
		"empty":             {Match: "", Handler: h},
		"exact relative":    {Match: "=health", Handler: h},
		"query":             {Match: "/a?b", Handler: h},
		"space":             {Match: "/a b", Handler: h},
		"strip on exact":    {Match: "=/a", StripPrefix: true, Handler: h},
		"control character": {Match: "/a\x00", Handler: h},
		"fragment":          {Match: "/a#b", Handler: h},
	}
	for name, p := range cases {
		if _, err := NewRoutes([]Path{p}, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A front end asks, through every layer, the one handler that serves a
// request whether it blocks.
func TestDispatchersAnswerPerRequest(t *testing.T) {
	app := named("app") // may block
	files := nonBlocking{named("files")}
	rs := mustRoutes(t, files,
		Path{Match: "/api/", Handler: app},
		Path{Match: "/old/", Handler: Redirect{To: "/new{uri}"}},
		Path{Match: "/up", StripPrefix: true, Handler: mustRoutes(t, files, Path{Match: "/x", Handler: app})},
	)
	table := mustTable(t, Site{Hosts: []string{"a.test"}, Handler: WithHeader{Name: "X", Value: "1", Handler: rs}})
	live := NewLive(table)
	cases := []struct {
		host, path  string
		nonBlocking bool
	}{
		{"a.test", "/index.html", true},
		{"a.test", "/api/x", false},
		{"a.test", "/%61pi/x", false},
		{"a.test", "/old/x", true},
		{"a.test", "/up/x", false}, // the inner routes see "/x"
		{"a.test", "/up/y", true},
		{"other.test", "/api/x", true}, // 421
	}
	for _, c := range cases {
		r := &message.Request{Method: "GET", Host: c.host, Path: c.path}
		if got := message.IsNonBlockingFor(live, r); got != c.nonBlocking {
			t.Errorf("%s%s: IsNonBlockingFor %v, want %v", c.host, c.path, got, c.nonBlocking)
		}
		if r.Path != c.path {
			t.Errorf("%s: HandlerFor changed the path to %q", c.path, r.Path)
		}
	}
	if live.NonBlocking() || rs.NonBlocking() {
		t.Error("a table with a blocking route says NonBlocking as a whole")
	}
	var zero Live
	if !message.IsNonBlockingFor(&zero, &message.Request{Path: "/"}) {
		t.Error("the zero Live's 503 is not NonBlocking")
	}
}

func TestRedirect(t *testing.T) {
	cases := []struct {
		rd        Redirect
		path, qry string
		status    int
		location  string
	}{
		{Redirect{To: "https://example.com{uri}"}, "/a/b%20c", "x=1", 308, "https://example.com/a/b%20c?x=1"},
		{Redirect{To: "https://example.com{uri}", Status: 301}, "/", "", 301, "https://example.com/"},
		{Redirect{To: "/new", Status: 302}, "/old", "q", 302, "/new"},
		{Redirect{To: "https://x.test{uri}", Status: 307}, "*", "", 307, "https://x.test/"},
	}
	for _, c := range cases {
		w := serve(c.rd, &message.Request{Method: "GET", Path: c.path, RawQuery: c.qry})
		if w.status != c.status || w.header.Get("Location") != c.location {
			t.Errorf("%+v %s?%s: got %d %q, want %d %q", c.rd, c.path, c.qry, w.status, w.header.Get("Location"), c.status, c.location)
		}
	}
	for _, bad := range []Redirect{{To: ""}, {To: "/x", Status: 200}, {To: "/x\r\nSet-Cookie: a=b"}, {To: "/a b"}} {
		if bad.Validate() == nil {
			t.Errorf("%+v: Validate accepted it", bad)
		}
	}
	if (Redirect{To: "/x", Status: 303}).Validate() != nil || !(Redirect{}).NonBlocking() {
		t.Error("a good redirect is refused, or says it blocks")
	}
}

func TestFixed(t *testing.T) {
	w := serve(Fixed{Body: "ok\n"}, &message.Request{Method: "GET", Path: "/"})
	if w.status != 200 || w.body.String() != "ok\n" || w.header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("got %d %q %q", w.status, w.body.String(), w.header.Get("Content-Type"))
	}
	w = serve(Fixed{Status: 503, Body: "down\n"}, &message.Request{Method: "HEAD", Path: "/"})
	if w.status != 503 || w.body.Len() != 0 {
		t.Errorf("HEAD 503: got %d %q", w.status, w.body.String())
	}
	if (Fixed{Status: 99}).Validate() == nil || (Fixed{Status: 600}).Validate() == nil || (Fixed{Status: 204}).Validate() != nil {
		t.Error("Validate: wrong verdict on a status")
	}
}
