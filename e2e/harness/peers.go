package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// installHint is what a failure for a missing peer tells the reader to do.
const installHint = "run `make test`, or `sudo e2e/install-peers.sh` then this test again " +
	"(or use `go test -short` to skip tests that need real peers)"

// Peer returns the path of the real peer program name (e.g. "curl",
// "h2load", "gtlsclient", "chromium", "slowhttptest", "testssl", "openssl",
// "qemu-aarch64", "h2spec", "pebble", "curl-h3").
// Under -short it skips the test; if the peer is missing it fails the test.
func Peer(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("needs the real peer %s: skipped under -short", name)
	}
	path, why := findPeer(name)
	if path == "" {
		t.Fatalf("peer %s not found (%s): %s", name, why, installHint)
	}
	return path
}

// findPeer looks a peer up per the rules of the package doc.
func findPeer(name string) (path, why string) {
	switch name {
	case "curl-h3":
		return findCurlH3()
	case "h2spec":
		if p := os.Getenv("ANX_H2SPEC"); p != "" {
			return executable(p, "ANX_H2SPEC")
		}
		return findTool(name)
	case "pebble", "pebble-challtestsrv":
		return findTool(name)
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", "not in PATH"
	}
	return p, ""
}

// findTool finds a peer that the install script puts in <repo>/.tools/bin
// with go install: in PATH first, then there.
func findTool(name string) (path, why string) {
	if p, err := exec.LookPath(name); err == nil {
		return p, ""
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err.Error()
	}
	return executable(filepath.Join(root, ".tools", "bin", name), "not in PATH nor .tools/bin")
}

// findCurlH3 returns $ANX_CURL_H3 or the install script's cache path, if it
// is a curl with HTTP3 among its features.
func findCurlH3() (string, string) {
	p := os.Getenv("ANX_CURL_H3")
	if p == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache")
		}
		p = filepath.Join(cache, "anx-peers", "curl-h3", "bin", "curl")
	}
	if p, why := executable(p, "ANX_CURL_H3 unset and no cached build"); p == "" {
		return "", why
	}
	out, err := exec.Command(p, "-V").Output()
	if err != nil || !strings.Contains(string(out), "HTTP3") {
		return "", p + " has no HTTP3 feature"
	}
	return p, ""
}

// executable returns p if it is an executable file, else why.
func executable(p, why string) (string, string) {
	st, err := os.Stat(p)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", why + ": " + p
	}
	return p, ""
}

// PeerTimeout bounds a single run of a peer program: SafetyNet.
const PeerTimeout = SafetyNet
