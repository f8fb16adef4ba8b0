package nethttp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/anx-gateway/anx/core/message"
)

// seen is what a test handler records of the request it served.
type seen struct {
	Method, Path, RawQuery, Host string
	Header                       []message.Field
	Proto                        message.Proto
	ProtoMinor                   int
	ContentLength                int64
	RemoteAddr                   netip.AddrPort
	TLS                          bool
	ServerName                   string
	Body                         string
	BodyErr                      error
}

// record returns a handler that stores what it saw in *got and answers
// "ok".
func record(got *seen) message.HandlerFunc {
	return func(w message.ResponseWriter, r *message.Request) {
		body, err := io.ReadAll(r.Body)
		*got = seen{
			Method: r.Method, Path: r.Path, RawQuery: r.RawQuery, Host: r.Host,
			Header: slices.Clone(r.Header.Fields()), Proto: r.Proto, ProtoMinor: r.ProtoMinor,
			ContentLength: r.ContentLength, RemoteAddr: r.RemoteAddr, TLS: r.TLS,
			ServerName: r.ServerName, Body: string(body), BodyErr: err,
		}
		w.Header().Set("Content-Length", "2")
		_, _ = w.Write([]byte("ok"))
	}
}

func TestTarget(t *testing.T) {
	for _, tc := range []struct {
		method, uri, url string
		path, query      string
	}{
		{"GET", "/a%2Fb/%2e%2e/c?x=%2F&y", "", "/a%2Fb/%2e%2e/c", "x=%2F&y"},
		{"GET", "/%2e%2e/%2e%2e/etc/passwd", "", "/%2e%2e/%2e%2e/etc/passwd", ""},
		{"GET", "/a/../b?", "", "/a/../b", ""},
		{"GET", "//double//slash", "", "//double//slash", ""},
		{"OPTIONS", "*", "", "*", ""},
		{"GET", "http://example.com/p%2F?q=1", "", "/p%2F", "q=1"},
		{"GET", "http://example.com", "", "/", ""},
		{"GET", "http://example.com?q", "", "/", "q"},
		{"CONNECT", "example.com:443", "", "", ""},
		{"GET", "", "http://h/in%20process?z=1", "/in%20process", "z=1"},
	} {
		r := &http.Request{Method: tc.method, RequestURI: tc.uri}
		if tc.url != "" {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			r.URL = u
		}
		path, query := target(r)
		if path != tc.path || query != tc.query {
			t.Errorf("%s %q: got path %q query %q, want %q %q", tc.method, tc.uri, path, query, tc.path, tc.query)
		}
	}
}

// TestRequestOverHTTP1 sends bytes of its own choosing over a real socket,
// so nothing on the client side can clean or re-encode the target.
func TestRequestOverHTTP1(t *testing.T) {
	var got seen
	srv := httptest.NewServer(&Handler{Handler: record(&got)})
	defer srv.Close()

	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "POST /a%2Fb/%2e%2e/c?x=%2F&y HTTP/1.1\r\n" +
		"Host: example.com:8443\r\n" +
		"Zeta: 1\r\nAlpha: a1\r\nX-Multi: one\r\nX-Multi: two\r\n" +
		"Content-Length: 5\r\n\r\nhello"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	want := seen{
		Method: "POST", Path: "/a%2Fb/%2e%2e/c", RawQuery: "x=%2F&y", Host: "example.com:8443",
		Header: []message.Field{
			{Name: "Alpha", Value: "a1"}, {Name: "Content-Length", Value: "5"},
			{Name: "X-Multi", Value: "one"}, {Name: "X-Multi", Value: "two"}, {Name: "Zeta", Value: "1"},
		},
		Proto: message.HTTP1, ProtoMinor: 1, ContentLength: 5,
		RemoteAddr: netip.MustParseAddrPort(c.LocalAddr().String()), Body: "hello",
	}
	if !equalSeen(got, want) {
		t.Errorf("handler saw\n%+v\nwant\n%+v", got, want)
	}
}

