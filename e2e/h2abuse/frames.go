package h2abuse

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The methods in this file write frames into the Conn's buffer (it goes
// out when full, or at Flush) and count them. Only the goroutine that
// owns the write side calls them.

// fencePayload is the data of the PING that Fence sends.
var fencePayload = [8]byte{'h', '2', 'a', 'b', 'f', 'e', 'n', 'c'}

// NewStream returns the next client stream id (1, 3, 5, ...).
func (c *Conn) NewStream() uint32 {
	id := c.nextStream
	c.nextStream += 2
	return id
}

// Request returns the fields of a GET of path on localhost over the
// connection's scheme.
func (c *Conn) Request(method, path string, extra ...hpack.HeaderField) []hpack.HeaderField {
	fields := []hpack.HeaderField{
		{Name: ":method", Value: method},
		{Name: ":scheme", Value: c.scheme},
		{Name: ":authority", Value: "localhost"},
		{Name: ":path", Value: path},
	}
	return append(fields, extra...)
}

// Encode returns fields encoded with the connection's HPACK encoder (its
// dynamic table is the server's decoder's: the block must be sent). The
// slice is reused by the next call.
func (c *Conn) Encode(fields []hpack.HeaderField) []byte {
	c.encBuf = c.encBuf[:0]
	for _, f := range fields {
		_ = c.enc.WriteField(f) // writes into encBuf, cannot fail
	}
	return c.encBuf
}

// maxFrame is the largest frame payload the server accepts.
func (c *Conn) maxFrame() int {
	if n := c.ServerSettings[http2.SettingMaxFrameSize]; n != 0 {
		return int(n)
	}
	return 1 << 14
}

// Headers writes fields as a header block on stream id: HEADERS, then
// CONTINUATION frames if the block exceeds the server's frame size.
func (c *Conn) Headers(id uint32, fields []hpack.HeaderField, endStream bool) error {
	block := c.Encode(fields)
	max := c.maxFrame()
	first := block[:min(len(block), max)]
	rest := block[len(first):]
	if err := c.HeadersFragment(id, first, endStream, len(rest) == 0); err != nil {
		return err
	}
	for len(rest) > 0 {
		frag := rest[:min(len(rest), max)]
		rest = rest[len(frag):]
		if err := c.Continuation(id, frag, len(rest) == 0); err != nil {
			return err
		}
	}
	return nil
}

// HeadersFragment writes one HEADERS frame carrying block as is.
func (c *Conn) HeadersFragment(id uint32, block []byte, endStream, endHeaders bool) error {
	c.frames.Add(1)
	return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: endStream, EndHeaders: endHeaders})
}

// Continuation writes one CONTINUATION frame.
func (c *Conn) Continuation(id uint32, frag []byte, endHeaders bool) error {
	c.frames.Add(1)
	return c.fr.WriteContinuation(id, endHeaders, frag)
}

// Data writes one DATA frame.
func (c *Conn) Data(id uint32, endStream bool, data []byte) error {
	c.frames.Add(1)
	return c.fr.WriteData(id, endStream, data)
}

// RSTStream writes one RST_STREAM frame.
func (c *Conn) RSTStream(id uint32, code http2.ErrCode) error {
	c.frames.Add(1)
	return c.fr.WriteRSTStream(id, code)
}

// WindowUpdate writes one WINDOW_UPDATE frame; an increment of 0 is
// written as is (a protocol error the server must answer).
func (c *Conn) WindowUpdate(id, incr uint32) error {
	c.frames.Add(1)
	return c.fr.WriteWindowUpdate(id, incr)
}

// Settings writes one SETTINGS frame (not an ACK).
func (c *Conn) Settings(settings ...http2.Setting) error {
	c.frames.Add(1)
	return c.fr.WriteSettings(settings...)
}

// Ping writes one PING frame (not an ACK) carrying n.
func (c *Conn) Ping(n uint64) error {
	var data [8]byte
	binary.BigEndian.PutUint64(data[:], n)
	c.frames.Add(1)
	return c.fr.WritePing(false, data)
}

// Flush writes out the buffered frames.
func (c *Conn) Flush() error { return c.bw.Flush() }

// Fence writes a PING whose ACK Seen counts as Fences, and flushes: once
// its ACK is seen, the server has processed every frame written before
// it (it handles a connection's frames in order). If an attack left a
// header block open, Fence first ends it validly (the rest of the field
// under way, END_HEADERS), since any other frame inside a block is a
// connection error that would end the connection for the wrong reason.
func (c *Conn) Fence() error {
	if b := c.block; b != nil {
		c.block = nil
		if err := c.Continuation(b.id, b.rest, true); err != nil {
			return err
		}
	}
	c.frames.Add(1)
	if err := c.fr.WritePing(false, fencePayload); err != nil {
		return err
	}
	return c.Flush()
}

// Cap bounds an attack: it stops after whichever comes first. A zero
// field is no bound.
type Cap struct {
	Rounds int
	Frames int64
	Bytes  int64 // bytes written to the socket
}

// DefaultCap is the bound of a flood: 200,000 frames or 64 MiB.
var DefaultCap = Cap{Frames: 200_000, Bytes: 64 << 20}

// reached reports whether c's counters have met the cap after rounds.
func (cp Cap) reached(c *Conn, rounds int) bool {
	return (cp.Rounds > 0 && rounds >= cp.Rounds) ||
		(cp.Frames > 0 && c.SentFrames() >= cp.Frames) ||
		(cp.Bytes > 0 && c.SentBytes()+int64(c.bw.Buffered()) >= cp.Bytes)
}

// Attack writes one round of an attack on c; round counts from 0.
type Attack func(c *Conn, round int) error

// Result is how an attack's writing ended.
type Result struct {
	Rounds   int
	Frames   int64 // frames written, the handshake's included
	Bytes    int64 // bytes written to the socket, the handshake's included
	Capped   bool  // the cap was reached
	Ended    bool  // the reader saw a GOAWAY or the close before the cap
	WriteErr error // a write failed (the server closed, or ErrStalled)
}

// Stalled reports whether the attack ended on a write that made no
// progress for Options.WriteStall.
func (r Result) Stalled() bool { return errors.Is(r.WriteErr, ErrStalled) }

// Run writes rounds of a until the cap, a failed write, or the reader
// seeing a GOAWAY or the close, then flushes. Only the owner of the
// write side calls it.
func (c *Conn) Run(a Attack, cp Cap) Result {
	var r Result
	for ; ; r.Rounds++ {
		if c.ended.Load() {
			r.Ended = true
			break
		}
		if cp.reached(c, r.Rounds) {
			r.Capped = true
			break
		}
		if err := a(c, r.Rounds); err != nil {
			r.WriteErr = err
			break
		}
	}
	if r.WriteErr == nil {
		r.WriteErr = c.Flush()
	}
	r.Frames, r.Bytes = c.SentFrames(), c.SentBytes()
	return r
}

// String summarises r for a test's log.
func (r Result) String() string {
	return fmt.Sprintf("%d rounds, %d frames, %d bytes written; capped %v, ended by the server %v, write error %v",
		r.Rounds, r.Frames, r.Bytes, r.Capped, r.Ended, r.WriteErr)
}
