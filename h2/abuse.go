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

// abuse counts, per window of a second, what the defences limit.
type abuse struct {
	since         time.Time // start of the window
	resets        int
	controls      int
	empties       int
	refused       int
	continuations int // in the header block in progress
}

// tick starts a new window when a second has passed.
func (a *abuse) tick(c *conn) {
	now := c.c.Net().Now()
	if now.Sub(a.since) >= time.Second {
		a.since = now
		a.resets, a.controls, a.empties, a.refused = 0, 0, 0, 0
	}
}

// calm is the connection error of every defence.
func calm(reason string) error { return connError{http2.ErrCodeEnhanceYourCalm, reason} }

// reset counts a stream reset.
func (a *abuse) reset(c *conn) error {
	a.tick(c)
	if a.resets++; a.resets > maxResetsPerSecond {
		return calm("too many streams reset")
	}
	return nil
}

// control counts a SETTINGS or PING frame.
func (a *abuse) control(c *conn) error {
	a.tick(c)
	if a.controls++; a.controls > maxControlPerSecond {
		return calm("too many SETTINGS or PING frames")
	}
	return nil
}

// empty counts a frame that carries nothing.
func (a *abuse) empty(c *conn) error {
	a.tick(c)
	if a.empties++; a.empties > maxEmptyPerSecond {
		return calm("too many empty frames")
	}
	return nil
}

// refuse counts a stream refused for the concurrency limit.
func (a *abuse) refuse(c *conn) error {
	a.tick(c)
	if a.refused++; a.refused > maxRefusedPerSecond {
		return calm("too many streams over the limit")
	}
	return nil
}

// continuation counts a CONTINUATION frame of the block in progress.
func (a *abuse) continuation(c *conn, n int) error {
	if a.continuations++; a.continuations > maxContinuations {
		return calm("too many CONTINUATION frames")
	}
	if n == 0 {
		return a.empty(c)
	}
	return nil
}
