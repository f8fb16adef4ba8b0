package main

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"time"
)

// Fixed parameters of the loads (the report states them).
const (
	idleConns   = 4000 // idle keep-alive connections per kind (plain, TLS)
	latencyRate = 2000 // req/s of the open-loop latency load
	// req/s of each of proxy-latency's two streams (direct and through the
	// proxy, at the same time): well below what every proxy serves here
	proxyLatencyRate = 1000
	h3Conns          = 4  // QUIC connections of the h3 load
	h3Streams        = 16 // concurrent requests per QUIC connection
	toolSlack        = 30 * time.Second
	requestLimit     = 5 * time.Second // per request of the Go clients, and wrk's --timeout
)

// metric is one number a load produces.
type metric struct {
	Key   string `json:"key"`
	Unit  string `json:"unit"`
	Lower bool   `json:"lower_is_better,omitempty"`
}

// load is one measurement, run on every server that can take it.
type load struct {
	name    string   // the -only name
	title   string   // for the table and chart
	how     string   // the tool and its parameters, for the report
	metrics []metric // shown in the table; the first is the chart's
	h3      bool     // needs HTTP/3
	h2c     bool     // needs h2c with prior knowledge (spec.h2c)
	role    role     // what the server does: serve the site (zero) or proxy to the upstream
	fresh   bool     // each run needs a freshly started server (memory freed by earlier work would be reused)
	// run measures once for about d and returns metric values by key; it
	// may add "errors" (failed requests), which the progress line shows.
	run func(ctx context.Context, in *instance, d time.Duration) (map[string]float64, error)
}

// reqPerSec is the metric of completed requests per second.
func reqPerSec() metric { return metric{Key: "req_s", Unit: "req/s"} }

// failures is the metric of failed requests or connections (summed over a run).
func failures() metric { return metric{Key: "errors", Unit: "failed", Lower: true} }

// loads returns every load in the order they run.
func loads() []*load {
	return append([]*load{
		{name: "h1-plain-1k", title: "HTTP/1.1 plain, 1 KiB", how: "wrk -t1 -c64, keep-alive",
			metrics: []metric{reqPerSec()}, run: wrkLoad(64, false, "/"+smallFile)},
		{name: "h1-plain-10m", title: "HTTP/1.1 plain, 10 MiB", how: "wrk -t1 -c4, keep-alive",
			metrics: []metric{{Key: "mb_s", Unit: "MB/s"}}, run: wrkLoad(4, false, "/"+largeFile)},
		{name: "h1-tls-1k", title: "HTTP/1.1 TLS, 1 KiB", how: "wrk -t1 -c64, keep-alive",
			metrics: []metric{reqPerSec()}, run: wrkLoad(64, true, "/"+smallFile)},
		{name: "h2-1k", title: "HTTP/2, 1 KiB", how: "h2load -t1 -c16 -m16",
			metrics: []metric{reqPerSec()}, run: h2Load},
		{name: "h2c-1k", title: "HTTP/2 cleartext (h2c), 1 KiB", h2c: true,
			how: "h2load -t1 -c16 -m16 to an http:// URL: h2c with prior knowledge; anx and h2o take it on their plain HTTP/1.1 port " +
				"(told apart by the preface), nginx 1.22 on a listener of its own (`listen ... http2` without ssl takes h2c only) in a server block with sendfile off " +
				"(on, its h2c responses wait ~40 ms each at low concurrency; h2 over TLS never uses sendfile); " +
				"Caddy: n/a (no h2c in its config)",
			metrics: []metric{reqPerSec(), failures()}, run: h2cLoad},
		{name: "h2-c1000", title: "HTTP/2 with 1000 connections, TLS 1 KiB",
			how: fmt.Sprintf("h2load -t1 -c%d -m%d over TLS (ALPN h2), %s of warm-up (the handshakes) before the measured time; "+
				"failed = h2load's failed + errored + timeout + clients that could not connect; conns down = connections to the server "+
				"not established (/proc/net/tcp) at 3/4 of the measured time, since h2load counts no failure for a connection the server closes", h2ManyConns, h2ManyStreams, seconds(h2ManyWarmUp)),
			metrics: []metric{reqPerSec(), failures(), {Key: "conns_down", Unit: "conns down", Lower: true}}, run: h2ManyLoad},
		{name: "c1000", title: "1000 connections, plain 1 KiB", how: "wrk -t1 -c1000, keep-alive",
			metrics: []metric{reqPerSec(), failures()}, run: wrkLoad(1000, false, "/"+smallFile)},
		{name: "h3-1k", title: "HTTP/3, 1 KiB", h3: true,
			how:     fmt.Sprintf("Go client on quic-go http3: %d connections x %d concurrent requests", h3Conns, h3Streams),
			metrics: []metric{reqPerSec(), failures()}, run: h3Load},
		{name: "handshakes", title: "new TLS connection per request", how: "wrk -t1 -c16 https with Connection: close: a full TLS 1.3 handshake per request (wrk resumes no sessions)",
			metrics: []metric{{Key: "hs_s", Unit: "handshakes/s"}, failures()}, run: handshakeLoad},
		{name: "idle-rss", title: "RSS per idle keep-alive connection",
			how:     fmt.Sprintf("%d plain then %d TLS connections, one request each, held idle; server VmRSS (whole process group) delta / connections; a freshly started server each run", idleConns, idleConns),
			metrics: []metric{{Key: "plain_kib", Unit: "KiB/conn plain", Lower: true}, {Key: "tls_kib", Unit: "KiB/conn TLS", Lower: true}},
			fresh:   true, run: idleLoad},
		{name: "idle-rss-h2", title: "RSS per idle HTTP/2 connection (TLS)",
			how: fmt.Sprintf("%d TLS connections with ALPN h2 from a Go client (net/http's ClientConn, HTTP/2 only: its preface and SETTINGS, "+
				"one GET of the 1 KiB file), held idle with the client still reading; server VmRSS (whole process group) delta / live connections; "+
				"a freshly started server each run, given one h2 connection before the baseline; compare idle-rss's TLS figure (HTTP/1.1)", idleConns),
			metrics: []metric{{Key: "h2_kib", Unit: "KiB/conn h2", Lower: true}},
			fresh:   true, run: idleH2Load},
		{name: "latency", title: fmt.Sprintf("latency at %d req/s, TLS 1 KiB", latencyRate),
			how:     fmt.Sprintf("Go open-loop client, HTTP/1.1 over TLS keep-alive, %d req/s fixed, latency from the scheduled send time", latencyRate),
			metrics: []metric{{Key: "p99_ms", Unit: "ms p99", Lower: true}, {Key: "p50_ms", Unit: "ms p50", Lower: true}, failures()},
			run:     latencyLoad},
		{name: "proxy-h1", title: "proxy: HTTP/1.1 plain, 1 KiB", how: "wrk -t1 -c64, keep-alive, through the proxy" + toUpstream,
			role: proxyToUpstream, metrics: []metric{reqPerSec()}, run: wrkLoad(64, false, "/"+smallFile)},
		{name: "proxy-h1-tls", title: "proxy: HTTP/1.1 TLS, 1 KiB", how: "wrk -t1 -c64, keep-alive, through the proxy" + toUpstream,
			role: proxyToUpstream, metrics: []metric{reqPerSec()}, run: wrkLoad(64, true, "/"+smallFile)},
		{name: "proxy-h2", title: "proxy: HTTP/2, 1 KiB", how: "h2load -t1 -c16 -m16, through the proxy" + toUpstream,
			role: proxyToUpstream, metrics: []metric{reqPerSec()}, run: h2Load},
		{name: "proxy-latency", title: fmt.Sprintf("proxy: latency at %d req/s, plain 1 KiB", proxyLatencyRate), role: proxyToUpstream,
			how: fmt.Sprintf("Go open-loop client, HTTP/1.1 plain keep-alive, %d req/s fixed straight to the upstream and %d req/s at the same time through the proxy"+
				toUpstream+"; added = through - direct", proxyLatencyRate, proxyLatencyRate),
			metrics: []metric{{Key: "p99_ms", Unit: "ms p99 through", Lower: true}, {Key: "direct_p99_ms", Unit: "ms p99 direct", Lower: true},
				{Key: "added_p99_ms", Unit: "ms p99 added", Lower: true}, {Key: "p50_ms", Unit: "ms p50 through", Lower: true}, failures()},
			run: proxyLatencyLoad(proxyLatencyRate)},
	}, tunnelLoads()...)
}

