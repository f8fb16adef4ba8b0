package h2

import (
	"errors"
	"fmt"
	"math"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/pool"
	"github.com/anx-gateway/anx/tls/onloop"
)

// outHighWater is the output a connection may have queued before it stops
// reading and stops producing DATA, until the socket takes it.
const outHighWater = 256 << 10

// outBufSize is the size of the buffer a batch's frames are gathered in.
const outBufSize = 64 << 10

// headerTableSize is the HPACK dynamic table size both ways (the
// protocol's default, so no SETTINGS_HEADER_TABLE_SIZE is needed).
const headerTableSize = 4096

// connError is a connection error (RFC 9113 section 5.4.1): GOAWAY with
// the code, then close.
type connError struct {
	code   http2.ErrCode
	reason string
}

func (e connError) Error() string {
	return fmt.Sprintf("h2: connection error %v: %s", e.code, e.reason)
}

// conn is one HTTP/2 connection on a loop. Owned by the loop's goroutine;
// handler goroutines reach it only through Submit.
type conn struct {
	srv *Server
	c   *onloop.Conn
	out *[]byte // the current batch's frames; nil between batches

	outcome message.Outcome // what observe reports, reused

	dec *hpack.Decoder
	enc *hpack.Encoder
	blk []byte // the header block being encoded (enc writes here)
	// encGen counts the header blocks that may have changed the HPACK
	// tables; memo is valid while it stays what memo recorded.
	encGen uint64
	memo   headMemo

	// What the client's SETTINGS said.
	peerMaxFrame      uint32
	peerInitialWindow int32

	sendWindow  int64 // what we may still send on the connection
	recvWindow  int64 // what the client may still send on the connection
	recvUnacked int64 // content consumed and not yet given back with WINDOW_UPDATE

	streams []*stream // open streams (and closed ones with output left)
	blocked []*stream // streams with output waiting for a window or the socket

	maxStreamID uint32 // the highest stream the client opened
	// A header block in progress (HEADERS without END_HEADERS): the
	// stream it is for (nil when refused), its id, and its size so far.
	block      *stream
	blockID    uint32
	blockBytes int

	// The streams the server reset lately, whose frames in flight are
	// ignored (rememberReset).
	recentResets [8]uint32
	nextReset    int

	prefaceDone  bool // the 24-byte preface has been read
	settingsSeen bool // the client's first SETTINGS has arrived
	goAwaySent   bool // no new stream is accepted
	// shutdownPing: Shutdown's first GOAWAY (all streams) and its PING
	// are out; the final GOAWAY follows the PING's ack (shutdownAt: when
	// they went).
	shutdownPing    bool
	shutdownAt      time.Time
	readPaused      bool // reading stops while the output is backed up
	extendedConnect bool // SETTINGS_ENABLE_CONNECT_PROTOCOL was sent
	// When the waits of deadline began.
	openedAt, idleSince, blockedSince, lastContent time.Time
	closing                                        bool

	abuse abuse // the counters of the defences (abuse.go)
}

// newConn makes a connection's state.
func newConn(s *Server, c *onloop.Conn) *conn {
	cn := &conn{
		srv:               s,
		c:                 c,
		peerMaxFrame:      minFrameSize,
		peerInitialWindow: 65535,
		sendWindow:        65535,
		recvWindow:        connWindow,
	}
	cn.dec = hpack.NewDecoder(headerTableSize, cn.onField)
	cn.dec.SetMaxStringLength(s.maxHeaderBytes())
	cn.enc = hpack.NewEncoder(blockWriter{cn})
	return cn
}

// blockWriter is where the HPACK encoder writes: the header block being
// encoded.
type blockWriter struct{ c *conn }

func (w blockWriter) Write(p []byte) (int, error) {
	w.c.blk = append(w.c.blk, p...)
	return len(p), nil
}

