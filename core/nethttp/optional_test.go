package nethttp

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"

	"github.com/anx-gateway/anx/core/message"
)

// trailerEcho reads the request content and answers it back, with the
// request's trailer field X-Sum (and whether it was empty before the
// content ended) as the response trailer fields X-Echo and X-Early, and
// X-Late set after the content was written.
func trailerEcho() message.HandlerFunc {
	return func(w message.ResponseWriter, r *message.Request) {
		early := r.Trailer.Len()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		// Announced: net/http's HTTP/1.1 server frames a short answer by
		// Content-Length, with no room for trailer fields, unless so.
		w.Header().Set("Trailer", "X-Echo, X-Early, X-Late")
		tw := w.(message.TrailerWriter)
		tw.Trailer().Set("X-Echo", r.Trailer.Get("X-Sum"))
		tw.Trailer().Set("X-Early", strings.Repeat("x", early+1))
		_, _ = w.Write(body)
		tw.Trailer().Set("X-Late", "after the body")
		tw.Trailer().Set("Connection", "close") // connection-specific: never sent
	}
}

// postWithTrailer sends body with the request trailer X-Sum: sum and
// returns the response body and its trailer fields.
func postWithTrailer(t *testing.T, client *http.Client, url, body, sum string) (string, http.Header) {
	t.Helper()
	req, err := http.NewRequest("POST", url, io.NopCloser(strings.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.Trailer = http.Header{"X-Sum": {sum}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(got), resp.Trailer
}

// checkTrailerEcho checks what trailerEcho answered to postWithTrailer.
func checkTrailerEcho(t *testing.T, body string, trailer http.Header) {
	t.Helper()
	if body != "payload" {
		t.Errorf("body %q, want %q", body, "payload")
	}
	for k, want := range map[string]string{"X-Echo": "sum-1", "X-Early": "x", "X-Late": "after the body", "Connection": ""} {
		if got := trailer.Get(k); got != want {
			t.Errorf("response trailer %s = %q, want %q (trailer %v)", k, got, want, trailer)
		}
	}
}

// TestTrailers checks that request trailer fields reach Request.Trailer
// once the body has ended, and that the fields set in Trailer() reach
// the client as trailer fields.
func TestTrailers(t *testing.T) {
	h := &Handler{Handler: trailerEcho()}
	limited := &Handler{Handler: trailerEcho(), MaxBodyBytes: 100}
	for _, hh := range []*Handler{h, limited} {
		for name, start := range servers(t, hh) {
			client, base := start()
			t.Run(name, func(t *testing.T) {
				body, trailer := postWithTrailer(t, client, base, "payload", "sum-1")
				checkTrailerEcho(t, body, trailer)
			})
		}
	}
}

// TestWriteInterim checks that WriteInterim sends a 103 with its own
// fields, which do not leak into the final response, and refuses what is
// not an interim status or comes after the final one.
func TestWriteInterim(t *testing.T) {
	errs := make(chan []error, 1)
	h := &Handler{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		iw := w.(message.InterimWriter)
		var hints message.Header
		hints.Add("Link", "</a.css>; rel=preload")
		hints.Add("Link", "</b.js>; rel=preload")
		hints.Add("Content-Length", "12")
		w.Header().Set("X-Final", "yes")
		got := []error{iw.WriteInterim(103, &hints), iw.WriteInterim(101, &hints), iw.WriteInterim(200, &hints)}
		w.Header().Set("Content-Length", "4")
		_, _ = w.Write([]byte("done"))
		errs <- append(got, iw.WriteInterim(103, &hints))
	})}
	for name, start := range servers(t, h) {
		client, base := start()
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			var interim []textproto.MIMEHeader
			trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, hdr textproto.MIMEHeader) error {
				mu.Lock()
				defer mu.Unlock()
				if code != 103 {
					t.Errorf("interim status %d, want 103", code)
				}
				interim = append(interim, hdr)
				return nil
			}}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", base, nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got := <-errs
			if got[0] != nil || got[1] == nil || got[2] == nil || got[3] == nil {
				t.Errorf("WriteInterim errors (103, 101, 200, 103 after the final) = %v; want nil then three errors", got)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(interim) != 1 {
				t.Fatalf("%d interim responses, want 1", len(interim))
			}
			if links := interim[0].Values("Link"); len(links) != 2 || links[1] != "</b.js>; rel=preload" {
				t.Errorf("103 Link fields %q, want both", links)
			}
			if interim[0].Get("X-Final") != "" || interim[0].Get("Content-Length") != "" {
				t.Errorf("103 carries %v; want only its own fields, without Content-Length", interim[0])
			}
			if resp.StatusCode != 200 || string(body) != "done" || resp.Header.Get("X-Final") != "yes" || len(resp.Header.Values("Link")) != 0 {
				t.Errorf("final response %d %q, header %v; want 200 \"done\" with X-Final and no Link", resp.StatusCode, body, resp.Header)
			}
		})
	}
}

// TestAbort checks that an aborted response reaches the client as broken:
// a closed connection over HTTP/1.1, a reset stream over HTTP/2.
func TestAbort(t *testing.T) {
	h := &Handler{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		_, _ = w.Write([]byte("part"))
		_ = w.(message.Flusher).Flush()
		w.(message.Aborter).Abort()
	})}
	for name, start := range servers(t, h) {
		client, base := start()
		t.Run(name, func(t *testing.T) {
			resp, err := client.Get(base)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if body, err := io.ReadAll(resp.Body); err == nil {
				t.Errorf("read %q and a clean end; want an error after the aborted body", body)
			}
		})
	}
}
