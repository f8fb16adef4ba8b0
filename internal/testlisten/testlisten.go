//go:build linux

package testlisten

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// backlog is the listen backlog: the queue holds backlog+1 connections.
const backlog = 0

// safetyNet bounds each wait for the kernel, against a hang only.
const safetyNet = 2 * time.Minute

// FullAcceptQueue returns the address of a loopback listener with a full
// accept queue, and a function that reports the queue's length (which
// stays put while no other connect gets through). The listener and the
// connections that fill it close in t.Cleanup.
//
// The queue's length is read from /proc/net/tcp (a listening socket's
// rx_queue column), the kernel's own account also under qemu-user, where
// TCP_INFO comes back empty.
func FullAcceptQueue(t testing.TB) (addr string, queued func() uint64) {
	t.Helper()
	fd, port := boundLoopback(t)
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatal(err)
	}
	addr = "127.0.0.1:" + strconv.Itoa(port)
	queued = func() uint64 { return acceptQueue(t, port) }
	for {
		n := queued()
		if n > backlog {
			return addr, queued
		}
		c, err := net.DialTimeout("tcp", addr, safetyNet) // returns at the SYN-ACK
		if err != nil {
			t.Fatalf("testlisten: filling the accept queue of %s: %v", addr, err)
		}
		t.Cleanup(func() { c.Close() })
		// The listener queues the connection at the ACK, just after.
		for deadline := time.Now().Add(safetyNet); queued() <= n; {
			if time.Now().After(deadline) {
				t.Fatalf("testlisten: the connection to %s never reached its accept queue", addr)
			}
			time.Sleep(time.Millisecond) // polling the kernel's count, not a synchronisation
		}
	}
}

// acceptQueue reads the accept queue's length of the socket listening on
// 127.0.0.1:port from /proc/net/tcp.
func acceptQueue(t testing.TB, port int) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 5 || f[1] != local || f[3] != "0A" { // 0A: LISTEN
			continue
		}
		_, rx, _ := strings.Cut(f[4], ":")
		n, err := strconv.ParseUint(rx, 16, 64)
		if err != nil {
			t.Fatalf("testlisten: /proc/net/tcp: bad queue column %q", f[4])
		}
		return n
	}
	t.Fatalf("testlisten: /proc/net/tcp: no listening socket on %s", local)
	return 0
}
