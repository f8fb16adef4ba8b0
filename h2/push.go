package h2

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/netpoll"
	"github.com/anx-gateway/anx/core/pool"
)

// maxDataFrame is the largest DATA payload we send, whatever larger size
// the client allows: big enough that headers cost little, small enough
// that streams interleave.
const maxDataFrame = 16 << 10

// push frames what s's output holds, as far as the windows and the
// socket allow; what is left waits in conn.blocked. It may finish the
// stream and release it: a caller that goes on with s checks c.has(s).
func (c *conn) push(s *stream) {
	if c.closing || s.send.reset || s.send.localDone {
		return
	}
	o := &s.out
	o.mu.Lock()
	blocked, err := c.pushLocked(s)
	aborted := o.aborted && o.done
	o.mu.Unlock()
	switch {
	case err != nil || aborted && !s.send.localDone:
		c.resetStream(s.id, http2.ErrCodeInternal)
		s.cancel(errStreamReset)
		return
	case s.send.localDone:
		// A response complete before its request stays open until the
		// client ends the request: its content is dropped but still
		// checked against its content-length (RFC 9113 section 8.1.1).
		c.unblock(s)
		if s.body != nil && !s.send.running {
			s.body.fail(errStreamReset)
		}
		c.finishIfDone(s)
	case blocked && !s.send.blocked:
		if len(c.blocked) == 0 {
			c.blockedSince = c.c.Net().Now()
		}
		s.send.blocked = true
		c.blocked = append(c.blocked, s)
	case !blocked:
		c.unblock(s)
	}
}

// pushLocked frames the queued heads and content; it reports whether
// content is left for lack of window or socket room. o.mu is held.
func (c *conn) pushLocked(s *stream) (blocked bool, err error) {
	o := &s.out
	for i := range o.interim {
		c.writeHead(s.id, o.interim[i].status, &o.interim[i].fields, false, false)
	}
	o.interim = o.interim[:0]
	if o.status == 0 || o.aborted && o.done {
		return false, nil
	}
	if !s.send.headSent {
		end := o.done && o.empty() && o.trailer.Len() == 0
		c.writeHead(s.id, o.status, o.head, end, true)
		s.send.headSent = true
		s.send.localDone = end
		if end {
			return false, nil
		}
	}
	for {
		if blocked = c.pushData(s); blocked {
			return true, nil
		}
		if len(o.files) == 0 {
			break
		}
		if blocked, err = c.pushFile(s); blocked || err != nil || s.send.warming {
			return blocked, err // warming: the worker's callback pushes again
		}
	}
	if o.done && !s.send.localDone {
		if o.trailer.Len() > 0 {
			c.writeHead(s.id, 0, &o.trailer, true, false)
		} else {
			c.writeData(s, nil, true)
		}
		s.send.localDone = true
	}
	return false, nil
}

// pushData frames queued content up to the next file region; it reports
// whether some is left.
func (c *conn) pushData(s *stream) (blocked bool) {
	o := &s.out
	for left := o.dataBefore(); left > 0; left = o.dataBefore() {
		n := min(c.dataRoom(s), left)
		if n == 0 {
			return true
		}
		last := n == o.queued() && len(o.files) == 0 && o.done && o.trailer.Len() == 0
		c.writeData(s, (*o.data)[o.dataOff:o.dataOff+n], last)
		o.dataOff += n
		s.send.localDone = last
	}
	if s.w.offLoop {
		o.cond.Broadcast() // a Write waiting for room
	}
	return false
}

// pushFile frames the first queued file region, read as the windows
// allow; a region the page cache does not hold waits for a file worker
// (warm) rather than be read on the loop.
func (c *conn) pushFile(s *stream) (blocked bool, err error) {
	o := &s.out
	r := &o.files[0]
	for r.n > 0 {
		if s.send.warming {
			return false, nil
		}
		n := int(min(int64(c.dataRoom(s)), r.n))
		if n == 0 {
			return true, nil
		}
		last := int64(n) == r.n && len(o.files) == 1 && o.queued() == 0 && o.done && o.trailer.Len() == 0
		k, err := c.writeFileData(s, r, n, last)
		if err == netpoll.ErrWouldBlock {
			c.warm(s, r)
			continue
		}
		if err != nil {
			return false, err
		}
		r.off += int64(k)
		r.n -= int64(k)
		s.send.localDone = last && k == n
	}
	o.dropFile()
	return false, nil
}

