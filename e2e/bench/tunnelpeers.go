package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
)

// The tunnel loads need two programs beside the servers under test: an
// upstream that answers an Upgrade with 101 and then sinks, sources or
// echoes bytes, and a copying relay to compare the proxies' tunnels with.
// Both are this command run again with a helper name as first argument
// (`bench tunnel-upstream ADDR`, `bench copy-relay ADDR UPSTREAM`), so that
// each holds its own descriptors (the open-files limit is per process) and
// shows up in top as a process of its own.

// Helper names: the first argument that runs a helper instead of the bench.
const (
	helperTunnelUpstream = "tunnel-upstream"
	helperCopyRelay      = "copy-relay"
)

// Paths of the tunnel upstream: what it does after its 101.
const (
	tunnelSink     = "/sink"     // reads an 8-byte big-endian count, then that many bytes, then answers one byte
	tunnelPrefixed = "/prefixed" // as /sink, but its 101 and the first bytes of the new protocol (tunnelGreeting) go out in one write
	tunnelSource   = "/source"   // reads an 8-byte big-endian count, then writes that many bytes
	tunnelEcho     = "/echo"     // writes back whatever it reads until EOF
	tunnelIdle     = "/idle"     // reads until EOF, writes nothing
)

// tunnelGreeting is what /prefixed sends in the same write as its 101.
const tunnelGreeting = "greeting"

// helperBufSize is the read and write buffer of the helpers and of the
// tunnel loads' client: large, so that their own syscalls stay few.
const helperBufSize = 1 << 20

// runHelper runs the helper named args[0], if it is one, and returns its
// exit code and true; false when args name no helper.
func runHelper(args []string) (int, bool) {
	if len(args) == 0 {
		return 0, false
	}
	var err error
	switch args[0] {
	case helperTunnelUpstream:
		if len(args) != 2 {
			err = errors.New("usage: bench tunnel-upstream ADDR")
			break
		}
		err = serveTunnelUpstream(args[1])
	case helperCopyRelay:
		if len(args) != 3 {
			err = errors.New("usage: bench copy-relay ADDR UPSTREAM")
			break
		}
		err = serveCopyRelay(args[1], args[2])
	default:
		return 0, false
	}
	fmt.Fprintf(os.Stderr, "bench %s: %v\n", args[0], err)
	return 1, true
}

// serveTunnelUpstream listens on addr and serves each connection on a
// goroutine of its own until the process is killed.
func serveTunnelUpstream(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	small := make([]byte, smallSize)
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() { // owns c; ends when the peer closes or breaks it
			defer c.Close()
			_ = serveUpstreamConn(c.(*net.TCPConn), small)
		}()
	}
}

// serveUpstreamConn answers GETs with small (keep-alive) until a request
// asks for an Upgrade, which it answers with 101 and the tunnel of its
// path.
func serveUpstreamConn(c *net.TCPConn, small []byte) error {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return err
		}
		if req.Header.Get("Upgrade") == "" {
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return err
			}
			head := "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " + strconv.Itoa(len(small)) + "\r\n\r\n"
			if _, err := c.Write(append([]byte(head), small...)); err != nil {
				return err
			}
			continue
		}
		head := "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + req.Header.Get("Upgrade") + "\r\n\r\n"
		if req.URL.Path == tunnelPrefixed {
			head += tunnelGreeting
		}
		if _, err := c.Write([]byte(head)); err != nil {
			return err
		}
		var r io.Reader = c
		if br.Buffered() > 0 { // the client spoke first: keep its bytes in order
			r = io.MultiReader(io.LimitReader(br, int64(br.Buffered())), c)
		}
		return upstreamTunnel(req.URL.Path, c, r)
	}
}

// upstreamTunnel does what path asks once the 101 is out, reading from r
// (c's input) and writing to c.
func upstreamTunnel(path string, c *net.TCPConn, r io.Reader) error {
	switch path {
	case tunnelSink, tunnelPrefixed:
		n, err := readCount(r)
		if err != nil {
			return err
		}
		if err := discardN(r, n); err != nil {
			return err
		}
		_, err = c.Write([]byte{1})
		return err
	case tunnelSource:
		n, err := readCount(r)
		if err != nil {
			return err
		}
		return writeN(c, n)
	case tunnelEcho:
		_, err := io.Copy(c, r) // TCP to TCP: splices here, so the upstream costs little
		return err
	default:
		_, err := io.Copy(io.Discard, r)
		return err
	}
}

// readCount reads an 8-byte big-endian count.
func readCount(r io.Reader) (int64, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(b[:])), nil
}

// discardN reads exactly n bytes from r through one large buffer.
func discardN(r io.Reader, n int64) error {
	buf := make([]byte, helperBufSize)
	for n > 0 {
		k, err := r.Read(buf[:min(int64(len(buf)), n)])
		n -= int64(k)
		if err != nil && n > 0 {
			return fmt.Errorf("%d bytes short: %w", n, err)
		}
	}
	return nil
}

// writeN writes n bytes to w from one large buffer.
func writeN(w io.Writer, n int64) error {
	buf := make([]byte, helperBufSize)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for n > 0 {
		k, err := w.Write(buf[:min(int64(len(buf)), n)])
		n -= int64(k)
		if err != nil {
			return err
		}
	}
	return nil
}

// serveCopyRelay is the copying tunnel: for each connection accepted on
// addr it dials upstream and copies bytes both ways through a 32 KiB
// buffer per direction in user space (the reader and writer are wrapped
// so that io.CopyBuffer cannot splice), passing on each side's end of
// stream. It knows nothing of HTTP: the Upgrade request and the 101 are
// bytes like the rest.
func serveCopyRelay(addr, upstream string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go relayCopying(c.(*net.TCPConn), upstream) // owns c; ends when both directions end
	}
}

// relayCopying copies between client and a new connection to upstream
// until both directions end, then closes both.
func relayCopying(client *net.TCPConn, upstream string) {
	defer client.Close()
	nc, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	up := nc.(*net.TCPConn)
	defer up.Close()
	var wg sync.WaitGroup
	wg.Go(func() { copyHalf(up, client) })
	copyHalf(client, up)
	wg.Wait()
}

// copyHalf copies src to dst through a user-space buffer, then closes
// dst's write half.
func copyHalf(dst, src *net.TCPConn) {
	buf := make([]byte, 32<<10)
	_, _ = io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
	_ = dst.CloseWrite()
}
