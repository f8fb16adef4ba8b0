package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/e2e/harness"
)

// wsH2Page opens a WebSocket to /ws on its own origin and writes into the
// DOM the protocol its own page came over (the navigation's
// nextHopProtocol) and the echo.
const wsH2Page = `<!doctype html><html><head><title>ws-h2</title></head><body><pre id="p">pending</pre>
<script>
const p = document.getElementById('p');
const page = performance.getEntriesByType('navigation')[0].nextHopProtocol;
const ws = new WebSocket('wss://' + location.host + '/ws');
ws.onopen = () => ws.send('hello over ' + page);
ws.onmessage = (e) => { p.textContent = 'page=' + page + ' ws-echo=' + e.data; ws.close(); };
ws.onerror = () => { p.textContent = 'page=' + page + ' ws-error'; };
</script></body></html>
`

// TestProxyWebSocketChromiumH2: headless Chromium loads a page from anx
// over HTTP/2 (its nextHopProtocol, asserted "h2") whose script opens a
// WebSocket through anx to the upstream; the echo lands in the DOM.
// anx does not advertise extended CONNECT (RFC 8441,
// SETTINGS_ENABLE_CONNECT_PROTOCOL), so Chromium carries the WebSocket
// over a separate HTTP/1.1 connection: its net log shows the handshake
// "GET /ws HTTP/1.1" and no HTTP/2 CONNECT with :protocol websocket.
func TestProxyWebSocketChromiumH2(t *testing.T) {
	t.Parallel()
	chromium := harness.Peer(t, "chromium")
	up := startUpstream(t, upstreamConfig{Name: "ws"})
	cfg := proxyConfig("", "root = \"{{.Root}}\"\n"+route("=/ws", proxyTo(up.URL())))
	s := harness.Start(t, harness.Options{Config: cfg, Site: func(t testing.TB, root string) {
		harness.WriteFile(t, filepath.Join(root, "ws-h2.html"), []byte(wsH2Page))
	}})
	netLog := filepath.Join(t.TempDir(), "netlog.json")
	args := []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + t.TempDir(),
		"--ignore-certificate-errors-spki-list=" + leafSPKI(t, s),
		"--host-resolver-rules=MAP localhost 127.0.0.1", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--log-net-log=" + netLog, "--net-log-capture-mode=Everything",
		"--virtual-time-budget=10000", "--dump-dom", s.URL("/ws-h2.html")}
	r := harness.RunCmd(t, t.TempDir(), harness.PeerTimeout, chromium, args...)
	const want = "page=h2 ws-echo=hello over h2"
	if !strings.Contains(r.Stdout, want) {
		t.Errorf("chromium --dump-dom: want %q in the DOM (exit %d, timed out %v)\nDOM: %s\nstderr: %s",
			want, r.ExitCode, r.TimedOut, tail(r.Stdout, 2000), tail(r.Stderr, 3000))
	}
	if n := up.Counts(t).Paths["/ws"]; n != 1 {
		t.Errorf("the upstream counted %d WebSocket requests, want 1", n)
	}
	log, err := os.ReadFile(netLog)
	if err != nil {
		t.Fatalf("chromium's net log: %v", err)
	}
	h1Upgrade := strings.Contains(string(log), `GET /ws HTTP/1.1`)
	h2Connect := regexp.MustCompile(`:protocol: websocket`).Match(log)
	t.Logf("the page came over h2; Chromium's net log (%d bytes): WebSocket handshake as an HTTP/1.1 GET %v, as an HTTP/2 extended CONNECT %v",
		len(log), h1Upgrade, h2Connect)
	if !h1Upgrade || h2Connect {
		t.Errorf("want the WebSocket over HTTP/1.1 (anx does not offer extended CONNECT): h1 GET %v, h2 CONNECT %v", h1Upgrade, h2Connect)
	}
}