// TestRequestOverHTTP2 checks the fields that come from TLS and from the
// HTTP/2 framing (net/http's own HTTP/2 server here; h2 tests x/net's).
func TestRequestOverHTTP2(t *testing.T) {
	var got seen
	srv := httptest.NewUnstartedServer(&Handler{Handler: record(&got)})
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()
	client.Transport.(*http.Transport).TLSClientConfig.ServerName = "example.com"

	resp, err := client.Get(srv.URL + "/%2e%2e/x%2Fy?q=%2F")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("response over HTTP/%d, want 2", resp.ProtoMajor)
	}
	if got.Path != "/%2e%2e/x%2Fy" || got.RawQuery != "q=%2F" {
		t.Errorf("Path %q RawQuery %q, want %q %q", got.Path, got.RawQuery, "/%2e%2e/x%2Fy", "q=%2F")
	}
	if got.Proto != message.HTTP2 || got.ProtoMinor != 0 {
		t.Errorf("Proto %v minor %d, want HTTP/2 minor 0", got.Proto, got.ProtoMinor)
	}
	if !got.TLS || got.ServerName != "example.com" {
		t.Errorf("TLS %v ServerName %q, want true example.com", got.TLS, got.ServerName)
	}
	if got.ContentLength != 0 {
		t.Errorf("ContentLength of a GET = %d, want 0", got.ContentLength)
	}
	for _, f := range got.Header {
		if strings.HasPrefix(f.Name, ":") {
			t.Errorf("pseudo-header %q reached the handler", f.Name)
		}
	}
}

// response is what a client received.
type response struct {
	status int
	header http.Header
	body   string
}

// do sends one request and reads the whole response.
func do(t *testing.T, client *http.Client, method, url string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(body)}
}

// servers starts the handler behind plain HTTP/1.1 and behind HTTP/2 over
// TLS and returns a client and base URL for each.
func servers(t *testing.T, h http.Handler) map[string]func() (*http.Client, string) {
	t.Helper()
	h1 := httptest.NewServer(h)
	t.Cleanup(h1.Close)
	h2 := httptest.NewUnstartedServer(h)
	h2.EnableHTTP2 = true
	h2.StartTLS()
	t.Cleanup(h2.Close)
	t.Cleanup(h1.Client().CloseIdleConnections)
	t.Cleanup(h2.Client().CloseIdleConnections)
	return map[string]func() (*http.Client, string){
		"HTTP/1.1": func() (*http.Client, string) { return h1.Client(), h1.URL },
		"HTTP/2":   func() (*http.Client, string) { return h2.Client(), h2.URL },
	}
}

func TestResponses(t *testing.T) {
	mux := map[string]message.HandlerFunc{
		"/sniff": func(w message.ResponseWriter, r *message.Request) {
			_, _ = w.Write([]byte("<html><body>not sniffed</body></html>"))
		},
		"/204": func(w message.ResponseWriter, r *message.Request) {
			w.WriteHeader(204)
			if n, err := w.Write([]byte("dropped")); n != 7 || err != nil {
				panic("write after 204 did not report success")
			}
		},
		"/304": func(w message.ResponseWriter, r *message.Request) {
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(304)
			_, _ = w.Write([]byte("dropped"))
		},
		"/length": func(w message.ResponseWriter, r *message.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", "5")
			_, _ = w.Write([]byte("hello"))
		},
		"/headers-only": func(w message.ResponseWriter, r *message.Request) {
			w.Header().Set("X-Only", "yes")
		},
		"/multi": func(w message.ResponseWriter, r *message.Request) {
			w.Header().Add("set-cookie", "a=1")
			w.Header().Add("Set-Cookie", "b=2")
			w.Header().Set("Alt-Svc", "clear")
			w.WriteHeader(201)
		},
		"/hop": func(w message.ResponseWriter, r *message.Request) {
			w.Header().Set("Keep-Alive", "timeout=5")
			w.Header().Set("Upgrade", "websocket")
			w.Header().Set("Proxy-Connection", "keep-alive")
			w.Header().Set("X-Kept", "1")
			w.WriteHeader(200)
		},
		"/bad-status": func(w message.ResponseWriter, r *message.Request) {
			w.WriteHeader(42)
		},
		"/early-hints": func(w message.ResponseWriter, r *message.Request) {
			w.Header().Set("Link", "</s.css>; rel=preload")
			w.WriteHeader(103)
			w.Header().Set("Content-Length", "4")
			w.WriteHeader(200)
			_, _ = w.Write([]byte("done"))
		},
	}
	h := &Handler{AltSvc: `h3=":443"; ma=2592000`, Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		mux[r.Path](w, r)
	})}
	for name, start := range servers(t, h) {
		client, base := start()
		t.Run(name, func(t *testing.T) {
			check := func(method, path string, status int, body string, fields map[string][]string) {
				t.Helper()
				got := do(t, client, method, base+path)
				if got.status != status || got.body != body {
					t.Errorf("%s %s: %d %q, want %d %q", method, path, got.status, got.body, status, body)
				}
				for k, want := range fields {
					if v := got.header.Values(k); !slices.Equal(v, want) {
						t.Errorf("%s %s: %s = %q, want %q", method, path, k, v, want)
					}
				}
			}
			altSvc := []string{`h3=":443"; ma=2592000`}
			check("GET", "/sniff", 200, "<html><body>not sniffed</body></html>",
				map[string][]string{"Content-Type": nil, "Alt-Svc": altSvc})
			check("GET", "/204", 204, "", map[string][]string{"Content-Length": nil})
			check("GET", "/304", 304, "", map[string][]string{"Etag": {`"v1"`}})
			check("GET", "/length", 200, "hello", map[string][]string{"Content-Length": {"5"}})
			check("HEAD", "/length", 200, "", map[string][]string{"Content-Length": {"5"}, "Content-Type": {"text/plain"}})
			check("GET", "/headers-only", 200, "", map[string][]string{"X-Only": {"yes"}, "Alt-Svc": altSvc})
			check("GET", "/multi", 201, "", map[string][]string{"Set-Cookie": {"a=1", "b=2"}, "Alt-Svc": {"clear"}})
			check("GET", "/bad-status", 500, "", nil)
			check("GET", "/early-hints", 200, "done", map[string][]string{"Link": {"</s.css>; rel=preload"}})
			if name == "HTTP/2" {
				check("GET", "/hop", 200, "", map[string][]string{
					"Keep-Alive": nil, "Upgrade": nil, "Proxy-Connection": nil, "X-Kept": {"1"}})
			}
		})
	}
}

