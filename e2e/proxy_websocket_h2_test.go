package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/e2e/harness"
)

// wsH2Page opens a WebSocket to /ws on its own origin and writes into the
// DOM the protocol its own page came over (the navigation's
// nextHopProtocol) and the echo. Its iframe of /gated (the upstream's,
// gate closed by the test) holds the page's load event, which
// `chromium --dump-dom` waits for, until the page opens the gate
// (/hold?on=0, routed to the upstream's control listener) once the DOM
// holds its result: the dump cannot come before the echo.
const wsH2Page = `<!doctype html><html><head><title>ws-h2</title></head><body><pre id="p">pending</pre>
<iframe src="/gated"></iframe>
<script>
const p = document.getElementById('p');
const page = performance.getEntriesByType('navigation')[0].nextHopProtocol;
const done = (text) => { p.textContent = text; fetch('/hold?on=0'); };
const ws = new WebSocket('wss://' + location.host + '/ws');
ws.onopen = () => ws.send('hello over ' + page);
ws.onmessage = (e) => { ws.close(); done('page=' + page + ' ws-echo=' + e.data); };
ws.onerror = () => done('page=' + page + ' ws-error');
</script></body></html>
`

// netLogProtocols reads a Chromium net log (--log-net-log) and returns,
// for each URL ending in one of suffixes, the HTTP versions that carried
// its request headers: "h1", "h2" or "h3", from the
// HTTP_TRANSACTION_{,HTTP2_,QUIC_}SEND_REQUEST_HEADERS events of the
// URL request that fetched it.
func netLogProtocols(t *testing.T, path string, suffixes ...string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("chromium's net log: %v", err)
	}
	var nl struct {
		Constants struct {
			LogEventTypes map[string]int `json:"logEventTypes"`
		} `json:"constants"`
		Events []struct {
			Type   int `json:"type"`
			Source struct {
				ID int `json:"id"`
			} `json:"source"`
			Params map[string]any `json:"params"`
		} `json:"events"`
	}
	if err := json.Unmarshal(b, &nl); err != nil {
		t.Fatalf("chromium's net log %s: %v", path, err)
	}
	sends := map[int]string{}
	for name, proto := range map[string]string{"HTTP_TRANSACTION_SEND_REQUEST_HEADERS": "h1",
		"HTTP_TRANSACTION_HTTP2_SEND_REQUEST_HEADERS": "h2", "HTTP_TRANSACTION_QUIC_SEND_REQUEST_HEADERS": "h3"} {
		sends[nl.Constants.LogEventTypes[name]] = proto
	}
	start := nl.Constants.LogEventTypes["URL_REQUEST_START_JOB"]
	urlOf := map[int]string{} // URL request source id -> the suffix its URL ends in
	out := map[string][]string{}
	for _, e := range nl.Events {
		if u, _ := e.Params["url"].(string); e.Type == start {
			for _, s := range suffixes {
				if strings.HasSuffix(u, s) {
					urlOf[e.Source.ID] = s
				}
			}
		}
		if s, ok := urlOf[e.Source.ID]; ok && sends[e.Type] != "" {
			out[s] = append(out[s], sends[e.Type])
		}
	}
	return out
}

// TestProxyWebSocketChromiumH2: headless Chromium loads a page from anx
// over HTTP/2 (its nextHopProtocol, asserted "h2") whose script opens a
// WebSocket through anx to the upstream; the echo lands in the DOM.
// anx advertises extended CONNECT (RFC 8441,
// SETTINGS_ENABLE_CONNECT_PROTOCOL) since a route proxies, so Chromium
// opens the WebSocket as a stream of the page's HTTP/2 connection: its net
// log shows both the page's request headers and the WebSocket's sent over
// h2, and the upstream sees an HTTP/1.1 upgrade.
func TestProxyWebSocketChromiumH2(t *testing.T) {
	t.Parallel()
	chromium := harness.Peer(t, "chromium")
	up := startUpstream(t, upstreamConfig{Name: "ws"})
	up.Hold(t, true)
	site := "root = \"{{.Root}}\"\n" + route("=/ws", proxyTo(up.URL())) + route("=/gated", proxyTo(up.URL())) +
		route("=/hold", proxyTo("http://"+up.Addrs.Control))
	s := harness.Start(t, harness.Options{Config: proxyConfig("", site), Site: func(t testing.TB, root string) {
		harness.WriteFile(t, filepath.Join(root, "ws-h2.html"), []byte(wsH2Page))
	}})
	netLog := filepath.Join(t.TempDir(), "netlog.json")
	args := []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + t.TempDir(),
		"--ignore-certificate-errors-spki-list=" + leafSPKI(t, s),
		"--host-resolver-rules=MAP localhost 127.0.0.1", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--log-net-log=" + netLog, "--dump-dom", s.URL("/ws-h2.html")}
	r := harness.RunCmd(t, t.TempDir(), harness.PeerTimeout, chromium, args...)
	const want = "page=h2 ws-echo=hello over h2"
	if !strings.Contains(r.Stdout, want) {
		t.Errorf("chromium --dump-dom: want %q in the DOM (exit %d, timed out %v)\nDOM: %s\nstderr: %s",
			want, r.ExitCode, r.TimedOut, tail(r.Stdout, 2000), tail(r.Stderr, 3000))
	}
	if n := up.Counts(t).Paths["/ws"]; n != 1 {
		t.Errorf("the upstream counted %d WebSocket requests, want 1", n)
	}
	got := netLogProtocols(t, netLog, "/ws-h2.html", "/ws")
	t.Logf("Chromium's net log: the page's request headers went over %v, the WebSocket handshake's over %v", got["/ws-h2.html"], got["/ws"])
	if page := got["/ws-h2.html"]; len(page) != 1 || page[0] != "h2" {
		t.Errorf("the page's request went over %v, want h2", page)
	}
	if ws := got["/ws"]; len(ws) != 1 || ws[0] != "h2" {
		t.Errorf("the WebSocket handshake went over %v, want h2 (extended CONNECT)", ws)
	}
}
