package proxy

import (
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"
	"unsafe"

	"github.com/anx-gateway/anx/core/chunked"
	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/netpoll"
	"github.com/anx-gateway/anx/core/pool"
)

// The proxy on the event loop. A request without content whose route
// reaches its upstreams over plain HTTP/1.1 (http:// to an IP address, or
// unix:) is served on the loop that read it, when its front end offers a
// message.LoopWriter (h1): Serve writes the request head to a connection
// of that loop's own pool (loop_pool.go), defers the response, and the
// upstream connection's events relay the answer as it arrives, with no
// goroutine and no lock. Everything else (bodies, upgrades, h2 and https
// upstreams, h2 and h3 clients) goes through Serve's blocking path, with
// the same balancing, health, retry and header rules.

// loopHighWater is the client output queued past which the relay stops
// reading the upstream until the client has taken it.
const loopHighWater = 256 << 10

// loopable reports whether every upstream of the route can be reached
// from an event loop.
func (h *Handler) loopable() bool {
	for _, u := range h.ups {
		c, ok := u.tr.(*h1Client)
		if !ok || !c.onLoop.dialable() {
			return false
		}
	}
	return len(h.ups) > 0
}

// ServesOnLoop reports whether r can be proxied on the front end's event
// loop (message.LoopServer): a request without content and without
// Upgrade, to a route whose upstreams all speak plain HTTP/1.1 at an IP
// address or a Unix socket.
func (h *Handler) ServesOnLoop(r *message.Request) bool {
	return h.loopEligible(r) && !h.saturated()
}

// loopEligible is ServesOnLoop without the queue: whether r is of the
// kind the loop serves. A request on the loop stays there (Serve must
// not block), even when the upstreams filled since the front end asked.
func (h *Handler) loopEligible(r *message.Request) bool {
	return h.onLoop && r.ContentLength == 0 && upgradeOf(r) == ""
}

// loopExchange is one request proxied on a loop, from Serve to the end
// of its response. Owned by the loop's goroutine; recycled.
type loopExchange struct {
	h    *Handler
	w    message.ResponseWriter
	lw   message.LoopWriter
	loop *netpoll.Loop // lw's loop, where the upstream connections live
	req  exchange      // builds the request head (fillRequest)
	// head is the request head as it goes upstream, kept for a retry.
	head  *[]byte
	headN int

	choice    choice
	tried     tried
	attempt   int
	deadline  int64 // of the try budget, unix nanoseconds
	isHead    bool  // a HEAD request: no body in the response
	secure    bool  // the client came over TLS (the sticky cookie's Secure)
	retryable bool  // may be sent again after it went out: idempotent or with Idempotency-Key
	resent    bool  // sent again after a reused connection was lost (resendFresh)

	up      int       // index of the upstream of the attempt in flight
	conn    *loopConn // its connection
	lastErr error

	// The response.
	resp     inResponse // the head as parsed; its strings point into the upstream's input
	info     h1RespInfo
	started  bool // the final head went to the client: no retry, no error answer
	kind     h1BodyKind
	remain   int64 // h1BodyLength: content bytes still to come
	dec      chunked.Decoder
	trailer  message.Header
	interims int // informational responses so far
	interim  message.Header
	paused   bool            // the upstream's reading is paused: the client's output is backed up
	accept   clientAccept    // the request's Accept-Encoding
	compress loopCompression // the response's encoder, when it is compressed
	spoiled  bool            // bytes came after the response's end: the connection is not reused

	// trace is the request's Trace, told the upstream and its answer: the
	// front end keeps the request for its Observer until Done or Gone.
	trace  *message.Trace
	sentAt time.Time // when the attempt's request went upstream

	staleKey uint64       // the request's key in the stale cache (degrade.go); 0: none
	stale    *staleRecord // the response being recorded for it; nil: not recorded
}

