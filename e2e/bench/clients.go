package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// clientTLS returns the TLS config of the Go clients. Like wrk and h2load,
// they do not verify the certificate: the client's cost stays the same
// whichever server is measured (anx's leaf comes from its own CA).
func clientTLS(alpn ...string) *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: alpn} //nolint:gosec // a benchmark on loopback
}

// h3Load runs h3Conns QUIC connections with h3Streams requests in flight
// on each for d, and counts completed and failed requests.
func h3Load(ctx context.Context, in *instance, d time.Duration) (map[string]float64, error) {
	addr := in.httpsAddr()
	var ok, failed atomic.Int64
	transports := make([]*http3.Transport, h3Conns)
	for i := range transports {
		transports[i] = &http3.Transport{
			TLSClientConfig:    clientTLS(http3.NextProtoH3),
			DisableCompression: true,
			QUICConfig:         &quic.Config{HandshakeIdleTimeout: requestLimit, MaxIdleTimeout: 30 * time.Second},
			Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
				return quic.DialAddr(ctx, addr, tc, qc)
			},
		}
		defer transports[i].Close()
	}
	url := in.httpsURL("/" + smallFile)
	get := func(ctx context.Context, rt http.RoundTripper) error {
		ctx, cancel := context.WithTimeout(ctx, requestLimit)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		res, err := rt.RoundTrip(req)
		if err != nil {
			return err
		}
		return readSmall(res)
	}
	// Handshake every connection before the clock starts.
	for _, tr := range transports {
		if err := get(ctx, tr); err != nil {
			return nil, fmt.Errorf("h3: first request: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for _, tr := range transports {
		for range h3Streams {
			wg.Go(func() {
				for time.Now().Before(deadline) && ctx.Err() == nil {
					if get(ctx, tr) == nil {
						ok.Add(1)
					} else {
						failed.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	elapsed := time.Since(start).Seconds()
	return map[string]float64{"req_s": float64(ok.Load()) / elapsed, "errors": float64(failed.Load())}, nil
}

// idleLoad opens idleConns plain connections, then idleConns TLS ones, each
// after one request, and divides the server's RSS growth by the live ones.
func idleLoad(ctx context.Context, in *instance, _ time.Duration) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	const settle = time.Second
	time.Sleep(settle)
	base, err := in.rss()
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: requestLimit}
	plain := func(ctx context.Context) (net.Conn, net.Conn, error) {
		c, err := dialer.DialContext(ctx, "tcp", in.httpAddr())
		return c, c, err
	}
	secure := func(ctx context.Context) (net.Conn, net.Conn, error) {
		raw, err := dialer.DialContext(ctx, "tcp", in.httpsAddr())
		if err != nil {
			return nil, nil, err
		}
		c := tls.Client(raw, clientTLS("http/1.1"))
		if err := c.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, nil, err
		}
		return c, raw, nil
	}
	var all []net.Conn
	defer func() {
		for _, c := range all {
			c.Close()
		}
	}()
	out := map[string]float64{}
	prev := base
	var failed int
	for _, kind := range []struct {
		key  string
		dial func(context.Context) (net.Conn, net.Conn, error)
	}{{"plain_kib", plain}, {"tls_kib", secure}} {
		raws, fails := openIdle(ctx, kind.dial)
		all = append(all, raws...)
		failed += fails
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		time.Sleep(settle)
		live := countLive(raws)
		now, err := in.rss()
		if err != nil {
			return nil, err
		}
		if live == 0 {
			return nil, fmt.Errorf("%s: no connection stayed open (%d failed)", kind.key, fails)
		}
		failed += len(raws) - live
		out[kind.key] = float64(now-prev) / float64(live) / 1024
		prev = now
	}
	out["errors"] = float64(failed)
	return out, nil
}

// openIdle opens idleConns connections with dial, sends one GET of the small
// file on each and reads the response; it returns the raw sockets of those
// that worked and the number that failed.
func openIdle(ctx context.Context, dial func(context.Context) (net.Conn, net.Conn, error)) ([]net.Conn, int) {
	const parallel = 32
	var (
		mu     sync.Mutex
		raws   []net.Conn
		failed int
		next   atomic.Int64
		wg     sync.WaitGroup
	)
	req := []byte("GET /" + smallFile + " HTTP/1.1\r\nHost: localhost\r\n\r\n")
	for range parallel {
		wg.Go(func() {
			br := bufio.NewReaderSize(nil, 4096)
			for next.Add(1) <= idleConns && ctx.Err() == nil {
				c, raw, err := dial(ctx)
				if err == nil {
					err = oneRequest(c, br, req)
				}
				mu.Lock()
				if err != nil {
					failed++
					if c != nil {
						c.Close()
					}
				} else {
					raws = append(raws, raw) // c (TLS) stays referenced by nothing but the socket
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return raws, failed
}

// oneRequest writes req on c and reads one 200 response of smallSize bytes.
func oneRequest(c net.Conn, br *bufio.Reader, req []byte) error {
	_ = c.SetDeadline(time.Now().Add(requestLimit))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(req); err != nil {
		return err
	}
	br.Reset(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	return readSmall(res)
}

// readSmall reads and closes the body of a response to a GET of the small
// file, and says what is wrong unless it is 200 with exactly smallSize
// bytes.
func readSmall(res *http.Response) error {
	defer res.Body.Close()
	n, err := io.Copy(io.Discard, res.Body)
	if err == nil && (res.StatusCode != http.StatusOK || n != smallSize) {
		err = fmt.Errorf("%s, %d bytes", res.Status, n)
	}
	return err
}

// countLive returns how many sockets the server has not closed: a read
// that times out means open; EOF or a reset means closed.
func countLive(conns []net.Conn) int {
	live := 0
	buf := make([]byte, 1)
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		_, err := c.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			live++
		}
	}
	return live
}

// latencyLoad sends latencyRate GETs per second over HTTP/1.1 + TLS
// keep-alive connections for d (see openLoop).
func latencyLoad(ctx context.Context, in *instance, d time.Duration) (map[string]float64, error) {
	ls, err := openLoop(ctx, latencyRate, d, in.httpsURL("/"+smallFile))
	if err != nil {
		return nil, err
	}
	l := ls[0]
	return map[string]float64{"p99_ms": l.p99, "p50_ms": l.p50, "errors": float64(l.failed)}, nil
}

// latencies are the quantiles of one open-loop stream, in milliseconds.
type latencies struct {
	p50, p99 float64
	failed   int64 // requests that failed (counted at requestLimit)
}

// openLoop sends rate GETs of the small file per second to each of urls
// (http or https) over HTTP/1.1 keep-alive connections for d, open loop:
// each request starts at its scheduled time whatever the earlier ones do,
// and its latency counts from that time (so a stalled client or server is
// not hidden). The streams run at the same time, each on its own
// connections, their sends spread evenly between one another's, so that
// whatever else slows the machine meanwhile slows them alike.
func openLoop(ctx context.Context, rate int, d time.Duration, urls ...string) ([]latencies, error) {
	tr := &http.Transport{
		TLSClientConfig:     clientTLS("http/1.1"),
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
		DisableCompression:  true,
		MaxIdleConnsPerHost: 1024,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: requestLimit}
	get := func(url string) error {
		res, err := client.Get(url)
		if err != nil {
			return err
		}
		return readSmall(res)
	}
	// Warm up: a few connections per stream, handshaken before the clock starts.
	var wg sync.WaitGroup
	for _, u := range urls {
		for range 16 {
			wg.Go(func() { _ = get(u) })
		}
	}
	wg.Wait()

	n := int(float64(rate) * d.Seconds())
	lat := make([][]time.Duration, len(urls))
	for j := range lat {
		lat[j] = make([]time.Duration, n)
	}
	failed := make([]atomic.Int64, len(urls))
	interval := time.Second / time.Duration(rate)
	offset := interval / time.Duration(len(urls))
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		for j, u := range urls {
			at := start.Add(time.Duration(i)*interval + time.Duration(j)*offset)
			if wait := time.Until(at); wait > 0 {
				time.Sleep(wait)
			}
			wg.Go(func() {
				if err := get(u); err != nil {
					failed[j].Add(1)
					lat[j][i] = requestLimit
					return
				}
				lat[j][i] = time.Since(at)
			})
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]latencies, len(urls))
	for j := range urls {
		out[j] = latencies{p50: quantileMS(lat[j], 0.50), p99: quantileMS(lat[j], 0.99), failed: failed[j].Load()}
	}
	return out, nil
}

// quantileMS sorts lat and returns its q quantile (nearest rank below) in milliseconds.
func quantileMS(lat []time.Duration, q float64) float64 {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond)
}
