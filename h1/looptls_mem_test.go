package h1

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/anx-gateway/anx/internal/testproc"
)

// clientsEnv, when set to "addr n", makes TestLoopTLSIdleMemoryClients
// the client process of TestLoopTLSIdleMemory.
const clientsEnv = "ANX_H1_TLS_CLIENTS"

// TestLoopTLSIdleMemory opens 2000 TLS connections that have each done a
// handshake and one small keep-alive request, and measures what the
// server process grew by while they sit idle: the loops' connections,
// their tls.Conns (which keep their record buffers) and whatever the
// idle connections fail to give back. The clients run in a process of
// their own (this test binary, TestLoopTLSIdleMemoryClients), so that
// their memory does not count.
func TestLoopTLSIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2000 TLS connections")
	}
	if raceEnabled {
		t.Skip("the race detector's shadow memory would dominate the figure")
	}
	const n = 2000
	var lim unix.Rlimit // the os package raised the soft limit to the hard one at start
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < n+200 {
		t.Skipf("RLIMIT_NOFILE %d: too few descriptors for %d connections", lim.Cur, n)
	}
	l := serveLoopTLS(t, &Server{Handler: nonBlocking{handlerFunc(describe)}})

	// A first round warms up what the server keeps whatever the number of
	// connections: the loops' buffers, the pools, the session ticket keys.
	runClients(t, l.addr, 50).stop(t)

	runtime.GC()
	debug.FreeOSMemory()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rss0 := testproc.VmRSS(t)
	clients := runClients(t, l.addr, n)
	defer clients.stop(t)
	runtime.GC()
	runtime.ReadMemStats(&after)
	rss1 := testproc.VmRSS(t)
	debug.FreeOSMemory() // scavenges what the handshakes used and freed
	rss2 := testproc.VmRSS(t)

	heap := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	objects := float64(int64(after.HeapObjects)-int64(before.HeapObjects)) / n
	rss := float64(rss1-rss0) / n
	scavenged := float64(rss2-rss0) / n
	t.Logf("per idle TLS connection: RSS %.0f B (%.0f B after FreeOSMemory), heap %.0f B in %.1f objects "+
		"(unsafe.Sizeof: loopConn %d B, tls.Conn %d B)",
		rss, scavenged, heap, objects, unsafe.Sizeof(loopConn{}), unsafe.Sizeof(tls.Conn{}))
	if rss > 40<<10 {
		t.Errorf("RSS per idle TLS connection %.0f B, want < 40 KiB", rss)
	}
}

// clientProcess is the process running TestLoopTLSIdleMemoryClients.
type clientProcess struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer
}

// runClients starts a client process that opens n connections to addr,
// each with one request, and returns when they are all open and idle.
func runClients(t *testing.T, addr string, n int) *clientProcess {
	t.Helper()
	p := &clientProcess{cmd: exec.Command(os.Args[0], "-test.run=^TestLoopTLSIdleMemoryClients$", "-test.count=1")}
	p.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", clientsEnv, addr, n))
	p.cmd.Stderr = &p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() { // ends when the client process closes its stdout
		sc := bufio.NewScanner(stdout)
		var out []string
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- ""
				io.Copy(io.Discard, stdout)
				return
			}
			out = append(out, sc.Text())
		}
		ready <- strings.Join(out, "\n")
	}()
	select {
	case out := <-ready:
		if out != "" {
			p.stdin.Close()
			p.cmd.Wait()
			t.Fatalf("client process failed:\n%s\n%s", out, p.stderr.String())
		}
	case <-time.After(2 * time.Minute):
		p.cmd.Process.Kill()
		p.cmd.Wait()
		t.Fatal("client process not ready after 2 minutes")
	}
	return p
}

// stop has the client process close its connections and exit.
func (p *clientProcess) stop(t *testing.T) {
	t.Helper()
	if p.stdin == nil {
		return
	}
	p.stdin.Close()
	p.stdin = nil
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("client process: %v\n%s", err, p.stderr.String())
	}
}

// TestLoopTLSIdleMemoryClients is the client process of
// TestLoopTLSIdleMemory: it opens the connections, does one request on
// each, prints "ready", and closes them all when its stdin closes.
func TestLoopTLSIdleMemoryClients(t *testing.T) {
	env := os.Getenv(clientsEnv)
	if env == "" {
		t.Skip("the client process of TestLoopTLSIdleMemory")
	}
	var addr string
	var n int
	if _, err := fmt.Sscan(env, &addr, &n); err != nil {
		t.Fatalf("%s=%q: %v", clientsEnv, env, err)
	}
	cfg := &tls.Config{ServerName: tlsName, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}
	conns := make([]*tls.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	const workers = 8
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				conns[i], errs[i] = oneRequest(addr, cfg)
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
}

// oneRequest opens a TLS connection to addr and does one request on it.
func oneRequest(addr string, cfg *tls.Config) (*tls.Conn, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
	if err == nil {
		_, err = io.ReadAll(resp.Body)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}
