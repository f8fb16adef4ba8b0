package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/anx-gateway/anx/core/encode"
	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/netpoll"
	"github.com/anx-gateway/anx/core/pool"
)

// Handler forwards requests to a route's upstreams. It is a
// message.Handler that blocks (it waits for the network), so front ends
// run it off their event loops. Build it with New and Close it when the
// route goes away; requests in flight may finish after Close.
type Handler struct {
	cfg     Config // defaults applied; read-only
	ups     []*upstream
	bal     *balancer
	shared  *Transports
	log     *slog.Logger
	checks  *checker   // nil without active checks
	queue   *slotQueue // requests waiting for a slot below MaxConns; nil without MaxQueue
	degrade *degrader  // the answer when no upstream can give one; nil when the route has none

	exchanges     sync.Pool    // *exchange
	onLoop        bool         // every upstream can be reached from an event loop (loop.go)
	encoders      *encode.Pool // compresses responses (compress.go); nil when the route does not
	loopExchanges sync.Pool    // *loopExchange
}

// New builds the handler of one proxy route. Its upstreams' connections
// come from shared (nil: a private set), so that routes, and the routes
// of a reloaded config, share them.
func New(cfg Config, shared *Transports) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.applyDefaults()
	if shared == nil {
		shared = NewTransports()
	}
	h := &Handler{cfg: cfg, shared: shared, log: cfg.Logger, encoders: newEncoders(&cfg)}
	degrade, err := newDegrader(&h.cfg.Protect, shared, cfg.Name)
	if err != nil {
		return nil, err
	}
	h.degrade = degrade
	if n := cfg.Protect.MaxQueue; n > 0 {
		h.queue = &slotQueue{max: n}
	}
	opts := cfg.transportOptions()
	now := time.Now().UnixNano()
	for _, u := range cfg.Upstreams {
		t, _ := ParseUpstream(u.URL) // checked by Validate
		up := &upstream{
			url: u.URL, target: t, weight: max(u.Weight, 1),
			key: hashString(u.URL),
			tr:  shared.acquire(u.URL, t, opts), h2: t.Scheme == "h2c" || t.Scheme == "https",
		}
		up.id = cookieID(up.key)
		h.protect(up)
		up.upSince.Store(now - int64(cfg.SlowStart)) // at full share from the start
		h.ups = append(h.ups, up)
	}
	h.bal = newBalancer(&h.cfg, h.ups)
	h.onLoop = h.loopable()
	h.startChecks()
	return h, nil
}

// Close stops the route's health checks and gives its upstream
// connections back to the shared set. Requests in flight, and WebSocket
// tunnels, go on.
func (h *Handler) Close() error {
	if h.checks != nil {
		h.checks.close()
	}
	for _, u := range h.ups {
		h.shared.release(u.tr)
		if u.brk != nil {
			h.shared.releaseBreaker(u.brk)
		}
	}
	if h.degrade != nil && h.degrade.stale != nil {
		h.shared.releaseStale(h.degrade.stale)
	}
	return nil
}

// cookieID names an upstream in the stickiness cookie by its hash, which
// does not show its address.
func cookieID(key uint64) string { return strconv.FormatUint(key, 36) }

func (c *Config) applyDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Cookie == "" {
		c.Cookie = defaultCookie
	}
	def(&c.TryDuration, defaultTryDuration)
	if c.MaxTries <= 0 {
		c.MaxTries = min(len(c.Upstreams), defaultMaxTries)
	}
	if c.RetryBodyBytes == 0 {
		c.RetryBodyBytes = defaultRetryBodyBytes
	}
	def(&c.ConnectTimeout, defaultConnectTimeout)
	def(&c.ResponseHeaderTimeout, defaultResponseTimeout)
	def(&c.ReadTimeout, defaultReadTimeout)
	if c.KeepAlive == 0 {
		c.KeepAlive = defaultKeepAlive
	}
	def(&c.KeepAliveTimeout, defaultKeepAliveTimeout)
	def(&c.Health.Interval, defaultHealthInterval)
	def(&c.Health.Timeout, defaultHealthTimeout)
	c.Health.Passes, c.Health.Fails = max(c.Health.Passes, 1), max(c.Health.Fails, 1)
	if c.Passive.MaxFails == 0 {
		c.Passive.MaxFails = 1
		if c.Protect.Breaker.enabled() {
			c.Passive.MaxFails = -1 // the breaker replaces passive health unless it is asked for
		}
	}
	c.Protect.applyDefaults()
	def(&c.Passive.FailDuration, defaultFailDuration)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c *Config) transportOptions() *transportOptions {
	return &transportOptions{
		connectTimeout: c.ConnectTimeout, responseHeaderTimeout: c.ResponseHeaderTimeout,
		readTimeout: c.ReadTimeout, keepAlive: c.KeepAlive, keepAliveTimeout: c.KeepAliveTimeout,
		tls: c.TLS,
	}
}

