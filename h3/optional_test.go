package h3

import (
	"net/http"
	"testing"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/internal/frontendtest"
)

// TestOptional checks, with the scenarios of internal/frontendtest, that
// the optional abilities of core/message as core/nethttp provides them
// (trailers both ways, 103 before the final response, Flush, Abort) reach
// quic-go's HTTP/3 client.
func TestOptional(t *testing.T) { frontendtest.Run(t, startFrontend) }

// startFrontend serves h with an h3 Server on a loopback UDP socket and
// returns its base URL and quic-go's HTTP/3 client for it.
func startFrontend(t *testing.T, h message.Handler) (string, http.RoundTripper) {
	ts := start(t, &Server{Handler: h})
	return ts.url(""), ts.client(t).Transport
}
