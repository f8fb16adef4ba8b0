package h1

import (
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// now is the time an Outcome records: the clock, when the server has an
// Observer; the zero time, which costs nothing, when it has none.
func (s *Server) now() time.Time {
	if s.Observer == nil {
		return time.Time{}
	}
	return time.Now()
}

// observe reports the request just served to the server's Observer: cut
// when the client went away before its response ended.
func (c *conn) observe(cut bool) {
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
		End:      time.Now(),
		Cut:      cut || r.aborted || !r.noBody && r.declared >= 0 && r.written < r.declared,
	}
	obs.Observe(&c.req, o)
	c.headAt = time.Time{}
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
	c.observe(false)
}
