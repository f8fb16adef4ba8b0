package h2

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/netpoll"
	"github.com/anx-gateway/anx/internal/frontendtest"
	"github.com/anx-gateway/anx/tls/onloop"
)

// startH2C serves srv with prior knowledge on a loopback listener of its
// own event loops; cleanup shuts them down.
func startH2C(t testing.TB, srv *Server) string {
	t.Helper()
	return serveH2C(t, srv, false)
}

// startH2CPrepared is startH2C with the layer's file workers (Prepare).
func startH2CPrepared(t testing.TB, srv *Server) string {
	t.Helper()
	return serveH2C(t, srv, true)
}

// serveH2C runs srv behind the layer on two loops of its own.
func serveH2C(t testing.TB, srv *Server, prepare bool) string {
	h := &onloop.Handler{PriorKnowledge: srv}
	ns := &netpoll.Server{Handler: h, Loops: 2}
	if prepare {
		h.Prepare(ns)
	}
	if err := ns.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
		defer cancel()
		if err := ns.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return ns.Addr().String()
}

// h2cClient returns an x/net HTTP/2 client that speaks h2c with prior
// knowledge; cleanup closes its connections.
func h2cClient(t *testing.T) *http.Client {
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestLoopFrontEnd(t *testing.T) {
	frontendtest.Run(t, func(t *testing.T, h message.Handler) (string, http.RoundTripper) {
		addr := startH2C(t, &Server{Handler: h})
		return "http://" + addr, h2cClient(t).Transport
	})
}

// frameConn is a client connection that speaks HTTP/2 frame by frame.
type frameConn struct {
	t   *testing.T
	c   net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	blk bytes.Buffer
}

// dialFrames opens a connection to addr and exchanges the preface and
// SETTINGS (settings are the client's).
func dialFrames(t *testing.T, addr string, settings ...http2.Setting) *frameConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(hangTimeout))
	rc := &frameConn{t: t, c: c, fr: http2.NewFramer(c, c)}
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	rc.enc = hpack.NewEncoder(&rc.blk)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := rc.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return rc
}

// headers sends a header block on stream id.
func (rc *frameConn) headers(id uint32, end bool, fields ...string) {
	rc.t.Helper()
	rc.blk.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		rc.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.blk.Bytes(), EndStream: end, EndHeaders: true})
	if err != nil {
		rc.t.Fatal(err)
	}
}

// next returns the next frame on stream id other than WINDOW_UPDATE,
// skipping the connection's own frames; it fails on GOAWAY.
func (rc *frameConn) next(id uint32) http2.Frame {
	rc.t.Helper()
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			rc.t.Fatalf("reading stream %d: %v", id, err)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			rc.t.Fatalf("GOAWAY %v while waiting on stream %d", ga.ErrCode, id)
		}
		if f.Header().StreamID == id && f.Header().Type != http2.FrameWindowUpdate {
			return f
		}
	}
}

// yes says yes (Server.ExtendedConnect).
func yes() bool { return true }

// echoTunnel upgrades every request and echoes what the tunnel reads.
func echoTunnel(w message.ResponseWriter, r *message.Request) {
	up, ok := w.(message.Upgrader)
	if !ok || r.Protocol != "websocket" || r.Method != "CONNECT" {
		w.WriteHeader(400)
		return
	}
	c, err := up.Upgrade()
	if err != nil {
		w.WriteHeader(500)
		return
	}
	defer c.Close()
	io.Copy(c, c)
}

func TestExtendedConnectTunnel(t *testing.T) {
	addr := startH2C(t, &Server{Handler: message.HandlerFunc(echoTunnel), ExtendedConnect: yes})
	rc := dialFrames(t, addr)
	f, err := rc.fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %v, want SETTINGS", f)
	}
	if v, ok := sf.Value(http2.SettingEnableConnectProtocol); !ok || v != 1 {
		t.Fatalf("SETTINGS_ENABLE_CONNECT_PROTOCOL = %d (sent %v), want 1", v, ok)
	}
	rc.headers(1, false, ":method", "CONNECT", ":protocol", "websocket", ":scheme", "http", ":path", "/chat", ":authority", "example.com", "sec-websocket-version", "13")
	head, ok := rc.next(1).(*http2.MetaHeadersFrame)
	if !ok || head.PseudoValue("status") != "200" || head.StreamEnded() {
		t.Fatalf("answer to the extended CONNECT: %v, want 200 without END_STREAM", head)
	}
	// 100 KiB in pieces, each echoed before the next goes: more than the
	// stream's window, which the server opens again as the echo reads.
	for _, msg := range append([]string{"hello"}, slices.Repeat([]string{strings.Repeat("x", 16<<10)}, 7)...) {
		if err := rc.fr.WriteData(1, false, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		var got []byte
		for len(got) < len(msg) {
			f := rc.next(1)
			d, ok := f.(*http2.DataFrame)
			if !ok {
				t.Fatalf("echo of %d bytes: got %v after %d bytes, want DATA", len(msg), f, len(got))
			}
			got = append(got, d.Data()...)
			rc.fr.WriteWindowUpdate(0, uint32(len(d.Data())))
			rc.fr.WriteWindowUpdate(1, uint32(len(d.Data())))
		}
		if string(got) != msg {
			t.Fatalf("echo of %d bytes came back as %d bytes, not the same", len(msg), len(got))
		}
	}
	rc.fr.WriteData(1, true, nil) // the client's end: the echo ends too
	for {
		f := rc.next(1)
		if d, ok := f.(*http2.DataFrame); ok && d.StreamEnded() {
			break
		}
		if _, ok := f.(*http2.RSTStreamFrame); ok {
			t.Fatalf("tunnel reset instead of ended: %v", f)
		}
	}
}

