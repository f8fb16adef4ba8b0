package accesslog

import (
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/anx-gateway/anx/core/message"
)

// Format is how a line is written.
type Format uint8

// The formats of a line.
const (
	// JSON writes one JSON object per line (the default).
	JSON Format = iota
	// Combined writes nginx's "combined" format followed by the request
	// id as one more quoted field.
	Combined
)

// String names the format as the config writes it.
func (f Format) String() string {
	if f == Combined {
		return "combined"
	}
	return "json"
}

// entry is what one line says, gathered from the request and its outcome.
type entry struct {
	r       *message.Request
	o       *message.Outcome
	remote  netip.Addr  // the client, after trusted proxies
	when    time.Time   // when the exchange ended
	second  *secondText // the text of when's second
	id      string      // the request id
	site    string
	route   string
	proto   string
	tls     string
	elapsed time.Duration
	// The combined format's fields.
	referer, userAgent string
}

// appendLine appends e's line in format f, newline included.
func appendLine(b []byte, f Format, e *entry) []byte {
	if f == Combined {
		return appendCombined(b, e)
	}
	return appendJSON(b, e)
}

// appendJSON appends e as one JSON object and a newline.
func appendJSON(b []byte, e *entry) []byte {
	r, o := e.r, e.o
	b = append(b, `{"time":"`...)
	b = appendRFC3339Millis(b, e.second, e.when)
	b = append(b, `","remote":"`...)
	b = e.remote.AppendTo(b)
	b = append(b, '"')
	b = appendJSONField(b, "method", r.Method)
	b = append(b, `,"host":`...)
	b = appendJSONString(b, r.Host)
	b = append(b, `,"uri":"`...)
	b = appendJSONText(b, r.Path)
	if r.RawQuery != "" {
		b = append(b, '?')
		b = appendJSONText(b, r.RawQuery)
	}
	b = append(b, '"')
	b = appendJSONField(b, "proto", e.proto)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(o.Status), 10)
	b = append(b, `,"bytes_sent":`...)
	b = strconv.AppendInt(b, o.Sent, 10)
	b = append(b, `,"duration_ms":`...)
	b = appendMillis(b, e.elapsed)
	b = appendJSONField(b, "tls", e.tls)
	b = appendJSONField(b, "sni", r.ServerName)
	b = appendJSONField(b, "site", e.site)
	b = appendJSONField(b, "route", e.route)
	b = appendJSONField(b, "request_id", e.id)
	if t := &r.Trace; t.Upstream != "" {
		b = appendJSONField(b, "upstream", t.Upstream)
		b = append(b, `,"upstream_status":`...)
		b = strconv.AppendInt(b, int64(t.UpstreamStatus), 10)
		b = append(b, `,"upstream_ms":`...)
		b = appendMillis(b, t.UpstreamTime)
	}
	if o.Cut {
		b = append(b, `,"cut":true`...)
	}
	return append(b, "}\n"...)
}

// appendJSONField appends `,"key":"value"`, the value escaped.
func appendJSONField(b []byte, key, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendJSONString(b, value)
}

// appendMillis appends d in milliseconds with three decimals (whole
// microseconds); a negative d (a clock step) counts as 0.
func appendMillis(b []byte, d time.Duration) []byte {
	us := max(d/time.Microsecond, 0)
	b = strconv.AppendInt(b, int64(us/1000), 10)
	frac := us % 1000
	return append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

// appendJSONString appends s as a JSON string, quotes included.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendJSONText(b, s)
	return append(b, '"')
}

// appendJSONText appends s escaped for the inside of a JSON string: quote,
// backslash and control characters are escaped, valid UTF-8 is kept as it
// is (U+2028 and U+2029 escaped, as JavaScript needs), and each byte of
// invalid UTF-8 becomes U+FFFD, as encoding/json does.
func appendJSONText(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && !jsonSpecial8(s[i:]) {
			i += 8
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, s[start:]...)
}

// Bit tricks over 8 bytes at once (a word of bytes): lows has 1 in each
// byte, highs has its top bit.
const (
	lows  = 0x0101010101010101
	highs = 0x8080808080808080
)

// word reads the first 8 bytes of s (len(s) >= 8) as a little-endian word.
func word(s string) uint64 {
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// hasLess reports whether a byte of x is below n (n <= 128).
func hasLess(x uint64, n byte) bool { return (x-lows*uint64(n))&^x&highs != 0 }

// hasByte reports whether a byte of x is c.
func hasByte(x uint64, c byte) bool { return hasLess(x^(lows*uint64(c)), 1) }

// jsonSpecial8 reports whether one of the first 8 bytes of s needs a look
// of its own in a JSON string: a control character, a quote, a backslash
// or a byte of a multi-byte (or invalid) UTF-8 sequence.
func jsonSpecial8(s string) bool {
	x := word(s)
	return x&highs != 0 || hasLess(x, 0x20) || hasByte(x, '"') || hasByte(x, '\\')
}

// appendCombined appends e in nginx's combined format, then the request id
// quoted, and a newline:
//
//	$remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$request_id"
//
// A request that ended before any status (the client went away) shows
// 499, as nginx logs it.
func appendCombined(b []byte, e *entry) []byte {
	r, o := e.r, e.o
	b = e.remote.AppendTo(b)
	b = append(b, " - - ["...)
	b = append(b, e.second.local...)
	b = append(b, `] "`...)
	b = appendCombinedText(b, r.Method)
	b = append(b, ' ')
	b = appendCombinedText(b, r.Path)
	if r.RawQuery != "" {
		b = append(b, '?')
		b = appendCombinedText(b, r.RawQuery)
	}
	b = append(b, ' ')
	b = append(b, e.proto...)
	b = append(b, `" `...)
	status := o.Status
	if status == 0 {
		status = 499
	}
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, o.Sent, 10)
	b = appendCombinedQuoted(b, e.referer)
	b = appendCombinedQuoted(b, e.userAgent)
	b = appendCombinedQuoted(b, e.id)
	return append(b, '\n')
}

