package h2

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"

	"golang.org/x/net/http2"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/netpoll"
	"github.com/anx-gateway/anx/internal/frontendtest"
	"github.com/anx-gateway/anx/tls/onloop"
)

// startH2C serves srv with prior knowledge on a loopback listener of its
// own event loops; cleanup shuts them down.
func startH2C(t *testing.T, srv *LoopServer) string {
	t.Helper()
	ns := &netpoll.Server{Handler: &onloop.Handler{PriorKnowledge: srv}, Loops: 2}
	if err := ns.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
		defer cancel()
		if err := ns.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return ns.Addr().String()
}

// h2cClient returns an x/net HTTP/2 client that speaks h2c with prior
// knowledge; cleanup closes its connections.
func h2cClient(t *testing.T) *http.Client {
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestLoopFrontEnd(t *testing.T) {
	frontendtest.Run(t, func(t *testing.T, h message.Handler) (string, http.RoundTripper) {
		addr := startH2C(t, &LoopServer{Handler: h})
		return "http://" + addr, h2cClient(t).Transport
	})
}