// serveOnLoop proxies r on the front end's event loop, deferring the
// response; it reports false when it cannot (w is not a LoopWriter on a
// core/netpoll loop, r is not for the loop, or w refuses to defer), and
// Serve then takes the blocking path.
func (h *Handler) serveOnLoop(w message.ResponseWriter, r *message.Request) bool {
	lw, ok := w.(message.LoopWriter)
	if !ok {
		return false
	}
	loop, ok := lw.Loop().(*netpoll.Loop)
	if !ok || loop == nil || !h.loopEligible(r) {
		return false
	}
	x := h.getLoopExchange()
	if !lw.Defer(x) {
		h.putLoopExchange(x)
		return false
	}
	x.w, x.lw, x.loop, x.trace = w, lw, loop, &r.Trace
	x.choice = h.bal.choose(r)
	x.isHead, x.secure = r.Method == "HEAD", r.TLS
	x.accept.read(h, r)
	x.retryable = idempotent(r.Method) || r.Header.Has("Idempotency-Key")
	x.deadline = time.Now().Add(h.cfg.TryDuration).UnixNano()
	x.staleKey = h.staleKey(r)
	h.fillRequest(&x.req, r, h.ups[0], false) // the head is the same for every upstream of a loopable route
	if err := checkOutRequest(&x.req.out); err != nil {
		h.log.Warn("proxy: request refused", "route", h.cfg.Name, "reason", err.Error())
		respondStatus(w, x.isHead, 400, "Bad Request")
		x.end()
		return true
	}
	buf := appendRequestHead((*x.head)[:0], &x.req.out, requestFraming(&x.req.out))
	if cap(buf) > cap(*x.head) {
		pool.Put(x.head)
		x.head = pool.Get(len(buf))
	}
	x.headN = copy(*x.head, buf)
	x.req.header.Reset() // its strings point into r, valid only until Serve returns
	x.req.out = outRequest{}
	x.try()
	return true
}

func (h *Handler) getLoopExchange() *loopExchange {
	if x, ok := h.loopExchanges.Get().(*loopExchange); ok {
		return x
	}
	return &loopExchange{h: h, head: pool.Get(h1WriteBufSize)}
}

func (h *Handler) putLoopExchange(x *loopExchange) {
	x.compress.release(h)
	head, hdr, target, reqHdr, trailer := x.head, x.resp.Header, x.req.target[:0], x.req.header, x.trailer
	hdr.Reset()
	reqHdr.Reset()
	trailer.Reset()
	dec := x.dec
	*x = loopExchange{h: h, head: head, dec: dec, trailer: trailer}
	x.resp.Header = hdr
	x.req.header, x.req.target = reqHdr, target
	h.loopExchanges.Put(x)
}

// try sends the request to the next upstream the balancer picks, or
// answers the failure when there is none left or the budget is spent.
func (x *loopExchange) try() {
	h := x.h
	for x.attempt < h.cfg.MaxTries {
		now := time.Now().UnixNano()
		if x.attempt > 0 && now >= x.deadline {
			break
		}
		i, full := h.pickTake(&x.choice, &x.tried, now)
		if full {
			h.answerBusy(x.w, x.isHead) // nothing waits on the loop (queue.go)
			x.end()
			return
		}
		if i < 0 {
			break
		}
		x.tried.add(i)
		x.attempt++
		x.up = i
		u := h.ups[i]
		c, err := x.connFor(u)
		if err != nil {
			h.release(u)
			h.noteFailure(u, err, x.attempt-1)
			x.lastErr = err
			continue // nothing was sent
		}
		x.send(c)
		return
	}
	var last *upstream
	if x.attempt > 0 {
		last = h.ups[x.up]
	}
	if last != nil {
		traceUpstream(x.trace, last, 0, 0)
	}
	h.answerFailure(x.w, x.isHead, x.lastErr, last, x.staleKey)
	x.end()
}

// connFor returns a connection of this loop to u: an idle one, or a new
// one still connecting.
func (x *loopExchange) connFor(u *upstream) (*loopConn, error) {
	client := u.tr.(*h1Client)
	p := client.onLoop.pool(x.loop, client)
	if c := p.get(); c != nil {
		c.reused = true
		return c, nil
	}
	return p.dial()
}

// send writes the request head on c and starts the wait for the
// response.
func (x *loopExchange) send(c *loopConn) {
	x.conn, c.x = c, x
	x.resp.Header.Reset()
	x.sentAt = time.Now()
	if err := c.nc.Write((*x.head)[:x.headN]); err != nil {
		return // the connection has failed: OnClose follows
	}
	if !c.connecting {
		x.sent(c)
	}
}

