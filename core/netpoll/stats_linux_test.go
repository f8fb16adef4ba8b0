package netpoll

import (
	"context"
	"testing"
)

// TestStatsCountsConnsQueuedOutputAndWakeups holds 32 MiB of output on a
// client that does not read, and checks that Stats sees the connection,
// the output queued behind the full socket and the wake-ups so far.
func TestStatsCountsConnsQueuedOutputAndWakeups(t *testing.T) {
	data := make([]byte, 32<<20)
	queued := make(chan int64, 1)
	s := &Server{Loops: 1, Handler: &funcs{
		read: func(c *Conn, in []byte) int {
			c.Write(data)
			queued <- c.Buffered()
			return len(in)
		},
	}}
	c := dial(t, start(t, s))
	if _, err := c.Write([]byte("go")); err != nil {
		t.Fatal(err)
	}
	left := recv(t, queued)
	if left == 0 {
		t.Fatal("32 MiB went out at once: the test proves nothing")
	}
	ctx, cancel := context.WithTimeout(context.Background(), safetyNet)
	defer cancel()
	st := s.Stats(ctx)
	if len(st) != 1 {
		t.Fatalf("Stats: %d loops, want 1", len(st))
	}
	got := st[0]
	// The socket may have taken a little more since (ACKs free its send
	// buffer), never all: the client reads nothing.
	if got.Conns != 1 || got.Queued <= 0 || got.Queued > left || got.Wakeups == 0 {
		t.Errorf("Stats = %+v, want 1 connection, 1 to %d bytes queued and some wake-ups", got, left)
	}
}