// appendCombinedQuoted appends a space and s quoted, "-" when s is empty
// (nginx's way for a missing field).
func appendCombinedQuoted(b []byte, s string) []byte {
	b = append(b, ' ', '"')
	if s == "" {
		b = append(b, '-')
	} else {
		b = appendCombinedText(b, s)
	}
	return append(b, '"')
}

// appendCombinedText appends s escaped as nginx escapes variables in its
// logs: a quote, a backslash, a control character and every byte from 0x7f
// up becomes \xHH, so a line is one line of ASCII whatever the client sent.
func appendCombinedText(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && !combinedSpecial8(s[i:]) {
			i += 8
			continue
		}
		c := s[i]
		i++
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i-1]...)
		b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
		start = i
	}
	return append(b, s[start:]...)
}

// combinedSpecial8 reports whether one of the first 8 bytes of s needs
// escaping in a combined line.
func combinedSpecial8(s string) bool {
	x := word(s)
	return x&highs != 0 || hasLess(x, 0x20) || hasByte(x, 0x7f) || hasByte(x, '"') || hasByte(x, '\\')
}

// secondText is the text of one second of the clock in both formats,
// made once a second and then shared, read-only, by every line of that
// second: formatting the date and time was a tenth of a line's cost.
type secondText struct {
	unix  int64
	loc   *time.Location
	utc   []byte // RFC 3339 up to the seconds, in UTC: "2006-01-02T15:04:05"
	local []byte // nginx's $time_local in loc: "02/Jan/2006:15:04:05 -0700"
}

// clockText holds the secondText of the last line's second.
type clockText struct{ last atomic.Pointer[secondText] }

// second returns the text of t's second: the one held, or a new one that
// it holds from then on (one allocation a second).
func (c *clockText) second(t time.Time) *secondText {
	if s := c.last.Load(); s != nil && s.unix == t.Unix() && s.loc == t.Location() {
		return s
	}
	s := &secondText{unix: t.Unix(), loc: t.Location(), utc: appendRFC3339Seconds(nil, t), local: appendTimeLocal(nil, t)}
	c.last.Store(s)
	return s
}

// appendRFC3339Millis appends t in UTC as RFC 3339 with milliseconds
// ("2006-01-02T15:04:05.000Z"), as time.AppendFormat would, taking the
// text up to the seconds from sec, t's second.
func appendRFC3339Millis(b []byte, sec *secondText, t time.Time) []byte {
	b = append(b, sec.utc...)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/int(time.Millisecond), 3)
	return append(b, 'Z')
}

// appendRFC3339Seconds appends t in UTC as RFC 3339 up to the seconds,
// without a zone ("2006-01-02T15:04:05").
func appendRFC3339Seconds(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	return appendClock(b, hour, minute, sec)
}

// appendTimeLocal appends t as nginx's $time_local
// ("02/Jan/2006:15:04:05 -0700"), in t's own location.
func appendTimeLocal(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	_, offset := t.Zone()
	b = appendDigits(b, day, 2)
	b = append(b, '/')
	b = append(b, month.String()[:3]...)
	b = append(b, '/')
	b = appendDigits(b, year, 4)
	b = append(b, ':')
	b = appendClock(b, hour, minute, sec)
	sign := byte('+')
	if offset < 0 {
		sign, offset = '-', -offset
	}
	b = append(b, ' ', sign)
	b = appendDigits(b, offset/3600, 2)
	return appendDigits(b, offset/60%60, 2)
}

// appendClock appends hh:mm:ss.
func appendClock(b []byte, hour, minute, sec int) []byte {
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	return appendDigits(b, sec, 2)
}

// appendDigits appends n (0 or more) in decimal, zero-padded to width.
func appendDigits(b []byte, n, width int) []byte {
	var d [20]byte
	i := len(d)
	for n >= 10 || width > 1 {
		i--
		d[i] = byte('0' + n%10)
		n /= 10
		width--
	}
	i--
	d[i] = byte('0' + n)
	return append(b, d[i:]...)
}

// protoName is the protocol as a line shows it; HTTP/1.0 is told apart.
func protoName(r *message.Request) string {
	if r.Proto == message.HTTP1 && r.ProtoMinor == 0 {
		return "HTTP/1.0"
	}
	return r.Proto.String()
}

// tlsName names a TLS version as OpenSSL and nginx's $ssl_protocol do;
// "" for plain HTTP.
func tlsName(version uint16) string {
	switch version {
	case 0:
		return ""
	case 0x0304:
		return "TLSv1.3"
	case 0x0303:
		return "TLSv1.2"
	case 0x0302:
		return "TLSv1.1"
	case 0x0301:
		return "TLSv1"
	}
	return "unknown"
}