// TestEarlyHints checks that an informational status reaches the client
// as an interim response, with the fields set before it.
func TestEarlyHints(t *testing.T) {
	h := &Handler{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		w.Header().Set("Link", "</s.css>; rel=preload")
		w.WriteHeader(103)
		w.WriteHeader(200)
	})}
	for name, start := range servers(t, h) {
		client, base := start()
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			var interim []string
			trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, hdr textproto.MIMEHeader) error {
				mu.Lock()
				defer mu.Unlock()
				interim = append(interim, hdr.Get("Link"))
				if code != 103 {
					t.Errorf("interim status %d, want 103", code)
				}
				return nil
			}}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", base, nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			if resp.StatusCode != 200 || len(interim) != 1 || interim[0] != "</s.css>; rel=preload" {
				t.Errorf("final %d, interim Link fields %q; want 200 and one 103 with the Link", resp.StatusCode, interim)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	var mu sync.Mutex
	var calls int
	var readErr error
	var read int
	h := &Handler{MaxBodyBytes: 10, Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		mu.Lock()
		calls++
		read, readErr = int(n), err
		mu.Unlock()
		if err == nil {
			w.WriteHeader(204)
		}
	})}
	for name, start := range servers(t, h) {
		client, base := start()
		t.Run(name, func(t *testing.T) {
			post := func(body io.Reader, length int64) int {
				req, _ := http.NewRequest("POST", base, body)
				req.ContentLength = length
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			reset := func() { mu.Lock(); calls, read, readErr = 0, 0, nil; mu.Unlock() }

			reset()
			if got := post(strings.NewReader("0123456789"), 10); got != 204 || readErr != nil || read != 10 {
				t.Errorf("body of exactly the limit: status %d, read %d, err %v; want 204, 10, nil", got, read, readErr)
			}
			reset()
			if got := post(strings.NewReader("0123456789A"), 11); got != 413 || calls != 0 {
				t.Errorf("declared length over the limit: status %d after %d handler calls; want 413 and none", got, calls)
			}
			reset()
			// Length unknown in advance: the handler reads into the limit.
			if got := post(io.MultiReader(strings.NewReader("0123456789"), strings.NewReader("ABCDEF")), -1); got != 413 ||
				!errors.Is(readErr, ErrBodyTooLarge) || read != 10 {
				t.Errorf("streamed body over the limit: status %d, read %d, err %v; want 413, 10, ErrBodyTooLarge", got, read, readErr)
			}
		})
	}
}