// toUpstream ends the description of a proxy load.
const toUpstream = " to one upstream nginx (1 worker, serving the file, plain HTTP/1.1 keep-alive), not the server under test"

// tool runs a load generator bounded by d plus slack and returns its output.
func tool(ctx context.Context, d time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d+toolSlack)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("%s: %w", name, ctx.Err())
	}
	// wrk exits 1 when it cannot connect: the parser says what went wrong.
	_ = err
	return string(out), nil
}

// wrkArgs returns wrk's arguments for one thread, c connections and d.
func wrkArgs(c int, d time.Duration, extra ...string) []string {
	args := []string{"-t1", "-c" + strconv.Itoa(c), "-d" + seconds(d), "--timeout", seconds(requestLimit)}
	return append(args, extra...)
}

// seconds formats d as whole seconds (at least 1) for wrk and h2load.
func seconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second))) + "s"
}

// wrkLoad measures req/s and MB/s of keep-alive GETs of path.
func wrkLoad(conns int, tls bool, path string) func(context.Context, *instance, time.Duration) (map[string]float64, error) {
	return func(ctx context.Context, in *instance, d time.Duration) (map[string]float64, error) {
		url := in.httpURL(path)
		if tls {
			url = in.httpsURL(path)
		}
		out, err := tool(ctx, d, "wrk", wrkArgs(conns, d, url)...)
		if err != nil {
			return nil, err
		}
		r, err := parseWrk(out)
		if err != nil {
			return nil, err
		}
		return map[string]float64{"req_s": r.ReqPerSec, "mb_s": r.MBPerSec(), "errors": float64(r.Errors)}, nil
	}
}

// h2Load measures req/s of h2 GETs of the small file.
func h2Load(ctx context.Context, in *instance, d time.Duration) (map[string]float64, error) {
	out, err := tool(ctx, d, "h2load", "-t1", "-c16", "-m16", "-D", seconds(d), in.httpsURL("/"+smallFile))
	if err != nil {
		return nil, err
	}
	r, err := parseH2load(out)
	if err != nil {
		return nil, err
	}
	return map[string]float64{"req_s": r.ReqPerSec, "errors": float64(r.Failed)}, nil
}

// handshakeLoad measures full TLS handshakes per second: wrk asks each
// response to close the connection and opens a new one, without resumption.
func handshakeLoad(ctx context.Context, in *instance, d time.Duration) (map[string]float64, error) {
	args := wrkArgs(16, d, "-H", "Connection: close", in.httpsURL("/"+smallFile))
	out, err := tool(ctx, d, "wrk", args...)
	if err != nil {
		return nil, err
	}
	r, err := parseWrk(out)
	if err != nil {
		return nil, err
	}
	return map[string]float64{"hs_s": r.ReqPerSec, "errors": float64(r.Errors)}, nil
}
