package h2

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/netpoll"
	"github.com/anx-gateway/anx/core/pool"
)

// pipeLimit is the response content a handler off the loop may have
// queued before its Write waits for the loop to send some.
const pipeLimit = 64 << 10

// Errors of the response writer.
var (
	errInterimStatus  = errors.New("h2: interim status must be 1xx other than 101")
	errInterimTooLate = errors.New("h2: interim response after the final one")
)

var (
	_ message.FileWriter    = (*responseWriter)(nil)
	_ message.Flusher       = (*responseWriter)(nil)
	_ message.TrailerWriter = (*responseWriter)(nil)
	_ message.InterimWriter = (*responseWriter)(nil)
	_ message.Aborter       = (*responseWriter)(nil)
	_ message.Upgrader      = (*responseWriter)(nil)
)

// responseWriter is the message.ResponseWriter of a stream. The handler
// owns it while it runs; what it writes goes into the stream's output,
// which the loop frames.
type responseWriter struct {
	s        *stream
	header   message.Header
	trailer  message.Header
	status   int  // the final status once written; 0 before
	drop     bool // the status or method carries no content
	offLoop  bool // the handler runs on a goroutine: copy what the loop reads later
	upgraded bool // Upgrade made the stream a tunnel
	finished bool // finish ran: the content is complete
	written  int64
}

// reset makes the writer ready for the next stream, keeping storage.
func (w *responseWriter) reset() {
	w.header.Reset()
	w.trailer.Reset()
	w.status, w.drop, w.offLoop, w.upgraded, w.finished, w.written = 0, false, false, false, false, 0
}

// Header returns the response fields to set before WriteHeader.
func (w *responseWriter) Header() *message.Header { return &w.header }

// Trailer returns the trailer fields sent after the content.
func (w *responseWriter) Trailer() *message.Header { return &w.trailer }

// WriteHeader queues the response head. An informational status is sent
// as an interim response; 101 and statuses outside 100-999 become 500.
func (w *responseWriter) WriteHeader(status int) {
	if w.status != 0 {
		return
	}
	if status < 100 || status > 999 || status == 101 {
		status = 500
	}
	if status < 200 {
		w.WriteInterim(status, &w.header)
		return
	}
	w.status = status
	w.drop = !message.BodyAllowed(status) || w.s.req.Method == "HEAD"
	w.s.out.setHead(status, &w.header, w.offLoop)
}

// WriteInterim queues an informational response (message.InterimWriter).
func (w *responseWriter) WriteInterim(status int, fields *message.Header) error {
	if status < 100 || status > 199 || status == 101 {
		return errInterimStatus
	}
	if w.status != 0 {
		return errInterimTooLate
	}
	return w.s.out.addInterim(status, fields, w.s)
}

// continue100 sends 100 (Continue) unless a final status is out; it runs
// on the handler's goroutine, from the first read of the content.
func (w *responseWriter) continue100() {
	if w.status == 0 {
		w.WriteInterim(100, nil)
	}
}

// Write queues content; a handler off the loop waits while its queue is
// full.
func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(200)
	}
	if w.drop {
		return len(p), nil
	}
	n, err := w.s.out.write(p, w.s)
	w.written += int64(n)
	return n, err
}

// WriteFile queues a region of f as content (message.FileWriter): the
// loop reads it as the windows open, without waiting for the disk where
// the page cache has it. Off the loop it is read and written through
// Write.
func (w *responseWriter) WriteFile(f *os.File, offset, length int64) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(200)
	}
	if w.drop || length <= 0 {
		return length, nil
	}
	if w.offLoop {
		return io.Copy(w, io.NewSectionReader(f, offset, length))
	}
	if err := w.s.out.addFile(f, offset, length); err != nil {
		return 0, err
	}
	w.written += length
	return length, nil
}

// Flush sends what is queued now (message.Flusher).
func (w *responseWriter) Flush() error {
	if w.status == 0 {
		w.WriteHeader(200)
	}
	if w.offLoop {
		w.s.out.schedule(w.s)
	}
	return w.s.out.err()
}

// Abort ends the response as broken (message.Aborter): the stream is
// reset instead of ended.
func (w *responseWriter) Abort() { w.s.out.abort(w.s) }

// finish ends the handler's part: the content is complete, the trailer
// fields (if any) follow it.
func (w *responseWriter) finish() {
	if w.finished {
		return
	}
	w.finished = true
	if w.status == 0 {
		w.WriteHeader(200)
	}
	w.s.out.finish(&w.trailer, w.s, w.offLoop)
}

// errNotConnect is Upgrade's error for a stream that is no extended
// CONNECT.
var errNotConnect = errors.New("h2: Upgrade on a stream that is no extended CONNECT")

// Upgrade answers an extended CONNECT with 200 and returns the stream as
// the tunnel (message.Upgrader): reads take the client's DATA, writes
// send DATA, CloseWrite ends the stream our way.
func (w *responseWriter) Upgrade() (net.Conn, error) {
	s := w.s
	if s.req.Protocol == "" || w.status != 0 || s.body == nil || !w.offLoop {
		return nil, errNotConnect
	}
	w.Header().Del("Upgrade")
	w.WriteHeader(200)
	w.upgraded = true
	if err := w.Flush(); err != nil {
		return nil, err
	}
	return &tunnel{w: w, local: s.c.c.Net().LocalAddr(), remote: s.req.RemoteAddr}, nil
}

