package static_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anx-gateway/anx/core/static"
	"github.com/anx-gateway/anx/core/static/statictest"
)

// listingTime is the modification time of every file of listingTree.
var listingTime = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// listingTree writes files (name to content; a name ending in "/" is a
// directory) under a new directory, all modified at listingTime, and
// returns the directory.
func listingTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		var err error
		if strings.HasSuffix(name, "/") {
			err = os.MkdirAll(p, 0o755)
		} else if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for name := range files {
		if err := os.Chtimes(filepath.Join(root, name), listingTime, listingTime); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// jsonEntry is one element of a JSON listing, as a client decodes it.
type jsonEntry struct {
	Name    string `json:"name"`
	IsDir   bool   `json:"is_dir"`
	Size    int64  `json:"size"`
	ModTime string `json:"mod_time"`
}

// listJSON asks for target's listing as JSON and decodes it.
func listJSON(t *testing.T, h *static.Handler, target string) []jsonEntry {
	t.Helper()
	rec := serve(t, h, "GET", target, statictest.Field{Name: "Accept", Value: "application/json"})
	if rec.status != 200 {
		t.Fatalf("GET %s: status %d %q, want 200", target, rec.status, rec.body.String())
	}
	if got := rec.values("Content-Type"); len(got) != 1 || got[0] != "application/json" {
		t.Errorf("GET %s: Content-Type %q, want application/json", target, got)
	}
	var entries []jsonEntry
	if err := json.Unmarshal(rec.body.Bytes(), &entries); err != nil {
		t.Fatalf("GET %s: %v in %q", target, err, rec.body.String())
	}
	return entries
}

func names(entries []jsonEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name)
	}
	return out
}

// Directories come first, then files, each sorted by name; dot files
// and dot directories are not listed; sizes and times are the files'.
func TestListingSortsAndHidesDotFiles(t *testing.T) {
	root := listingTree(t, map[string]string{
		"zdir/": "", "adir/": "", ".git/": "",
		"b.txt": "bb", "A.txt": "a", "c.txt": "ccc", ".env": "SECRET=1", ".hidden.html": "x",
	})
	h := newHandler(t, static.Config{Root: root, Browse: true})
	got := listJSON(t, h, "/")
	stamp := listingTime.Format(time.RFC3339)
	want := []jsonEntry{
		{Name: "adir", IsDir: true, ModTime: stamp},
		{Name: "zdir", IsDir: true, ModTime: stamp},
		{Name: "A.txt", Size: 1, ModTime: stamp},
		{Name: "b.txt", Size: 2, ModTime: stamp},
		{Name: "c.txt", Size: 3, ModTime: stamp},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("listing:\n got %+v\nwant %+v", got, want)
	}
	html := serve(t, h, "GET", "/").body.String()
	for _, hidden := range []string{".git", ".env", ".hidden", "SECRET"} {
		if strings.Contains(html, hidden) {
			t.Errorf("HTML listing shows %q:\n%s", hidden, html)
		}
	}
	if a, z, b := strings.Index(html, "adir/"), strings.Index(html, "zdir/"), strings.Index(html, "A.txt"); !(a < z && z < b) {
		t.Errorf("HTML listing not in order adir/, zdir/, A.txt:\n%s", html)
	}
}

// The JSON form is an array of objects with exactly name, is_dir, size
// and mod_time (RFC 3339); an empty directory is "[]".
func TestListingJSONShape(t *testing.T) {
	root := listingTree(t, map[string]string{"sub/f.txt": "12345", "empty/": ""})
	h := newHandler(t, static.Config{Root: root, Browse: true})
	rec := serve(t, h, "GET", "/sub/", statictest.Field{Name: "Accept", Value: "application/json"})
	var raw []map[string]any
	if err := json.Unmarshal(rec.body.Bytes(), &raw); err != nil || len(raw) != 1 {
		t.Fatalf("GET /sub/: %v, %d entries in %q", err, len(raw), rec.body.String())
	}
	want := map[string]any{"name": "f.txt", "is_dir": false, "size": 5.0, "mod_time": "2025-03-04T05:06:07Z"}
	if !reflect.DeepEqual(raw[0], want) {
		t.Errorf("entry: got %v, want %v", raw[0], want)
	}
	if _, err := time.Parse(time.RFC3339, raw[0]["mod_time"].(string)); err != nil {
		t.Errorf("mod_time: %v", err)
	}
	if body := serve(t, h, "GET", "/empty/", statictest.Field{Name: "Accept", Value: "application/json"}).body.String(); body != "[]\n" {
		t.Errorf("empty directory: got %q, want %q", body, "[]\n")
	}
}

