package h1

import (
	"time"
	"unsafe"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/netpoll"
	"github.com/anx-gateway/anx/core/pool"
)

// now is the time an Outcome records: the clock, when the server has an
// Observer; the zero time, which costs nothing, when it has none.
func (s *Server) now() time.Time {
	if s.Observer == nil {
		return time.Time{}
	}
	return time.Now()
}

// loopNow is now for a request read on an event loop: when the loop woke
// up to read it, which costs no clock read (and counts the time the
// request waited in the loop).
func (s *Server) loopNow(nc *netpoll.Conn) time.Time {
	if s.Observer == nil {
		return time.Time{}
	}
	return nc.Now()
}

// observe reports the request just served to the server's Observer: cut
// when the client went away before its response ended, at end (the clock
// off the loop; on a loop its wake-up time, as nginx times requests by the
// time it caches per turn of its loop).
func (c *conn) observe(cut bool, end time.Time) {
	obs := c.srv.Observer
	if obs == nil {
		return
	}
	r := &c.resp
	o := &c.outcome
	*o = message.Outcome{
		Status:   r.status,
		Sent:     r.written,
		Received: c.body.n,
		Start:    c.headAt,
		End:      end,
		Cut:      cut || r.aborted || !r.noBody && r.declared >= 0 && r.written < r.declared,
	}
	obs.Observe(&c.req, o)
	c.headAt = time.Time{}
	c.dropHead()
}

// keepHead copies the head of a request whose response the handler
// deferred (a proxied answer that comes later) out of the loop's input,
// which the next read reuses, and points the request's strings at the
// copy, so that they are still the request's when the Observer reads them
// at the exchange's end. Without an Observer nothing reads them then.
func (c *conn) keepHead(head []byte) {
	if c.srv.Observer == nil || len(head) == 0 {
		return
	}
	c.headCopy = pool.Get(len(head))
	kept := (*c.headCopy)[:len(head)]
	copy(kept, head)
	from := uintptr(unsafe.Pointer(&head[0]))
	rebase := func(s *string) {
		if len(*s) == 0 {
			return
		}
		at := uintptr(unsafe.Pointer(unsafe.StringData(*s))) - from
		if at < uintptr(len(head)) && at+uintptr(len(*s)) <= uintptr(len(head)) {
			*s = unsafe.String(&kept[at], len(*s))
		}
	}
	r := &c.req
	for _, s := range []*string{&r.Method, &r.Path, &r.RawQuery, &r.Host, &r.Protocol, &r.Trace.ID} {
		rebase(s)
	}
	fields := r.Header.Fields() // the header's own slice: rewritten in place
	for i := range fields {
		rebase(&fields[i].Name)
		rebase(&fields[i].Value)
	}
}

// dropHead gives back the copy keepHead made, if any.
func (c *conn) dropHead() {
	if c.headCopy != nil {
		pool.Put(c.headCopy)
		c.headCopy = nil
	}
}

// observeRefusal reports a request h1 refused with status before any
// handler saw it (a malformed head, a body too large): the request holds
// what of its head was parsed, or nothing when not even that was.
func (c *conn) observeRefusal(status int) {
	if c.srv.Observer == nil {
		return
	}
	if c.headAt.IsZero() { // the head was refused before it was parsed
		c.newRequest()
		c.headAt = time.Now()
	}
	c.resp.status, c.resp.written, c.resp.declared, c.resp.aborted = status, 0, -1, false
	c.body.n = 0
	c.observe(false, time.Now())
}