func TestProtocolWithoutExtendedConnectIsMalformed(t *testing.T) {
	addr := startH2C(t, &Server{Handler: message.HandlerFunc(echoTunnel)})
	rc := dialFrames(t, addr)
	rc.headers(1, false, ":method", "CONNECT", ":protocol", "websocket", ":scheme", "http", ":path", "/chat", ":authority", "example.com")
	rst, ok := rc.next(1).(*http2.RSTStreamFrame)
	if !ok || rst.ErrCode != http2.ErrCodeProtocol {
		t.Fatalf("got %v, want RST_STREAM PROTOCOL_ERROR", rst)
	}
}

// TestRepeatedHeadsDecode serves heads that repeat and heads that change,
// in turns, on one connection: every one must decode to what the handler
// set, whether it was encoded or reused from the memo of the last head
// (push.go, headMemo).
func TestRepeatedHeadsDecode(t *testing.T) {
	h := okOnLoopWith(func(w message.ResponseWriter, r *message.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Variant", r.RawQuery)
	})
	addr := startH2C(t, &Server{Handler: h})
	c := h2cClient(t)
	for i := range 300 {
		// Runs of the same head (reused), then a new one (encoded, which
		// changes the tables), sometimes one seen before.
		variant := strconv.Itoa(i/7%5) + strings.Repeat("v", i%3*i/50)
		resp, err := c.Get("http://" + addr + "/?" + variant)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("X-Variant"); got != variant || resp.Header.Get("Content-Type") != "text/plain" {
			t.Fatalf("request %d: X-Variant %q Content-Type %q, want %q text/plain", i, got, resp.Header.Get("Content-Type"), variant)
		}
	}
}

// okOnLoopWith answers "ok" on the loop after set has set fields.
type okOnLoopWith func(w message.ResponseWriter, r *message.Request)

func (okOnLoopWith) NonBlocking() bool { return true }

func (set okOnLoopWith) Serve(w message.ResponseWriter, r *message.Request) {
	set(w, r)
	w.Header().Set("Content-Length", "2")
	w.Write([]byte("ok"))
}

// fileOnLoop answers with a whole file through WriteFile, on the loop.
type fileOnLoop struct{ f *os.File }

func (fileOnLoop) NonBlocking() bool { return true }

func (h fileOnLoop) Serve(w message.ResponseWriter, r *message.Request) {
	st, _ := h.f.Stat()
	w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
	w.(message.FileWriter).WriteFile(h.f, 0, st.Size())
}

// TestColdFileBody sends a file whose pages were dropped from the page
// cache: the loop has file workers read it ahead (Conn.Warm) and sends
// every byte once they have.
func TestColdFileBody(t *testing.T) {
	want := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16)
	path := filepath.Join(t.TempDir(), "cold.bin")
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // after the server's shutdown, which cleanup runs first
	f.Sync()
	if err := netpoll.DropCache(f, 0, int64(len(want))); err != nil {
		t.Fatal(err)
	}
	addr := startH2CPrepared(t, &Server{Handler: fileOnLoop{f: f}})
	resp, err := h2cClient(t).Get("http://" + addr + "/cold.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes (%v), want the file's %d", len(got), err, len(want))
	}
}

// TestHandlerReturnsAfterConnectionError: a handler off the loop is still
// running when the client's protocol error closes the connection; when it
// returns, its stream is released once, and the count of live streams
// comes back to exactly zero.
func TestHandlerReturnsAfterConnectionError(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	srv := &Server{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		if r.Path == "/hold" {
			close(entered)
			<-release
		}
		w.Write([]byte("ok"))
	})}
	addr := startH2C(t, srv)
	rc := dialFrames(t, addr)
	rc.headers(1, true, ":method", "GET", ":scheme", "http", ":path", "/hold", ":authority", "a")
	<-entered
	rc.fr.AllowIllegalWrites = true
	if err := rc.fr.WriteRSTStream(0, http2.ErrCodeCancel); err != nil { // RST_STREAM on stream 0: a connection error
		t.Fatal(err)
	}
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			t.Fatalf("waiting for GOAWAY: %v", err)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeProtocol {
				t.Fatalf("GOAWAY %v, want PROTOCOL_ERROR", ga.ErrCode)
			}
			break
		}
	}
	close(release)
	waitFor(t, "the handler's stream to be released", func() bool { return srv.Streams() <= 0 })
	rc.c.Close()
	checkServes(t, addr) // a new connection: its stream comes and goes
	waitFor(t, "the new connection's stream to be released", func() bool { return srv.Streams() <= 0 })
	if n := srv.Streams(); n != 0 {
		t.Fatalf("%d live streams, want 0 (a stream released twice counts below zero)", n)
	}
}