// Names that mean something in HTML or in a URL are escaped in the text
// and in the link, and every link, followed from the listing's own URL,
// leads to the file it names.
func TestListingEscapesNames(t *testing.T) {
	files := map[string]string{
		"<script>alert(1)<": "script", "a b": "space", "%": "percent", "a:b": "colon",
		`q"'&.txt`: "quotes", "#frag?": "hash", "dir <x>/in.txt": "nested",
	}
	root := listingTree(t, files)
	h := newHandler(t, static.Config{Root: root, Browse: true})
	rec := serve(t, h, "GET", "/")
	body := rec.body.String()
	if strings.Contains(body, "<script>") || strings.Contains(body, "<x>") {
		t.Errorf("a name reached the HTML unescaped:\n%s", body)
	}
	for _, want := range []string{
		`<a href="./%3Cscript%3Ealert%281%29%3C">&lt;script&gt;alert(1)&lt;</a>`,
		`<a href="./a%20b">a b</a>`,
		`<a href="./%25">%</a>`,
		`<a href="./a:b">a:b</a>`,
		`<a href="./q%22%27&amp;.txt">q&#34;&#39;&amp;.txt</a>`,
		`<a href="./%23frag%3F">#frag?</a>`,
		`<a href="./dir%20%3Cx%3E/">dir &lt;x&gt;/</a>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("listing lacks %s:\n%s", want, body)
		}
	}
	// Follow each link the way a browser resolves it against "/".
	for _, href := range hrefs(body) {
		target := "/" + strings.TrimPrefix(href, "./")
		got := serve(t, h, "GET", target)
		if strings.HasSuffix(target, "/") {
			if got.status != 200 || !strings.Contains(got.body.String(), `href="./in.txt"`) {
				t.Errorf("link %s: %d %q, want the directory's listing", href, got.status, got.body.String())
			}
			continue
		}
		if got.status != 200 {
			t.Errorf("link %s: status %d, want 200", href, got.status)
		}
	}
	if n := len(hrefs(body)); n != len(files) {
		t.Errorf("%d links, want %d:\n%s", n, len(files), body)
	}
}

// hrefs returns the (HTML-unescaped) link targets of a listing, "../"
// excepted.
func hrefs(body string) []string {
	var out []string
	for _, part := range strings.Split(body, `<a href="`)[1:] {
		href, _, _ := strings.Cut(part, `"`)
		if href != "../" {
			out = append(out, strings.ReplaceAll(href, "&amp;", "&"))
		}
	}
	return out
}

// Symbolic links follow the site's policy: one leading out of the root,
// an absolute one and a dangling one are not listed unless
// AllowSymlinksOutside (the dangling one never); one inside is listed
// with its target's kind and size.
func TestListingFollowsSymlinkPolicy(t *testing.T) {
	outside := listingTree(t, map[string]string{"secret.txt": "secret", "secrets/": ""})
	root := listingTree(t, map[string]string{"real.txt": "12", "realdir/": ""})
	symlink(t, "real.txt", filepath.Join(root, "in-link.txt"))
	symlink(t, "realdir", filepath.Join(root, "in-dir"))
	symlink(t, filepath.Join(outside, "secret.txt"), filepath.Join(root, "abs-out.txt"))
	rel, err := filepath.Rel(root, filepath.Join(outside, "secrets"))
	if err != nil {
		t.Fatal(err)
	}
	symlink(t, rel, filepath.Join(root, "rel-out"))
	symlink(t, "missing", filepath.Join(root, "dangling"))

	confined := newHandler(t, static.Config{Root: root, Browse: true})
	if got, want := names(listJSON(t, confined, "/")), []string{"in-dir", "realdir", "in-link.txt", "real.txt"}; !reflect.DeepEqual(got, want) {
		t.Errorf("confined: got %q, want %q", got, want)
	}
	entries := listJSON(t, confined, "/")
	if !entries[0].IsDir || entries[2].Size != 2 {
		t.Errorf("links inside: got %+v, want in-dir a directory and in-link.txt of 2 bytes", entries)
	}
	free := newHandler(t, static.Config{Root: root, Browse: true, AllowSymlinksOutside: true})
	if got, want := names(listJSON(t, free, "/")), []string{"in-dir", "realdir", "rel-out", "abs-out.txt", "in-link.txt", "real.txt"}; !reflect.DeepEqual(got, want) {
		t.Errorf("allow_symlinks_outside_root: got %q, want %q", got, want)
	}
}

