package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/e2e/harness"
)

// spaPage is the single-page application's index.html in the browse
// tests' site.
const spaPage = "<!doctype html>\n<title>spa</title>\n<div id=app></div>\n"

// writeBrowseSite is a harness.Options.Site for the listing and fallback
// tests: index.html (the fallback), app.js, and a directory docs/ without
// an index holding names to escape, a dotfile, a subdirectory and a link
// out of the root.
func writeBrowseSite(t testing.TB, root string) {
	t.Helper()
	files := map[string]string{
		"index.html":        spaPage,
		"app.js":            "start()\n",
		"docs/<script>.txt": "script\n",
		"docs/a b.txt":      "space\n",
		"docs/100%.txt":     "percent\n",
		"docs/.secret":      "hidden\n",
		"docs/sub/deep.txt": "deep\n",
	}
	for name, body := range files {
		harness.WriteFile(t, filepath.Join(root, name), []byte(body))
	}
	outside := filepath.Join(filepath.Dir(root), "outside.txt")
	harness.WriteFile(t, outside, []byte("outside\n"))
	if err := os.Symlink(outside, filepath.Join(root, "docs", "link-out.txt")); err != nil {
		t.Fatal(err)
	}
}

// browseConfig turns on browse and the fallback for the site, and adds a
// root route over docs/ with its prefix stripped.
func browseConfig() string {
	return harness.Config{Site: []string{
		`browse = true`,
		`fallback = "/index.html"`,
		`[[site.route]]`,
		`path = "/mirror/"`,
		`root = "{{.Root}}/docs"`,
		`strip_prefix = true`,
	}}.TOML()
}

// accept is a request for target with the given Accept field.
func accept(method, target, value string) harness.Request {
	return harness.Request{Method: method, Target: target, Header: http.Header{"Accept": {value}}}
}

const browserAcceptValue = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// TestStaticBrowse checks directory listings through the binary over h1,
// h2 and h3: HTML with escaped names whose links lead to the files, JSON
// for Accept: application/json, HEAD, dotfiles and links out of the root
// hidden, the redirect of a directory named without its slash, and a
// listing under a root route that strips its prefix.
func TestStaticBrowse(t *testing.T) {
	t.Parallel()
	s := harness.Start(t, harness.Options{Config: browseConfig(), Site: writeBrowseSite})
	clients := s.Clients()

	html := s.DoAllWith(clients, accept("GET", "/docs/", browserAcceptValue))
	for _, d := range harness.Diff(html) {
		t.Errorf("GET /docs/: protocols differ: %s", d)
	}
	for _, p := range harness.Protos {
		r := html[p]
		if r.Err != nil || r.Status != 200 {
			t.Errorf("%s GET /docs/: %d %v, want 200", p, r.Status, r.Err)
			continue
		}
		body := string(r.Body)
		if got := r.Header.Get("Content-Type"); got != "text/html; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", p, got)
		}
		if got := r.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("%s: Cache-Control %q, want no-cache", p, got)
		}
		for _, want := range []string{
			`<a href="../">../</a>`,
			`<a href="./sub/">sub/</a>`,
			`<a href="./%3Cscript%3E.txt">&lt;script&gt;.txt</a>`,
			`<a href="./a%20b.txt">a b.txt</a>`,
			`<a href="./100%25.txt">100%.txt</a>`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: listing lacks %s:\n%s", p, want, body)
			}
		}
		for _, hidden := range []string{"<script>", ".secret", "link-out"} {
			if strings.Contains(body, hidden) {
				t.Errorf("%s: listing shows %q:\n%s", p, hidden, body)
			}
		}
	}

	// Every file link of the listing, resolved against /docs/, serves
	// its file.
	files := map[string]string{
		"./%3Cscript%3E.txt": "script\n",
		"./a%20b.txt":        "space\n",
		"./100%25.txt":       "percent\n",
	}
	for _, part := range strings.Split(string(html[harness.H1].Body), `<a href="`)[1:] {
		href, _, _ := strings.Cut(part, `"`)
		want, isFile := files[href]
		if !isFile {
			continue
		}
		delete(files, href)
		target := "/docs/" + strings.TrimPrefix(href, "./")
		for p, r := range s.DoAllWith(clients, harness.Request{Target: target}) {
			if r.Err != nil || r.Status != 200 || string(r.Body) != want {
				t.Errorf("%s GET %s: %d %q %v, want 200 %q", p, target, r.Status, r.Body, r.Err, want)
			}
		}
	}
	if len(files) != 0 {
		t.Errorf("the listing has no links %q", files)
	}

	jsonRes := s.DoAllWith(clients, accept("GET", "/docs/", "application/json"))
	for _, p := range harness.Protos {
		r := jsonRes[p]
		var entries []struct {
			Name    string `json:"name"`
			IsDir   bool   `json:"is_dir"`
			Size    int64  `json:"size"`
			ModTime string `json:"mod_time"`
		}
		if err := json.Unmarshal(r.Body, &entries); err != nil || r.Status != 200 {
			t.Errorf("%s JSON listing: %d %v in %q", p, r.Status, err, r.Body)
			continue
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name)
		}
		want := []string{"sub", "100%.txt", "<script>.txt", "a b.txt"}
		if strings.Join(names, "|") != strings.Join(want, "|") {
			t.Errorf("%s JSON names %q, want %q", p, names, want)
		}
		if len(entries) == 4 && (!entries[0].IsDir || entries[3].Size != int64(len("space\n")) || entries[3].ModTime == "") {
			t.Errorf("%s JSON entries %+v", p, entries)
		}
	}

	for p, r := range s.DoAllWith(clients, accept("HEAD", "/docs/", browserAcceptValue)) {
		if r.Err != nil || r.Status != 200 || len(r.Body) != 0 || r.Header.Get("Content-Length") != html[p].Header.Get("Content-Length") {
			t.Errorf("%s HEAD /docs/: %d, %d bytes, Content-Length %q (GET's %q), %v", p, r.Status, len(r.Body), r.Header.Get("Content-Length"), html[p].Header.Get("Content-Length"), r.Err)
		}
	}

	for p, r := range s.DoAllWith(clients, accept("GET", "/docs", browserAcceptValue)) {
		if r.Err != nil || r.Status != 301 || r.Header.Get("Location") != "/docs/" {
			t.Errorf("%s GET /docs: %d Location %q %v, want 301 to /docs/", p, r.Status, r.Header.Get("Location"), r.Err)
		}
	}

	for p, r := range s.DoAllWith(clients, accept("GET", "/mirror/sub/", browserAcceptValue)) {
		if r.Err != nil || r.Status != 200 || !strings.Contains(string(r.Body), `<a href="./deep.txt">deep.txt</a>`) {
			t.Errorf("%s GET /mirror/sub/ (a root route): %d %q %v, want the listing of docs/sub", p, r.Status, r.Body, r.Err)
		}
	}
}

