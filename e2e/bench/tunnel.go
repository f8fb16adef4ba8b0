package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The tunnel loads open HTTP/1.1 Upgrade tunnels through a proxy to the
// tunnel upstream (tunnelpeers.go), a process of its own started once per
// bench run. Servers that cannot proxy skip them; the copying relay
// ("copy") takes only them.

// Fixed parameters of the tunnel loads (the report states them).
const (
	tunnelBytes = 2 << 30 // pushed through one tunnel per direction and mode
	// tunnelIdleConns is the number of idle tunnels held open. The
	// open-files limit is 20000 per process and cannot be raised here (no
	// CAP_SYS_RESOURCE); anx holds 7 descriptors per idle tunnel (the
	// client socket twice, once on its loop and once detached, the upstream
	// socket, and a pipe of two descriptors held by each direction's
	// splice while it waits), so 2,500 tunnels take 17,500 of them.
	tunnelIdleConns = 2500
	tunnelLimit     = 5 * time.Minute // safety net of one transfer
)

// tunnelUpstreamSpec is the tunnel upstream: this command as a helper.
func tunnelUpstreamSpec() *spec {
	return &spec{name: "tunnel-upstream", plainOnly: true, find: selfPath,
		version: func(string) string { return "bench tunnel-upstream (" + runtime.Version() + ")" },
		files: func(in *instance) ([]string, error) {
			return []string{helperTunnelUpstream, in.httpAddr()}, nil
		}}
}

// copySpec is the copying relay compared with the proxies' tunnels.
func copySpec() *spec {
	return &spec{name: "copy", plainOnly: true, find: selfPath,
		version: func(string) string {
			return "bench copy-relay: io.CopyBuffer, 32 KiB, no splice (" + runtime.Version() + ")"
		},
		tunnel: func(in *instance) ([]string, error) {
			return []string{helperCopyRelay, in.httpAddr(), in.Upstream()}, nil
		}}
}

// selfPath returns this command's executable, which runs the helpers.
func selfPath(string) (string, error) { return os.Executable() }

// startTunnelUpstream starts the tunnel upstream in dir.
func startTunnelUpstream(ctx context.Context, dir string, f files) (*instance, error) {
	return startPeer(ctx, "tunnel upstream", tunnelUpstreamSpec(), dir, f)
}

// nginxTunnelConfig is nginx proxy_pass as its docs set up WebSocket
// proxying: HTTP/1.1 upstream, Upgrade and Connection passed on.
func nginxTunnelConfig(in *instance) ([]string, error) {
	return writeNginxConfig(in, nginxConfTemplate("{{.Workers}}", `	keepalive_timeout 120s;
`, `	map $http_upgrade $connection_upgrade {
		default upgrade;
		'' close;
	}
	server {
`+nginxListenPlainAndTLS+`		location / {
			proxy_pass http://{{.Upstream}};
			proxy_http_version 1.1;
			proxy_set_header Upgrade $http_upgrade;
			proxy_set_header Connection $connection_upgrade;
			proxy_read_timeout 600s;
			proxy_send_timeout 600s;
		}
	}
`))
}

// tunnelLoads returns the tunnel loads.
func tunnelLoads() []*load {
	to := " through the proxy to a Go upstream (a process of its own) that answers the Upgrade with 101"
	return []*load{
		{name: "tunnel-throughput", title: "tunnel: Upgrade over plain HTTP/1.1, MB/s", role: tunnelToUpstream,
			how: fmt.Sprintf("one tunnel per mode, GET with Upgrade: websocket"+to+"; %d MiB pushed: up = client to upstream, "+
				"down = upstream to client, echo = both ways at once (MB/s of one direction), "+
				"prefixed = up when the upstream's first bytes come in the same write as its 101; "+
				"CPU: the server's utime+stime (/proc/PID/stat, 10 ms ticks) per GiB moved; "+
				"read+write calls: the server's syscr+syscw (/proc/PID/io) per MiB moved, which count neither splice(2) nor nginx's recv(2)/send(2)", tunnelBytes>>20),
			metrics: []metric{{Key: "up_mb_s", Unit: "MB/s up"}, {Key: "down_mb_s", Unit: "MB/s down"},
				{Key: "echo_mb_s", Unit: "MB/s echo"}, {Key: "prefixed_mb_s", Unit: "MB/s up, prefixed"},
				{Key: "up_cpu_ms_per_gib", Unit: "CPU ms/GiB up", Lower: true},
				{Key: "down_cpu_ms_per_gib", Unit: "CPU ms/GiB down", Lower: true},
				{Key: "prefixed_cpu_ms_per_gib", Unit: "CPU ms/GiB up, prefixed", Lower: true},
				{Key: "up_rw_per_mib", Unit: "read+write calls/MiB up", Lower: true},
				{Key: "down_rw_per_mib", Unit: "read+write calls/MiB down", Lower: true},
				{Key: "prefixed_rw_per_mib", Unit: "read+write calls/MiB up, prefixed", Lower: true}},
			run: tunnelThroughputLoad},
		{name: "tunnel-idle", title: "RSS per idle tunnel", role: tunnelToUpstream, fresh: true,
			how: fmt.Sprintf("%d tunnels opened"+to+", then held idle; VmRSS (whole process group) and open descriptors, delta / tunnels; "+
				"a freshly started server each run (%d, not 10000: anx holds 7 descriptors per idle tunnel and the open-files limit is 20000)",
				tunnelIdleConns, tunnelIdleConns),
			metrics: []metric{{Key: "kib", Unit: "KiB/tunnel", Lower: true}, {Key: "fds", Unit: "fds/tunnel", Lower: true}, failures()},
			run:     tunnelIdleLoad},
	}
}

