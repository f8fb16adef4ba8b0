package h1

import (
	"net"
	"net/http"
	"testing"

	"github.com/anx-gateway/anx/core/message"
)

// TestDeferredResponseClientGone has a client close or reset its
// connection while its response is deferred and the handler writes
// nothing: the paused connection hears of the hang-up (netpoll's
// HangupHandler), the handler of it (Gone, once, with no Done), and the
// loop goes on serving other connections.
func TestDeferredResponseClientGone(t *testing.T) {
	for _, tc := range []struct {
		name      string
		headFirst bool // the client reads the response head before it goes
		reset     bool // the client resets the connection rather than close it
	}{
		{"closes before any output", false, false},
		{"closes after the head", true, false},
		{"resets before any output", false, true},
		{"resets after the head", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newDeferringHandler(1)
			addr := serveDeferring(t, &Server{Handler: h, Loops: 1})
			c, br := dial(t, addr)
			send(t, c, "GET /abandoned HTTP/1.1\r\nHost: h\r\n\r\n")
			d := h.next(t)
			if tc.headFirst {
				d.onLoop(t, func() { d.w.(message.Flusher).Flush() })
				if resp, err := http.ReadResponse(br, &http.Request{Method: "GET"}); err != nil || resp.StatusCode != 200 {
					t.Fatalf("reading the head: %v", err)
				}
			}
			if tc.reset {
				c.(*progressConn).Conn.(*net.TCPConn).SetLinger(0)
			}
			c.Close()
			awaitGone(t, d)

			other, obr := dial(t, addr)
			send(t, other, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
			h.next(t).answer(t)
			checkAnswer(t, obr, "answer to /next", "15", false)
			if n := d.gones.Load(); n != 1 {
				t.Errorf("Gone called %d times, want once", n)
			}
			checkEvents(t, h, "serve /abandoned", "serve /next", "done /next")
		})
	}
}
