package nethttp

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// errNotConnect is Upgrade's error for a request that is no extended
// CONNECT, or whose response has started.
var errNotConnect = errors.New("nethttp: Upgrade on a request that is no extended CONNECT")

// protocolOf returns the protocol an extended CONNECT asks for (RFC 8441,
// RFC 9220), or "" for any other request. quic-go's HTTP/3 server hands
// the :protocol pseudo-header over as r.Proto; net/http's HTTP/2 server
// keeps it in r.Header under ":protocol".
func protocolOf(r *http.Request) string {
	if r.Method != http.MethodConnect {
		return ""
	}
	if v := r.Header[":protocol"]; len(v) > 0 {
		return v[0]
	}
	if r.Proto != "" && !strings.HasPrefix(r.Proto, "HTTP/") {
		return r.Proto
	}
	return ""
}

// emptyBody is Request.Body of an extended CONNECT: its stream is the
// tunnel, read through Upgrade, not content.
type emptyBody struct{}

func (emptyBody) Read([]byte) (int, error) { return 0, io.EOF }

// Upgrade answers an extended CONNECT with 200 and no content length,
// and returns its stream as the tunnel (message.Upgrader): reads take
// what the client sends on the request stream, each write goes out at
// once, Close ends the stream. The tunnel may outlive Serve: ServeHTTP
// returns, and the stream ends cleanly, once it is closed.
func (rw *responseWriter) Upgrade() (net.Conn, error) {
	if rw.protocol == "" || rw.status != 0 || rw.tunnel != nil {
		return nil, errNotConnect
	}
	rw.header.Del("Upgrade")
	rw.header.Del("Content-Length")
	rw.WriteHeader(http.StatusOK)
	if err := rw.Flush(); err != nil {
		rw.failed = true
		return nil, err
	}
	t := &tunnel{rw: rw, body: rw.req.Body, rc: http.NewResponseController(rw.w), done: make(chan struct{})}
	t.local, t.remote = streamAddrs(rw.req)
	rw.tunnel = t
	return t, nil
}

// tunnel is an extended CONNECT's stream as a net.Conn. The handler that
// upgraded owns it; Read and Write may run on two goroutines, and Close
// on any. After Close it touches neither the request nor the response
// writer again, so that ServeHTTP can return.
type tunnel struct {
	rw            *responseWriter // written under mu
	body          io.Reader       // the request stream's content (quic-go's, net/http's)
	rc            *http.ResponseController
	local, remote net.Addr

	mu         sync.Mutex // held by Write while it uses rw; guards closed
	closed     bool
	closedRead atomic.Bool   // set first by Close: Read fails from then on
	received   atomic.Int64  // bytes read from the client, for the Observer
	once       sync.Once     // Close's
	done       chan struct{} // closed by Close
}

// errTunnelClosed is what Read and Write return after Close.
var errTunnelClosed = net.ErrClosed

// Read reads what the client sends on the stream.
func (t *tunnel) Read(p []byte) (int, error) {
	if t.closedRead.Load() {
		return 0, errTunnelClosed
	}
	n, err := t.body.Read(p)
	t.received.Add(int64(n))
	return n, err
}

// Write sends p to the client at once (a DATA frame).
func (t *tunnel) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, errTunnelClosed
	}
	n, err := t.rw.Write(p)
	if err == nil {
		err = t.rw.Flush()
	}
	return n, err
}

// Close stops the tunnel both ways: a Read or Write that waits returns
// (their deadlines are moved to now), later ones fail, and the stream
// ends cleanly (END_STREAM, or quic-go's FIN) when ServeHTTP returns,
// which it does now if the handler has.
func (t *tunnel) Close() error {
	t.once.Do(func() {
		t.closedRead.Store(true)
		now := time.Now()
		_ = t.rc.SetReadDeadline(now)
		_ = t.rc.SetWriteDeadline(now)
		t.mu.Lock()
		t.closed = true
		t.mu.Unlock()
		close(t.done)
	})
	return nil
}

// release waits for Close, then clears the deadlines Close set, so that
// the server can still finish the stream cleanly. It runs on ServeHTTP's
// goroutine.
func (t *tunnel) release() {
	<-t.done
	_ = t.rc.SetReadDeadline(time.Time{})
	_ = t.rc.SetWriteDeadline(time.Time{})
}

// SetDeadline sets both deadlines, as far as the server's stream
// supports them through http.ResponseController (quic-go's does).
func (t *tunnel) SetDeadline(d time.Time) error {
	return errors.Join(t.SetReadDeadline(d), t.SetWriteDeadline(d))
}

// SetReadDeadline bounds the wait of Read.
func (t *tunnel) SetReadDeadline(d time.Time) error {
	if t.closedRead.Load() {
		return errTunnelClosed
	}
	return t.rc.SetReadDeadline(d)
}

// SetWriteDeadline bounds the wait of Write.
func (t *tunnel) SetWriteDeadline(d time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errTunnelClosed
	}
	return t.rc.SetWriteDeadline(d)
}

func (t *tunnel) LocalAddr() net.Addr  { return t.local }
func (t *tunnel) RemoteAddr() net.Addr { return t.remote }

// streamAddrs returns the addresses of the connection r came on: UDP
// ones when the server's local address is (HTTP/3), else TCP ones.
func streamAddrs(r *http.Request) (local, remote net.Addr) {
	local, _ = r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	ap := remoteAddr(r.RemoteAddr)
	if _, udp := local.(*net.UDPAddr); udp {
		return local, net.UDPAddrFromAddrPort(ap)
	}
	if local == nil {
		local = net.TCPAddrFromAddrPort(netip.AddrPort{})
	}
	return local, net.TCPAddrFromAddrPort(ap)
}