// warmWindow is how much of a cold file region a worker reads ahead.
const warmWindow = 2 << 20

// warm has a file worker read the next window of a cold region, and the
// stream go on once it has; when the workers are behind, the region is
// read on the loop.
func (c *conn) warm(s *stream, r *fileRegion) {
	id := s.id
	err := c.c.Warm(r.f, r.off, min(r.n, warmWindow), func(error) {
		if c.closing || !c.has(s) || s.id != id {
			return // the stream or the connection ended meanwhile
		}
		s.send.warming = false
		c.push(s)
		c.flush()
	})
	if err != nil {
		r.cold = true // read it here, waiting for the disk, rather than stall
		return
	}
	s.send.warming = true
}

// dataRoom returns how much content s may frame now: its window, the
// connection's, the frame size, and what the socket has room for.
func (c *conn) dataRoom(s *stream) int {
	if c.c.Buffered()+int64(len(*c.begin())) >= outHighWater {
		return 0
	}
	return max(0, int(min(s.send.window, c.sendWindow, int64(c.peerMaxFrame), maxDataFrame)))
}

// writeData appends a DATA frame and takes it from the windows.
func (c *conn) writeData(s *stream, p []byte, end bool) {
	var flags http2.Flags
	if end {
		flags = flagEndStream
	}
	out := c.room(frameHeaderLen + len(p))
	*out = appendFrameHeader(*out, len(p), http2.FrameData, flags, s.id)
	*out = append(*out, p...)
	s.send.window -= int64(len(p))
	c.sendWindow -= int64(len(p))
}

// errShortFile ends a stream whose file ended before its response.
var errShortFile = errors.New("h2: file shorter than its response")

// writeFileData appends a DATA frame of n bytes read from the file
// region, straight into the output. It reads without waiting where the
// page cache has the bytes.
func (c *conn) writeFileData(s *stream, r *fileRegion, n int, end bool) (int, error) {
	out := c.room(frameHeaderLen + n)
	at := len(*out)
	*out = appendFrameHeader(*out, n, http2.FrameData, 0, s.id)
	buf := (*out)[len(*out) : len(*out)+n]
	k, err := netpoll.ReadNoWait(r.f, buf, r.off)
	switch {
	case k == 0 && err == netpoll.ErrWouldBlock && !r.cold:
		*out = (*out)[:at]
		return 0, err
	case k == 0 && (err == netpoll.ErrUnsupported || err == netpoll.ErrWouldBlock):
		k, err = r.f.ReadAt(buf, r.off)
	}
	if k == 0 {
		*out = (*out)[:at]
		c.srv.logger().Warn("h2: file shorter than its response", "file", r.f.Name(), "error", err)
		return 0, errShortFile
	}
	if end && k == n {
		(*out)[at+4] = byte(flagEndStream)
	}
	(*out)[at], (*out)[at+1], (*out)[at+2] = byte(k>>16), byte(k>>8), byte(k)
	*out = (*out)[:len(*out)+k]
	s.send.window -= int64(k)
	c.sendWindow -= int64(k)
	return k, nil
}

// room makes sure the batch's output has room for n more bytes, writing
// out what it holds when it is full.
func (c *conn) room(n int) *[]byte {
	out := c.begin()
	if cap(*out)-len(*out) >= n {
		return out
	}
	if len(*out) > 0 {
		c.c.Write(*out)
		*out = (*out)[:0]
	}
	if cap(*out) < n {
		pool.Put(out)
		c.out = pool.Get(n)
		*c.out = (*c.out)[:0]
	}
	return c.out
}

