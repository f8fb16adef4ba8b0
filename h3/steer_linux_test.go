package h3

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/internal/testpki"
)

// steer attaches the steering program for oldTestTag and newTestTag to
// pc's port, or skips the test where the kernel has no such option:
// qemu-aarch64's user mode, which runs the arm64 tests, does not pass
// SO_ATTACH_REUSEPORT_CBPF through.
func steer(t *testing.T, pc net.PacketConn) {
	t.Helper()
	err := SteerToSuccessor(pc, oldTestTag, newTestTag)
	if errors.Is(err, unix.ENOPROTOOPT) && runtime.GOARCH != "amd64" {
		t.Skipf("%v (qemu-user passes no SO_ATTACH_REUSEPORT_CBPF)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// receive reads datagrams from pc until none comes for quiet, and
// returns how many times each came.
func receive(t *testing.T, pc net.PacketConn, quiet time.Duration) map[string]int {
	t.Helper()
	got := map[string]int{}
	buf := make([]byte, 2048)
	for {
		pc.SetReadDeadline(time.Now().Add(quiet))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return got
		}
		got[string(buf[:n])]++
	}
}

// TestSteeringKernel: the program attached to a real port sends each
// packet, from any of many client ports (which hashing alone would spread
// over both sockets), to the socket the program picks; before the new
// socket joins, and after the old one closes, all go to the one there is.
func TestSteeringKernel(t *testing.T) {
	old, err := ListenPacket(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	steer(t, old)
	addr := old.LocalAddr()
	lone := longPacket(8, 0x55555555, "alone")
	send(t, addr, 8, lone)
	if got := receive(t, old, 200*time.Millisecond); got[string(lone)] != 8 {
		t.Fatalf("with one socket on the port it got %d of 8 packets the program gives to socket 1", got[string(lone)])
	}

	new, err := ListenPacket(context.Background(), addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer new.Close()
	const clients = 16
	var packets [][]byte
	for _, c := range steeringCases() {
		packets = append(packets, c.packet)
	}
	send(t, addr, clients, packets...)
	sockets := [2]map[string]int{receive(t, old, 200*time.Millisecond), receive(t, new, 200*time.Millisecond)}
	for _, c := range steeringCases() {
		if got := sockets[c.want][string(c.packet)]; got != clients {
			t.Errorf("%s: socket %d got %d of %d (the other %d)", c.name, c.want, got, clients, sockets[1-c.want][string(c.packet)])
		}
	}

	old.Close()
	oldConn := shortPacket(oldTestTag, "after")
	send(t, addr, 8, oldConn)
	if got := receive(t, new, 200*time.Millisecond); got[string(oldConn)] != 8 {
		t.Errorf("after the old socket closed the new one got %d of 8 packets the program gives to socket 0", got[string(oldConn)])
	}
}

// send sends each packet from each of n client sockets to addr.
func send(t *testing.T, addr net.Addr, n int, packets ...[]byte) {
	t.Helper()
	for range n {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range packets {
			if _, err := c.WriteTo(p, addr); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
	}
}

// named answers every request with its name.
func named(name string) message.HandlerFunc {
	return func(w message.ResponseWriter, r *message.Request) {
		w.Header().Set("Content-Length", "3")
		_, _ = w.Write([]byte(name))
	}
}

// TestSteeringServers: two servers on one port as in a binary upgrade:
// connections opened to the old one stay with it for every request after
// the new one joins, new connections go to the new one, and once the old
// one has shut down its clients go on with the new one.
func TestSteeringServers(t *testing.T) {
	pki := testpki.New(t, "example.com", "127.0.0.1")
	oldPC, err := ListenPacket(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { oldPC.Close() })
	steer(t, oldPC)
	oldSrv := &Server{Handler: named("old"), ConnectionIDTag: oldTestTag, TLSConfig: pki.ServerConfig()}
	serveOn(t, oldSrv, oldPC)
	url := "https://" + oldPC.LocalAddr().String() + "/"

	const conns = 8
	var before []*http.Client
	for range conns {
		c := clientOf(t, pki)
		mustAnswer(t, c, url, "old")
		before = append(before, c)
	}
	newPC, err := ListenPacket(context.Background(), oldPC.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { newPC.Close() })
	serveOn(t, &Server{Handler: named("new"), ConnectionIDTag: newTestTag, TLSConfig: pki.ServerConfig()}, newPC)

	for range 20 {
		for _, c := range before {
			mustAnswer(t, c, url, "old")
		}
	}
	for range conns {
		mustAnswer(t, clientOf(t, pki), url, "new")
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
	defer cancel()
	if err := oldSrv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	oldPC.Close()
	for _, c := range before {
		mustAnswer(t, c, url, "new")
	}
}

// mustAnswer GETs url with c and wants the body want.
func mustAnswer(t *testing.T, c *http.Client, url, want string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != want {
		t.Fatalf("GET %s: %q, %v; want %q", url, body, err, want)
	}
}