// tunnel is one client end of an upgraded connection.
type tunnel struct {
	c  *net.TCPConn
	br *bufio.Reader // c's input, with whatever came after the 101
}

// openTunnel dials addr and asks for an Upgrade of path; it returns once
// the 101 has been read.
func openTunnel(ctx context.Context, addr, path string) (*tunnel, error) {
	d := net.Dialer{Timeout: requestLimit}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	t := &tunnel{c: nc.(*net.TCPConn), br: bufio.NewReaderSize(nc, 4096)}
	_ = t.c.SetDeadline(time.Now().Add(requestLimit))
	req := "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := t.c.Write([]byte(req)); err != nil {
		t.c.Close()
		return nil, err
	}
	res, err := http.ReadResponse(t.br, nil)
	if err != nil {
		t.c.Close()
		return nil, err
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.c.Close()
		return nil, fmt.Errorf("upgrade %s: %s", path, res.Status)
	}
	_ = t.c.SetDeadline(time.Time{})
	return t, nil
}

// tunnelThroughputLoad measures each mode once (see tunnelLoads).
func tunnelThroughputLoad(ctx context.Context, in *instance, _ time.Duration) (map[string]float64, error) {
	out := map[string]float64{}
	for _, m := range []struct {
		key, path string
		move      func(*tunnel, int64) error
	}{
		{"up_mb_s", tunnelSink, pushUp},
		{"down_mb_s", tunnelSource, pullDown},
		{"echo_mb_s", tunnelEcho, echoBoth},
		{"prefixed_mb_s", tunnelPrefixed, pushUpPrefixed},
	} {
		calls, cpu := in.readWriteCalls(), in.cpuTicks()
		secs, err := timeTunnel(ctx, in, m.path, m.move)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.path, err)
		}
		mode := strings.TrimSuffix(m.key, "mb_s")
		out[m.key] = float64(tunnelBytes) / secs / 1e6
		out[mode+"rw_per_mib"] = float64(in.readWriteCalls()-calls) / float64(tunnelBytes>>20)
		out[mode+"cpu_ms_per_gib"] = float64(in.cpuTicks()-cpu) * 10 / float64(tunnelBytes>>30)
	}
	return out, nil
}

// cpuTicks returns the user and system CPU time the server's process group
// used so far, in ticks of 10 ms (utime + stime of /proc/PID/stat; USER_HZ
// is 100 on Linux).
func (in *instance) cpuTicks() int64 {
	var n int64
	for _, pid := range groupPIDs(in.cmd.Process.Pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ...: fields after the last ')' start at state (field 3); utime and stime are fields 14 and 15.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			n += u + st
		}
	}
	return n
}

// readWriteCalls returns the read and write system calls the server's
// process group made so far (syscr + syscw of /proc/PID/io): a tunnel that
// copies through user space makes some for every buffer it moves, one
// that splices (splice(2) is not counted there) almost none. recv(2) and
// send(2), which nginx uses, are not counted either: the figure means
// something only for a server that reads and writes with read and write
// (anx, the copying relay).
func (in *instance) readWriteCalls() int64 {
	var n int64
	for _, pid := range groupPIDs(in.cmd.Process.Pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			k, v, _ := strings.Cut(strings.TrimSpace(line), ": ")
			if k == "syscr" || k == "syscw" {
				c, _ := strconv.ParseInt(v, 10, 64)
				n += c
			}
		}
	}
	return n
}