// sent starts the response header timeout once the request is on an
// open connection.
func (x *loopExchange) sent(c *loopConn) {
	c.nc.SetTimeout(x.h.cfg.ResponseHeaderTimeout)
}

// read takes what the upstream sent: response heads, then the body,
// relayed to the client as it comes. It returns the bytes it consumed;
// an incomplete head is left for netpoll to keep.
func (x *loopExchange) read(c *loopConn, in []byte) int {
	done := 0
	for !x.started {
		n, ok := x.readHead(c, in[done:])
		switch {
		case !ok:
			return len(in) // the attempt failed; the connection closes
		case n == 0:
			return done // the head is incomplete: netpoll keeps the rest
		}
		done += n
	}
	x.relay(c, in[done:])
	return len(in)
}

// readHead parses one response head at the start of in. It returns the
// head's length, 0 while it is incomplete, and false when the attempt
// failed. A final head starts the response to the client.
func (x *loopExchange) readHead(c *loopConn, in []byte) (int, bool) {
	n := scanResponseHead(in, 0)
	if n == 0 {
		if len(in) >= h1MaxHeadBytes {
			x.failAttempt(c, fmt.Errorf("%w: response head larger than %d bytes", errMalformed, h1MaxHeadBytes))
			return 0, false
		}
		return 0, true
	}
	if err := parseResponseHead(unsafe.String(&in[0], n), &x.resp, &x.info); err != nil {
		x.failAttempt(c, err)
		return 0, false
	}
	status := x.resp.Status
	switch {
	case status == 101:
		x.failAttempt(c, fmt.Errorf("%w: 101 Switching Protocols to a request without Upgrade", errMalformed))
		return 0, false
	case status < 200:
		if x.interims++; x.interims > h1MaxInterim {
			x.failAttempt(c, fmt.Errorf("%w: more than %d informational responses", errMalformed, h1MaxInterim))
			return 0, false
		}
		x.forwardInterim(status)
		return n, true
	}
	method := "GET"
	if x.isHead {
		method = "HEAD"
	}
	kind, length, err := responseFraming(method, status, &x.info)
	if err == nil {
		if after := int64(len(in) - n); kind == h1BodyNone && after > 0 || kind == h1BodyLength && after > length {
			err = fmt.Errorf("%w: %d bytes after the response's end", errMalformed, after-max(length, 0))
		}
	}
	if err != nil {
		x.failAttempt(c, err)
		return 0, false
	}
	x.startResponse(c, kind, length)
	return n, true
}

// forwardInterim passes an informational response to the client without
// its hop-by-hop fields, when the client's writer can send one.
func (x *loopExchange) forwardInterim(status int) {
	iw, ok := x.w.(message.InterimWriter)
	if !ok {
		return
	}
	x.interim.Reset()
	copyEndToEnd(&x.interim, &x.resp.Header)
	_ = iw.WriteInterim(status, &x.interim)
}

// startResponse sends the final head to the client: from here on the
// request is not retried and no error answer replaces the response.
func (x *loopExchange) startResponse(c *loopConn, kind h1BodyKind, length int64) {
	h, u := x.h, x.h.ups[x.up]
	x.started = true
	x.kind, x.remain = kind, length
	c.reusable = x.info.minor == 1 && !x.info.close && kind != h1BodyClose
	if x.info.idle > 0 {
		c.upstreamIdle = x.info.idle - h1UpstreamIdleMargin
	}
	h.notePassiveStatus(u, x.resp.Status)
	traceUpstream(x.trace, u, x.resp.Status, time.Since(x.sentAt))
	// The fields are written at once (WriteHeader on a LoopWriter sends
	// the head), so they may point into the upstream's input.
	hdr := x.w.Header()
	copyEndToEnd(hdr, &x.resp.Header)
	h.cfg.ResponseHeaders.apply(hdr)
	if h.cfg.Policy == CookieSticky && x.choice.sticky != x.up {
		hdr.Add("Set-Cookie", h.stickyCookie(u, x.secure))
	}
	x.stale = h.startStale(x.staleKey, x.isHead, x.resp.Status, &x.resp.Header, hdr)
	x.compress.enc = h.startCompression(x.w, &x.accept, x.isHead, x.resp.Status, hdr)
	x.w.WriteHeader(x.resp.Status)
	if kind == h1BodyChunked {
		x.dec.Reset(h1MaxHeadBytes, h1MaxFields, &x.trailer)
	}
	c.nc.SetTimeout(h.cfg.ReadTimeout)
}

