package h2

import (
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// now is the time an Outcome records as a stream's start: when the loop
// woke up to read its head, which costs no clock read, when the server has
// an Observer; the zero time when it has none.
func (c *conn) now() time.Time {
	if c.srv.Observer == nil {
		return time.Time{}
	}
	return c.c.Net().Now()
}

// observe reports a stream that is done to the server's Observer, if a
// handler or the server answered it: cut when it was reset or its
// response did not reach its end.
func (c *conn) observe(s *stream) {
	obs := c.srv.Observer
	if obs == nil || !s.in.served {
		return
	}
	o := &c.outcome
	*o = message.Outcome{
		Status:   s.w.status,
		Sent:     s.w.written,
		Received: s.in.received,
		Start:    s.in.headAt,
		End:      c.c.Net().Now(), // the loop's wake-up time, as for Start
		Cut:      s.send.reset || !s.send.localDone,
	}
	obs.Observe(&s.req, o)
}