// NonBlocking reports false: the proxy waits for upstreams.
func (h *Handler) NonBlocking() bool { return false }

// exchange is the per-request state of Serve, recycled.
type exchange struct {
	out    outRequest
	header message.Header
	target []byte
	addr   [64]byte // the client's address as text, for the forwarding fields
	body   *[]byte  // a borrowed buffer holding a replayable body
	bodyN  int
	replay replayReader

	// interimWriter is the client's response writer when it can send 1xx
	// responses; interim is forwardInterim bound to x, made once per
	// exchange so that a request does not allocate it.
	interimWriter message.InterimWriter
	interim       func(int, *message.Header)
}

func (h *Handler) getExchange() *exchange {
	if x, ok := h.exchanges.Get().(*exchange); ok {
		return x
	}
	x := new(exchange)
	x.interim = x.forwardInterim
	return x
}

func (h *Handler) putExchange(x *exchange) {
	if x.body != nil {
		pool.Put(x.body)
	}
	hdr, target, interim := x.header, x.target[:0], x.interim
	hdr.Reset()
	*x = exchange{header: hdr, target: target, interim: interim}
	h.exchanges.Put(x)
}

// Serve forwards r to an upstream and its answer to w, trying other
// upstreams while the request can be retried.
func (h *Handler) Serve(w message.ResponseWriter, r *message.Request) {
	if err := checkRequest(r); err != nil {
		h.log.Warn("proxy: request refused", "route", h.cfg.Name, "reason", err.Error())
		respondStatus(w, r.Method == "HEAD", 400, "Bad Request")
		return
	}
	if h.serveOnLoop(w, r) {
		return
	}
	x := h.getExchange()
	defer h.putExchange(x)
	x.interimWriter, _ = w.(message.InterimWriter)
	replayable, ok := h.readReplayable(x, r)
	if !ok {
		return // the body failed: the front end answers (400, 408, 413)
	}
	deadline := time.Now().Add(h.cfg.TryDuration).UnixNano()
	var t tried
	var lastErr error
	var lastUp *upstream
	c := h.bal.choose(r)
	for attempt := 0; attempt < h.cfg.MaxTries; attempt++ {
		if attempt > 0 && time.Now().UnixNano() >= deadline {
			break
		}
		i, busy := h.pickOrWait(&c, &t)
		if busy {
			h.answerBusy(w, r.Method == "HEAD")
			return
		}
		if i < 0 {
			break
		}
		t.add(i)
		u := h.ups[i]
		sent := time.Now()
		resp, err := h.send(x, r, u, replayable)
		if err == nil {
			traceUpstream(&r.Trace, u, resp.Status, time.Since(sent))
			h.relay(w, r, u, resp)
			h.release(u)
			return
		}
		h.release(u)
		if errors.Is(err, errRequestBody) {
			// The client's content failed, not the upstream: the front
			// end answers (400, 408, 413) or the client is gone.
			h.log.Debug("proxy: request body failed", "route", h.cfg.Name, "reason", err.Error())
			return
		}
		h.noteFailure(u, err, attempt)
		lastErr, lastUp = err, u
		if !retryable(r, err, replayable) {
			break
		}
	}
	if lastUp != nil {
		traceUpstream(&r.Trace, lastUp, 0, 0)
	}
	h.answerFailure(w, r.Method == "HEAD", lastErr, lastUp, h.staleKey(r))
}

