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

// Stream is the request stream of an extended CONNECT, taken over from
// the server (see Handler.TakeStream). The tunnel calls Write and
// CloseWrite one at a time, and CloseWrite at most once; Read, CloseRead
// and the deadlines may come from other goroutines.
type Stream interface {
	// Read reads what the client sends (the content of its DATA frames).
	Read(p []byte) (int, error)
	// Write sends p to the client at once.
	Write(p []byte) (int, error)
	// CloseWrite ends the server's side of the stream cleanly, or resets
	// it when a write broke off midway; the client may still send.
	CloseWrite() error
	// CloseRead stops reading: a waiting Read returns, and a client that
	// has not ended its side is told to stop sending.
	CloseRead() error
	// SetReadDeadline and SetWriteDeadline bound the waits of Read and
	// Write, as net.Conn's do.
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// errNotConnect is Upgrade's error for a request that is no extended
// CONNECT, or whose response has started.
var errNotConnect = errors.New("nethttp: Upgrade on a request that is no extended CONNECT")

// errNoTakeStream is Upgrade's error when the Handler cannot take
// streams over.
var errNoTakeStream = errors.New("nethttp: Upgrade without Handler.TakeStream")

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
// takes its stream over from the server (Handler.TakeStream) and returns
// it as the tunnel (message.Upgrader): reads take what the client sends,
// each write goes out at once, CloseWrite ends the server's side while
// the client may still send, Close ends both. The tunnel may outlive
// Serve; ServeHTTP returns, and the Observer sees the exchange, once it is
// closed.
func (rw *responseWriter) Upgrade() (net.Conn, error) {
	if rw.protocol == "" || rw.status != 0 || rw.tunnel != nil {
		return nil, errNotConnect
	}
	if rw.takeStream == nil {
		return nil, errNoTakeStream
	}
	rw.header.Del("Upgrade")
	rw.header.Del("Content-Length")
	rw.WriteHeader(http.StatusOK)
	s, err := rw.takeStream(rw.w) // sends the 200
	if err != nil {
		rw.failed = true
		return nil, err
	}
	t := &tunnel{s: s, done: make(chan struct{})}
	t.local, t.remote = streamAddrs(rw.req)
	rw.tunnel = t
	return t, nil
}

// tunnel is an extended CONNECT's stream as a net.Conn. The handler that
// upgraded owns it; Read and Write may run on two goroutines, and Close
// on any.
type tunnel struct {
	s             Stream
	local, remote net.Addr

	mu          sync.Mutex // serialises Write, CloseWrite and Close's end of the writes
	writeClosed bool       // under mu
	readClosed  atomic.Bool
	received    atomic.Int64  // bytes read from the client, for the Observer
	sent        atomic.Int64  // bytes written to the client
	failed      atomic.Bool   // a write failed other than by its deadline: the client went away
	once        sync.Once     // Close's
	done        chan struct{} // closed by Close
}

// Read reads what the client sends on the stream.
func (t *tunnel) Read(p []byte) (int, error) {
	if t.readClosed.Load() {
		return 0, net.ErrClosed
	}
	n, err := t.s.Read(p)
	t.received.Add(int64(n))
	return n, err
}

// Write sends p to the client at once (a DATA frame).
func (t *tunnel) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.writeClosed {
		return 0, net.ErrClosed
	}
	n, err := t.s.Write(p)
	t.sent.Add(int64(n))
	if err != nil && !isTimeout(err) {
		t.failed.Store(true)
	}
	return n, err
}

// isTimeout reports whether err reports an expired deadline
// (os.ErrDeadlineExceeded, quic-go's deadline error).
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// CloseWrite ends the server's side of the stream; the client may still
// send, and Read still reads it.
func (t *tunnel) CloseWrite() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closeWriteLocked()
}

func (t *tunnel) closeWriteLocked() error {
	if t.writeClosed {
		return nil
	}
	t.writeClosed = true
	return t.s.CloseWrite()
}

// Close ends the tunnel both ways: a Write that waits returns (its
// deadline moves to now), the server's side ends if it has not, reading
// stops, and ServeHTTP, if the handler has returned, returns too.
func (t *tunnel) Close() error {
	var err error
	t.once.Do(func() {
		_ = t.s.SetWriteDeadline(time.Now())
		t.mu.Lock()
		err = t.closeWriteLocked()
		t.mu.Unlock()
		t.readClosed.Store(true)
		err = errors.Join(err, t.s.CloseRead())
		close(t.done)
	})
	return err
}

// SetDeadline sets both deadlines.
func (t *tunnel) SetDeadline(d time.Time) error {
	return errors.Join(t.SetReadDeadline(d), t.SetWriteDeadline(d))
}

// SetReadDeadline bounds the wait of Read.
func (t *tunnel) SetReadDeadline(d time.Time) error { return t.s.SetReadDeadline(d) }

// SetWriteDeadline bounds the wait of Write.
func (t *tunnel) SetWriteDeadline(d time.Time) error { return t.s.SetWriteDeadline(d) }

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
