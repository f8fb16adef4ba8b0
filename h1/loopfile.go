package h1

import (
	"os"

	"github.com/anx-gateway/anx/core/netpoll"
)

// sendFile sends n bytes of f from offset for the exchange x bound to this
// connection, without waiting: a small region that is in the page cache
// is copied into the output buffer (preadv2 with RWF_NOWAIT); otherwise
// the layer queues it (onloop.Conn.SendFile): for sendfile on a plain
// connection (netpoll warms cold pages on a file worker first), on its
// backlog on a TLS one, which its pump reads, encrypts and sends as the
// socket takes it.
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
	if err := lc.flushMore(o); err != nil {
		return 0, err
	}
	if err := lc.c.SendFile(f, offset, n); err != nil {
		o.fail(err)
		return 0, err
	}
	return n, nil
}

// flushMore writes the buffered bytes (the response head) with WriteMore,
// so that they leave in one segment with the file's first bytes.
func (lc *loopConn) flushMore(o *outBuf) error {
	if o.n == 0 || o.err != nil {
		return o.err
	}
	if lc.queued() > maxLoopOutput {
		o.fail(errLoopOutput)
	} else if err := lc.c.WriteMore((*o.buf)[:o.n]); err != nil {
		o.fail(err)
	}
	o.n = 0
	return o.err
}
