package h1

import (
	"crypto/tls"
	"errors"
	"io"
	"os"
	"slices"

	"github.com/anx-gateway/anx/core/netpoll"
	"github.com/anx-gateway/anx/core/pool"
)

// Sizes of the TLS path on the loop.
const (
	tlsRecordRoom = 16<<10 + 512 // room for one decrypted record
	tlsHighWater  = 64 << 10     // the pump stops while this much output is queued
	tlsFileChunk  = 64 << 10     // file bytes read and encrypted per step of the pump
	tlsWarmWindow = 2 << 20      // file bytes a worker reads ahead when the pump finds them cold
	maxKeptPlain  = 256 << 10    // the largest decryption buffer a loop keeps between reads
)

// handshakeInput passes input to the handshake, which runs on its own
// goroutine (netpoll.TLSConn); the goroutine starts with the first bytes
// of the ClientHello, so that a client that sends nothing holds none.
// At MaxHandshakes (divided among the loops) a connection waits, paused,
// for one of its loop's handshakes to end.
func (lc *loopConn) handshakeInput(in []byte) int {
	if !lc.handshaking {
		st := lc.h.state(lc.nc)
		if st.handshakes >= lc.h.maxHandshakesPerLoop() {
			st.waiting = append(st.waiting, lc)
			lc.nc.Pause() // the input stays with the loop until then
			return 0
		}
		st.handshakes++
		lc.handshaking = true
		lc.tls.Handshake(lc.tc, lc.handshakeDone)
	}
	lc.tls.SetInput(in)
	return lc.tls.Consumed()
}

// handshakeEnded frees a handshake slot of the loop and lets the first
// connection waiting for one go on.
func (lc *loopConn) handshakeEnded() {
	st := lc.h.state(lc.nc)
	st.handshakes--
	for len(st.waiting) > 0 {
		next := st.waiting[0]
		st.waiting[0] = nil
		st.waiting = st.waiting[1:]
		if !next.nc.Closed() {
			next.nc.Resume() // its input comes again, to handshakeInput
			return
		}
	}
}

// handshakeDone runs on the loop when the handshake has ended: it hands
// connections whose ALPN protocol is not HTTP/1.1 to that protocol's
// server and serves the rest here.
func (lc *loopConn) handshakeDone(err error) {
	lc.handshakeEnded()
	if lc.nc.Closed() {
		return
	}
	s := lc.h.srv
	if err != nil {
		s.debug("h1: TLS handshake failed", "remote", lc.nc.RemoteAddr(), "error", err)
		lc.nc.Close()
		return
	}
	st := lc.tc.ConnectionState()
	lc.serverName = st.ServerName
	if serve := s.TLSProtocols[st.NegotiatedProtocol]; serve != nil && st.NegotiatedProtocol != "http/1.1" {
		lc.goOff(func() { lc.serveProtocol(serve) })
		return
	}
	lc.phase = phaseHead
	lc.nc.SetTimeout(s.readHeaderTimeout())
	lc.readTLS(nil) // a request may have come with the client's last flight
}

// serveProtocol hands the connection to another protocol's server (h2),
// on a goroutine of its own: it owns the connection until it closes it.
func (lc *loopConn) serveProtocol(serve func(*tls.Conn)) {
	if err := lc.tls.Detach(); err != nil {
		lc.nc.Close()
		return
	}
	go serve(lc.tc) // exits when the protocol's server is done with the connection
}

// readTLS decrypts the input at hand (in, what crypto/tls buffered, and
// the decrypted bytes kept from before) and serves the requests in it. It
// returns the bytes of in consumed: all of them, since the undecrypted
// rest of a record stays in the tls.Conn.
func (lc *loopConn) readTLS(in []byte) int {
	st := lc.h.state(lc.nc)
	lc.tls.SetInput(in)
	buf := st.plain[:0]
	if lc.plain != nil {
		buf = append(buf, (*lc.plain)[:lc.plainN]...)
		lc.dropPlain()
	}
	var readErr error
	for {
		buf = slices.Grow(buf, tlsRecordRoom)
		n, err := lc.tc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if err != netpoll.ErrNoInput {
				readErr = err
			}
			break
		}
	}
	if cap(buf) <= maxKeptPlain {
		st.plain = buf[:0] // keep what it grew to, for the next connection
	} else {
		st.plain = nil // a burst: do not hold it for good
	}
	consumed := 0
	if len(buf) > 0 {
		consumed = lc.serve(buf)
	}
	if rest := buf[consumed:]; len(rest) > 0 && (lc.phase <= phaseWrite || lc.phase == phaseDeferred) && !lc.nc.Closed() {
		lc.plain = pool.Get(len(rest))
		lc.plainN = copy(*lc.plain, rest)
	}
	if readErr != nil && lc.phase <= phaseWrite && !lc.nc.Closed() {
		// close_notify, EOF, or a bad record (crypto/tls has sent its alert).
		lc.h.srv.debug("h1: TLS connection ended", "remote", lc.nc.RemoteAddr(), "error", readErr)
		// After a clean end the responses on the backlog still go out
		// (a client may half-close); after a bad record crypto/tls writes
		// nothing more.
		if readErr != io.EOF || !lc.closeAfterBacklog(closeSocket) {
			lc.nc.Close()
		}
	}
	return lc.tls.Consumed()
}