// start sends our SETTINGS and opens the connection window.
func (c *conn) start() {
	now := c.c.Net().Now()
	c.openedAt, c.idleSince = now, now
	out := c.begin()
	settings := 4
	c.extendedConnect = c.srv.ExtendedConnect != nil && c.srv.ExtendedConnect()
	if c.extendedConnect {
		settings++
	}
	*out = appendFrameHeader(*out, settings*6, http2.FrameSettings, 0, 0)
	*out = appendSetting(*out, http2.SettingMaxConcurrentStreams, c.srv.maxConcurrentStreams())
	*out = appendSetting(*out, http2.SettingInitialWindowSize, streamWindow)
	*out = appendSetting(*out, http2.SettingMaxFrameSize, c.srv.maxReadFrameSize())
	*out = appendSetting(*out, http2.SettingMaxHeaderListSize, uint32(c.srv.headerListLimit()))
	if c.extendedConnect {
		*out = appendSetting(*out, http2.SettingEnableConnectProtocol, 1)
	}
	*out = appendWindowUpdate(*out, 0, connWindow-65535)
	c.flush()
}

// begin returns the batch's output buffer, borrowing one if needed.
func (c *conn) begin() *[]byte {
	if c.out == nil {
		c.out = pool.Get(outBufSize)
		*c.out = (*c.out)[:0]
	}
	return c.out
}

// flush writes the batch's frames in one write and returns the buffer;
// then it decides whether to keep reading and which deadline applies.
func (c *conn) flush() {
	if c.out != nil {
		if len(*c.out) > 0 && !c.c.Net().Closed() {
			c.c.Write(*c.out)
		}
		pool.Put(c.out)
		c.out = nil
	}
	if c.closing {
		return
	}
	c.pace()
}

// pace pauses reading while the output is backed up and sets the
// connection's deadline to the next of its waits (deadline).
func (c *conn) pace() {
	nc := c.c.Net()
	backedUp := c.c.Buffered() > outHighWater
	if backedUp != c.readPaused {
		c.readPaused = backedUp
		if backedUp {
			c.c.Pause()
		} else {
			c.c.Resume()
		}
	}
	if w, at := c.deadline(); w != waitNone {
		nc.SetTimeout(max(at.Sub(nc.Now()), time.Millisecond))
		return
	}
	nc.SetTimeout(0)
}

// wait is what a connection's deadline is for.
type wait uint8

const (
	waitNone        wait = iota
	waitPreface          // the client preface and first SETTINGS (DefaultPrefaceTimeout)
	waitStall            // output that does not move, for the socket or a window (WriteTimeout)
	waitContent          // request content that does not come (ReadTimeout)
	waitIdle             // no stream open (IdleTimeout)
	waitShutdownAck      // the ack of Shutdown's PING (shutdownPingWait)
)

// deadline returns what the connection waits for first and when that
// wait ends. The waits are measured from when they began, not from the
// last frame, so that a client cannot stretch them with PINGs.
func (c *conn) deadline() (wait, time.Time) {
	nc := c.c.Net()
	switch {
	case !c.settingsSeen:
		return waitPreface, c.openedAt.Add(DefaultPrefaceTimeout)
	case c.shutdownPing:
		return waitShutdownAck, c.shutdownAt.Add(shutdownPingWait)
	case c.c.Buffered() > 0 && c.srv.writeTimeout() > 0:
		return waitStall, nc.Progress().Add(c.srv.writeTimeout())
	case len(c.blocked) > 0 && c.srv.writeTimeout() > 0:
		return waitStall, c.blockedSince.Add(c.srv.writeTimeout())
	case c.awaitingContent() && c.srv.readTimeout() > 0:
		return waitContent, c.lastContent.Add(c.srv.readTimeout())
	case len(c.streams) == 0 && c.srv.idleTimeout() > 0:
		return waitIdle, c.idleSince.Add(c.srv.idleTimeout())
	}
	return waitNone, time.Time{}
}

// resetWaiting resets the streams that wait for request content that
// stopped coming (CANCEL): their handlers' reads fail.
func (c *conn) resetWaiting() {
	for i := len(c.streams) - 1; i >= 0; i-- {
		if s := c.streams[i]; !s.in.remoteDone && s.req.Protocol == "" {
			c.resetStream(s.id, http2.ErrCodeCancel)
			s.cancel(errStreamReset)
		}
	}
}

// awaitingContent reports whether a stream waits for request content
// (a tunnel's quiet is no stall).
func (c *conn) awaitingContent() bool {
	for _, s := range c.streams {
		if !s.in.remoteDone && s.req.Protocol == "" {
			return true
		}
	}
	return false
}

