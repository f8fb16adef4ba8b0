//go:build linux

package proxy

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// TestOutOfDescriptorsDoesNotMarkUpstreamDown runs in a child process
// whose descriptors are used up: a request that cannot open a socket gets
// 502, and the upstream is not taken out, since the fault is anx's own.
func TestOutOfDescriptorsDoesNotMarkUpstreamDown(t *testing.T) {
	if os.Getenv("ANX_PROXY_EMFILE_CHILD") == "1" {
		outOfDescriptorsChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOutOfDescriptorsDoesNotMarkUpstreamDown$", "-test.v")
	cmd.Env = append(os.Environ(), "ANX_PROXY_EMFILE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the child failed: %v\n%s", err, out)
	}
}

func outOfDescriptorsChild(t *testing.T) {
	up, n := echoUpstream(t, "a")
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: up.URL}}})
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// Use up every descriptor below a low limit.
	low := lim
	low.Cur = 64
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	var held []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		held = append(held, f)
	}
	rc := serve(h, request("GET", "/", ""))
	for _, f := range held {
		f.Close()
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if rc.status != 502 {
		t.Errorf("out of descriptors: got %d, want 502", rc.status)
	}
	if !h.ups[0].available(h.ups[0].downUntil.Load()) || h.ups[0].downUntil.Load() != 0 {
		t.Error("the upstream was marked down for anx's own shortage")
	}
	if rc := serve(h, request("GET", "/", "")); rc.status != 200 || n.Load() != 1 {
		t.Errorf("with descriptors again: got %d after %d upstream requests, want 200 and 1", rc.status, n.Load())
	}
}