// TestFlush checks that a flushed part of a response reaches the client
// while the handler is still running.
func TestFlush(t *testing.T) {
	release := make(chan struct{})
	h := &Handler{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		_, _ = w.Write([]byte("first\n"))
		if err := w.(interface{ Flush() error }).Flush(); err != nil {
			panic(err)
		}
		<-release
		_, _ = w.Write([]byte("second\n"))
	})}
	for name, start := range servers(t, h) {
		client, base := start()
		t.Run(name, func(t *testing.T) {
			resp, err := client.Get(base)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			line, err := br.ReadString('\n')
			if line != "first\n" || err != nil {
				t.Fatalf("first line %q, %v", line, err)
			}
			release <- struct{}{}
			rest, err := io.ReadAll(br)
			if string(rest) != "second\n" || err != nil {
				t.Errorf("rest %q, %v", rest, err)
			}
		})
	}
}

// TestRemoteAddr covers the address forms net/http reports.
func TestRemoteAddr(t *testing.T) {
	for in, want := range map[string]netip.AddrPort{
		"127.0.0.1:1234":        netip.MustParseAddrPort("127.0.0.1:1234"),
		"[::1]:443":             netip.MustParseAddrPort("[::1]:443"),
		"[::ffff:10.0.0.1]:80":  netip.MustParseAddrPort("10.0.0.1:80"),
		"@":                     {},
		"":                      {},
		"[fe80::1%eth0]:8080":   netip.MustParseAddrPort("[fe80::1%eth0]:8080"),
		"192.0.2.1:65535":       netip.MustParseAddrPort("192.0.2.1:65535"),
		"not an address at all": {},
	} {
		if got := remoteAddr(in); got != want {
			t.Errorf("remoteAddr(%q) = %v, want %v", in, got, want)
		}
	}
}

func equalSeen(a, b seen) bool {
	return a.Method == b.Method && a.Path == b.Path && a.RawQuery == b.RawQuery && a.Host == b.Host &&
		slices.Equal(a.Header, b.Header) && a.Proto == b.Proto && a.ProtoMinor == b.ProtoMinor &&
		a.ContentLength == b.ContentLength && a.RemoteAddr == b.RemoteAddr && a.TLS == b.TLS &&
		a.ServerName == b.ServerName && a.Body == b.Body && a.BodyErr == b.BodyErr
}

// discardWriter is the cheapest http.ResponseWriter, so that the
// benchmark measures the adapter alone.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func BenchmarkServeHTTP(b *testing.B) {
	r := &http.Request{
		Method: "GET", RequestURI: "/static/app.js?v=3", Host: "example.com", ProtoMajor: 2,
		RemoteAddr: "192.0.2.7:51234", TLS: &tls.ConnectionState{ServerName: "example.com"},
		Body: http.NoBody, URL: &url.URL{Path: "/static/app.js"},
		Header: http.Header{
			"Accept": {"*/*"}, "Accept-Encoding": {"gzip, br"}, "Accept-Language": {"en"},
			"Cookie": {"a=1; b=2"}, "User-Agent": {"bench"}, "Referer": {"https://example.com/"},
			"Sec-Fetch-Mode": {"no-cors"}, "Sec-Fetch-Dest": {"script"},
		},
	}
	body := []byte("console.log(1)")
	h := &Handler{AltSvc: `h3=":443"; ma=2592000`, Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		w.Header().Set("Content-Length", "14")
		w.Header().Set("Etag", `"abc"`)
		_, _ = w.Write(body)
	})}
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// TestRecycledExchangeIsClean serves requests one after the other through
// the pool and checks that nothing of one shows in the next.
func TestRecycledExchangeIsClean(t *testing.T) {
	var problems []string
	h := &Handler{MaxBodyBytes: 3, Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		if n := w.Header().Len(); n != 0 {
			problems = append(problems, "response header not empty: "+r.Path)
		}
		if got := r.Header.Len(); got != 1 {
			problems = append(problems, "request header has leftovers: "+r.Path)
		}
		if b, err := io.ReadAll(r.Body); err != nil || len(b) != 0 {
			problems = append(problems, "body not fresh: "+r.Path)
		}
		w.Header().Set("X-From", r.Path)
		w.Header().Set("X-Other", "1")
	})}
	for i := range 50 {
		r := httptest.NewRequest("GET", "/r"+strings.Repeat("x", i), nil)
		r.Header = http.Header{"X-Req": {"1"}}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if got := rec.Header().Get("X-From"); got != r.URL.Path {
			t.Fatalf("response %d carries X-From %q", i, got)
		}
	}
	if len(problems) > 0 {
		t.Errorf("%d problems, first: %s", len(problems), problems[0])
	}
}

