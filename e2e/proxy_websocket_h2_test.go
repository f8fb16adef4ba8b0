package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

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

// TestProxyWebSocketOverH2Echo: a client opens a WebSocket over HTTP/2
// with an extended CONNECT (RFC 8441) through anx to a WebSocket upstream,
// which gets it as an HTTP/1.1 upgrade, and 1000 messages come back
// byte-identical. The client is x/net's framer with RFC 6455 frames of
// the test's own (no Go WebSocket library speaks RFC 8441).
func TestProxyWebSocketOverH2Echo(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "ws"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(up.URL()))))
	tc, err := tls.Dial("tcp", s.HTTPS, &tls.Config{RootCAs: s.CAPool(), ServerName: "localhost", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(harness.PeerTimeout))
	ws := openWebSocketH2(t, tc)
	for i := range 1000 {
		msg := []byte(strings.Repeat(fmt.Sprintf("message %d ", i), 1+i%50))
		ws.send(msg)
		if got := ws.receive(); !bytes.Equal(got, msg) {
			t.Fatalf("echo %d: %d bytes, want the %d bytes sent", i, len(got), len(msg))
		}
	}
}

// h2WebSocket is a WebSocket on stream 1 of an HTTP/2 connection.
type h2WebSocket struct {
	t   *testing.T
	fr  *http2.Framer
	in  []byte // stream data received and not yet parsed
	key [4]byte
}

// openWebSocketH2 sends the preface and an extended CONNECT for /ws,
// after checking that the server's SETTINGS allow it, and waits for 200.
func openWebSocketH2(t *testing.T, c net.Conn) *h2WebSocket {
	t.Helper()
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.WriteSettings()
	fr.WriteWindowUpdate(0, 1<<30)
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if sf, ok := f.(*http2.SettingsFrame); !ok {
		t.Fatalf("first frame %v, want SETTINGS", f)
	} else if v, _ := sf.Value(http2.SettingEnableConnectProtocol); v != 1 {
		t.Fatalf("SETTINGS_ENABLE_CONNECT_PROTOCOL = %d, want 1 (a route proxies)", v)
	}
	fr.WriteSettingsAck()
	var blk bytes.Buffer
	enc := hpack.NewEncoder(&blk)
	for _, f := range [][2]string{{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"},
		{":path", "/ws"}, {":authority", "localhost"}, {"sec-websocket-version", "13"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	ws := &h2WebSocket{t: t, fr: fr, key: [4]byte{1, 2, 3, 4}}
	for {
		f := ws.next()
		if h, ok := f.(*http2.MetaHeadersFrame); ok {
			if h.PseudoValue("status") != "200" || h.StreamEnded() {
				t.Fatalf("extended CONNECT answered %q (ended %v), want 200 and an open stream", h.PseudoValue("status"), h.StreamEnded())
			}
			return ws
		}
	}
}

// next reads the next frame of stream 1, answering PINGs and SETTINGS on
// the way, passing over WINDOW_UPDATEs and giving back the window of what
// it reads.
func (ws *h2WebSocket) next() http2.Frame {
	ws.t.Helper()
	for {
		f, err := ws.fr.ReadFrame()
		if err != nil {
			ws.t.Fatalf("reading: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				ws.fr.WriteSettingsAck()
			}
			continue
		case *http2.PingFrame:
			if !f.IsAck() {
				ws.fr.WritePing(true, f.Data)
			}
			continue
		case *http2.WindowUpdateFrame:
			continue
		case *http2.GoAwayFrame, *http2.RSTStreamFrame:
			ws.t.Fatalf("server sent %v", f)
		case *http2.DataFrame:
			if n := len(f.Data()); n > 0 {
				ws.fr.WriteWindowUpdate(1, uint32(n))
			}
		}
		if f.Header().StreamID == 1 {
			return f
		}
	}
}

// send writes msg as one masked binary frame (RFC 6455 section 5.2).
func (ws *h2WebSocket) send(msg []byte) {
	ws.t.Helper()
	frame := []byte{0x82}
	switch n := len(msg); {
	case n < 126:
		frame = append(frame, 0x80|byte(n))
	default:
		frame = append(frame, 0x80|126, byte(n>>8), byte(n))
	}
	frame = append(frame, ws.key[:]...)
	for i, b := range msg {
		frame = append(frame, b^ws.key[i%4])
	}
	for len(frame) > 0 { // within the stream window the server gave
		n := min(len(frame), 16<<10)
		if err := ws.fr.WriteData(1, false, frame[:n]); err != nil {
			ws.t.Fatal(err)
		}
		frame = frame[n:]
	}
}

// receive returns the payload of the next whole server frame (unmasked).
func (ws *h2WebSocket) receive() []byte {
	ws.t.Helper()
	for {
		if msg, n, ok := parseServerFrame(ws.in); ok {
			ws.in = ws.in[n:]
			return msg
		}
		d, ok := ws.next().(*http2.DataFrame)
		if !ok {
			ws.t.Fatal("a frame other than DATA while waiting for the echo")
		}
		if d.StreamEnded() {
			ws.t.Fatal("the tunnel ended while waiting for the echo")
		}
		ws.in = append(ws.in, d.Data()...)
	}
}

// parseServerFrame parses an unmasked frame of up to 64 KiB at the start
// of b: its payload and its length, if whole.
func parseServerFrame(b []byte) (payload []byte, n int, ok bool) {
	if len(b) < 2 {
		return nil, 0, false
	}
	size, head := int(b[1]&0x7f), 2
	if size == 126 {
		if len(b) < 4 {
			return nil, 0, false
		}
		size, head = int(b[2])<<8|int(b[3]), 4
	}
	if len(b) < head+size {
		return nil, 0, false
	}
	return b[head : head+size], head + size, true
}