// sendFile sends n bytes of f from offset for the exchange x bound to this
// connection, without waiting: a small region that is in the page cache
// is copied into the output buffer (preadv2 with RWF_NOWAIT); otherwise a
// plain connection queues it for sendfile (netpoll, which warms cold
// pages on a file worker first), and a TLS connection queues it on its
// backlog, which the pump reads, encrypts and sends as the socket takes it.
func (lc *loopConn) sendFile(x *conn, f *os.File, offset, n int64) (int64, error) {
	o := &x.out
	if free := o.space(); n <= int64(len(free)) {
		k, err := netpoll.ReadNoWait(f, free[:n], offset)
		if err == netpoll.ErrUnsupported {
			k, err = f.ReadAt(free[:n], offset)
		}
		if k == int(n) {
			o.n += k
			return n, nil
		}
		if err != nil && err != netpoll.ErrWouldBlock {
			return 0, shortFile(err)
		}
	}
	if err := o.flush(); err != nil {
		return 0, err
	}
	if !lc.isTLS() {
		if err := lc.nc.SendFile(f, offset, n); err != nil {
			o.fail(err)
			return 0, err
		}
		return n, nil
	}
	if err := lc.queueFile(f, offset, n); err != nil {
		o.fail(err)
		return 0, err
	}
	return n, nil
}

// backlog is a TLS connection's output behind a file body: file regions
// and the bytes written after them, in order. Its files are duplicates of
// the handler's, which may close them when WriteFile returns.
type backlog struct {
	items []backlogItem
	bytes int // in the bytes items, for the bound on output held in memory
}

// backlogItem is a file region (f set) or bytes.
type backlogItem struct {
	f         *os.File
	off, left int64
	data      *[]byte // pooled; (*data)[:n]
	n         int
}

// queueFile puts a file region on the backlog.
func (lc *loopConn) queueFile(f *os.File, offset, n int64) error {
	dup, err := netpoll.DupFile(f)
	if err != nil {
		return err
	}
	if lc.backlog == nil {
		lc.backlog = &backlog{}
	}
	lc.backlog.items = append(lc.backlog.items, backlogItem{f: dup, off: offset, left: n})
	return nil
}

// addBytes puts bytes on the backlog.
func (b *backlog) addBytes(p []byte) {
	if len(p) == 0 {
		return
	}
	b.bytes += len(p)
	if last := len(b.items) - 1; last >= 0 && b.items[last].f == nil {
		it := &b.items[last]
		if it.n+len(p) <= len(*it.data) {
			it.n += copy((*it.data)[it.n:], p)
			return
		}
	}
	data := pool.Get(max(len(p), writeBufSize))
	b.items = append(b.items, backlogItem{data: data, n: copy(*data, p)})
}

// release gives back what the backlog holds.
func (b *backlog) release() {
	for _, it := range b.items {
		if it.f != nil {
			it.f.Close()
		} else {
			pool.Put(it.data)
		}
	}
	b.items = nil
}

// pump sends the backlog through TLS while the socket takes it: file
// bytes that are in the page cache are read on the loop; a cold region is
// read by a file worker first, and the pump goes on when it is done.
func (lc *loopConn) pump() {
	b := lc.backlog
	for len(b.items) > 0 && !lc.warming && !lc.nc.Closed() && lc.nc.Buffered() < tlsHighWater {
		it := &b.items[0]
		if it.f == nil {
			lc.tc.Write((*it.data)[:it.n])
			b.bytes -= it.n
			pool.Put(it.data)
			b.items = b.items[1:]
			continue
		}
		if !lc.pumpFile(it) {
			return
		}
		if it.left == 0 {
			it.f.Close()
			b.items = b.items[1:]
		}
	}
	if len(b.items) == 0 {
		lc.backlog = nil
		lc.backlogSent()
	}
}

// pumpFile sends the next chunk of a file region; it reports false when
// the pump must wait for a file worker or the connection failed.
func (lc *loopConn) pumpFile(it *backlogItem) bool {
	buf := pool.Get(tlsFileChunk)
	defer pool.Put(buf)
	chunk := (*buf)[:min(it.left, tlsFileChunk)]
	k, err := netpoll.ReadNoWait(it.f, chunk, it.off)
	if errors.Is(err, netpoll.ErrWouldBlock) {
		if lc.warm(it) {
			return false
		}
		err = netpoll.ErrUnsupported // the workers are behind: read it here
	}
	if errors.Is(err, netpoll.ErrUnsupported) {
		k, err = it.f.ReadAt(chunk, it.off)
	}
	if k == 0 {
		lc.h.srv.logError("h1: file shorter than its response", "file", it.f.Name(), "error", err)
		lc.nc.Close() // the framing is broken: the client sees a short body
		return false
	}
	if _, err := lc.tc.Write(chunk[:k]); err != nil {
		return false
	}
	it.off += int64(k)
	it.left -= int64(k)
	return true
}

// warm has a file worker read the next window of a cold region; it
// reports whether the pump waits for it (false: the workers are behind).
func (lc *loopConn) warm(it *backlogItem) bool {
	lc.warming = true
	err := lc.h.srv.loops.Warm(lc.nc, it.f, it.off, min(it.left, tlsWarmWindow), func(error) {
		lc.warming = false
		if !lc.nc.Closed() {
			lc.onWritable() // a read error shows again in the pump
		}
	})
	if err != nil {
		lc.warming = false
		return false
	}
	return true
}
