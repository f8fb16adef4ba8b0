package h3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/qpack"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/quicvarint"

	"github.com/anx-gateway/anx/core/message"
)

// deadline is the safety net of a tunnel stream in these tests.
func deadline() time.Time { return time.Now().Add(hangTimeout) }

// Deadlines for the deadline test: one long past, and none.
var (
	aLongTimeAgo = time.Unix(1, 0)
	noDeadline   time.Time
)

// connectSeen is what a tunnel handler saw of the request.
type connectSeen struct {
	method, protocol, path, host string
	contentLength                int64
	upgradeErr                   error
}

// upgradeAnd records the request in *seen, upgrades it and runs use on
// the tunnel, which use must close.
func upgradeAnd(seen *atomic.Pointer[connectSeen], use func(c net.Conn)) message.HandlerFunc {
	return func(w message.ResponseWriter, r *message.Request) {
		s := &connectSeen{method: r.Method, protocol: r.Protocol, path: r.Path, host: r.Host, contentLength: r.ContentLength}
		c, err := w.(message.Upgrader).Upgrade()
		s.upgradeErr = err
		seen.Store(s) // before the tunnel can end
		if err == nil {
			use(c)
		}
	}
}

// echoThenClose copies what the client sends back until it ends its
// side, then closes the tunnel.
func echoThenClose(c net.Conn) {
	_, _ = io.Copy(c, c)
	c.Close()
}

// dialH3 opens a QUIC connection to ts and quic-go's HTTP/3 client
// connection on it, and waits for the server's SETTINGS.
func dialH3(t *testing.T, ts *testServer) (*quic.Conn, *http3.ClientConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
	t.Cleanup(cancel)
	qc, err := quic.DialAddr(ctx, ts.addr, ts.tlsConfig(), nil)
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
		t.Fatal("no SETTINGS from the server")
	}
	return qc, cc
}