// tunnel is an extended CONNECT's stream as a net.Conn, for the handler
// that upgraded it (on its goroutine).
type tunnel struct {
	w             *responseWriter
	local, remote netip.AddrPort
	mu            sync.Mutex
	closed        bool
}

// errTunnelDeadline is what the deadline methods return: a tunnel stream
// has the connection's timeouts, not its own.
var errTunnelDeadline = errors.New("h2: a tunnel stream has no deadlines of its own")

func (t *tunnel) Read(p []byte) (int, error) { return t.w.s.body.Read(p) }
func (t *tunnel) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err == nil {
		err = t.w.Flush()
	}
	return n, err
}

// CloseWrite ends the stream our way (END_STREAM); the client may still
// send.
func (t *tunnel) CloseWrite() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.w.finish()
	}
	return nil
}

// Close ends the stream both ways: END_STREAM if not yet sent, and
// reads end.
func (t *tunnel) Close() error {
	t.CloseWrite()
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.w.s.body.fail(net.ErrClosed)
	return nil
}

func (t *tunnel) LocalAddr() net.Addr              { return net.TCPAddrFromAddrPort(t.local) }
func (t *tunnel) RemoteAddr() net.Addr             { return net.TCPAddrFromAddrPort(t.remote) }
func (t *tunnel) SetDeadline(time.Time) error      { return errTunnelDeadline }
func (t *tunnel) SetReadDeadline(time.Time) error  { return errTunnelDeadline }
func (t *tunnel) SetWriteDeadline(time.Time) error { return errTunnelDeadline }

// output is a stream's response on its way to the loop: set by the
// handler (under mu when it runs off the loop), framed by the loop.
type output struct {
	mu   sync.Mutex
	cond sync.Cond // Write waits on it while data is full

	status   int
	head     *message.Header // the final head's fields: the writer's own, or hold off the loop
	hold     message.Header  // a copy of the head's fields, off the loop
	interim  []interim
	data     *[]byte // queued content, (*data)[dataOff:len]; nil when none
	dataOff  int
	files    []fileRegion // file regions among the data, in order
	trailer  message.Header
	done     bool  // the content is complete (the handler returned, or closed its tunnel)
	returned bool  // the handler off the loop has returned: the stream is the loop's alone
	aborted  bool  // the handler aborted: reset instead of ending
	gone     error // the stream can take no more (reset, closed)
	pending  bool  // a push is scheduled on the loop
}

// interim is a queued informational response.
type interim struct {
	status int
	fields message.Header
}

// reset empties the output for the next stream, keeping storage.
func (o *output) reset() {
	o.releaseData()
	for len(o.files) > 0 {
		o.dropFile()
	}
	o.hold.Reset()
	o.trailer.Reset()
	o.interim = o.interim[:0]
	o.status, o.head, o.done, o.returned, o.aborted, o.gone, o.pending = 0, nil, false, false, false, nil, false
}

// setHead queues the final head.
func (o *output) setHead(status int, h *message.Header, copyFields bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.status = status
	o.head = h
	if copyFields {
		o.hold.Reset()
		for _, f := range h.Fields() {
			o.hold.Add(f.Name, f.Value)
		}
		o.head = &o.hold
	}
}

// addInterim queues an informational response.
func (o *output) addInterim(status int, fields *message.Header, s *stream) error {
	o.mu.Lock()
	if o.gone != nil {
		defer o.mu.Unlock()
		return o.gone
	}
	it := interim{status: status}
	if fields != nil {
		for _, f := range fields.Fields() {
			it.fields.Add(f.Name, f.Value)
		}
	}
	o.interim = append(o.interim, it)
	o.mu.Unlock()
	if s.w.offLoop {
		o.schedule(s)
	}
	return nil
}

// write queues content, waiting (off the loop) while the queue is full.
func (o *output) write(p []byte, s *stream) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	written := 0
	for len(p) > 0 {
		if o.gone != nil {
			return written, o.gone
		}
		if s.w.offLoop && o.queued() >= pipeLimit {
			o.scheduleLocked(s)
			o.cond.Wait()
			continue
		}
		n := o.append(p, s.w.offLoop)
		p = p[n:]
		written += n
	}
	if s.w.offLoop {
		o.scheduleLocked(s)
	}
	return written, nil
}

// append copies what fits of p into the queue (on the loop, all of it).
func (o *output) append(p []byte, bounded bool) int {
	if o.data == nil {
		o.data = pool.Get(min(max(len(p), 4<<10), pipeLimit))
		*o.data = (*o.data)[:0]
		o.dataOff = 0
	}
	if o.dataOff > 0 && o.dataOff == len(*o.data) {
		o.shiftFiles(o.dataOff)
		*o.data, o.dataOff = (*o.data)[:0], 0
	}
	n := len(p)
	if bounded {
		n = min(n, pipeLimit-o.queued())
	}
	if len(*o.data)+n > cap(*o.data) {
		o.grow(n)
	}
	*o.data = append(*o.data, p[:n]...)
	return n
}