// read handles the complete frames at the start of in and returns the
// bytes consumed; a partial frame waits for the rest.
func (c *conn) read(in []byte) int {
	if c.closing {
		return len(in) // what comes after our GOAWAY is not read
	}
	consumed := 0
	if !c.prefaceDone {
		if len(in) < len(onloop.Preface) {
			return 0
		}
		if string(in[:len(onloop.Preface)]) != onloop.Preface {
			c.fail(connError{http2.ErrCodeProtocol, "bad client preface"})
			c.flush()
			return len(in)
		}
		c.prefaceDone = true
		consumed = len(onloop.Preface)
	}
	for !c.closing {
		rest := in[consumed:]
		if len(rest) < frameHeaderLen {
			break
		}
		f := readFrameHeader(rest)
		if f.length > c.srv.maxReadFrameSize() {
			c.fail(connError{http2.ErrCodeFrameSize, "frame larger than SETTINGS_MAX_FRAME_SIZE"})
			consumed = len(in)
			break
		}
		end := frameHeaderLen + int(f.length)
		if len(rest) < end {
			break
		}
		consumed += end
		if err := c.frame(f, rest[frameHeaderLen:end]); err != nil {
			c.fail(err)
			consumed = len(in)
			break
		}
	}
	c.flush()
	return consumed
}

// frame handles one whole frame.
func (c *conn) frame(f frameHeader, payload []byte) error {
	if !c.settingsSeen && (f.typ != http2.FrameSettings || f.has(flagAck)) {
		return connError{http2.ErrCodeProtocol, "first frame is not SETTINGS"}
	}
	if c.blockID != 0 {
		if f.typ != http2.FrameContinuation || f.streamID != c.blockID {
			return connError{http2.ErrCodeProtocol, "header block interrupted"}
		}
	}
	switch f.typ {
	case http2.FrameData:
		return c.onData(f, payload)
	case http2.FrameHeaders:
		return c.onHeaders(f, payload)
	case http2.FramePriority:
		return c.onPriority(f, payload)
	case http2.FrameRSTStream:
		return c.onRSTStream(f, payload)
	case http2.FrameSettings:
		return c.onSettings(f, payload)
	case http2.FramePushPromise:
		return connError{http2.ErrCodeProtocol, "PUSH_PROMISE from a client"}
	case http2.FramePing:
		return c.onPing(f, payload)
	case http2.FrameGoAway:
		return c.onGoAway(f)
	case http2.FrameWindowUpdate:
		return c.onWindowUpdate(f, payload)
	case http2.FrameContinuation:
		return c.onContinuation(f, payload)
	}
	return nil // unknown frame types are ignored (RFC 9113 section 4.1)
}

// onSettings applies the client's settings and acknowledges them.
func (c *conn) onSettings(f frameHeader, payload []byte) error {
	if f.streamID != 0 {
		return connError{http2.ErrCodeProtocol, "SETTINGS on a stream"}
	}
	if f.has(flagAck) {
		if f.length != 0 {
			return connError{http2.ErrCodeFrameSize, "SETTINGS ACK with a payload"}
		}
		return nil
	}
	if f.length%6 != 0 {
		return connError{http2.ErrCodeFrameSize, "SETTINGS payload not a multiple of 6"}
	}
	if err := c.abuse.control(c); err != nil {
		return err
	}
	for p := payload; len(p) > 0; p = p[6:] {
		id := http2.SettingID(uint16(p[0])<<8 | uint16(p[1]))
		v := uint32(p[2])<<24 | uint32(p[3])<<16 | uint32(p[4])<<8 | uint32(p[5])
		if err := c.applySetting(id, v); err != nil {
			return err
		}
	}
	c.settingsSeen = true
	out := c.begin()
	*out = appendFrameHeader(*out, 0, http2.FrameSettings, flagAck, 0)
	c.pushAll()
	return nil
}

// applySetting applies one of the client's settings (RFC 9113 section
// 6.5.2); unknown ones are ignored.
func (c *conn) applySetting(id http2.SettingID, v uint32) error {
	switch id {
	case http2.SettingHeaderTableSize:
		c.enc.SetMaxDynamicTableSizeLimit(min(v, headerTableSize))
		c.encGen++ // the next block starts with a table size update
	case http2.SettingEnablePush:
		if v > 1 {
			return connError{http2.ErrCodeProtocol, "SETTINGS_ENABLE_PUSH not 0 or 1"}
		}
	case http2.SettingInitialWindowSize:
		if v > maxWindow {
			return connError{http2.ErrCodeFlowControl, "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1"}
		}
		return c.changeInitialWindow(int32(v))
	case http2.SettingMaxFrameSize:
		if v < minFrameSize || v > maxFrameSize {
			return connError{http2.ErrCodeProtocol, "SETTINGS_MAX_FRAME_SIZE out of range"}
		}
		c.peerMaxFrame = v
	}
	return nil
}

