package h1

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// errorResponse is the exact response h1 sends when it refuses a request.
func errorResponse(status int, altSvc string) string {
	reason := reasonPhrase(status)
	alt := ""
	if altSvc != "" {
		alt = "Alt-Svc: " + altSvc + "\r\n"
	}
	return fmt.Sprintf("HTTP/1.1 %d %s\r\nDate: X\r\nServer: anx\r\nContent-Type: text/plain; charset=utf-8\r\n"+
		"Connection: close\r\n%sContent-Length: %d\r\n\r\n%s\n", status, reason, alt, len(reason)+1, reason)
}

// TestRefusedRequestsOnTheWire sends every refused head of the parser
// table, followed in the same bytes by a valid pipelined request. The
// server must answer the first with its status and Connection: close, then
// close without ever answering, or even reading as a request, the second
// (RFC 9112 section 11.2: after a framing error, the rest of the bytes
// cannot be trusted).
func TestRefusedRequestsOnTheWire(t *testing.T) {
	rec := &recorder{}
	addr := serve(t, &Server{Handler: rec})
	const next = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, c := range refusedRequests {
		got := exchange(t, addr, c.raw+next)
		if want := errorResponse(c.status, ""); got != want {
			t.Errorf("%s:\n%q\ngot  %q\nwant %q", c.name, trimForLog(c.raw), trimForLog(got), want)
		}
	}
	if seen := rec.requests(); len(seen) > 0 {
		t.Errorf("the handler served %q; every request should have been refused", seen)
	}
}

// TestSmugglingInTheBody covers attacks that only show once the body is
// read: the framing is refused mid-body, and the bytes after it are never
// taken for a request, whether the handler reads the body or not.
func TestSmugglingInTheBody(t *testing.T) {
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	cases := []struct {
		name, raw string
		status    int // of the response to the first request
	}{
		{"bare LF after chunk size (RFC 9112 §7.1)",
			"POST /r HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400},
		{"chunk data longer than its size",
			"POST /r HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", 400},
		{"chunk size overflow",
			"POST /r HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nx\r\n0\r\n\r\n", 400},
		{"bare LF in trailer",
			"POST /r HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\n\r\n", 400},
	}
	for _, c := range cases {
		for _, reads := range []bool{true, false} {
			rec := &recorder{}
			var h handlerFunc = rec.Serve
			if !reads {
				h = func(w mrw, r *mreq) {
					rec.mu.Lock()
					rec.seen = append(rec.seen, r.Path)
					rec.mu.Unlock()
					w.Write([]byte("ok"))
				}
			}
			addr := serve(t, &Server{Handler: h})
			c2, br := dial(t, addr)
			send(t, c2, c.raw+smuggled)
			resp, _ := readResponse(t, br, "POST")
			want, wantClose := c.status, true
			if !reads {
				// The handler answered before the body was looked at;
				// the error shows when h1 drains the body after it, and
				// the connection closes without a Connection: close.
				want, wantClose = 200, false
			}
			if resp.StatusCode != want || resp.Close != wantClose {
				t.Errorf("%s (handler reads body: %v): status %d close %v, want %d close %v",
					c.name, reads, resp.StatusCode, resp.Close, want, wantClose)
			}
			expectEOF(t, br)
			if seen := rec.requests(); !slices.Equal(seen, []string{"/r"}) && !slices.Equal(seen, []string{"POST /r"}) {
				t.Errorf("%s: handler saw %q, want only /r", c.name, seen)
			}
		}
	}
}

func TestErrorResponseCarriesAltSvc(t *testing.T) {
	const alt = `h3=":443"; ma=86400`
	addr := serve(t, &Server{Handler: &recorder{}, AltSvc: alt})
	expectExchange(t, addr, "GET / HTTP/1.1\r\n\r\n", errorResponse(400, alt))
	got := exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if !strings.Contains(got, "\r\nAlt-Svc: "+alt+"\r\n") {
		t.Errorf("a handler's response lacks Alt-Svc: %q", got)
	}
}