// traceUpstream tells the access log which upstream answered, its status
// and how long its response head took; a status of 0 says it failed.
func traceUpstream(t *message.Trace, u *upstream, status int, took time.Duration) {
	t.Upstream, t.UpstreamStatus, t.UpstreamTime = u.url, status, took
}

// send sends r to u. A request that a reused connection lost, closed by
// the upstream before any answer (its idle timeout crossed the request),
// goes once more to u over another connection when it may be repeated:
// the upstream did not fail, so neither an attempt nor a failure counts
// (as net/http's Transport and nginx do).
func (h *Handler) send(x *exchange, r *message.Request, u *upstream, replayable bool) (*inResponse, error) {
	h.fillRequest(x, r, u, replayable)
	resp, err := u.tr.roundTrip(context.Background(), &x.out)
	if err == nil || !errors.Is(err, errReusedConnClosed) || !retryable(r, err, replayable) {
		return resp, err
	}
	h.log.Debug("proxy: a reused upstream connection closed before answering; sending again", "route", h.cfg.Name,
		"upstream", u.url, "reason", err.Error())
	h.fillRequest(x, r, u, replayable)
	return u.tr.roundTrip(context.Background(), &x.out)
}

// readReplayable reads a small request body whole (at most
// RetryBodyBytes, with a known length), so that the request can be sent
// again; a larger or unknown-length body is streamed. It reports whether
// the body can be replayed, and false in ok when reading it failed.
func (h *Handler) readReplayable(x *exchange, r *message.Request) (replayable, ok bool) {
	n := r.ContentLength
	if n == 0 {
		return true, true
	}
	if n < 0 || n > h.cfg.RetryBodyBytes {
		return false, true
	}
	x.body = pool.Get(int(n))
	buf := (*x.body)[:n]
	if _, err := io.ReadFull(r.Body, buf); err != nil || !atEOF(r.Body) {
		return false, false // short, or longer than its length: malformed
	}
	x.bodyN = int(n)
	return true, true
}

// atEOF reports whether body has nothing more than what was read: the
// front end answers a request whose content runs past its length.
func atEOF(body io.Reader) bool {
	var one [1]byte
	for {
		n, err := body.Read(one[:])
		switch {
		case n > 0:
			return false
		case err == io.EOF:
			return true
		case err != nil:
			return false
		}
	}
}

// fillRequest builds the request to send to u.
func (h *Handler) fillRequest(x *exchange, r *message.Request, u *upstream, replayable bool) {
	x.header.Reset()
	h.requestHeader(&x.header, r, u.h2, &x.addr)
	x.target = append(x.target[:0], r.Path...)
	if r.RawQuery != "" {
		x.target = append(append(x.target, '?'), r.RawQuery...)
	}
	host := r.Host
	if h.cfg.HostHeader != "" {
		host = h.cfg.HostHeader
	}
	x.out = outRequest{
		Method: r.Method, Target: unsafe.String(unsafe.SliceData(x.target), len(x.target)), Host: host, Header: &x.header,
		ContentLength: r.ContentLength, Trailer: &r.Trailer, Upgrade: upgradeOf(r),
	}
	switch {
	case r.ContentLength == 0:
		x.out.Body = nil
	case replayable:
		x.replay = replayReader{buf: (*x.body)[:x.bodyN]}
		x.out.Body = &x.replay
	default:
		x.out.Body = r.Body
	}
	if x.out.Upgrade != "" {
		x.header.Set("Upgrade", x.out.Upgrade)
	}
	if r.Protocol != "" {
		asUpgrade(&x.out, &x.header)
	}
	x.out.Interim = x.interim
}

// forwardInterim passes an upstream's informational response (103 Early
// Hints, say) to the client, without its hop-by-hop fields.
func (x *exchange) forwardInterim(status int, fields *message.Header) {
	if x.interimWriter == nil {
		return
	}
	var out message.Header
	copyEndToEnd(&out, fields)
	ownStrings(out.Fields())
	_ = x.interimWriter.WriteInterim(status, &out)
}

// replayReader reads a buffered body from its start.
type replayReader struct {
	buf []byte
	off int
}

func (rr *replayReader) Read(p []byte) (int, error) {
	if rr.off >= len(rr.buf) {
		return 0, io.EOF
	}
	n := copy(p, rr.buf[rr.off:])
	rr.off += n
	return n, nil
}