// changeInitialWindow moves every stream's send window by the change of
// SETTINGS_INITIAL_WINDOW_SIZE (RFC 9113 section 6.9.2).
func (c *conn) changeInitialWindow(v int32) error {
	delta := int64(v) - int64(c.peerInitialWindow)
	c.peerInitialWindow = v
	for _, s := range c.streams {
		s.send.window += delta
		if s.send.window > maxWindow {
			return connError{http2.ErrCodeFlowControl, "a stream's window went above 2^31-1"}
		}
	}
	return nil
}

// onPing answers a PING.
func (c *conn) onPing(f frameHeader, payload []byte) error {
	if f.length != 8 {
		return connError{http2.ErrCodeFrameSize, "PING payload not 8 bytes"}
	}
	if f.streamID != 0 {
		return connError{http2.ErrCodeProtocol, "PING on a stream"}
	}
	if f.has(flagAck) {
		if c.shutdownPing && [8]byte(payload) == shutdownPingData {
			c.finishShutdown()
		}
		return nil
	}
	if err := c.abuse.control(c); err != nil {
		return err
	}
	out := c.begin()
	*out = appendPingAck(*out, payload)
	return nil
}

// onGoAway notes that the client will open no more streams; the
// connection closes once the streams in flight are done.
func (c *conn) onGoAway(f frameHeader) error {
	if f.streamID != 0 {
		return connError{http2.ErrCodeProtocol, "GOAWAY on a stream"}
	}
	if !c.goAwaySent {
		c.goAway(http2.ErrCodeNo)
	}
	c.closeIfDone()
	return nil
}

// onPriority checks a PRIORITY frame and ignores it (RFC 9113 section
// 5.3.2 lets a server ignore priorities).
func (c *conn) onPriority(f frameHeader, payload []byte) error {
	if f.streamID == 0 {
		return connError{http2.ErrCodeProtocol, "PRIORITY on stream 0"}
	}
	if f.length != 5 {
		c.resetStream(f.streamID, http2.ErrCodeFrameSize)
		return nil
	}
	if dependsOnItself(f.streamID, payload) {
		c.resetStream(f.streamID, http2.ErrCodeProtocol)
	}
	return nil
}

// dependsOnItself reports whether priority fields name their own stream
// as the dependency (RFC 9113 section 5.3.1: a stream error).
func dependsOnItself(id uint32, priority []byte) bool {
	dep := (uint32(priority[0])<<24 | uint32(priority[1])<<16 | uint32(priority[2])<<8 | uint32(priority[3])) & (1<<31 - 1)
	return dep == id
}

// onRSTStream ends a stream the client cancelled.
func (c *conn) onRSTStream(f frameHeader, payload []byte) error {
	if f.length != 4 {
		return connError{http2.ErrCodeFrameSize, "RST_STREAM payload not 4 bytes"}
	}
	if f.streamID == 0 {
		return connError{http2.ErrCodeProtocol, "RST_STREAM on stream 0"}
	}
	if c.idle(f.streamID) {
		return connError{http2.ErrCodeProtocol, "RST_STREAM on an idle stream"}
	}
	if err := c.abuse.reset(c); err != nil {
		return err
	}
	if s := c.stream(f.streamID); s != nil {
		s.send.peerReset = true
		s.cancel(errStreamReset)
	}
	return nil
}

// onWindowUpdate opens a send window.
func (c *conn) onWindowUpdate(f frameHeader, payload []byte) error {
	if f.length != 4 {
		return connError{http2.ErrCodeFrameSize, "WINDOW_UPDATE payload not 4 bytes"}
	}
	inc := int64((uint32(payload[0])<<24 | uint32(payload[1])<<16 | uint32(payload[2])<<8 | uint32(payload[3])) & (1<<31 - 1))
	if f.streamID == 0 {
		if inc == 0 {
			return connError{http2.ErrCodeProtocol, "WINDOW_UPDATE of 0 on the connection"}
		}
		if c.sendWindow+inc > maxWindow {
			return connError{http2.ErrCodeFlowControl, "connection window above 2^31-1"}
		}
		c.sendWindow += inc
		c.blockedSince = c.c.Net().Now() // the client reads: the stall starts again
		c.pushAll()
		return nil
	}
	if c.idle(f.streamID) {
		return connError{http2.ErrCodeProtocol, "WINDOW_UPDATE on an idle stream"}
	}
	s := c.stream(f.streamID)
	if s == nil || s.send.reset {
		return nil // closed: a late update is harmless
	}
	if inc == 0 {
		return c.streamError(s, http2.ErrCodeProtocol)
	}
	if s.send.window+inc > maxWindow {
		return c.streamError(s, http2.ErrCodeFlowControl)
	}
	s.send.window += inc
	c.blockedSince = c.c.Net().Now()
	c.push(s)
	return nil
}