// HEAD gets the GET's fields, Content-Length included, and no body; the
// listing is marked no-cache and varies on Accept.
func TestListingHeadAndFields(t *testing.T) {
	root := listingTree(t, map[string]string{"f.txt": "x"})
	h := newHandler(t, static.Config{Root: root, Browse: true})
	for _, accept := range []string{"", "application/json"} {
		var header []statictest.Field
		if accept != "" {
			header = append(header, statictest.Field{Name: "Accept", Value: accept})
		}
		get := serve(t, h, "GET", "/", header...)
		head := serve(t, h, "HEAD", "/", header...)
		if head.status != 200 || head.body.Len() != 0 {
			t.Errorf("HEAD (Accept %q): %d with %d bytes, want 200 without a body", accept, head.status, head.body.Len())
		}
		if !reflect.DeepEqual(head.sent, get.sent) {
			t.Errorf("HEAD (Accept %q) fields %v, GET's %v", accept, head.sent, get.sent)
		}
		if got := get.values("Content-Length"); len(got) != 1 || got[0] != strconv.Itoa(get.body.Len()) {
			t.Errorf("Content-Length %q, body %d bytes", got, get.body.Len())
		}
		if got := get.values("Cache-Control"); len(got) != 1 || got[0] != "no-cache" {
			t.Errorf("Cache-Control %q, want no-cache", got)
		}
		if got := get.values("Vary"); len(got) != 1 || got[0] != "Accept" {
			t.Errorf("Vary %q, want Accept", got)
		}
	}
}

// Accept chooses the form: JSON only when it weighs application/json
// above text/html.
func TestListingFormatByAccept(t *testing.T) {
	h := newHandler(t, static.Config{Root: listingTree(t, map[string]string{"f.txt": "x"}), Browse: true})
	for _, c := range []struct {
		accept, want string
	}{
		{"", "text/html; charset=utf-8"},
		{"*/*", "text/html; charset=utf-8"},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html; charset=utf-8"},
		{"application/json", "application/json"},
		{"Application/JSON", "application/json"},
		{"application/json, text/plain, */*", "text/html; charset=utf-8"},
		{"application/json, */*;q=0.1", "application/json"},
		{"text/html;q=0.5, application/json", "application/json"},
		{"text/html, application/json;q=0.9", "text/html; charset=utf-8"},
		{"application/json;q=0", "text/html; charset=utf-8"},
	} {
		var header []statictest.Field
		if c.accept != "" {
			header = append(header, statictest.Field{Name: "Accept", Value: c.accept})
		}
		rec := serve(t, h, "GET", "/", header...)
		if got := rec.values("Content-Type"); len(got) != 1 || got[0] != c.want {
			t.Errorf("Accept %q: Content-Type %q, want %q", c.accept, got, c.want)
		}
	}
}

