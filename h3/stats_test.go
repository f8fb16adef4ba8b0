package h3

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// waitConns waits until the server counts want open connections.
func waitConns(t *testing.T, s *Server, want int64) {
	t.Helper()
	for deadline := time.Now().Add(hangTimeout); s.Conns() != want; {
		if time.Now().After(deadline) {
			t.Fatalf("Conns = %d, want %d", s.Conns(), want)
		}
		time.Sleep(time.Millisecond) // polling a counter, not a wait for time to pass
	}
}

func TestConnsCountsOpenConnections(t *testing.T) {
	var last atomic.Pointer[message.Request]
	ts := start(t, &Server{Handler: hello(&last)})
	if n := ts.srv.Conns(); n != 0 {
		t.Fatalf("Conns = %d before any client", n)
	}
	c1, c2 := ts.client(t), ts.client(t)
	get(t, c1, "GET", ts.url("/"))
	get(t, c2, "GET", ts.url("/"))
	waitConns(t, ts.srv, 2)
	c1.CloseIdleConnections() // http3.Transport closes its connections
	waitConns(t, ts.srv, 1)
}