// idle reports whether id names a client stream not yet opened.
func (c *conn) idle(id uint32) bool { return id%2 == 1 && id > c.maxStreamID || id%2 == 0 }

// stream finds an open stream by id; nil when it is not (or no longer)
// open. Linear: a connection has at most MaxConcurrentStreams, and a map
// per connection would cost more than it saves.
func (c *conn) stream(id uint32) *stream {
	for _, s := range c.streams {
		if s.id == id {
			return s
		}
	}
	return nil
}

// streamError resets a stream for the client's fault (RFC 9113 section
// 5.4.2); resets the server sends count towards the abuse limit too
// (MadeYouReset, CVE-2025-8671).
func (c *conn) streamError(s *stream, code http2.ErrCode) error {
	c.srv.countError("stream_", code)
	c.resetStream(s.id, code)
	s.cancel(errStreamReset)
	return c.abuse.reset(c)
}

// resetStream writes RST_STREAM.
func (c *conn) resetStream(id uint32, code http2.ErrCode) {
	out := c.begin()
	*out = appendRSTStream(*out, id, code)
	c.rememberReset(id)
}

// fail ends the connection after a connection error: GOAWAY with the
// code, then close once it is sent.
func (c *conn) fail(err error) {
	var ce connError
	if !errors.As(err, &ce) {
		ce = connError{http2.ErrCodeInternal, err.Error()}
	}
	c.srv.logger().Debug("h2: connection error", "remote", c.c.RemoteAddr(), "code", ce.code, "reason", ce.reason)
	c.srv.countError("conn_", ce.code)
	out := c.begin()
	*out = appendGoAway(*out, c.maxStreamID, ce.code)
	c.goAwaySent = true
	c.close()
}

// closeGrace is how long a closing connection's last frames (its GOAWAY)
// may take to leave before the socket is closed without them.
const closeGrace = 5 * time.Second

// closeTimeout ends a closing connection whose client has taken nothing
// for closeGrace; one that still reads its last frames may go on.
func (c *conn) closeTimeout() {
	nc := c.c.Net()
	if idle := nc.Now().Sub(nc.Progress()); idle < closeGrace {
		nc.SetTimeout(closeGrace - idle)
		return
	}
	nc.Timeout()
}

// close closes the connection once its queued output has gone, or after
// closeGrace without the client taking any of it. The close lingers
// (onloop.Conn.CloseWrite): the client's last WINDOW_UPDATEs and PINGs are
// read and dropped, since closing with unread input would make the kernel
// reset the connection and destroy the end of the last response.
func (c *conn) close() {
	c.closing = true
	c.flush()
	c.c.CloseWrite()
	if !c.c.Lingering() { // output still queued: the layer's linger timer is not running yet
		c.c.Net().SetTimeout(closeGrace)
	}
}

// goAway stops taking new streams: GOAWAY with the last stream accepted.
func (c *conn) goAway(code http2.ErrCode) {
	c.goAwaySent, c.shutdownPing = true, false
	out := c.begin()
	*out = appendGoAway(*out, c.maxStreamID, code) // the last stream taken
}

// drain is Shutdown's graceful close, in two steps as RFC 9113 section
// 6.8 advises: a GOAWAY that takes every stream (2^31-1) with a PING,
// then, once the client has answered the PING (so any stream it opened
// before it saw the first GOAWAY has arrived and is served) or after
// shutdownPingWait, the GOAWAY naming the last stream taken; the
// connection closes when the streams in flight are done. A single
// GOAWAY would refuse the streams already on their way.
func (c *conn) drain() {
	switch {
	case c.goAwaySent || c.shutdownPing:
	case !c.settingsSeen: // no stream can be on its way yet
		c.goAway(http2.ErrCodeNo)
	default:
		out := c.begin()
		*out = appendGoAway(*out, 1<<31-1, http2.ErrCodeNo)
		*out = appendPing(*out, shutdownPingData)
		c.shutdownPing, c.shutdownAt = true, c.c.Net().Now()
	}
	c.flush()
	c.closeIfDone()
	if !c.closing {
		c.pace()
	}
}