// writeHead encodes a header block (a final or interim response head
// with status, or trailers with status 0) and frames it as HEADERS and,
// past the client's frame size, CONTINUATION. A final head equal to the
// last one whose block held only references to the HPACK tables, which
// have not changed since, is not encoded again (headMemo): a file served
// over and over costs the comparison of its fields.
func (c *conn) writeHead(id uint32, status int, fields *message.Header, end, final bool) {
	var date string
	if final {
		date = c.srv.dates.Value(c.c.Net().Now())
		if c.memo.matches(status, fields, date, c.encGen) {
			c.writeBlock(id, c.memo.block, end)
			return
		}
	}
	c.encodeHead(status, fields, date, final)
	switch {
	case !onlyIndexed(c.blk):
		c.encGen++ // the tables may have changed: every memo is stale
	case final:
		c.memo.record(status, fields, date, c.blk, c.encGen)
	}
	c.writeBlock(id, c.blk, end)
}

// encodeHead encodes a head into c.blk, adding Date (date), Server and
// Alt-Svc to a final one that lacks them.
func (c *conn) encodeHead(status int, fields *message.Header, date string, final bool) {
	c.blk = c.blk[:0]
	if status != 0 {
		c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(status)})
	}
	var hasDate, hasServer, hasAltSvc bool
	for _, f := range fields.Fields() {
		if message.ConnectionSpecific(f.Name) || strings.HasPrefix(f.Name, ":") {
			continue
		}
		name := lowerName(f.Name)
		switch name {
		case "date":
			hasDate = true
		case "server":
			hasServer = true
		case "alt-svc":
			hasAltSvc = true
		}
		c.enc.WriteField(hpack.HeaderField{Name: name, Value: f.Value})
	}
	if !final {
		return
	}
	if !hasDate {
		c.enc.WriteField(hpack.HeaderField{Name: "date", Value: date})
	}
	if !hasServer {
		c.enc.WriteField(hpack.HeaderField{Name: "server", Value: "anx"})
	}
	if !hasAltSvc && c.srv.AltSvc != "" {
		c.enc.WriteField(hpack.HeaderField{Name: "alt-svc", Value: c.srv.AltSvc})
	}
}

// onlyIndexed reports whether a header block holds nothing but indexed
// field representations (RFC 7541 section 6.1), which leave the dynamic
// table as it was.
func onlyIndexed(block []byte) bool {
	for i := 0; i < len(block); {
		b := block[i]
		i++
		if b&0x80 == 0 {
			return false
		}
		if b&0x7f == 0x7f { // the index goes on in continuation bytes
			for i < len(block) && block[i]&0x80 != 0 {
				i++
			}
			i++
		}
	}
	return true
}

// headMemo is a final head a connection encoded to nothing but table
// references: the same status, fields and Date again, with the tables
// unchanged (gen), encode to the same block. Its storage is reused, so
// that recording a new head allocates nothing once it has grown.
type headMemo struct {
	status int
	text   []byte // the handler's field names and values, one after another
	ends   []int  // where each name and each value ends in text
	date   string
	block  []byte
	gen    uint64
	valid  bool
}

// matches reports whether a head is the memo's, with the tables as they
// were.
func (m *headMemo) matches(status int, fields *message.Header, date string, gen uint64) bool {
	fs := fields.Fields()
	if !m.valid || m.gen != gen || m.status != status || m.date != date || 2*len(fs) != len(m.ends) {
		return false
	}
	start := 0
	for i, f := range fs {
		nameEnd, valueEnd := m.ends[2*i], m.ends[2*i+1]
		if string(m.text[start:nameEnd]) != f.Name || string(m.text[nameEnd:valueEnd]) != f.Value {
			return false
		}
		start = valueEnd
	}
	return true
}

// record keeps a head and its block, copying what the handler may reuse.
func (m *headMemo) record(status int, fields *message.Header, date string, block []byte, gen uint64) {
	m.text, m.ends = m.text[:0], m.ends[:0]
	for _, f := range fields.Fields() {
		m.text = append(m.text, f.Name...)
		m.ends = append(m.ends, len(m.text))
		m.text = append(m.text, f.Value...)
		m.ends = append(m.ends, len(m.text))
	}
	m.status, m.date, m.gen, m.valid = status, date, gen, true
	m.block = append(m.block[:0], block...)
}

