package harness

import (
	"net"
	"testing"
)

// FreePort returns a port on 127.0.0.1 that is free on both TCP and UDP at
// the time of the call (for an https address that also carries HTTP/3).
func FreePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("harness: listen tcp: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", itoa(port)))
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		return port
	}
	t.Fatalf("harness: no port free on both TCP and UDP after 50 tries")
	return 0
}

// FreeTCPPort returns a TCP port on 127.0.0.1 free at the time of the call.
func FreeTCPPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: listen tcp: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