// TestStaticFallback checks the single-page fallback through the binary
// over h1, h2 and h3: a page that is no file gets index.html with 200, a
// missing asset or a request not for HTML gets 404, and conditional and
// range requests on the fallback behave as on index.html itself.
func TestStaticFallback(t *testing.T) {
	t.Parallel()
	s := harness.Start(t, harness.Options{Config: browseConfig(), Site: writeBrowseSite})
	clients := s.Clients()
	cases := []struct {
		target, accept string
		status         int
		body           string
	}{
		{"/users/42", browserAcceptValue, 200, spaPage},
		{"/settings/profile?tab=2", browserAcceptValue, 200, spaPage},
		{"/app.js", browserAcceptValue, 200, "start()\n"},
		{"/missing.js", browserAcceptValue, 404, "404 Not Found\n"},
		{"/img/logo.png", "image/avif,image/webp,*/*", 404, "404 Not Found\n"},
		{"/api/users", "application/json", 404, "404 Not Found\n"},
		{"/api/users", "*/*", 404, "404 Not Found\n"},
	}
	for _, c := range cases {
		for p, r := range s.DoAllWith(clients, accept("GET", c.target, c.accept)) {
			if r.Err != nil || r.Status != c.status || string(r.Body) != c.body {
				t.Errorf("%s GET %s (Accept %s): %d %q %v, want %d %q", p, c.target, c.accept, r.Status, r.Body, r.Err, c.status, c.body)
			}
		}
	}

	direct := s.DoAllWith(clients, accept("GET", "/index.html", browserAcceptValue))
	for _, p := range harness.Protos {
		etag := direct[p].Header.Get("ETag")
		if etag == "" {
			t.Fatalf("%s: /index.html has no ETag", p)
		}
		c := clients[p]
		notModified := s.Do(p, c, harness.Request{Target: "/users/42", Header: http.Header{
			"Accept": {browserAcceptValue}, "If-None-Match": {etag}}})
		if notModified.Err != nil || notModified.Status != 304 || notModified.Header.Get("ETag") != etag {
			t.Errorf("%s If-None-Match on the fallback: %d ETag %q %v, want 304 %s", p, notModified.Status, notModified.Header.Get("ETag"), notModified.Err, etag)
		}
		part := s.Do(p, c, harness.Request{Target: "/users/42", Header: http.Header{
			"Accept": {browserAcceptValue}, "Range": {"bytes=0-14"}}})
		if part.Err != nil || part.Status != 206 || string(part.Body) != spaPage[:15] || part.Header.Get("ETag") != etag {
			t.Errorf("%s Range on the fallback: %d %q ETag %q %v, want 206 %q", p, part.Status, part.Body, part.Header.Get("ETag"), part.Err, spaPage[:15])
		}
		head := s.Do(p, c, accept("HEAD", "/users/42", browserAcceptValue))
		if head.Err != nil || head.Status != 200 || len(head.Body) != 0 || head.Header.Get("Content-Length") != direct[p].Header.Get("Content-Length") {
			t.Errorf("%s HEAD on the fallback: %d, %d bytes, Content-Length %q %v", p, head.Status, len(head.Body), head.Header.Get("Content-Length"), head.Err)
		}
	}
}