// timeTunnel opens a tunnel to path and returns the seconds move takes
// to carry tunnelBytes.
func timeTunnel(ctx context.Context, in *instance, path string, move func(*tunnel, int64) error) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, tunnelLimit)
	defer cancel()
	t, err := openTunnel(ctx, in.httpAddr(), path)
	if err != nil {
		return 0, err
	}
	defer t.c.Close()
	stop := context.AfterFunc(ctx, func() { t.c.Close() }) // unblocks move on interrupt or at the safety net
	defer stop()
	start := time.Now()
	if err := move(t, tunnelBytes); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, err
	}
	return time.Since(start).Seconds(), nil
}

// writeCount writes n as 8 bytes, big-endian.
func writeCount(w io.Writer, n int64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	_, err := w.Write(b[:])
	return err
}

// pushUp sends n bytes to the sink and waits for its acknowledgement.
func pushUp(t *tunnel, n int64) error {
	if err := writeCount(t.c, n); err != nil {
		return err
	}
	if err := writeN(t.c, n); err != nil {
		return err
	}
	var ack [1]byte
	_, err := io.ReadFull(t.br, ack[:])
	return err
}

// pushUpPrefixed reads the greeting that came with the 101, then pushes.
func pushUpPrefixed(t *tunnel, n int64) error {
	g := make([]byte, len(tunnelGreeting))
	if _, err := io.ReadFull(t.br, g); err != nil {
		return err
	}
	if string(g) != tunnelGreeting {
		return fmt.Errorf("greeting %q, want %q", g, tunnelGreeting)
	}
	return pushUp(t, n)
}

// pullDown asks the source for n bytes and reads them.
func pullDown(t *tunnel, n int64) error {
	if err := writeCount(t.c, n); err != nil {
		return err
	}
	return discardN(t.br, n)
}

// echoBoth sends n bytes to the echo while reading n bytes back.
func echoBoth(t *tunnel, n int64) error {
	var wg sync.WaitGroup
	var werr error
	wg.Go(func() { werr = writeN(t.c, n) })
	rerr := discardN(t.br, n)
	if rerr != nil {
		t.c.Close() // ends the writer
	}
	wg.Wait()
	return errors.Join(rerr, werr)
}

// tunnelIdleLoad opens tunnelIdleConns idle tunnels and divides the
// server's RSS and descriptor growth by the tunnels still open.
func tunnelIdleLoad(ctx context.Context, in *instance, _ time.Duration) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	const settle = time.Second // let the server finish its start-up allocations before the baseline
	time.Sleep(settle)
	baseRSS, err := in.rss()
	if err != nil {
		return nil, err
	}
	baseFDs := in.fds()
	tunnels, failed := openIdleTunnels(ctx, in.httpAddr())
	defer func() {
		for _, c := range tunnels {
			c.Close()
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	time.Sleep(settle)
	live := countLive(tunnels)
	if live == 0 {
		return nil, fmt.Errorf("no tunnel stayed open (%d failed)", failed)
	}
	rss, err := in.rss()
	if err != nil {
		return nil, err
	}
	fds := in.fds()
	return map[string]float64{
		"kib":    float64(rss-baseRSS) / float64(live) / 1024,
		"fds":    float64(fds-baseFDs) / float64(live),
		"errors": float64(failed + len(tunnels) - live),
	}, nil
}

// openIdleTunnels opens tunnelIdleConns tunnels to the idle path, 32 at a
// time; it returns the open ones and the number that failed.
func openIdleTunnels(ctx context.Context, addr string) ([]net.Conn, int) {
	const parallel = 32
	var (
		mu      sync.Mutex
		tunnels []net.Conn
		failed  int
		next    atomic.Int64
		wg      sync.WaitGroup
	)
	for range parallel {
		wg.Go(func() {
			for next.Add(1) <= tunnelIdleConns && ctx.Err() == nil {
				t, err := openTunnel(ctx, addr, tunnelIdle)
				mu.Lock()
				if err != nil {
					failed++
				} else {
					tunnels = append(tunnels, t.c)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return tunnels, failed
}

// fds returns the number of open descriptors of the server's process
// group (0 for a process that exited meanwhile).
func (in *instance) fds() int {
	n := 0
	for _, pid := range groupPIDs(in.cmd.Process.Pid) {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		n += len(ents)
	}
	return n
}
