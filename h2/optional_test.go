package h2

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

// TestTrailers checks that trailer fields pass both ways: the request's
// reach Request.Trailer once the body has ended, the fields the handler
// sets in Trailer() reach the client after the content.
func TestTrailers(t *testing.T) {
	ts := start(t, &Server{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
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
	})})
	req, err := http.NewRequest("POST", ts.url("/t"), io.NopCloser(strings.NewReader("payload")))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.Trailer = http.Header{"X-Sum": {"sum-1"}}
	resp, err := ts.client(t).Do(req)
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

// TestEarlyHintsBeforeFinal checks that a 103 sent with WriteInterim
// reaches the client while the handler has not yet answered: the handler
// writes the final response only once the client has seen the 103.
func TestEarlyHintsBeforeFinal(t *testing.T) {
	seen := make(chan struct{})
	handlerErr := make(chan error, 1)
	ts := start(t, &Server{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
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
	})})
	var link string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, hdr textproto.MIMEHeader) error {
		if code == 103 && link == "" {
			link = hdr.Get("Link")
			close(seen)
		}
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", ts.url("/"), nil)
	resp, err := ts.client(t).Do(req)
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

// TestFlushBeforeReturn checks that Flush makes what was written visible
// to the client while the handler still runs: the handler finishes only
// once the client has read the first piece.
func TestFlushBeforeReturn(t *testing.T) {
	release := make(chan struct{})
	ts := start(t, &Server{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		_, _ = w.Write([]byte("first\n"))
		if err := w.(message.Flusher).Flush(); err != nil {
			return
		}
		select {
		case <-release:
		case <-time.After(hangTimeout):
		}
		_, _ = w.Write([]byte("second\n"))
	})})
	resp, err := ts.client(t).Get(ts.url("/"))
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

// TestAbortResetsTheStream checks that a response the handler aborts
// after part of its body reaches the client as broken, not as a short
// whole.
func TestAbortResetsTheStream(t *testing.T) {
	ts := start(t, &Server{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		_, _ = w.Write([]byte("part"))
		_ = w.(message.Flusher).Flush()
		w.(message.Aborter).Abort()
	})})
	resp, err := ts.client(t).Get(ts.url("/"))
	if err != nil {
		return // the reset came before the head was read: broken too
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Errorf("read %q and a clean end; want an error after the aborted body", body)
	}
}