// retryable reports whether a request that failed with err may go to
// another upstream: always when nothing of it was sent; after that only
// an idempotent one (RFC 9110 section 9.2.2) or one with an
// Idempotency-Key, and only with a body that can be sent again.
func retryable(r *message.Request, err error, replayable bool) bool {
	if errors.Is(err, errNotSent) {
		return true
	}
	return replayable && (idempotent(r.Method) || r.Header.Has("Idempotency-Key"))
}

func idempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// noteFailure logs a failed attempt and counts it toward passive health,
// unless anx itself lacked the means to try (out of file descriptors or
// memory for a socket) or the upstream closed a reused connection as the
// request reached it (its idle timeout, which the client learns): neither
// says the upstream is down.
func (h *Handler) noteFailure(u *upstream, err error, attempt int) {
	if localFailure(err) {
		h.log.Warn("proxy: cannot reach upstream: out of local resources", "route", h.cfg.Name, "upstream", u.url,
			"attempt", attempt+1, "reason", err.Error())
		return
	}
	if errors.Is(err, errReusedConnClosed) {
		h.log.Warn("proxy: upstream closed an idle connection as the request reached it", "route", h.cfg.Name,
			"upstream", u.url, "attempt", attempt+1, "reason", err.Error())
		return
	}
	h.noteOutcome(u, false)
	if u.failed(&h.cfg.Passive, time.Now().UnixNano()) {
		h.log.Warn("proxy: upstream marked down", "route", h.cfg.Name, "upstream", u.url,
			"for", h.cfg.Passive.FailDuration.String())
	}
	h.log.Warn("proxy: upstream failed", "route", h.cfg.Name, "upstream", u.url,
		"attempt", attempt+1, "reason", reason(err))
}

// localFailure reports whether err is anx's own shortage, not the
// upstream's fault: no file descriptor or buffer for a new socket.
func localFailure(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// isTimeout reports whether err is a deadline passing: connecting, or
// waiting for the response.
func isTimeout(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, netpoll.ErrTimeout) ||
		errors.As(err, &ne) && ne.Timeout()
}

// reason is the short cause of an upstream failure, for the log.
func reason(err error) string {
	switch {
	case isTimeout(err):
		return "timeout: " + err.Error()
	case errors.Is(err, errMalformed):
		return "malformed response: " + err.Error()
	case errors.Is(err, errNotSent):
		return "could not send: " + err.Error()
	}
	return err.Error()
}

// answerFailure answers when no upstream gave a response: with the
// route's degraded answer when it has one (the stale response stored
// under staleKey, or its fallback file), else 504 after a timeout, 503
// when health checks or open breakers have every upstream out, else 502.
func (h *Handler) answerFailure(w message.ResponseWriter, isHead bool, err error, last *upstream, staleKey uint64) {
	if h.degrade != nil && h.degrade.answer(w, isHead, staleKey, h.retryAfter()) {
		h.log.Debug("proxy: no upstream answered; degraded answer", "route", h.cfg.Name)
		return
	}
	status := 502
	switch {
	case isTimeout(err):
		status = 504 // as nginx, for a connect timeout too
	case last == nil && (h.allCheckedDown() || h.allBroken(time.Now().UnixNano())):
		status = 503
	}
	if last == nil {
		h.log.Warn("proxy: no upstream available", "route", h.cfg.Name, "status", status)
	}
	if status == 503 {
		w.Header().Set("Retry-After", h.retryAfter())
	}
	respondStatus(w, isHead, status, statusText(status))
}

func (h *Handler) allCheckedDown() bool {
	for _, u := range h.ups {
		if !u.checkDown.Load() {
			return false
		}
	}
	return h.cfg.Health.Path != ""
}

// respond writes a short error answer that names no address and no cause.
func respond(w message.ResponseWriter, r *message.Request, status int) {
	respondStatus(w, r.Method == "HEAD", status, statusText(status))
}

func respondStatus(w message.ResponseWriter, isHead bool, status int, text string) {
	body := fmt.Sprintf("%d %s\n", status, text)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if !isHead {
		_, _ = io.WriteString(w, body)
	}
}

func statusText(status int) string {
	switch status {
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	}
	return ""
}