// openTunnel sends an extended CONNECT for :protocol websocket to /chat
// and reads the answer, which must be a 200 without a content length.
func openTunnel(t *testing.T, cc *http3.ClientConn) *http3.RequestStream {
	t.Helper()
	str, err := cc.OpenRequestStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	str.SetDeadline(deadline())
	req := &http.Request{Method: http.MethodConnect, Proto: "websocket", Host: "example.com",
		URL: &url.URL{Scheme: "https", Host: "example.com", Path: "/chat"}, Header: http.Header{"Sec-Websocket-Version": {"13"}}}
	if err := str.SendRequestHeader(req); err != nil {
		t.Fatal(err)
	}
	resp, err := str.ReadResponse()
	if err != nil {
		t.Fatalf("answer to the extended CONNECT: %v", err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != "" {
		t.Fatalf("answer to the extended CONNECT: %d, Content-Length %q; want 200 without one", resp.StatusCode, resp.Header.Get("Content-Length"))
	}
	return str
}

// TestExtendedConnectTunnel: the server advertises
// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 9220); an extended CONNECT
// reaches the handler as method CONNECT with Protocol "websocket", the
// target's path and no content; Upgrade answers 200 and gives a duplex
// stream that echoes 1 MiB in pieces of up to 64 KiB each way; when the
// client ends its side, the handler's Close ends the stream cleanly (the
// client reads io.EOF, no reset).
func TestExtendedConnectTunnel(t *testing.T) {
	var seen atomic.Pointer[connectSeen]
	ts := start(t, &Server{Handler: upgradeAnd(&seen, echoThenClose)})
	_, cc := dialH3(t, ts)
	if !cc.Settings().EnableExtendedConnect {
		t.Fatal("the server's SETTINGS do not enable extended CONNECT (RFC 9220)")
	}
	str := openTunnel(t, cc)
	total := 0
	for i := 0; total < 1<<20; i++ {
		msg := bytes.Repeat([]byte{byte(i)}, 1+(i*7919)%(64<<10))
		total += len(msg)
		if _, err := str.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(str, got); err != nil {
			t.Fatalf("echo %d of %d bytes: %v", i, len(msg), err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("echo %d of %d bytes differs", i, len(msg))
		}
	}
	str.Close() // END of the client's side
	if n, err := str.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the client's end: read %d bytes, %v; want io.EOF (the stream ended cleanly)", n, err)
	}
	s := seen.Load()
	want := connectSeen{method: "CONNECT", protocol: "websocket", path: "/chat", host: "example.com"}
	if s == nil || *s != want {
		t.Errorf("the handler saw %+v, want %+v", s, want)
	}
}

// TestTunnelOutlivesServe: a handler that upgrades and returns at once,
// leaving the tunnel to a goroutine, still has a working stream: the
// goroutine echoes, then closes it, and only then does the stream end.
func TestTunnelOutlivesServe(t *testing.T) {
	var seen atomic.Pointer[connectSeen]
	ts := start(t, &Server{Handler: upgradeAnd(&seen, func(c net.Conn) { go echoThenClose(c) })})
	_, cc := dialH3(t, ts)
	str := openTunnel(t, cc)
	for _, msg := range []string{"after", "Serve", "returned"} {
		if _, err := io.WriteString(str, msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(str, got); err != nil || string(got) != msg {
			t.Fatalf("echo of %q: %q, %v", msg, got, err)
		}
	}
	str.Close()
	if _, err := io.ReadAll(str); err != nil {
		t.Fatalf("the stream after the goroutine closed the tunnel: %v, want a clean end", err)
	}
}

// TestTunnelCloseWakesReader: the server's side ends first, as when a
// proxied upstream closes: Close wakes a Read that waits for the client,
// the client gets what was written and then a clean end of the stream.
func TestTunnelCloseWakesReader(t *testing.T) {
	var seen atomic.Pointer[connectSeen]
	readErr := make(chan error, 1)
	ts := start(t, &Server{Handler: upgradeAnd(&seen, func(c net.Conn) {
		go func() {
			_, err := c.Read(make([]byte, 1))
			readErr <- err
		}()
		_, _ = io.WriteString(c, "bye")
		c.Close()
	})})
	_, cc := dialH3(t, ts)
	str := openTunnel(t, cc)
	got, err := io.ReadAll(str)
	if err != nil || string(got) != "bye" {
		t.Fatalf("the client read %q, %v; want \"bye\" and a clean end", got, err)
	}
	select {
	case err := <-readErr:
		if err == nil {
			t.Error("the waiting Read returned no error after Close")
		}
	case <-time.After(hangTimeout):
		t.Fatal("Close did not wake the waiting Read")
	}
}

// TestTunnelCloseWrite: the server ends its side first (CloseWrite, as
// the proxy does when its upstream ends) and still reads: the client gets
// a clean end of the stream, then sends more, which the server reads to
// the client's end.
func TestTunnelCloseWrite(t *testing.T) {
	var seen atomic.Pointer[connectSeen]
	read := make(chan string, 1)
	ts := start(t, &Server{Handler: upgradeAnd(&seen, func(c net.Conn) {
		defer c.Close()
		_, _ = io.WriteString(c, "bye")
		if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
			read <- "CloseWrite: " + err.Error()
			return
		}
		b, err := io.ReadAll(c)
		if err != nil {
			read <- "reading after CloseWrite: " + err.Error()
			return
		}
		read <- string(b)
	})})
	_, cc := dialH3(t, ts)
	str := openTunnel(t, cc)
	got, err := io.ReadAll(str)
	if err != nil || string(got) != "bye" {
		t.Fatalf("the client read %q, %v; want \"bye\" and a clean end", got, err)
	}
	if _, err := io.WriteString(str, "still sending"); err != nil {
		t.Fatalf("writing after the server's end: %v", err)
	}
	str.Close()
	select {
	case got := <-read:
		if got != "still sending" {
			t.Errorf("the server read %q after its CloseWrite, want \"still sending\"", got)
		}
	case <-time.After(hangTimeout):
		t.Fatal("the server's read after its CloseWrite never ended")
	}
}

// outcomes passes each exchange's Outcome to a channel.
type outcomes chan message.Outcome

func (o outcomes) Observe(_ *message.Request, out *message.Outcome) { o <- *out }

// TestTunnelDeadlines: a read deadline in the past makes Read fail at
// once with a timeout; cleared, the tunnel still echoes. A write
// deadline works the same way. The Observer then sees a whole exchange
// (a timeout is no cut) with the tunnel's bytes both ways.
func TestTunnelDeadlines(t *testing.T) {
	var seen atomic.Pointer[connectSeen]
	results := make(chan error, 2)
	observed := make(outcomes, 1)
	ts := start(t, &Server{Observer: observed, Handler: upgradeAnd(&seen, func(c net.Conn) {
		c.SetReadDeadline(aLongTimeAgo)
		_, err := c.Read(make([]byte, 1))
		results <- err
		c.SetWriteDeadline(aLongTimeAgo)
		_, err = c.Write([]byte("never"))
		results <- err
		c.SetDeadline(noDeadline)
		echoThenClose(c)
	})})
	_, cc := dialH3(t, ts)
	str := openTunnel(t, cc)
	for _, op := range []string{"Read", "Write"} {
		var ne net.Error
		if err := <-results; !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%s past its deadline: %v, want a timeout", op, err)
		}
	}
	if _, err := io.WriteString(str, "still open"); err != nil {
		t.Fatal(err)
	}
	str.Close()
	got, err := io.ReadAll(str)
	if err != nil || string(got) != "still open" {
		t.Fatalf("echo after the deadlines were cleared: %q, %v", got, err)
	}
	select {
	case o := <-observed:
		if o.Status != 200 || o.Cut || o.Sent != 10 || o.Received != 10 {
			t.Errorf("the Observer saw status %d, cut %v, %d bytes sent, %d received; want 200, not cut, 10 and 10", o.Status, o.Cut, o.Sent, o.Received)
		}
	case <-time.After(hangTimeout):
		t.Fatal("the Observer never saw the tunnel")
	}
}

// TestMalformedExtendedConnect: requests that RFC 9220 (by RFC 8441
// section 4) and RFC 9114 section 4.3.1 call malformed get their stream
// reset with H3_MESSAGE_ERROR and never reach the handler.
func TestMalformedExtendedConnect(t *testing.T) {
	var calls atomic.Int32
	ts := start(t, &Server{Handler: message.HandlerFunc(func(message.ResponseWriter, *message.Request) { calls.Add(1) })})
	qc, _ := dialH3(t, ts)
	full := [][2]string{{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"}, {":path", "/chat"}, {":authority", "example.com"}}
	for _, tc := range []struct {
		name   string
		fields [][2]string
	}{
		{"no :scheme", without(full, ":scheme")},
		{"no :path", without(full, ":path")},
		{"no :authority", without(full, ":authority")},
		{":protocol on GET", append([][2]string{{":method", "GET"}}, full[1:]...)},
		{"not a token as :protocol", append([][2]string{full[0], {":protocol", "web socket"}}, full[2:]...)},
	} {
		err := sendRawRequest(t, qc, tc.fields)
		if se, ok := errors.AsType[*quic.StreamError](err); !ok || se.ErrorCode != quic.StreamErrorCode(http3.ErrCodeMessageError) || !se.Remote {
			t.Errorf("%s: %v, want the stream reset by the server with H3_MESSAGE_ERROR", tc.name, err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the handler was called %d times, want 0", n)
	}
}

// without returns fields without the one named name.
func without(fields [][2]string, name string) [][2]string {
	var out [][2]string
	for _, f := range fields {
		if f[0] != name {
			out = append(out, f)
		}
	}
	return out
}

// sendRawRequest sends a HEADERS frame with fields on a new request
// stream of qc, encoded by hand so that it can be malformed, and returns
// the error that reading the answer ends with.
func sendRawRequest(t *testing.T, qc *quic.Conn, fields [][2]string) error {
	t.Helper()
	str, err := qc.OpenStreamSync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	str.SetDeadline(deadline())
	var block bytes.Buffer
	enc := qpack.NewEncoder(&block)
	for _, f := range fields {
		enc.WriteField(qpack.HeaderField{Name: f[0], Value: f[1]})
	}
	frame := quicvarint.Append(nil, 0x1) // HEADERS
	frame = quicvarint.Append(frame, uint64(block.Len()))
	frame = append(frame, block.Bytes()...)
	if _, err := str.Write(frame); err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(str)
	return err
}
