package proxy

import (
	"net"
	"testing"
)

func TestTraceNamesTheUpstream(t *testing.T) {
	up, _ := echoUpstream(t, "a")
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: up.URL}}})
	r := request("GET", "/", "")
	if rc := serve(h, r); rc.status != 200 {
		t.Fatalf("status %d", rc.status)
	}
	if r.Trace.Upstream != up.URL || r.Trace.UpstreamStatus != 200 || r.Trace.UpstreamTime <= 0 {
		t.Errorf("Trace: upstream %q status %d time %v, want %q 200 and a time", r.Trace.Upstream, r.Trace.UpstreamStatus, r.Trace.UpstreamTime, up.URL)
	}
}

func TestTraceNamesTheUpstreamThatFailed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close() // nothing listens: the connection is refused
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: url}}})
	r := request("GET", "/", "")
	if rc := serve(h, r); rc.status != 502 {
		t.Fatalf("status %d, want 502", rc.status)
	}
	if r.Trace.Upstream != url || r.Trace.UpstreamStatus != 0 {
		t.Errorf("Trace: upstream %q status %d, want %q and 0", r.Trace.Upstream, r.Trace.UpstreamStatus, url)
	}
}
