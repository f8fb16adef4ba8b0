package e2e

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/anx-gateway/anx/e2e/harness"
)

// TestProxyWebSocketOverH3Echo: a Go client on quic-go opens a WebSocket
// over HTTP/3 with an extended CONNECT (RFC 9220) through anx, after
// checking that anx's SETTINGS allow it, to a WebSocket upstream, which
// accepts it only as an HTTP/1.1 Upgrade (coder/websocket's Accept
// refuses anything else); 1000 messages, text and binary of 0 to 64 KiB,
// come back byte-identical, and the WebSocket closes cleanly (close
// handshake, then the end of the stream). The access log has the
// tunnel's line: CONNECT /ws over HTTP/3, status 200, with at least the
// echoed bytes sent, and the upstream's 101.
func TestProxyWebSocketOverH3Echo(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "ws"})
	s := startProxy(t, proxyConfig("", "access_log = \"access.log\"\n"+route("/", proxyTo(up.URL()))))
	cc := dialH3(t, s)
	if !cc.Settings().EnableExtendedConnect {
		t.Fatal("anx's HTTP/3 SETTINGS do not enable extended CONNECT (RFC 9220)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), harness.SafetyNet)
	defer cancel()
	c, res, err := websocket.Dial(ctx, "wss://localhost:"+strconv.Itoa(s.HTTPSPort)+"/ws",
		&websocket.DialOptions{HTTPClient: &http.Client{Transport: h3WebSocketTransport{cc}}})
	if err != nil {
		t.Fatalf("WebSocket over HTTP/3 through anx: %v (status %d)", err, statusOfResponse(res))
	}
	defer c.CloseNow()
	c.SetReadLimit(16 << 20)
	echoMessages(t, c, "ws over h3", 1000)
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("closing the WebSocket: %v", err)
	}
	if n := up.Counts(t).Paths["/ws"]; n != 1 {
		t.Errorf("the upstream counted %d WebSocket requests, want 1", n)
	}
	lines := parseAccessLines(t, waitLines(t, filepath.Join(s.Dir, "access.log"), 1))
	l := lines[0]
	t.Logf("access log: %+v", l)
	if len(lines) != 1 || l.Method != "CONNECT" || l.URI != "/ws" || l.Proto != "HTTP/3" || l.Status != 200 ||
		l.Upstream != up.URL() || l.UpstreamStatus != 101 || l.BytesSent < echoedBytes(1000) {
		t.Errorf("access log lines %+v, want one: CONNECT /ws HTTP/3 200 from upstream %s (its 101), bytes_sent >= %d",
			lines, up.URL(), echoedBytes(1000))
	}
}

// TestProxyWebSocketOverH3Drain: a WebSocket over HTTP/3 open when anx
// gets SIGTERM keeps echoing while anx drains (the tunnel is a request in
// flight), and is cut when the drain timeout ends: anx exits 0 then,
// not held by the tunnel.
func TestProxyWebSocketOverH3Drain(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "ws"})
	s := startProxy(t, proxyConfig("[timeouts]\ndrain = \"10s\"\n", route("/", proxyTo(up.URL()))))
	cc := dialH3(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), harness.SafetyNet)
	defer cancel()
	c, res, err := websocket.Dial(ctx, "wss://localhost:"+strconv.Itoa(s.HTTPSPort)+"/ws",
		&websocket.DialOptions{HTTPClient: &http.Client{Transport: h3WebSocketTransport{cc}}})
	if err != nil {
		t.Fatalf("WebSocket over HTTP/3 through anx: %v (status %d)", err, statusOfResponse(res))
	}
	defer c.CloseNow()
	echoMessages(t, c, "before SIGTERM", 10)
	sigterm := time.Now()
	if err := s.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !s.WaitLog("msg=stopping", harness.SafetyNet) {
		t.Fatal("anx did not log that it is stopping")
	}
	echoMessages(t, c, "while draining", 10)
	code, err := s.Wait(harness.SafetyNet)
	if err != nil || code != 0 {
		t.Fatalf("anx after SIGTERM: exit %d, err %v; want 0", code, err)
	}
	t.Logf("anx exited %v after SIGTERM", time.Since(sigterm).Round(time.Millisecond))
	if _, _, err := c.Read(ctx); err == nil {
		t.Error("the WebSocket still reads after anx exited")
	}
}

