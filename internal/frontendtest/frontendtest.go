// Package frontendtest holds the scenarios that check a front end (h2,
// h3) carries the optional abilities of core/message, as core/nethttp
// provides them, to a real client: trailers both ways, a 103 before the
// final response, Flush and Abort. Each front end's tests call every
// scenario through Run with a Start of their own. It is for tests only.
package frontendtest

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// Start serves h with the front end under test on a fresh loopback
// socket and returns the server's base URL ("https://127.0.0.1:port")
// and that front end's real client for it. The server, its goroutines
// and the client's connections are the test's: Start registers their
// closing with t.Cleanup.
type Start func(t *testing.T, h message.Handler) (baseURL string, client http.RoundTripper)

// hangTimeout is the safety net of every wait in these scenarios: it only
// turns a hang into a failure, and is sized for -race on a busy 2-core
// machine and for qemu emulation. No scenario waits it out when it passes.
const hangTimeout = 3 * time.Minute

// Run runs every scenario as a subtest of t, named as the scenario,
// each with a server of its own from start.
func Run(t *testing.T, start Start) {
	scenarios := []struct {
		name string
		run  func(*testing.T, Start)
	}{
		{"Trailers", trailers},
		{"EarlyHintsBeforeFinal", earlyHintsBeforeFinal},
		{"FlushBeforeReturn", flushBeforeReturn},
		{"AbortResetsTheStream", abortResetsTheStream},
	}
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) { s.run(t, start) })
	}
}

// testServer is a server a scenario has started, with its client.
type testServer struct {
	baseURL string
	rt      http.RoundTripper
}

// serve starts h with start.
func serve(t *testing.T, start Start, h message.Handler) *testServer {
	t.Helper()
	baseURL, rt := start(t, h)
	return &testServer{baseURL: baseURL, rt: rt}
}

// client returns an http.Client over the front end's client.
func (ts *testServer) client() *http.Client { return &http.Client{Transport: ts.rt} }

func (ts *testServer) url(path string) string { return ts.baseURL + path }

// trailers checks that trailer fields pass both ways: the request's
// reach Request.Trailer once the body has ended, the fields the handler
// sets in Trailer() reach the client after the content.
func trailers(t *testing.T, start Start) {
	ts := serve(t, start, message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		early := r.Trailer.Get("X-Sum")
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		tw := w.(message.TrailerWriter)
		tw.Trailer().Set("X-Echo", r.Trailer.Get("X-Sum"))
		tw.Trailer().Set("X-Early", "["+early+"]")
		_, _ = w.Write(body)
		tw.Trailer().Set("Grpc-Status", "0")
		tw.Trailer().Set("Connection", "close") // connection-specific: never sent
	}))
	req, err := http.NewRequest("POST", ts.url("/t"), io.NopCloser(strings.NewReader("payload")))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.Trailer = http.Header{"X-Sum": {"sum-1"}}
	resp, err := ts.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "payload" {
		t.Fatalf("body %q, %v; want %q", body, err, "payload")
	}
	for k, want := range map[string]string{"X-Echo": "sum-1", "X-Early": "[]", "Grpc-Status": "0", "Connection": ""} {
		if got := resp.Trailer.Get(k); got != want {
			t.Errorf("response trailer %s = %q, want %q (trailer %v)", k, got, want, resp.Trailer)
		}
	}
	if resp.Header.Get("X-Echo") != "" || resp.Header.Get("Grpc-Status") != "" {
		t.Errorf("trailer fields in the response header: %v", resp.Header)
	}
}

// earlyHintsBeforeFinal checks that a 103 sent with WriteInterim
// reaches the client while the handler has not yet answered: the handler
// writes the final response only once the client has seen the 103.
func earlyHintsBeforeFinal(t *testing.T, start Start) {
	seen := make(chan struct{})
	handlerErr := make(chan error, 1)
	ts := serve(t, start, message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		var hints message.Header
		hints.Set("Link", "</s.css>; rel=preload")
		err := w.(message.InterimWriter).WriteInterim(103, &hints)
		handlerErr <- err
		if err != nil {
			return
		}
		select {
		case <-seen:
		case <-time.After(hangTimeout):
		}
		w.Header().Set("Content-Length", "4")
		_, _ = w.Write([]byte("done"))
	}))
	var link string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, hdr textproto.MIMEHeader) error {
		if code == 103 && link == "" {
			link = hdr.Get("Link")
			close(seen)
		}
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", ts.url("/"), nil)
	resp, err := ts.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := <-handlerErr; err != nil {
		t.Fatalf("WriteInterim: %v", err)
	}
	if link != "</s.css>; rel=preload" || resp.StatusCode != 200 || string(body) != "done" || resp.Header.Get("Link") != "" {
		t.Errorf("103 Link %q, final %d %q with Link %q; want the Link in the 103 only, then 200 \"done\"",
			link, resp.StatusCode, body, resp.Header.Get("Link"))
	}
}

// flushBeforeReturn checks that Flush makes what was written visible
// to the client while the handler still runs: the handler finishes only
// once the client has read the first piece.
func flushBeforeReturn(t *testing.T, start Start) {
	release := make(chan struct{})
	ts := serve(t, start, message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		_, _ = w.Write([]byte("first\n"))
		if err := w.(message.Flusher).Flush(); err != nil {
			return
		}
		select {
		case <-release:
		case <-time.After(hangTimeout):
		}
		_, _ = w.Write([]byte("second\n"))
	}))
	resp, err := ts.client().Get(ts.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	close(release)
	if line != "first\n" || err != nil {
		t.Fatalf("first piece %q, %v; want %q before the handler returns", line, err, "first\n")
	}
	rest, err := io.ReadAll(br)
	if string(rest) != "second\n" || err != nil {
		t.Errorf("rest %q, %v; want %q", rest, err, "second\n")
	}
}

// abortResetsTheStream checks that a response the handler aborts
// after part of its body reaches the client as broken, not as a short
// whole.
func abortResetsTheStream(t *testing.T, start Start) {
	ts := serve(t, start, message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		_, _ = w.Write([]byte("part"))
		_ = w.(message.Flusher).Flush()
		w.(message.Aborter).Abort()
	}))
	resp, err := ts.client().Get(ts.url("/"))
	if err != nil {
		return // the reset came before the head was read: broken too
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Errorf("read %q and a clean end; want an error after the aborted body", body)
	}
}
