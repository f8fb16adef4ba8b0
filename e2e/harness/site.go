package harness

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// Secret markers: files holding them must never be served.
const (
	SecretOutside = "OUTSIDE-SECRET-7f3a" // in <dir>/outside/secret.txt, beside the root
	SecretDotEnv  = "DOTENV-SECRET-91c2"  // in <root>/.env
	SecretGit     = "GIT-SECRET-5d0e"     // in <root>/.git/config
	SecretPasswd  = "root:x:0:0"          // /etc/passwd
)

// H3Page is the path of a page whose inline script writes
// "nextHopProtocol=<protocol>" into the DOM.
const H3Page = "/h3.html"

// DownloadCount is the number of distinct files under /dl/ (f01.bin ...).
const DownloadCount = 20

// siteFiles are the small text files of the fixture site.
var siteFiles = map[string]string{
	"index.html":     "<!doctype html><title>anx</title><p>hello from anx</p>\n",
	"hello.txt":      "hello, anx\n",
	"sub/index.html": "<!doctype html><p>sub</p>\n",
	"sub/note.txt":   "a note in sub\n",
	"h3.html": `<!doctype html><html><head><title>h3</title></head><body><pre id="p">pending</pre>
<script>
const e = performance.getEntriesByType('navigation')[0];
document.getElementById('p').textContent = 'nextHopProtocol=' + (e ? e.nextHopProtocol : 'none');
</script></body></html>
`,
	".env":        SecretDotEnv + "\n",
	".git/config": "[core]\n" + SecretGit + "\n",
}

// WriteSite writes the fixture site into root: the small files of
// siteFiles (index.html, hello.txt, sub/, h3.html, .env, .git/config), data.bin
// (200 KiB of deterministic noise), dl/f01.bin..f20.bin, a secret file
// beside the root, and symlinks link-passwd (to /etc/passwd), link-outside
// (to the secret beside the root) and link-inside.txt (to hello.txt).
func WriteSite(t testing.TB, root string) {
	t.Helper()
	for name, body := range siteFiles {
		WriteFile(t, filepath.Join(root, name), []byte(body))
	}
	WriteFile(t, filepath.Join(root, "data.bin"), Noise("data.bin", 200<<10))
	for i := 1; i <= DownloadCount; i++ {
		name := fmt.Sprintf("dl/f%02d.bin", i)
		WriteFile(t, filepath.Join(root, name), Noise(name, 32<<10+i))
	}
	outside := filepath.Join(filepath.Dir(root), "outside", "secret.txt")
	WriteFile(t, outside, []byte(SecretOutside+"\n"))
	links := map[string]string{
		"link-passwd":     "/etc/passwd",
		"link-outside":    outside,
		"link-inside.txt": "hello.txt",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// WriteFile writes body to path, creating its directories.
func WriteFile(t testing.TB, path string, body []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Noise returns n deterministic pseudo-random bytes seeded by name.
func Noise(name string, n int) []byte {
	var seed [32]byte
	copy(seed[:], name)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}
