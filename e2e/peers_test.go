package e2e

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/e2e/harness"
)

// curlArgs are the arguments every curl run gets: quiet with errors, trust
// anx's root, resolve localhost to 127.0.0.1, bounded time.
func curlArgs(s *harness.Server) []string {
	return []string{"-sS", "--max-time", "60", "--cacert", s.CAPath(),
		"--resolve", "localhost:" + strconv.Itoa(s.HTTPSPort) + ":127.0.0.1",
		"--resolve", "localhost:" + strconv.Itoa(s.HTTPPort) + ":127.0.0.1"}
}

// runCurl runs the curl at path with curlArgs and args; it fails the test on
// a non-zero exit.
func runCurl(t *testing.T, s *harness.Server, path string, args ...string) harness.Result {
	t.Helper()
	r := harness.RunCmd(t, s.Dir, harness.PeerTimeout, path, append(curlArgs(s), args...)...)
	if r.ExitCode != 0 || r.TimedOut {
		t.Fatalf("%s %q: exit %d (timed out %v)\nstdout: %s\nstderr: %s", path, args, r.ExitCode, r.TimedOut, r.Stdout, r.Stderr)
	}
	return r
}

// sameBytes fails the test if got differs from want, saying where.
func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Errorf("%s: got %d bytes, want %d; first difference at byte %d\ngot:  %q\nwant: %q",
		what, len(got), len(want), i, clip(got, i), clip(want, i))
}

// clip returns up to 64 bytes of b from about i, for messages.
func clip(b []byte, i int) []byte {
	i = max(0, i-16)
	if i > len(b) {
		return nil
	}
	return b[i:min(len(b), i+64)]
}

// lines splits s into its non-empty trimmed lines.
func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// readAll reads and closes res.Body, failing t on error.
func readAll(t *testing.T, res *http.Response) []byte {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Errorf("reading body: %v", err)
	}
	return b
}
