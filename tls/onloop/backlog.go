package onloop

import (
	"errors"
	"os"

	"github.com/anx-gateway/anx/core/netpoll"
	"github.com/anx-gateway/anx/core/pool"
)

// Sizes of the TLS output path.
const (
	tlsHighWater   = 64 << 10 // the pump stops while this much output is queued
	tlsFileChunk   = 64 << 10 // file bytes read and encrypted per step of the pump
	tlsWarmWindow  = 2 << 20  // file bytes a worker reads ahead when the pump finds them cold
	backlogBufSize = 4 << 10  // the smallest pooled buffer for bytes on the backlog
)

// backlog is a TLS connection's output behind a file body: file regions
// and the bytes written after them, in order. Its files are duplicates of
// the caller's, which may close them when SendFile returns.
type backlog struct {
	items []backlogItem
	bytes int   // in the bytes items, for Queued
	files int64 // left in the file regions, for Buffered
}

// backlogItem is a file region (f set) or bytes.
type backlogItem struct {
	f         *os.File
	off, left int64
	data      *[]byte // pooled; (*data)[:n]
	n         int
}

// size returns the bytes on the backlog, file regions included.
func (b *backlog) size() int64 { return int64(b.bytes) + b.files }

// queueFile puts a file region on the backlog.
func (c *Conn) queueFile(f *os.File, offset, n int64) error {
	dup, err := netpoll.DupFile(f)
	if err != nil {
		return err
	}
	t := c.tlsConn
	if t.backlog == nil {
		t.backlog = &backlog{}
	}
	t.backlog.items = append(t.backlog.items, backlogItem{f: dup, off: offset, left: n})
	t.backlog.files += n
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
	data := pool.Get(max(len(p), backlogBufSize))
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
// Once the backlog is empty, a close asked for meanwhile happens.
func (c *Conn) pump() {
	t := c.tlsConn
	b := t.backlog
	for len(b.items) > 0 && !t.warming && !c.nc.Closed() && c.nc.Buffered() < tlsHighWater {
		it := &b.items[0]
		if it.f == nil {
			t.tc.Write((*it.data)[:it.n])
			b.bytes -= it.n
			pool.Put(it.data)
			b.items = b.items[1:]
			continue
		}
		if !c.pumpFile(it) {
			return
		}
		if it.left == 0 {
			it.f.Close()
			b.items = b.items[1:]
		}
	}
	if len(b.items) == 0 {
		t.backlog = nil
		c.backlogSent()
	}
}

// pumpFile sends the next chunk of a file region; it reports false when
// the pump must wait for a file worker or the connection failed.
func (c *Conn) pumpFile(it *backlogItem) bool {
	t := c.tlsConn
	buf := pool.Get(tlsFileChunk)
	defer pool.Put(buf)
	chunk := (*buf)[:min(it.left, tlsFileChunk)]
	k, err := netpoll.ReadNoWait(it.f, chunk, it.off)
	if errors.Is(err, netpoll.ErrWouldBlock) {
		if c.warm(it) {
			return false
		}
		err = netpoll.ErrUnsupported // the workers are behind: read it here
	}
	if errors.Is(err, netpoll.ErrUnsupported) {
		k, err = it.f.ReadAt(chunk, it.off)
	}
	if k == 0 {
		c.h.logError("onloop: file shorter than its response", "file", it.f.Name(), "error", err)
		c.nc.Close() // the framing is broken: the peer sees a short body
		return false
	}
	if _, err := t.tc.Write(chunk[:k]); err != nil {
		return false
	}
	it.off += int64(k)
	it.left -= int64(k)
	t.backlog.files -= int64(k)
	return true
}

// warm has a file worker read the next window of a cold region; it
// reports whether the pump waits for it (false: the workers are behind).
func (c *Conn) warm(it *backlogItem) bool {
	t := c.tlsConn
	t.warming = true
	err := c.h.srv.Warm(c.nc, it.f, it.off, min(it.left, tlsWarmWindow), func(error) {
		t.warming = false
		if !c.nc.Closed() {
			c.h.OnWritable(c.nc) // a read error shows again in the pump
		}
	})
	if err != nil {
		t.warming = false
		return false
	}
	return true
}
