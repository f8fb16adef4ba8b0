package h3

import (
	"errors"
	"net/http"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/anx-gateway/anx/core/nethttp"
)

// errNoHTTPStream is takeStream's error for a response writer that is not
// quic-go's.
var errNoHTTPStream = errors.New("h3: the response writer cannot hand its stream over")

// takeStream takes the request stream of an extended CONNECT over from
// quic-go once the 200 is set (nethttp.Handler.TakeStream): HTTPStream
// sends the response head, and from then on quic-go leaves the stream to
// the tunnel, also after the handler returns.
func takeStream(w http.ResponseWriter) (nethttp.Stream, error) {
	hs, ok := w.(http3.HTTPStreamer)
	if !ok {
		return nil, errNoHTTPStream
	}
	str, err := hs.HTTPStream()
	if err != nil {
		return nil, wrap("taking the stream over", err)
	}
	return &tunnelStream{str: str}, nil
}

// tunnelStream is an HTTP/3 request stream as a nethttp.Stream: reads and
// writes go through quic-go's DATA framing.
type tunnelStream struct {
	str *http3.Stream
	// broken: the last Write failed, possibly midway through a DATA
	// frame, which a FIN would leave truncated. Write and CloseWrite,
	// which use it, run one at a time (nethttp's tunnel sees to it).
	broken bool
}

func (s *tunnelStream) Read(p []byte) (int, error) { return s.str.Read(p) }

// Write sends p in a DATA frame. After a failed one (a deadline), the next
// Write completes the frame first, as quic-go does.
func (s *tunnelStream) Write(p []byte) (int, error) {
	n, err := s.str.Write(p)
	s.broken = err != nil
	return n, err
}

// CloseWrite ends the server's side with a FIN, or, after a Write that
// broke off, resets it with H3_REQUEST_CANCELLED.
func (s *tunnelStream) CloseWrite() error {
	if s.broken {
		s.str.CancelWrite(quic.StreamErrorCode(http3.ErrCodeRequestCanceled))
		return nil
	}
	return s.str.Close()
}

// CloseRead stops reading with H3_NO_ERROR (RFC 9114 section 4.1.2):
// nothing, once the client has ended its side.
func (s *tunnelStream) CloseRead() error {
	s.str.CancelRead(quic.StreamErrorCode(http3.ErrCodeNoError))
	return nil
}

func (s *tunnelStream) SetReadDeadline(t time.Time) error  { return s.str.SetReadDeadline(t) }
func (s *tunnelStream) SetWriteDeadline(t time.Time) error { return s.str.SetWriteDeadline(t) }
