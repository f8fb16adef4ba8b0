package h2abuse

import (
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// waitLimit is the safety net of these tests' waits for the server.
const waitLimit = 2 * time.Minute

// serveH2C runs x/net/http2's server with h2c prior knowledge on a
// loopback port, answering "ok" to every request, until the test ends;
// it returns the address. The accept loop and every connection's
// goroutine end at cleanup, which waits for them.
func serveH2C(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http2.Server{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { srv.ServeConn(c, &http2.ServeConnOpts{Handler: handler}) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// dial opens an h2c attack connection to addr, closed at cleanup.
func dial(t *testing.T, addr string, o Options) *Conn {
	t.Helper()
	c, err := DialH2C(addr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// fence sends a fence and waits for its ACK (or the connection's end).
func fence(t *testing.T, c *Conn) Seen {
	t.Helper()
	if err := c.Fence(); err != nil {
		t.Fatalf("fence: %v", err)
	}
	seen, ok := c.Wait(waitLimit, func(s Seen) bool { return s.Fences > 0 })
	if !ok {
		t.Fatalf("no ACK of the fence: %+v", seen)
	}
	return seen
}

func TestRequestsAreAnswered(t *testing.T) {
	c := dial(t, serveH2C(t), Options{})
	if got := c.MaxConcurrentStreams(); got == 0 {
		t.Errorf("server's SETTINGS_MAX_CONCURRENT_STREAMS not read: %v", c.ServerSettings)
	}
	res := c.Run(Requests("/", true), Cap{Rounds: 3})
	if res.WriteErr != nil || !res.Capped || res.Rounds != 3 {
		t.Fatalf("run: %s", res)
	}
	// SETTINGS, SETTINGS ACK, 3 HEADERS.
	if res.Frames != 5 {
		t.Errorf("frames written: got %d, want 5", res.Frames)
	}
	seen, _ := c.Wait(waitLimit, func(s Seen) bool { return len(s.EndedStreams) == 3 })
	if seen.Statuses["200"] != 3 || seen.GoAway != nil || seen.Closed {
		t.Errorf("got statuses %v, GOAWAY %v, closed %v (%v); want 3 × 200 and the connection open",
			seen.Statuses, seen.GoAway, seen.Closed, seen.CloseErr)
	}
}

func TestServerResetsAreCounted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		attack Attack
		code   http2.ErrCode
	}{
		{"ZeroWindowUpdate", ZeroWindowUpdate("/"), http2.ErrCodeProtocol},
		{"DataAfterEndStream", DataAfterEndStream("/"), http2.ErrCodeStreamClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, serveH2C(t), Options{})
			if res := c.Run(tc.attack, Cap{Rounds: 5}); res.WriteErr != nil {
				t.Fatalf("run: %s", res)
			}
			seen := fence(t, c)
			if seen.Resets[tc.code] != 5 {
				t.Errorf("resets: got %v, want 5 × %v", seen.Resets, tc.code)
			}
		})
	}
}

// TestFenceEndsAnOpenBlock: a CONTINUATION flood cut anywhere (one byte
// a frame) is completed by Fence into a valid header block, which the
// server answers as a request.
func TestFenceEndsAnOpenBlock(t *testing.T) {
	c := dial(t, serveH2C(t), Options{})
	if res := c.Run(ContinuationFlood("/", 1), Cap{Rounds: 1500}); res.WriteErr != nil {
		t.Fatalf("run: %s", res)
	}
	seen := fence(t, c)
	seen, _ = c.Wait(waitLimit, func(s Seen) bool { return s.EndedStreams[1] })
	if seen.Statuses["200"] != 1 || seen.GoAway != nil {
		t.Errorf("got statuses %v, GOAWAY %+v; want the request answered with 200 and no GOAWAY", seen.Statuses, seen.GoAway)
	}
}

// TestGoAwayIsRecorded: RST_STREAM on an idle stream is a connection
// error PROTOCOL_ERROR (RFC 9113 section 6.4); the reader records the
// GOAWAY, then the close, and the server lets go of its socket.
func TestGoAwayIsRecorded(t *testing.T) {
	c := dial(t, serveH2C(t), Options{})
	if err := c.RSTStream(99, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	seen, ok := c.Wait(waitLimit, func(s Seen) bool { return s.GoAway != nil })
	if !ok || seen.GoAway.Code != http2.ErrCodeProtocol {
		t.Fatalf("got GOAWAY %+v (closed %v: %v), want PROTOCOL_ERROR", seen.GoAway, seen.Closed, seen.CloseErr)
	}
	if seen.GoAway.AfterFrames != 3 {
		t.Errorf("GOAWAY after %d frames written, want 3 (SETTINGS, its ACK, RST_STREAM)", seen.GoAway.AfterFrames)
	}
	if seen, _ = c.Wait(waitLimit, func(s Seen) bool { return s.Closed }); !seen.Closed {
		t.Errorf("the server did not close after its GOAWAY")
	}
	deadline := time.Now().Add(waitLimit)
	for {
		released, err := c.ServerReleased()
		if err != nil {
			t.Skip(err)
		}
		if released {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server's socket is still held %v after its close", waitLimit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
