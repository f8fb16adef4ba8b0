package h1

import (
	"sync/atomic"
	"time"
)

// dateCache holds the Date field line of the current second, so that it is
// formatted once a second rather than once a response. Each Server has one;
// it is safe for concurrent use.
type dateCache struct {
	cur atomic.Pointer[dateLine]
}

// dateLine is the Date field line of one second.
type dateLine struct {
	sec  int64
	line string // "Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n"
}

// get returns the Date field line, CRLF included, for now (RFC 9110
// section 6.6.1, IMF-fixdate).
func (d *dateCache) get(now time.Time) string {
	sec := now.Unix()
	if l := d.cur.Load(); l != nil && l.sec == sec {
		return l.line
	}
	b := make([]byte, 0, len("Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n"))
	b = append(b, "Date: "...)
	b = now.UTC().AppendFormat(b, "Mon, 02 Jan 2006 15:04:05 GMT")
	b = append(b, "\r\n"...)
	l := &dateLine{sec: sec, line: string(b)}
	d.cur.Store(l)
	return l.line
}