// writeBlock frames a header block.
func (c *conn) writeBlock(id uint32, block []byte, end bool) {
	typ := http2.FrameHeaders
	var flags http2.Flags
	if end {
		flags = flagEndStream
	}
	for first := true; first || len(block) > 0; first = false {
		n := min(len(block), int(c.peerMaxFrame))
		f := flags
		if n == len(block) {
			f |= flagEndHeaders
		}
		out := c.room(frameHeaderLen + n)
		*out = appendFrameHeader(*out, n, typ, f, id)
		*out = append(*out, block[:n]...)
		block = block[n:]
		typ, flags = http2.FrameContinuation, 0
	}
}

// pushAll gives every blocked stream its turn, in order, until the
// socket has no more room.
func (c *conn) pushAll() {
	for n := len(c.blocked); n > 0 && len(c.blocked) > 0 && !c.closing; n-- {
		if c.c.Buffered()+int64(len(*c.begin())) >= outHighWater {
			return
		}
		s := c.blocked[0]
		c.blocked = slices.Delete(c.blocked, 0, 1)
		s.send.blocked = false
		c.push(s)
	}
}

// pushFromHandler runs on the loop when a handler off it has queued
// output or returned.
func (s *stream) pushFromHandler() {
	c := s.c
	s.out.mu.Lock()
	s.out.pending = false
	returned := s.out.returned
	s.out.mu.Unlock()
	if returned {
		s.send.running = false
	}
	if c.c.Net().Closed() {
		if returned {
			// The connection is closing (closed may not have run yet, and
			// would release s again) or closed (and left s to us).
			c.forget(s)
			c.observe(s)
			s.release()
		}
		return
	}
	c.push(s)
	if returned && c.has(s) { // push may have finished it already
		c.finishIfDone(s)
	}
	c.flush()
}

// rememberReset notes a stream the server reset, whose frames the client
// may have sent before it knew: they are ignored (RFC 9113 section 5.1).
func (c *conn) rememberReset(id uint32) {
	c.recentResets[c.nextReset%len(c.recentResets)] = id
	c.nextReset++
}

// recentlyReset reports whether the server reset stream id lately.
func (c *conn) recentlyReset(id uint32) bool {
	return slices.Contains(c.recentResets[:], id)
}

// statusText returns a status code as :status carries it.
func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 204:
		return "204"
	case 206:
		return "206"
	case 304:
		return "304"
	case 400:
		return "400"
	case 404:
		return "404"
	case 500:
		return "500"
	}
	return strconv.Itoa(code)
}

// lowerName returns a field name in lower case, as HTTP/2 sends it,
// without allocating for names already lower-case or common ones.
func lowerName(name string) string {
	for i := 0; i < len(name); i++ {
		if 'A' <= name[i] && name[i] <= 'Z' {
			if known, ok := commonNames[name]; ok {
				return known
			}
			return strings.ToLower(name)
		}
	}
	return name
}

// commonNames maps the canonical spelling of common response fields to
// the lower case HTTP/2 sends.
var commonNames = func() map[string]string {
	m := make(map[string]string)
	for _, n := range []string{
		"Accept-Ranges", "Age", "Alt-Svc", "Cache-Control", "Content-Disposition", "Content-Encoding",
		"Content-Language", "Content-Length", "Content-Location", "Content-Range", "Content-Security-Policy",
		"Content-Type", "Date", "Etag", "ETag", "Expires", "Last-Modified", "Link", "Location", "Retry-After",
		"Server", "Set-Cookie", "Strict-Transport-Security", "Vary", "Via", "Www-Authenticate",
		"WWW-Authenticate", "X-Content-Type-Options", "X-Frame-Options", "Access-Control-Allow-Origin",
	} {
		m[n] = strings.ToLower(n)
	}
	return m
}()
