package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fixed parameters of the HTTP/2 loads beyond h2-1k (the report states them).
const (
	h2ManyConns = 1000 // connections of h2-c1000
	// requests in flight on each connection: with one, h2load's one thread
	// was the limit (about 12k req/s for anx, nginx and h2o alike, h2load
	// at ~95% of a core); with four every server got 3-4 times that
	h2ManyStreams = 4
	// h2load's warm-up of h2-c1000: its 1000 TLS handshakes happen before
	// the measured time, so that req/s is the served rate, not the
	// handshake rate (the handshakes load measures that)
	h2ManyWarmUp = 2 * time.Second
)

// h2cLoad measures req/s of h2c GETs of the small file with prior
// knowledge, on the port where the server takes h2c.
func h2cLoad(ctx context.Context, in *instance, d time.Duration) (map[string]float64, error) {
	return h2loadRun(ctx, d, "-t1", "-c16", "-m16", "-D", seconds(d), in.h2cURL("/"+smallFile))
}

// h2ManyLoad measures req/s and failures of h2 GETs of the small file over
// h2ManyConns TLS connections, and how many of them are not established
// at 3/4 of the measured time (h2load counts nothing when the server
// closes a connection with no request in flight).
func h2ManyLoad(ctx context.Context, in *instance, d time.Duration) (map[string]float64, error) {
	established := make(chan int, 1)
	sampleCtx, stopSample := context.WithCancel(ctx)
	defer stopSample()
	go func() { // owned by h2ManyLoad: sends once, at the sample time or when the load ends
		select {
		case <-time.After(h2ManyWarmUp + d*3/4):
			n, err := establishedTo(in.httpsPort)
			if err != nil {
				n = -1
			}
			established <- n
		case <-sampleCtx.Done():
			established <- -1
		}
	}()
	vals, err := h2loadRun(ctx, d+h2ManyWarmUp, "-t1", fmt.Sprintf("-c%d", h2ManyConns), fmt.Sprintf("-m%d", h2ManyStreams),
		"--warm-up-time", seconds(h2ManyWarmUp), "-D", seconds(d), in.httpsURL("/"+smallFile))
	stopSample()
	n := <-established
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, errors.New("h2-c1000: the connections could not be counted before h2load ended")
	}
	vals["conns_down"] = float64(max(0, h2ManyConns-n))
	return vals, nil
}

// establishedTo counts the IPv4 TCP sockets of this machine in state
// ESTABLISHED whose remote end is 127.0.0.1:port: the clients' side of
// the connections to a server on that port.
func establishedTo(port int) (int, error) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	n := 0
	for line := range strings.Lines(string(b)) {
		// sl local_address rem_address st ...; st 01 is ESTABLISHED
		if f := strings.Fields(line); len(f) > 3 && f[2] == want && f[3] == "01" {
			n++
		}
	}
	return n, nil
}

// h2loadRun runs h2load with args (bounded by d and slack) and returns its
// succeeded req/s and, as errors, its failed, errored and timed-out
// requests plus the clients that could not connect.
func h2loadRun(ctx context.Context, d time.Duration, args ...string) (map[string]float64, error) {
	out, err := tool(ctx, d, "h2load", args...)
	if err != nil {
		return nil, err
	}
	r, err := parseH2load(out)
	if err != nil {
		return nil, err
	}
	if r.Succeeded == 0 {
		return nil, fmt.Errorf("h2load: no request succeeded (%d failed): %q", r.Failed, clip(out))
	}
	return map[string]float64{"req_s": r.ReqPerSec, "errors": float64(r.Failed + r.NoConnect)}, nil
}

// idleH2Load opens idleConns TLS connections with ALPN h2, each after one
// GET of the small file, and divides the server's RSS growth by the live
// ones. One connection made before the baseline takes what the server
// allocates once for its first h2 connection.
func idleH2Load(ctx context.Context, in *instance, _ time.Duration) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	const settle = time.Second
	tr := h2Transport()
	defer tr.CloseIdleConnections()
	first, fails := openIdleH2(ctx, tr, in, 1)
	defer closeAll(first)
	if len(first) != 1 {
		return nil, fmt.Errorf("h2: the first connection failed (%d)", fails)
	}
	time.Sleep(settle)
	base, err := in.rss()
	if err != nil {
		return nil, err
	}
	conns, failed := openIdleH2(ctx, tr, in, idleConns)
	defer closeAll(conns)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	time.Sleep(settle)
	now, err := in.rss()
	if err != nil {
		return nil, err
	}
	live := countLiveH2(conns)
	if live == 0 {
		return nil, fmt.Errorf("h2: no connection stayed open (%d failed)", failed)
	}
	failed += len(conns) - live
	return map[string]float64{"h2_kib": float64(now-base) / float64(live) / 1024, "errors": float64(failed)}, nil
}

// h2Transport returns the transport of the idle h2 client: HTTP/2 over TLS
// only, no compression, certificates not verified (as h2load).
func h2Transport() *http.Transport {
	tr := &http.Transport{TLSClientConfig: clientTLS("h2"), DisableCompression: true, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP2(true)
	return tr
}

// openIdleH2 opens n connections to in's TLS port with tr, 32 at a time,
// and makes one GET of the small file on each; it returns the connections
// that answered it over HTTP/2 and the number that failed (closed).
func openIdleH2(ctx context.Context, tr *http.Transport, in *instance, n int) ([]*http.ClientConn, int) {
	const parallel = 32
	var (
		mu     sync.Mutex
		conns  []*http.ClientConn
		failed int
		next   atomic.Int64
		wg     sync.WaitGroup
	)
	for range parallel {
		wg.Go(func() {
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				cc, err := oneH2Request(ctx, tr, in)
				mu.Lock()
				if err != nil {
					failed++
				} else {
					conns = append(conns, cc)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return conns, failed
}

// oneH2Request opens a connection, GETs the small file over HTTP/2 on it
// and returns it open; on an error the connection is closed.
func oneH2Request(ctx context.Context, tr *http.Transport, in *instance) (*http.ClientConn, error) {
	ctx, cancel := context.WithTimeout(ctx, requestLimit)
	defer cancel()
	cc, err := tr.NewClientConn(ctx, "https", in.httpsAddr())
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.httpsURL("/"+smallFile), nil)
	if err == nil {
		req.Host = "localhost"
		var res *http.Response
		if res, err = cc.RoundTrip(req); err == nil {
			if res.ProtoMajor != 2 {
				err = fmt.Errorf("h2: answered over %s", res.Proto)
			}
			if rerr := readSmall(res); err == nil {
				err = rerr
			}
		}
	}
	if err != nil {
		cc.Close()
		return nil, err
	}
	return cc, nil
}

// countLiveH2 returns how many connections are still usable: neither
// closed by the server nor told to go away.
func countLiveH2(conns []*http.ClientConn) int {
	live := 0
	for _, cc := range conns {
		if cc.Err() == nil {
			live++
		}
	}
	return live
}

// closeAll closes conns.
func closeAll(conns []*http.ClientConn) {
	for _, cc := range conns {
		cc.Close()
	}
}