// relay passes body bytes to the client as they come, and ends the
// exchange with the body.
func (x *loopExchange) relay(c *loopConn, in []byte) {
	switch x.kind {
	case h1BodyNone:
		x.spoiled = len(in) > 0
		x.finish(c)
		return
	case h1BodyLength:
		k := min(int64(len(in)), x.remain)
		if !x.write(c, in[:k]) {
			return
		}
		if x.remain -= k; x.remain == 0 {
			x.spoiled = int64(len(in)) > k
			x.finish(c)
			return
		}
	case h1BodyChunked:
		if !x.relayChunked(c, in) {
			return
		}
	case h1BodyClose:
		if !x.write(c, in) {
			return
		}
	}
	x.flushOrPause(c)
}

// relayChunked passes the chunk data in in to the client, re-framed by
// the client's writer; it reports false when the exchange ended (the
// body's end, or a failure).
func (x *loopExchange) relayChunked(c *loopConn, in []byte) bool {
	for i := 0; i < len(in); {
		if x.dec.Done() {
			x.spoiled = true
			break
		}
		if left := x.dec.DataLeft(); left > 0 {
			k := int(min(left, int64(len(in)-i)))
			if !x.write(c, in[i:i+k]) {
				return false
			}
			x.dec.Consumed(k)
			i += k
			continue
		}
		var none [0]byte // an empty destination: Decode stops at chunk data, written above from in
		n, _, err := x.dec.Decode(in[i:], none[:])
		if err != nil {
			x.broken(c, fmt.Errorf("%w: %w", errMalformed, err))
			return false
		}
		i += n
	}
	if x.dec.Done() {
		x.finish(c)
		return false
	}
	return true
}

// write passes body bytes to the client; a failed write (the client went
// away) ends the exchange and closes the upstream connection.
func (x *loopExchange) write(c *loopConn, p []byte) bool {
	if len(p) == 0 {
		return true
	}
	if x.stale != nil {
		x.stale.add(p)
	}
	if x.compress.enc != nil {
		if err := x.compress.write(p); err != nil {
			x.abandon(c)
			return false
		}
		return true
	}
	if _, err := x.w.Write(p); err != nil {
		x.abandon(c)
		return false
	}
	return true
}

// flushOrPause sends what the client's writer holds, so that a streamed
// response (server-sent events) is not held back, and stops reading the
// upstream while the client's output is backed up (Writable resumes it).
func (x *loopExchange) flushOrPause(c *loopConn) {
	if x.compress.flush() != nil {
		x.abandon(c)
		return
	}
	if f, ok := x.w.(message.Flusher); ok && f.Flush() != nil {
		x.abandon(c)
		return
	}
	if x.lw.Queued() > loopHighWater {
		x.paused = true
		c.nc.Pause()
		c.nc.SetTimeout(0) // the client's write timeout watches a stalled client
		return
	}
	c.nc.SetTimeout(x.h.cfg.ReadTimeout)
}

// Writable resumes reading the upstream once the client has taken the
// output (message.LoopEvents).
func (x *loopExchange) Writable() {
	if !x.paused || x.conn == nil {
		return
	}
	x.paused = false
	x.conn.nc.SetTimeout(x.h.cfg.ReadTimeout)
	x.conn.nc.Resume()
}

// Gone ends the exchange when the client's connection closed
// (message.LoopEvents): the upstream connection, whose response is not
// read to its end, is closed.
func (x *loopExchange) Gone() {
	if c := x.conn; c != nil {
		x.release(c, false)
	}
	x.h.putLoopExchange(x)
}

// finish ends an exchange whose response body has all arrived: the
// trailers go to the client, the connection back to the loop's pool.
func (x *loopExchange) finish(c *loopConn) {
	_ = x.compress.close() // a client gone away is nothing to tell it
	if x.trailer.Len() > 0 {
		if tw, ok := x.w.(message.TrailerWriter); ok {
			copyEndToEnd(tw.Trailer(), &x.trailer)
		}
	}
	x.h.commitStale(x.stale)
	x.release(c, c.reusable && !x.spoiled)
	x.end()
}

