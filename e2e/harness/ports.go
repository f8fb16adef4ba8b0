package harness

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Ports for the processes a test starts are picked at random below the
// kernel's ephemeral range (net.ipv4.ip_local_port_range): the kernel
// gives a bind to port 0, or an outgoing connection, a port from that
// range only, so a port picked here stays free until the process it was
// picked for binds it, unless another pick takes it in between (one
// chance in about 16,000 for each pair of picks in flight at once). A
// port 0 pick, as before, could be handed to a second pick, or to another
// process's bind, before the first process bound it.

// FreePort returns a port on 127.0.0.1 that is free on both TCP and UDP at
// the time of the call (for an https address that also carries HTTP/3).
func FreePort(t testing.TB) int {
	t.Helper()
	return pickPort(t, true)
}

// FreeTCPPort returns a TCP port on 127.0.0.1 free at the time of the call.
func FreeTCPPort(t testing.TB) int {
	t.Helper()
	return pickPort(t, false)
}

// pickPort picks a random port of the range below the ephemeral one that
// is free on TCP, and on UDP too when udp is set.
func pickPort(t testing.TB, udp bool) int {
	t.Helper()
	low, high := pickRange()
	for range 200 {
		port := low + rand.IntN(high-low)
		if free(port, udp) {
			return port
		}
	}
	t.Fatalf("harness: no free port in [%d, %d) after 200 tries", low, high)
	return 0
}

// pickRange is the range ports are picked from: the 16,384 ports below
// the ephemeral range, or what there is of them above 1024.
func pickRange() (low, high int) {
	ephemeralLow := 32768 // Linux's default
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 2048 {
				ephemeralLow = n
			}
		}
	}
	return max(1024, ephemeralLow-16384), ephemeralLow
}

// free reports whether port can be bound on 127.0.0.1 now, on TCP and,
// when udp is set, on UDP.
func free(port int, udp bool) bool {
	addr := net.JoinHostPort("127.0.0.1", itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer ln.Close()
	if !udp {
		return true
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}
