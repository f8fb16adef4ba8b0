package proxy

import (
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/pool"
)

// relayBufferSize is the size of the buffer a response body is copied
// through: each read from the upstream is written and flushed to the
// client at once, so streamed responses (server-sent events) are not held.
const relayBufferSize = 32 << 10

// relay passes u's response to the client: the head with its hop-by-hop
// fields removed, the body as it arrives, and the trailers.
func (h *Handler) relay(w message.ResponseWriter, r *message.Request, u *upstream, resp *inResponse) {
	if resp.Status == 101 {
		h.tunnel(w, r, u, resp)
		return
	}
	defer u.tr.recycle(resp)
	h.notePassiveStatus(u, resp.Status)
	h.responseHeader(w.Header(), &resp.Header)
	if h.cfg.Policy == CookieSticky && cookieValue(&r.Header, h.cfg.Cookie) != u.id {
		w.Header().Add("Set-Cookie", h.stickyCookie(u, r.TLS))
	}
	var body io.Reader = resp.Body
	rec := h.startStale(h.staleKey(r), r.Method == "HEAD", resp.Status, &resp.Header, w.Header())
	if rec != nil {
		body = &teeReader{r: body, rec: rec}
	}
	var ca clientAccept
	ca.read(h, r)
	enc := h.startCompression(w, &ca, r.Method == "HEAD", resp.Status, w.Header())
	w.WriteHeader(resp.Status)
	var err error
	if enc != nil {
		err = h.copyCompressed(w, enc, body)
	} else {
		err = h.copyBody(w, body)
	}
	if err != nil {
		h.log.Warn("proxy: upstream response broken", "route", h.cfg.Name, "upstream", u.url, "reason", reason(err))
		if a, ok := w.(message.Aborter); ok {
			a.Abort()
		}
		return
	}
	h.commitStale(rec)
	if tw, ok := w.(message.TrailerWriter); ok && resp.Trailer.Len() > 0 {
		tr := tw.Trailer()
		from := tr.Len()
		copyEndToEnd(tr, &resp.Trailer)
		ownStrings(tr.Fields()[from:])
	}
}

// copyBody copies the upstream body to the client, flushing after each
// read. A failed client write ends it without blaming the upstream.
func (h *Handler) copyBody(w message.ResponseWriter, body io.Reader) error {
	buf := pool.Get(relayBufferSize)
	defer pool.Put(buf)
	flusher, _ := w.(message.Flusher)
	for {
		n, err := body.Read(*buf)
		if n > 0 {
			if _, werr := w.Write((*buf)[:n]); werr != nil {
				return nil // the client went away; nothing to tell it
			}
			if flusher != nil && err == nil {
				if ferr := flusher.Flush(); ferr != nil {
					return nil
				}
			}
		}
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
	}
}

// notePassiveStatus counts a response whose status the route lists as a
// failure toward passive health.
func (h *Handler) notePassiveStatus(u *upstream, status int) {
	h.noteOutcome(u, !slices.Contains(h.cfg.Passive.UnhealthyStatus, status))
	for _, s := range h.cfg.Passive.UnhealthyStatus {
		if s == status {
			if u.failed(&h.cfg.Passive, time.Now().UnixNano()) {
				h.log.Warn("proxy: upstream marked down", "route", h.cfg.Name, "upstream", u.url,
					"status", status, "for", h.cfg.Passive.FailDuration.String())
			}
			return
		}
	}
}

// stickyCookie is the Set-Cookie value that ties a client to u.
func (h *Handler) stickyCookie(u *upstream, secure bool) string {
	c := h.cfg.Cookie + "=" + u.id + "; Path=/; HttpOnly; SameSite=Lax"
	if secure {
		c += "; Secure"
	}
	return c
}

// tunnel completes a protocol switch (a WebSocket): it sends the 101 to
// the client and copies bytes both ways until both directions end. The
// tunnel outlives the route's reloads: it belongs to the two connections.
func (h *Handler) tunnel(w message.ResponseWriter, r *message.Request, u *upstream, resp *inResponse) {
	up, ok := w.(message.Upgrader)
	if !ok || upgradeOf(r) == "" {
		resp.Conn.Close()
		h.log.Warn("proxy: upstream switched protocols unasked", "route", h.cfg.Name, "upstream", u.url)
		respond(w, r, 502)
		return
	}
	h.responseHeader(w.Header(), &resp.Header)
	if r.Protocol != "" {
		// An extended CONNECT is answered 200, without the upgrade's
		// handshake fields (RFC 8441 section 5).
		w.Header().Del("Sec-WebSocket-Accept")
	} else {
		w.Header().Set("Upgrade", resp.Header.Get("Upgrade"))
	}
	client, err := up.Upgrade()
	if err != nil {
		resp.Conn.Close()
		h.log.Warn("proxy: cannot switch the client's protocol", "route", h.cfg.Name, "upstream", u.url, "reason", err.Error())
		w.Header().Reset()
		respond(w, r, 502)
		return
	}
	splice(client, resp.Conn)
}

// splice copies both ways between a and b. When one side ends its
// stream, the other side's write half is closed (so a WebSocket close
// handshake completes), and splice returns once both directions are done.
// io.Copy uses splice(2) when both ends are TCP sockets.
func splice(a net.Conn, b io.ReadWriteCloser) {
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = io.Copy(b, a)
		closeWrite(b)
	})
	_, _ = io.Copy(a, b)
	closeWrite(a)
	wg.Wait()
	a.Close()
	b.Close()
}

// closeWrite shuts the write half of c, or closes it when it has none.
func closeWrite(c io.Closer) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}