// broken ends an exchange whose upstream failed after the response
// started: the client's response is aborted, so that it is not taken
// for a whole one.
func (x *loopExchange) broken(c *loopConn, err error) {
	h := x.h
	h.log.Warn("proxy: upstream response broken", "route", h.cfg.Name, "upstream", h.ups[x.up].url, "reason", reason(err))
	if a, ok := x.w.(message.Aborter); ok {
		a.Abort()
	}
	if c != nil {
		x.release(c, false)
	}
	x.end()
}

// abandon ends an exchange whose client cannot be written to.
func (x *loopExchange) abandon(c *loopConn) {
	x.release(c, false)
	x.end()
}

// release parts the exchange from its upstream connection, which goes
// back to the pool when keep allows, else closes.
func (x *loopExchange) release(c *loopConn, keep bool) {
	c.x, x.conn = nil, nil
	x.h.release(x.h.ups[x.up])
	if x.paused {
		c.nc.Resume()
		x.paused = false
	}
	if keep {
		c.pool.put(c)
		return
	}
	c.nc.Close()
}

// end finishes the client's response and recycles the exchange.
func (x *loopExchange) end() {
	x.lw.Done()
	x.h.putLoopExchange(x)
}

// failAttempt ends an attempt that failed before the response started
// (the upstream's answer is malformed): its connection closes and the
// request goes to another upstream if it may.
func (x *loopExchange) failAttempt(c *loopConn, err error) {
	c.x, x.conn = nil, nil
	c.nc.Close()
	x.attemptFailed(err)
}

// closed ends the exchange whose upstream connection closed with err:
// the end of a body delimited by the close, a body cut short, or an
// attempt that failed before the response.
func (x *loopExchange) closed(c *loopConn, err error) {
	x.conn = nil
	switch {
	case x.started && x.kind == h1BodyClose && err == io.EOF:
		x.h.release(x.h.ups[x.up])
		_ = x.compress.close() // the body is whole: end the coding's stream
		x.h.commitStale(x.stale)
		x.end()
	case x.started:
		x.h.release(x.h.ups[x.up])
		x.broken(nil, fmt.Errorf("proxy: reading the response body: %w", err))
	case c.reused && lostByReuse(err):
		c.pool.client.idleClose.observe(c.idleFor)
		if x.retryable && !x.resent {
			x.resendFresh(err)
			return
		}
		x.attemptFailed(fmt.Errorf("%w: %w", errReusedConnClosed, err))
	default:
		var ce *netpoll.ConnectError
		if errors.As(err, &ce) {
			err = fmt.Errorf("%w: %w", errNotSent, err)
		} else if err == io.EOF {
			err = fmt.Errorf("proxy: the upstream closed the connection before answering: %w", err)
		}
		x.attemptFailed(err)
	}
}

// lostByReuse reports whether err is how a reused connection ends when
// the upstream closed it as the request arrived: EOF, or a reset.
func lostByReuse(err error) bool {
	return err == io.EOF || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// resendFresh sends the request once more to the same upstream over a
// new connection, after a reused one was closed before any answer (the
// upstream's idle timeout crossed the request): the upstream did not
// fail, so neither an attempt nor a failure counts (as net/http's
// Transport and nginx do). Only a request that may be repeated.
func (x *loopExchange) resendFresh(err error) {
	h, u := x.h, x.h.ups[x.up]
	x.resent = true
	h.log.Debug("proxy: a reused upstream connection closed before answering; sending again", "route", h.cfg.Name,
		"upstream", u.url, "reason", err.Error())
	client := u.tr.(*h1Client)
	c, derr := client.onLoop.pool(x.loop, client).dial()
	if derr != nil {
		x.attemptFailed(fmt.Errorf("%w: %w", errNotSent, derr))
		return
	}
	x.send(c)
}

// attemptFailed counts a failed attempt against its upstream and tries
// the next one when the request may go again: always when nothing of it
// was sent, else when it is idempotent (it has no content to replay).
func (x *loopExchange) attemptFailed(err error) {
	h, u := x.h, x.h.ups[x.up]
	h.release(u)
	h.noteFailure(u, err, x.attempt-1)
	x.lastErr = err
	if errors.Is(err, errNotSent) || x.retryable {
		x.try()
		return
	}
	h.answerFailure(x.w, x.isHead, err, u, x.staleKey)
	x.end()
}
