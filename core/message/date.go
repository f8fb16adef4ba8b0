package message

import (
	"sync/atomic"
	"time"
)

// Date is the Date field of the current second (RFC 9110 section 6.6.1,
// an IMF-fixdate), formatted once a second for the front ends that stamp
// every response with it. It is safe for concurrent use and allocates only
// when the second changes; the zero value is ready.
type Date struct {
	cur atomic.Pointer[dateText]
}

// dateText is the Date field of one second, as a value and as an
// HTTP/1.1 field line.
type dateText struct {
	sec   int64
	value string // "Mon, 02 Jan 2006 15:04:05 GMT"
	line  string // "Date: " + value + "\r\n"
}

// Value returns the Date field's value for now.
func (d *Date) Value(now time.Time) string { return d.text(now).value }

// Line returns the Date field line for now, CRLF included, as HTTP/1.1
// writes it.
func (d *Date) Line(now time.Time) string { return d.text(now).line }

// text returns the formatted Date of now's second.
func (d *Date) text(now time.Time) *dateText {
	sec := now.Unix()
	if t := d.cur.Load(); t != nil && t.sec == sec {
		return t
	}
	b := make([]byte, 0, len("Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n"))
	b = append(b, "Date: "...)
	b = now.UTC().AppendFormat(b, "Mon, 02 Jan 2006 15:04:05 GMT")
	b = append(b, "\r\n"...)
	line := string(b)
	t := &dateText{sec: sec, value: line[len("Date: ") : len(line)-2], line: line}
	d.cur.Store(t)
	return t
}