// grow moves the queue into a buffer with room for n more bytes.
func (o *output) grow(n int) {
	q := (*o.data)[o.dataOff:]
	bigger := pool.Get(len(q) + n)
	*bigger = append((*bigger)[:0], q...)
	pool.Put(o.data)
	o.shiftFiles(o.dataOff)
	o.data, o.dataOff = bigger, 0
}

// shiftFiles moves the file regions' places back by n, the data dropped
// from the front of the queue.
func (o *output) shiftFiles(n int) {
	for i := range o.files {
		o.files[i].at -= n
	}
}

// queued returns the content bytes queued.
func (o *output) queued() int {
	if o.data == nil {
		return 0
	}
	return len(*o.data) - o.dataOff
}

// fileRegion is a region of a file in the content, before the queued
// data from at on.
type fileRegion struct {
	at   int // where in *data the region goes
	f    *os.File
	off  int64
	n    int64
	dup  bool // f is the stream's own duplicate, to close
	cold bool // no file worker could warm it: read on the loop
}

// addFile queues a file region after the data queued so far (on the
// loop).
// A small region the page cache holds is copied into the queue at once;
// a larger one (or a cold one) is queued as a duplicate of f's descriptor,
// since the handler may close f once it has returned.
func (o *output) addFile(f *os.File, off, n int64) error {
	if o.gone != nil {
		return o.gone
	}
	if n <= copyFileMax && o.copyFile(f, off, int(n)) {
		return nil
	}
	dup, err := netpoll.DupFile(f)
	if err != nil {
		return err
	}
	at := 0
	if o.data != nil {
		at = len(*o.data)
	}
	o.files = append(o.files, fileRegion{at: at, f: dup, off: off, n: n, dup: true})
	return nil
}

// copyFileMax is the largest file region copied into the queue rather
// than sent from the file as the windows open.
const copyFileMax = 32 << 10

// copyFile appends n bytes of f from off to the queue if the page cache
// has them all; it reports whether it did.
func (o *output) copyFile(f *os.File, off int64, n int) bool {
	if o.data == nil {
		o.data = pool.Get(max(n, 4<<10))
		*o.data, o.dataOff = (*o.data)[:0], 0
	}
	if len(*o.data)+n > cap(*o.data) {
		o.grow(n)
	}
	tail := (*o.data)[len(*o.data) : len(*o.data)+n]
	k, err := netpoll.ReadNoWait(f, tail, off)
	if err == netpoll.ErrUnsupported {
		k, err = f.ReadAt(tail, off)
	}
	if k != n {
		return false
	}
	*o.data = (*o.data)[:len(*o.data)+n]
	return err == nil || err == io.EOF
}

// dataBefore returns the queued data bytes before the next file region.
func (o *output) dataBefore() int {
	if len(o.files) > 0 {
		return o.files[0].at - o.dataOff
	}
	return o.queued()
}

// empty reports whether nothing is queued.
func (o *output) empty() bool { return o.queued() == 0 && len(o.files) == 0 }

// dropFile drops the first file region, closing a duplicate.
func (o *output) dropFile() {
	if r := &o.files[0]; r.dup {
		r.f.Close()
	}
	o.files[0] = fileRegion{}
	o.files = o.files[1:]
	if len(o.files) == 0 {
		o.files = o.files[:0:cap(o.files)]
	}
}

// finish records that the handler returned.
func (o *output) finish(trailer *message.Header, s *stream, offLoop bool) {
	o.mu.Lock()
	o.done = true
	for _, f := range trailer.Fields() {
		o.trailer.Add(f.Name, f.Value)
	}
	o.mu.Unlock()
	if offLoop {
		o.schedule(s)
	}
}

// handlerReturned tells the loop that the handler off the loop is done
// with the stream.
func (o *output) handlerReturned(s *stream) {
	o.mu.Lock()
	o.returned = true
	o.scheduleLocked(s)
	o.mu.Unlock()
}

// abort marks the response broken.
func (o *output) abort(s *stream) {
	o.mu.Lock()
	o.aborted = true
	o.mu.Unlock()
}

// err returns why the stream takes no more output, or nil.
func (o *output) err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.gone
}

// fail stops the output: writers waiting or to come get err.
func (o *output) fail(err error) {
	o.mu.Lock()
	if o.gone == nil {
		o.gone = err
	}
	o.cond.Broadcast()
	o.mu.Unlock()
}

// schedule has the loop push the stream's output, once per batch of
// writes.
func (o *output) schedule(s *stream) {
	o.mu.Lock()
	o.scheduleLocked(s)
	o.mu.Unlock()
}

func (o *output) scheduleLocked(s *stream) {
	if o.pending || o.gone != nil && !o.returned {
		return
	}
	o.pending = true
	s.c.c.Net().Submit(s.pushFn)
}

// releaseData gives the queue's buffer back.
func (o *output) releaseData() {
	if o.data != nil {
		pool.Put(o.data)
		o.data, o.dataOff = nil, 0
	}
}
