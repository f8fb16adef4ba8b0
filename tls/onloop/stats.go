package onloop

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/anx-gateway/anx/core/netpoll"
)

// Stats is what a Handler counts of its connections, for metrics.
type Stats struct {
	// Choosing counts the connections whose protocol is not chosen yet:
	// in their TLS handshake (or waiting for a slot), or, plain, waiting
	// for the bytes that tell HTTP/1.1 from HTTP/2.
	Choosing int64
	// HTTP1 and HTTP2 count the connections each protocol serves.
	HTTP1, HTTP2 int64
	// Handshakes counts the TLS handshakes that completed.
	Handshakes uint64
	// Failed counts the TLS handshakes that failed, by reason: the index
	// is a Failure (FailureReasons names them).
	Failed [failureCount]uint64
}

// A Failure is why a TLS handshake failed, as Stats counts it.
type Failure int

// The reasons a handshake fails.
const (
	FailTimeout         Failure = iota // the handshake timeout expired
	FailEOF                            // the client closed or reset the connection
	FailNoCertificate                  // no certificate for the name asked (unknown SNI, a name not allowed)
	FailProtocolVersion                // no TLS version in common
	FailBadRecord                      // what the client sent is no TLS, or a record was malformed
	FailClientAlert                    // the client refused (an alert from it: our certificate, say)
	FailOther
	failureCount
)

// FailureReasons names each Failure, for metric labels.
var FailureReasons = [failureCount]string{"timeout", "eof", "no_certificate", "protocol_version", "bad_record", "client_alert", "other"}

// counters are a Handler's atomic counts; connections move between the
// gauges on their loop (track), and Stats reads them from any goroutine.
type counters struct {
	choosing, http1, http2 atomic.Int64
	handshakes             atomic.Uint64
	failed                 [failureCount]atomic.Uint64
}

// Stats reads the handler's counts. Safe from any goroutine.
func (h *Handler) Stats() Stats {
	c := &h.counts
	st := Stats{Choosing: c.choosing.Load(), HTTP1: c.http1.Load(), HTTP2: c.http2.Load(), Handshakes: c.handshakes.Load()}
	for i := range c.failed {
		st.Failed[i] = c.failed[i].Load()
	}
	return st
}

// track moves the connection to gauge g (nil: none, it closed or left
// the loop), out of the one it counted in.
func (c *Conn) track(g *atomic.Int64) {
	if c.gauge != nil {
		c.gauge.Add(-1)
	}
	c.gauge = g
	if g != nil {
		g.Add(1)
	}
}

// protocolGauge is the gauge of the connections p serves: HTTP/2 for the
// protocol of ALPN "h2" and for prior knowledge, HTTP/1.1 for the rest.
func (h *Handler) protocolGauge(c *Conn, p Protocol) *atomic.Int64 {
	if p == h.PriorKnowledge || p == h.Protocols["h2"] {
		return &h.counts.http2
	}
	return &h.counts.http1
}

// countHandshake counts a handshake that ended with err.
func (h *Handler) countHandshake(err error) {
	if err == nil {
		h.counts.handshakes.Add(1)
		return
	}
	h.counts.failed[classifyFailure(err)].Add(1)
}

// countSilent counts the handshake of a connection that closed before
// its client sent anything, unless we closed it (err nil, or Shutdown).
func (h *Handler) countSilent(err error) {
	if err != nil && !errors.Is(err, netpoll.ErrServerClosed) {
		h.countHandshake(err)
	}
}

// classifyFailure tells why a handshake failed from its error.
func classifyFailure(err error) Failure {
	var ne net.Error
	var rh tls.RecordHeaderError
	switch {
	case errors.Is(err, netpoll.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return FailTimeout
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, netpoll.ErrClosed) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		return FailEOF
	case errors.As(err, &rh):
		return FailBadRecord
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "remote error"):
		return FailClientAlert
	case strings.Contains(msg, "version"):
		return FailProtocolVersion
	case strings.Contains(msg, "record"):
		return FailBadRecord
	case strings.HasPrefix(msg, "certs:") || strings.Contains(msg, "certificate"):
		return FailNoCertificate
	}
	return FailOther
}

// connGauge is a count of connections in one state.
type connGauge = atomic.Int64