// shutdownPingWait bounds the wait for the ack of Shutdown's PING before
// the final GOAWAY.
const shutdownPingWait = time.Second

// shutdownPingData is the payload of Shutdown's PING.
var shutdownPingData = [8]byte{'a', 'n', 'x', 'd', 'r', 'a', 'i', 'n'}

// finishShutdown sends Shutdown's final GOAWAY, naming the last stream
// taken.
func (c *conn) finishShutdown() {
	if !c.shutdownPing {
		return
	}
	c.goAway(http2.ErrCodeNo)
	c.flush()
	c.closeIfDone()
}

// closeIfDone closes a connection that sent GOAWAY once no stream is left.
func (c *conn) closeIfDone() {
	if c.goAwaySent && len(c.streams) == 0 && !c.closing {
		c.close()
	}
}

// timeout acts on the deadline pace set, once it has really passed (the
// wait may have changed since).
func (c *conn) timeout() {
	if c.closing {
		c.closeTimeout()
		return
	}
	w, at := c.deadline()
	if w == waitNone || c.c.Net().Now().Before(at) {
		c.pace()
		return
	}
	switch w {
	case waitPreface:
		c.srv.logger().Debug("h2: no preface in time", "remote", c.c.RemoteAddr())
		c.c.Net().Timeout()
	case waitStall:
		// The client takes nothing: a GOAWAY would not reach it either.
		c.srv.logger().Debug("h2: client stopped reading", "remote", c.c.RemoteAddr())
		c.srv.countError("conn_", http2.ErrCodeEnhanceYourCalm)
		c.closing = true
		c.c.Net().Timeout()
	case waitContent:
		c.srv.logger().Debug("h2: request content stopped coming", "remote", c.c.RemoteAddr())
		c.resetWaiting()
		c.flush()
	case waitIdle:
		c.goAway(http2.ErrCodeNo)
		c.close()
	case waitShutdownAck:
		c.finishShutdown()
		if !c.closing {
			c.pace()
		}
	}
}

// writable goes on with what waited for the socket.
func (c *conn) writable() {
	c.pushAll()
	c.flush()
}

// closed ends every stream still open; a stream whose handler still runs
// off the loop is released when it returns (pushFromHandler).
func (c *conn) closed(err error) {
	c.closing = true
	c.srv.logger().Debug("h2: connection closed", "remote", c.c.RemoteAddr(), "error", err)
	for len(c.streams) > 0 {
		s := c.streams[len(c.streams)-1]
		c.streams = c.streams[:len(c.streams)-1]
		s.send.reset = true
		s.out.fail(errConnClosed)
		if s.body != nil {
			s.body.fail(errConnClosed)
		}
		if !s.send.running {
			c.observe(s)
			s.release()
		}
	}
	c.blocked = nil
	if c.out != nil {
		pool.Put(c.out)
		c.out = nil
	}
}

// windowUpdate gives back n bytes of content consumed on stream s (nil:
// only the connection's) once enough has accumulated, so that a client
// is not told about every small read.
func (c *conn) windowUpdate(s *stream, n int64) {
	if n <= 0 || c.closing {
		return
	}
	c.recvUnacked += n
	if c.recvUnacked >= connWindow/4 {
		out := c.begin()
		*out = appendWindowUpdate(*out, 0, uint32(c.recvUnacked))
		c.recvWindow += c.recvUnacked
		c.recvUnacked = 0
	}
	if s == nil || s.in.remoteDone {
		return
	}
	s.in.recvUnacked += n
	if s.in.recvUnacked >= streamWindow/4 {
		out := c.begin()
		*out = appendWindowUpdate(*out, s.id, uint32(s.in.recvUnacked))
		s.in.recvWindow += s.in.recvUnacked
		s.in.recvUnacked = 0
	}
}

// clampWindow keeps a window within int32 for a frame length.
func clampWindow(w int64) int {
	return int(max(0, min(w, math.MaxInt32)))
}
