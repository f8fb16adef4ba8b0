package main

import (
	"testing"

	"github.com/anx-gateway/anx/cmd/anx/internal/config"
)

// An upstream that closes a kept-alive connection just as a request
// arrives on it (its idle timer and the request crossed: it closes
// without reading the request) must not give the client a 502 (issue
// 12: "the Traefik 502 EOF class of bug"): a GET may go again, on a new
// connection, even to the only upstream, and the upstream is not marked
// down for it.
func TestProxyLoopIdleCloseRacingRequestIsRetried(t *testing.T) {
	up := startRawUpstream(t, func(rc *rawConn) {
		if rc.n > 1 {
			answerPaths(rc)
			return
		}
		req, err := rc.request()
		if err != nil {
			return
		}
		if _, err := rc.c.Write(pathAnswer(req.RequestURI)); err != nil {
			return
		}
		rc.br.Peek(1) // the next request has arrived: close without reading it
	})
	gw := startProxyGateway(t, config.Route{}, up.url)
	cl := dialGateway(t, gw)
	resp, body := cl.get("/first")
	wantPathAnswer(t, resp, body, "/first")
	resp, body = cl.get("/second")
	if resp.StatusCode != 200 || body != "path /second" {
		t.Errorf("GET /second, on the connection the upstream closed: %d %q, want 200 %q", resp.StatusCode, body, "path /second")
	}
	// Nor is the upstream marked down for it (passive health).
	resp, body = cl.get("/third")
	if resp.StatusCode != 200 || body != "path /third" {
		t.Errorf("GET /third: %d %q, want 200 %q", resp.StatusCode, body, "path /third")
	}
	if n := up.accepted.Load(); n != 2 {
		t.Errorf("the upstream accepted %d connections, want 2 (the second request went again on a new one)", n)
	}
}

// A client that goes away while the upstream has not answered yet gets
// its upstream request dropped: the gateway closes the upstream
// connection instead of holding it until the response header timeout
// (as nginx does, proxy_ignore_client_abort off): the client's
// connection, paused while its response is deferred, hears of the close
// (netpoll's HangupHandler).
func TestProxyLoopClientGoneBeforeResponseHeadClosesUpstream(t *testing.T) {
	requested := make(chan struct{})
	upstreamClosed := make(chan bool, 1)
	up := startRawUpstream(t, func(rc *rawConn) {
		if _, err := rc.request(); err != nil {
			return
		}
		close(requested)
		upstreamClosed <- rc.closedByGateway()
	})
	route := pooledForLong()
	route.ResponseHeaderTimeout = config.Duration{Duration: 2 * safetyNet}
	gw := startProxyGateway(t, route, up.url)
	cl := dialGateway(t, gw)
	cl.send(request("GET", "/long-poll"))
	receive(t, requested, "the upstream's request")
	cl.c.Close()
	if !receive(t, upstreamClosed, "the gateway to close the upstream connection of a client that left") {
		t.Error("the upstream connection of a client that left was not closed")
	}
}