// echoedBytes is the payload echoMessages gets back for n messages.
func echoedBytes(n int) int64 {
	var total int64
	for i := range n {
		if i%2 == 1 {
			total += int64(len(fmt.Sprintf("text %d ", i)) * (i % 100))
		} else {
			total += int64((i * 977) % (64 << 10))
		}
	}
	return total
}

// dialH3 opens a QUIC connection to anx's https port, trusting its root,
// and quic-go's HTTP/3 client connection on it, and waits for anx's
// SETTINGS. It is closed in t.Cleanup.
func dialH3(t *testing.T, s *harness.Server) *http3.ClientConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), harness.SafetyNet)
	defer cancel()
	qc, err := quic.DialAddr(ctx, s.HTTPS, s.TLSConfig(http3.NextProtoH3),
		&quic.Config{HandshakeIdleTimeout: harness.SafetyNet, MaxIdleTimeout: harness.SafetyNet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qc.CloseWithError(0, "") })
	tr := &http3.Transport{}
	t.Cleanup(func() { tr.Close() })
	cc := tr.NewClientConn(qc)
	select {
	case <-cc.ReceivedSettings():
	case <-ctx.Done():
		t.Fatal("no HTTP/3 SETTINGS from anx")
	}
	return cc
}

// h3WebSocketTransport turns the HTTP/1.1 WebSocket handshake that
// coder/websocket's Dial sends into an extended CONNECT on a new stream
// of cc (RFC 9220, with RFC 8441's fields: no Connection, Upgrade or
// Sec-WebSocket-Key), and a 200 into the 101 Dial expects, its
// Sec-WebSocket-Accept computed here (RFC 8441 section 5), with the
// stream as the response body that Dial reads and writes the WebSocket
// on.
type h3WebSocketTransport struct{ cc *http3.ClientConn }

func (tr h3WebSocketTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	key := req.Header.Get("Sec-WebSocket-Key")
	connect := &http.Request{Method: http.MethodConnect, Proto: "websocket", URL: req.URL, Host: req.URL.Host, Header: req.Header.Clone()}
	for _, name := range []string{"Connection", "Upgrade", "Sec-WebSocket-Key"} {
		connect.Header.Del(name)
	}
	str, err := tr.cc.OpenRequestStream(req.Context())
	if err != nil {
		return nil, err
	}
	if err := str.SendRequestHeader(connect); err != nil {
		return nil, err
	}
	res, err := str.ReadResponse()
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		str.Close()
		return res, errors.New("extended CONNECT not answered 200")
	}
	res.StatusCode, res.Status = http.StatusSwitchingProtocols, "101 Switching Protocols"
	res.Header.Set("Connection", "Upgrade")
	res.Header.Set("Upgrade", "websocket")
	accept := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	res.Header.Set("Sec-WebSocket-Accept", base64.StdEncoding.EncodeToString(accept[:]))
	res.Body = str
	return res, nil
}

// TestProxyWebSocketOverH3NoProxyRoute: on a site whose routes do not
// proxy, an extended CONNECT over HTTP/3 (which quic-go's SETTINGS always
// allow; anx cannot leave the setting out) gets the file route's answer,
// 405, and opens no tunnel.
func TestProxyWebSocketOverH3NoProxyRoute(t *testing.T) {
	t.Parallel()
	s := startProxy(t, proxyConfig("", "root = \"{{.Root}}\"\n"))
	cc := dialH3(t, s)
	t.Logf("SETTINGS_ENABLE_CONNECT_PROTOCOL from anx without a proxy route: %v", cc.Settings().EnableExtendedConnect)
	ctx, cancel := context.WithTimeout(context.Background(), harness.SafetyNet)
	defer cancel()
	str, err := cc.OpenRequestStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodConnect, "https://localhost/hello.txt", nil)
	req.Proto, req.Header = "websocket", http.Header{"Sec-Websocket-Version": {"13"}}
	if err := str.SendRequestHeader(req); err != nil {
		t.Fatal(err)
	}
	res, err := str.ReadResponse()
	if err != nil {
		t.Fatalf("answer to the extended CONNECT: %v", err)
	}
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("extended CONNECT to a file: status %d, want 405", res.StatusCode)
	}
}
