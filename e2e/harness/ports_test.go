package harness

import (
	"net"
	"testing"
)

// TestFreePort: a picked port lies below the ephemeral range and can be
// bound on TCP and UDP; many picks are not all the same.
func TestFreePort(t *testing.T) {
	low, high := pickRange()
	seen := map[int]bool{}
	for range 20 {
		port := FreePort(t)
		if port < low || port >= high {
			t.Fatalf("port %d is outside [%d, %d)", port, low, high)
		}
		addr := net.JoinHostPort("127.0.0.1", itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		pc.Close()
		seen[port] = true
	}
	if len(seen) < 2 {
		t.Errorf("20 picks gave %d ports", len(seen))
	}
	if port := FreeTCPPort(t); port < low || port >= high {
		t.Errorf("TCP port %d is outside [%d, %d)", port, low, high)
	}
}