// The parent link is there in a subdirectory and not at the root; an
// index file still wins over the listing; a directory named without its
// slash is still redirected; a file is not a directory.
func TestListingParentIndexAndRedirect(t *testing.T) {
	root := listingTree(t, map[string]string{"sub/f.txt": "x", "site/index.html": "home", "file.txt": "x"})
	h := newHandler(t, static.Config{Root: root, Browse: true})
	if body := serve(t, h, "GET", "/").body.String(); strings.Contains(body, `href="../"`) {
		t.Errorf("root listing has a parent link:\n%s", body)
	}
	if body := serve(t, h, "GET", "/sub/").body.String(); !strings.Contains(body, `<a href="../">../</a>`) || !strings.Contains(body, "Index of /sub/") {
		t.Errorf("/sub/ listing lacks its title or parent link:\n%s", body)
	}
	expect(t, serve(t, h, "GET", "/site/"), 200, "home")
	if rec := serve(t, h, "GET", "/sub"); rec.status != 301 || rec.values("Location")[0] != "/sub/" {
		t.Errorf("GET /sub: %d %q, want 301 to /sub/", rec.status, rec.values("Location"))
	}
	expect(t, serve(t, h, "GET", "/file.txt/"), 404, "404 Not Found\n")
	expect(t, serve(t, h, "GET", "/nowhere/"), 404, "404 Not Found\n")
	expect(t, serve(t, h, "GET", "/.git/"), 404, "404 Not Found\n")
}

// Without Browse a directory without an index file is 404, as it always
// was.
func TestNoListingWithoutBrowse(t *testing.T) {
	h := newHandler(t, static.Config{Root: listingTree(t, map[string]string{"sub/f.txt": "x"})})
	expect(t, serve(t, h, "GET", "/"), 404, "404 Not Found\n")
	expect(t, serve(t, h, "GET", "/sub/"), 404, "404 Not Found\n")
}

// A listing shows the directory as it is now, though the file cache is on.
func TestListingIsNeverStale(t *testing.T) {
	root := listingTree(t, map[string]string{"a.txt": "x"})
	h := newHandler(t, static.Config{Root: root, Browse: true, CacheTTL: time.Hour})
	if got := names(listJSON(t, h, "/")); !reflect.DeepEqual(got, []string{"a.txt"}) {
		t.Fatalf("before: %q", got)
	}
	if err := os.WriteFile(filepath.Join(root, "b.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "a.txt")); err != nil {
		t.Fatal(err)
	}
	if got := names(listJSON(t, h, "/")); !reflect.DeepEqual(got, []string{"b.txt"}) {
		t.Errorf("after adding b.txt and removing a.txt: %q", got)
	}
}

// A directory of more than 10000 entries lists the first 10000 (in the
// directory's order, then sorted) and says it was cut.
func TestListingIsBounded(t *testing.T) {
	root := t.TempDir()
	for i := range 10005 {
		if err := os.WriteFile(filepath.Join(root, "f"+strconv.Itoa(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := newHandler(t, static.Config{Root: root, Browse: true})
	rec := serve(t, h, "GET", "/", statictest.Field{Name: "Accept", Value: "application/json"})
	var entries []jsonEntry
	if err := json.Unmarshal(rec.body.Bytes(), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 10000 {
		t.Errorf("%d entries, want 10000", len(entries))
	}
	if got := rec.values("Listing-Truncated"); len(got) != 1 || got[0] != "10000" {
		t.Errorf("Listing-Truncated %q, want 10000", got)
	}
	if body := serve(t, h, "GET", "/").body.String(); !strings.Contains(body, "The directory has more than 10000 entries: the listing stops there.") {
		t.Errorf("HTML listing does not say it was cut")
	}
}

// Finds agrees with Serve: with Browse a directory without an index file
// is found, a missing one is not.
func TestFindsListing(t *testing.T) {
	root := listingTree(t, map[string]string{"sub/f.txt": "x"})
	browse := newHandler(t, static.Config{Root: root, Browse: true})
	plain := newHandler(t, static.Config{Root: root})
	for _, c := range []struct {
		h      *static.Handler
		target string
		want   bool
	}{
		{browse, "/sub/", true},
		{browse, "/", true},
		{browse, "/nowhere/", false},
		{plain, "/sub/", false},
	} {
		if got := c.h.Finds(newRequest(t, statictest.Request{Method: "GET", Target: c.target})); got != c.want {
			t.Errorf("Finds(%s) = %v, want %v", c.target, got, c.want)
		}
	}
}
