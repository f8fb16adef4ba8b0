package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// siteConfig writes a config file with writeConfig and, next to it, a
// directory "site" holding index.html and a directory "sub".
func siteConfig(t *testing.T, text string) string {
	t.Helper()
	path := writeConfig(t, text)
	root := filepath.Join(filepath.Dir(path), "site")
	if err := os.MkdirAll(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte("app"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBrowseAndFallbackLoad(t *testing.T) {
	path := siteConfig(t, `
[[site]]
hosts = ["a.test"]
root = "site"
browse = true
fallback = "/index.html"
[[site]]
hosts = ["b.test"]
root = "site"
`)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Sites[0]; !a.Browse || a.Fallback.Path != "/index.html" {
		t.Errorf("site a: browse %v, fallback %q; want true, /index.html", a.Browse, a.Fallback.Path)
	}
	if b := cfg.Sites[1]; b.Browse || b.Fallback.Path != "" {
		t.Errorf("site b: browse %v, fallback %q; want the defaults false and none", b.Browse, b.Fallback.Path)
	}
}

// A bad browse or fallback names the file, the line and the key.
func TestBadBrowseAndFallback(t *testing.T) {
	site := "[[site]]\nhosts = [\"a.test\"]\nroot = \"site\"\n"
	cases := []struct {
		name, text, want string
	}{
		{"browse not a boolean", site + "browse = \"yes\"\n", `:4: key "site.browse"`},
		{"relative fallback", site + "fallback = \"index.html\"\n", `:4: key "site.fallback": want the path of a file under the root, such as "/index.html"`},
		{"fallback with ..", site + "fallback = \"/../etc/passwd\"\n", `:4: key "site.fallback": want the path of a file`},
		{"fallback a dot file", site + "fallback = \"/.env\"\n", `:4: key "site.fallback": want the path of a file`},
		{"fallback a directory path", site + "fallback = \"/sub/\"\n", `:4: key "site.fallback": want the path of a file`},
		{"fallback not a string", site + "fallback = 1\n", `:4: key "site.fallback"`},
		{"missing fallback", site + "\nfallback = \"/app.html\"\n", `:5: key "site.fallback": ` + "%ROOT%/app.html: no such file"},
		{"fallback a directory", site + "fallback = \"/sub\"\n", `:4: key "site.fallback": ` + "%ROOT%/sub: not a regular file"},
		{"fallback of the second site", site + "[[site]]\nhosts = [\"b.test\"]\nroot = \"site\"\n[[site.route]]\npath = \"/x\"\nrespond = \"x\"\n[[site]]\nhosts = [\"c.test\"]\nroot = \"site\"\nfallback = \"/gone.html\"\n",
			`:13: key "site.fallback": %ROOT%/gone.html: no such file`},
		{"fallback without a root", "[[site]]\nhosts = [\"a.test\"]\nfallback = \"/index.html\"\n[[site.route]]\npath = \"/\"\nrespond = \"x\"\n", `:3: key "site.fallback": "/index.html" is looked up under the site's root, and the site has none`},
	}
	for _, c := range cases {
		path := siteConfig(t, c.text)
		want := strings.ReplaceAll(c.want, "%ROOT%", filepath.Join(filepath.Dir(path), "site"))
		_, err := Load(path)
		if err == nil {
			t.Errorf("%s: loaded without error", c.name)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, path) || !strings.Contains(msg, want) {
			t.Errorf("%s:\n got  %q\n want %q after the file name", c.name, msg, want)
		}
	}
}

// A root that does not exist is left to the start-up check of roots,
// which names it; the fallback check does not hide that behind its own.
func TestFallbackUnderMissingRootLoads(t *testing.T) {
	path := writeConfig(t, "[[site]]\nhosts = [\"a.test\"]\nroot = \"nowhere\"\nfallback = \"/index.html\"\n")
	if _, err := Load(path); err != nil {
		t.Errorf("Load: %v, want the root left to checkRoots", err)
	}
}
