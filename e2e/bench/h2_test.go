package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// startFiles starts sp serving the bench site (files role) on free ports
// of 127.0.0.1; it is stopped by its process group when the test ends.
func startFiles(ctx context.Context, t *testing.T, name, tmp string, f files) *instance {
	t.Helper()
	bin := need(t, name)
	dir := filepath.Join(tmp, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := start(ctx, specNamed(t, name), serveFiles, nil, bin, dir, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.stop)
	return in
}

// h2cClient speaks HTTP/2 with prior knowledge to http:// URLs, as h2load does.
func h2cClient() *http.Client {
	tr := &http.Transport{DisableCompression: true, Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Timeout: time.Minute, Transport: tr}
}

// TestH2CListeners starts nginx and h2o serving files and checks the h2c
// port of each: a request with prior knowledge gets the small file over
// HTTP/2; nginx's port is its own and takes no HTTP/1.1 (the reason it has
// one), h2o's is its HTTP/1.1 port. Then the h2c-1k load runs a second on
// it without failures.
func TestH2CListeners(t *testing.T) {
	need(t, "h2load")
	tmp, f := benchFiles(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a safety net
	defer cancel()
	for _, c := range []struct {
		name    string
		ownPort bool
	}{{"nginx", true}, {"h2o", false}} {
		t.Run(c.name, func(t *testing.T) {
			in := startFiles(ctx, t, c.name, tmp, f)
			if got := in.h2cPort != in.httpPort; got != c.ownPort || in.h2cPort == 0 {
				t.Fatalf("h2c port %d, http port %d: want own port %v", in.h2cPort, in.httpPort, c.ownPort)
			}
			res, err := h2cClient().Get(in.h2cURL("/" + smallFile))
			if err != nil {
				t.Fatal(err)
			}
			if res.ProtoMajor != 2 {
				t.Errorf("h2c port answered over %s, want HTTP/2.0", res.Proto)
			}
			if err := readSmall(res); err != nil {
				t.Errorf("h2c: %v", err)
			}
			h1 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			res, err = h1.Get(in.h2cURL("/" + smallFile))
			if err == nil {
				err = readSmall(res)
			}
			if c.ownPort && err == nil {
				t.Error("nginx's h2c port served HTTP/1.1 too; the bench gives it its own port because it cannot")
			}
			if !c.ownPort && err != nil {
				t.Errorf("HTTP/1.1 on the port shared with h2c: %v", err)
			}
			vals, err := h2cLoad(ctx, in, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if vals["req_s"] <= 0 || vals["errors"] != 0 {
				t.Errorf("h2c-1k on %s: %v, want req/s > 0 and 0 failed", c.name, vals)
			}
		})
	}
}

// TestIdleH2Connections opens idle h2 connections to nginx with the
// idle-rss-h2 client: each answers its GET over HTTP/2 and stays open.
func TestIdleH2Connections(t *testing.T) {
	tmp, f := benchFiles(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	in := startFiles(ctx, t, "nginx", tmp, f)
	tr := h2Transport()
	defer tr.CloseIdleConnections()
	const n = 50
	conns, failed := openIdleH2(ctx, tr, in, n)
	defer closeAll(conns)
	if len(conns) != n || failed != 0 {
		t.Fatalf("opened %d, %d failed; want %d and 0", len(conns), failed, n)
	}
	if live := countLiveH2(conns); live != n {
		t.Errorf("%d of %d connections live, want all", live, n)
	}
	est, err := establishedTo(in.httpsPort)
	if err != nil {
		t.Fatal(err)
	}
	if est < n {
		t.Errorf("%d connections established to nginx's TLS port, want at least %d", est, n)
	}
	closeAll(conns)
	if live := countLiveH2(conns); live != 0 {
		t.Errorf("%d connections live after Close, want 0", live)
	}
}

// TestEstablishedTo counts the client ends of connections to a listener:
// three dialled, then one closed (its end leaves ESTABLISHED at once).
func TestEstablishedTo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // owned by the test: accepts until the listener closes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	// The server's accepted ends have port as local port: not counted.
	if n, err := establishedTo(port); err != nil || n != 3 {
		t.Errorf("establishedTo = %d, %v; want 3", n, err)
	}
	conns[0].Close()
	if n, err := establishedTo(port); err != nil || n != 2 {
		t.Errorf("after one Close: establishedTo = %d, %v; want 2", n, err)
	}
}

// TestH2ManyOnNginx runs the h2-c1000 load for a few seconds on nginx,
// which keeps all 1000 connections and fails no request.
func TestH2ManyOnNginx(t *testing.T) {
	need(t, "h2load")
	tmp, f := benchFiles(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	in := startFiles(ctx, t, "nginx", tmp, f)
	vals, err := h2ManyLoad(ctx, in, 4*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if vals["req_s"] <= 0 || vals["errors"] != 0 || vals["conns_down"] != 0 {
		t.Errorf("h2-c1000 on nginx: %v, want req/s > 0, 0 failed, 0 conns down", vals)
	}
}