// TestContentLongerThanDeclaredIsRefused: a request whose content goes
// past its content-length (which quic-go lets through) fails the body read
// and gets 400 when the engine could not answer; content that ends where
// it said reads to io.EOF.
func TestContentLongerThanDeclaredIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name     string
		declared int64
		body     string
		status   int
		readErr  bool
	}{
		{"longer", 5, "0123456789", 400, true},
		{"exact", 10, "0123456789", 200, false},
		{"unknown", -1, "0123456789", 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var readErr error
			h := &Handler{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
				_, readErr = io.ReadAll(r.Body)
				if readErr == nil {
					w.WriteHeader(200)
				}
			})}
			req := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			req.ContentLength = tc.declared
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status || (readErr != nil) != tc.readErr {
				t.Errorf("got %d and read error %v, want %d and an error: %v", rec.Code, readErr, tc.status, tc.readErr)
			}
		})
	}
}

// TestExtendedConnectRequest: an extended CONNECT, as quic-go's HTTP/3
// server hands it over (:protocol in r.Proto) and as net/http's HTTP/2
// server does (:protocol kept in r.Header), reaches the engine as method
// CONNECT with Protocol set, the target's path and no content; a plain
// CONNECT and other methods get no Protocol.
func TestExtendedConnectRequest(t *testing.T) {
	for _, tc := range []struct {
		name     string
		method   string
		proto    string
		header   http.Header
		uri      string
		protocol string
	}{
		{"quic-go", "CONNECT", "websocket", http.Header{}, "/chat?room=1", "websocket"},
		{"net/http h2", "CONNECT", "HTTP/2.0", http.Header{":protocol": {"websocket"}}, "/chat?room=1", "websocket"},
		{"plain CONNECT", "CONNECT", "HTTP/3.0", http.Header{}, "example.com:443", ""},
		{"GET", "GET", "websocket", http.Header{}, "/chat?room=1", ""},
	} {
		var got message.Request
		var body []byte
		h := &Handler{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
			got = *r
			body, _ = io.ReadAll(r.Body)
		}), MaxBodyBytes: 1}
		r := httptest.NewRequest(tc.method, "https://example.com/", strings.NewReader("tunnel bytes"))
		r.Proto, r.ProtoMajor, r.Header, r.RequestURI, r.ContentLength = tc.proto, 3, tc.header, tc.uri, -1
		h.ServeHTTP(httptest.NewRecorder(), r)
		if got.Protocol != tc.protocol {
			t.Errorf("%s: Protocol %q, want %q", tc.name, got.Protocol, tc.protocol)
		}
		if tc.protocol == "" {
			continue
		}
		if got.Method != "CONNECT" || got.Path != "/chat" || got.RawQuery != "room=1" || got.ContentLength != 0 || len(body) != 0 {
			t.Errorf("%s: method %q, path %q, query %q, content length %d, body %q; want CONNECT /chat room=1 and no content",
				tc.name, got.Method, got.Path, got.RawQuery, got.ContentLength, body)
		}
		if got.Header.Has(":protocol") {
			t.Errorf("%s: the pseudo-header :protocol reached Header", tc.name)
		}
	}
}

// TestUpgradeRefused: Upgrade fails, before anything is sent, for a
// request that is no extended CONNECT, and for one when the Handler
// cannot take streams over; the engine can still answer.
func TestUpgradeRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		method  string
		proto   string
		wantErr error
	}{
		{"GET", "GET", "HTTP/3.0", errNotConnect},
		{"extended CONNECT without TakeStream", "CONNECT", "websocket", errNoTakeStream},
	} {
		var err error
		h := &Handler{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
			_, err = w.(message.Upgrader).Upgrade()
			w.WriteHeader(http.StatusNotImplemented)
		})}
		r := httptest.NewRequest(tc.method, "https://example.com/chat", nil)
		r.Proto, r.ProtoMajor, r.RequestURI = tc.proto, 3, "/chat"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if !errors.Is(err, tc.wantErr) || rec.Code != http.StatusNotImplemented {
			t.Errorf("%s: Upgrade = %v, then status %d; want %v and the engine's 501", tc.name, err, rec.Code, tc.wantErr)
		}
	}
}
