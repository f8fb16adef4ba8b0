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
	"strings"
	"sync"
	"testing"
	"time"
)

// clientsEnv, when set to "addr n", makes the test binary the client
// process of TestLoopTLSIdleMemory (runIdleClients) instead of running
// tests.
const clientsEnv = "ANX_H1_TLS_CLIENTS"

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
	p := &clientProcess{cmd: exec.Command(os.Args[0], "-test.run=^$")}
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
	case <-time.After(hangTimeout):
		p.cmd.Process.Kill()
		p.cmd.Wait()
		t.Fatalf("client process not ready after %v", hangTimeout)
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

// runIdleClients is the client process of TestLoopTLSIdleMemory (the
// test binary, started by runClients, runs it from TestMain): it opens
// the connections env ("addr n") asks for, does one request on each,
// prints "ready", and closes them all when its stdin closes. It prints
// what went wrong instead of "ready", and returns the exit status.
func runIdleClients(env string) int {
	var addr string
	var n int
	if _, err := fmt.Sscan(env, &addr, &n); err != nil {
		fmt.Printf("%s=%q: %v\n", clientsEnv, env, err)
		return 1
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
			fmt.Printf("connection %d: %v\n", i, err)
			return 1
		}
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// oneRequest opens a TLS connection to addr and does one request on it.
func oneRequest(addr string, cfg *tls.Config) (*tls.Conn, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(hangTimeout))
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
