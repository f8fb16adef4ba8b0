package h2

import (
	"time"

	"golang.org/x/net/http2"
)

// The limits of the defences against clients that make the server work
// without asking for responses. Each is a count per second of the
// connection's life (abuse.window); past one the connection gets GOAWAY
// ENHANCE_YOUR_CALM. A browser stays far below: it resets a few streams
// when a page is left, sends SETTINGS once and PINGs rarely.
const (
	// maxResetsPerSecond bounds streams reset by the client, or by the
	// server for the client's fault: Rapid Reset (CVE-2023-44487) and
	// MadeYouReset (CVE-2025-8671).
	maxResetsPerSecond = 100
	// maxControlPerSecond bounds SETTINGS and PING frames, which each
	// cost an answer (CVE-2019-9512, CVE-2019-9515).
	maxControlPerSecond = 1000
	// maxEmptyPerSecond bounds frames that carry nothing: DATA without
	// content or END_STREAM, empty CONTINUATION (CVE-2019-9518).
	maxEmptyPerSecond = 100
	// maxRefusedPerSecond bounds streams refused for being over
	// SETTINGS_MAX_CONCURRENT_STREAMS.
	maxRefusedPerSecond = 100
	// maxContinuations bounds the CONTINUATION frames of one header
	// block; its bytes are bounded by MaxHeaderBytes (headers.go).
	maxContinuations = 64
)

// abuseKind is one of the things the defences count.
type abuseKind uint8

const (
	abuseReset   abuseKind = iota // a stream reset by the client, or by the server for its fault
	abuseControl                  // a SETTINGS or PING frame
	abuseEmpty                    // a frame that carries nothing
	abuseRefused                  // a stream refused for the concurrency limit
	abuseKinds
)

// abuseLimits are the counts per second past which each kind ends the
// connection, and why.
var abuseLimits = [abuseKinds]struct {
	max    int
	reason string
}{
	abuseReset:   {maxResetsPerSecond, "too many streams reset"},
	abuseControl: {maxControlPerSecond, "too many SETTINGS or PING frames"},
	abuseEmpty:   {maxEmptyPerSecond, "too many empty frames"},
	abuseRefused: {maxRefusedPerSecond, "too many streams over the limit"},
}

// abuse counts, per window of a second, what the defences limit.
type abuse struct {
	since         time.Time // start of the window
	counts        [abuseKinds]int
	continuations int // in the header block in progress
}

// count counts one of kind, and returns the connection error once the
// window holds more than its limit.
func (a *abuse) count(c *conn, kind abuseKind) error {
	if now := c.c.Net().Now(); now.Sub(a.since) >= time.Second {
		a.since = now
		a.counts = [abuseKinds]int{}
	}
	if a.counts[kind]++; a.counts[kind] > abuseLimits[kind].max {
		return connError{http2.ErrCodeEnhanceYourCalm, abuseLimits[kind].reason}
	}
	return nil
}

// reset counts a stream reset.
func (a *abuse) reset(c *conn) error { return a.count(c, abuseReset) }

// control counts a SETTINGS or PING frame.
func (a *abuse) control(c *conn) error { return a.count(c, abuseControl) }

// empty counts a frame that carries nothing.
func (a *abuse) empty(c *conn) error { return a.count(c, abuseEmpty) }

// refuse counts a stream refused for the concurrency limit.
func (a *abuse) refuse(c *conn) error { return a.count(c, abuseRefused) }

// continuation counts a CONTINUATION frame of the block in progress.
func (a *abuse) continuation(c *conn, n int) error {
	if a.continuations++; a.continuations > maxContinuations {
		return connError{http2.ErrCodeEnhanceYourCalm, "too many CONTINUATION frames"}
	}
	if n == 0 {
		return a.empty(c)
	}
	return nil
}
