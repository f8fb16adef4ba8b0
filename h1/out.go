package h1

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/anx-gateway/anx/core/pool"
)

// Sizes of the output path.
const (
	writeBufSize = 4 << 10          // the pooled write buffer
	writeThrough = writeBufSize / 2 // writes at least this large skip the buffer
	writePiece   = 256 << 10        // most bytes written under one deadline
)

// outBuf batches what a connection sends: response heads, small body
// writes and, for pipelined requests, several whole responses, so that they
// leave in one write. Large writes go out with the buffered bytes in one
// writev. The buffer is borrowed from core/pool on first use and given back
// by release. Owned by the connection goroutine.
type outBuf struct {
	nc      sink
	timeout time.Duration // per write: a peer that does not read is cut off; 0: none
	buf     *[]byte       // borrowed while there is output; nil when idle
	n       int           // bytes buffered in *buf
	err     error         // the first write error; every later write fails with it
	scratch [64]byte      // for status lines and numbers
	vec     [2][]byte     // backing array of bufs
	bufs    net.Buffers   // for writev, kept here so that it does not escape per call
}

// sink is where a connection's output goes: the net.Conn of a connection
// served by a goroutine, or the loopConn it is lent to (loopconn.go),
// whose writes never block.
type sink interface {
	Write(p []byte) (int, error)
	SetWriteDeadline(t time.Time) error
}

// space returns the free part of the buffer, borrowing one if needed.
func (o *outBuf) space() []byte {
	if o.buf == nil {
		o.buf = pool.Get(writeBufSize)
	}
	return (*o.buf)[o.n:]
}

// pending reports whether bytes wait to be written.
func (o *outBuf) pending() bool { return o.n > 0 }

// writeString buffers s, flushing as the buffer fills.
func (o *outBuf) writeString(s string) {
	for len(s) > 0 && o.err == nil {
		free := o.space()
		if len(free) == 0 {
			o.flush()
			continue
		}
		k := copy(free, s)
		o.n += k
		s = s[k:]
	}
}

// write buffers p, or writes it straight through when it is large.
func (o *outBuf) write(p []byte) {
	if len(p) >= writeThrough {
		o.writeLarge(p)
		return
	}
	for len(p) > 0 && o.err == nil {
		free := o.space()
		if len(free) == 0 {
			o.flush()
			continue
		}
		k := copy(free, p)
		o.n += k
		p = p[k:]
	}
}

// writeField buffers "name: value" CRLF.
func (o *outBuf) writeField(name, value string) {
	if free := o.space(); len(free) >= len(name)+len(value)+4 {
		k := copy(free, name)
		k += copy(free[k:], ": ")
		k += copy(free[k:], value)
		k += copy(free[k:], "\r\n")
		o.n += k
		return
	}
	o.writeString(name)
	o.writeString(": ")
	o.writeString(value)
	o.writeString("\r\n")
}

// writeInt buffers the decimal form of n.
func (o *outBuf) writeInt(n int64) {
	o.write(strconv.AppendInt(o.scratch[:0], n, 10))
}

// writeChunk buffers p as one chunk of a chunked body. The CRLF that ends
// the chunk stays in the buffer, to leave with whatever comes next.
func (o *outBuf) writeChunk(p []byte) {
	o.write(strconv.AppendUint(o.scratch[:0], uint64(len(p)), 16))
	o.writeString("\r\n")
	o.write(p)
	o.writeString("\r\n")
}

// writeLarge writes the buffered bytes and then p, with one writev per
// piece of p, each under a fresh write deadline.
func (o *outBuf) writeLarge(p []byte) {
	for len(p) > 0 && o.err == nil {
		piece := p[:min(len(p), writePiece)]
		p = p[len(piece):]
		o.bufs = o.vec[:0]
		if o.n > 0 {
			o.bufs = append(o.bufs, (*o.buf)[:o.n])
		}
		o.bufs = append(o.bufs, piece)
		o.setDeadline()
		_, err := o.bufs.WriteTo(o.nc)
		o.n = 0
		o.bufs, o.vec = nil, [2][]byte{}
		if err != nil {
			o.fail(err)
		}
	}
}

// flush writes the buffered bytes.
func (o *outBuf) flush() error {
	if o.n == 0 || o.err != nil {
		return o.err
	}
	o.setDeadline()
	_, err := o.nc.Write((*o.buf)[:o.n])
	o.n = 0
	if err != nil {
		o.fail(err)
	}
	return o.err
}

// setDeadline gives the next write its time.
func (o *outBuf) setDeadline() {
	if o.timeout > 0 {
		o.nc.SetWriteDeadline(time.Now().Add(o.timeout))
	}
}

// fail records the first write error.
func (o *outBuf) fail(err error) {
	if o.err == nil {
		o.err = fmt.Errorf("h1: write: %w", err)
	}
}

// release gives the buffer back to the pool. Buffered bytes are dropped:
// flush first.
func (o *outBuf) release() {
	if o.buf != nil {
		pool.Put(o.buf)
		o.buf = nil
	}
	o.n = 0
}
