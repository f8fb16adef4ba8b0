package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/e2e/harness"
)

// curlPeers returns the curl to use for each protocol: curl for h1 and
// h2, the HTTP/3 curl for h3, with its flag.
func curlPeers(t *testing.T) []struct{ proto, curl, flag string } {
	t.Helper()
	curl, curlH3 := harness.Peer(t, "curl"), harness.Peer(t, "curl-h3")
	return []struct{ proto, curl, flag string }{
		{"h1", curl, "--http1.1"}, {"h2", curl, "--http2"}, {"h3", curlH3, "--http3-only"},
	}
}

// curlProxied runs curl over one protocol against s, with extra args, and
// returns the response head (-D, every head including 1xx), and the body.
func curlProxied(t *testing.T, s *harness.Server, curl, flag, path string, args ...string) (head, body string) {
	t.Helper()
	dir := t.TempDir()
	h, b := filepath.Join(dir, "head"), filepath.Join(dir, "body")
	all := append([]string{flag, "-D", h, "-o", b}, args...)
	runCurl(t, s, curl, append(all, s.URL(path))...)
	hb, _ := os.ReadFile(h)
	bb, _ := os.ReadFile(b)
	return string(hb), string(bb)
}

// headerIn returns the values of name in a curl -D dump's last head.
func headerIn(head, name string) []string {
	heads := strings.Split(strings.TrimSpace(head), "\r\n\r\n")
	var out []string
	for _, l := range strings.Split(heads[len(heads)-1], "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// TestProxyForwardedHeaders: over curl h1, h2 and h3 the request reaches
// the upstream with the client's Host, X-Forwarded-For/Proto/Host set by
// anx (the client's own X-Forwarded-For dropped: 127.0.0.1 is not a
// trusted proxy), the hop-by-hop fields of h1 removed, and header_up's
// edits; the response comes back with header_down's edits.
func TestProxyForwardedHeaders(t *testing.T) {
	t.Parallel()
	peers := curlPeers(t)
	up := startUpstream(t, upstreamConfig{Name: "app"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(up.URL()),
		`header_up = { set = { "X-Set-Up" = "set-up" }, add = { "X-Add-Up" = "add-up" }, delete = ["X-Del-Up"] }`,
		`header_down = { set = { "X-Set-Down" = "set-down" }, add = { "X-Add-Down" = "add-down" }, delete = ["X-Del-Down"] }`)))
	authority := "localhost:" + strconv.Itoa(s.HTTPSPort)
	for _, p := range peers {
		args := []string{"-H", "X-Forwarded-For: 6.6.6.6", "-H", "X-Forwarded-Host: evil.example",
			"-H", "X-Forwarded-Proto: http", "-H", "X-Del-Up: gone", "-H", "X-Set-Up: client", "-H", "X-Add-Up: client"}
		if p.proto == "h1" {
			args = append(args, "-H", "Connection: X-Hop", "-H", "X-Hop: secret", "-H", "Keep-Alive: timeout=5",
				"-H", "Proxy-Connection: keep-alive", "-H", "TE: gzip")
		}
		target := "/echo?resp_header=X-Del-Down:x&resp_header=X-Set-Down:up&resp_header=X-Add-Down:up"
		head, body := curlProxied(t, s, p.curl, p.flag, target, args...)
		var e echoReply
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Errorf("%s: not the upstream's echo: %v\nhead: %s\nbody: %q", p.proto, err, head, body)
			continue
		}
		want := map[string][]string{
			"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {authority},
			"X-Set-Up": {"set-up"}, "X-Add-Up": {"client", "add-up"}, "X-Del-Up": nil,
			"X-Hop": nil, "Keep-Alive": nil, "Proxy-Connection": nil,
		}
		for k, v := range want {
			if got := e.Header.Values(k); !slices.Equal(got, v) {
				t.Errorf("%s: upstream got %s %q, want %q", p.proto, k, got, v)
			}
		}
		if e.Host != authority {
			t.Errorf("%s: upstream got Host %q, want the client's %q", p.proto, e.Host, authority)
		}
		for _, v := range e.Header.Values("Connection") {
			if strings.Contains(strings.ToLower(v), "x-hop") {
				t.Errorf("%s: upstream got Connection %q naming the client's hop-by-hop field", p.proto, v)
			}
		}
		if te := e.Header.Values("Te"); len(te) > 0 && !slices.Equal(te, []string{"trailers"}) {
			t.Errorf("%s: upstream got TE %q, want none or \"trailers\"", p.proto, te)
		}
		wantDown := map[string][]string{"X-Set-Down": {"set-down"}, "X-Add-Down": {"up", "add-down"}, "X-Del-Down": nil}
		for k, v := range wantDown {
			if got := headerIn(head, k); !slices.Equal(got, v) {
				t.Errorf("%s: client got %s %q, want %q\n%s", p.proto, k, got, v, head)
			}
		}
	}
}

// TestProxyHopByHopResponse: the hop-by-hop fields of an upstream's
// response (Connection and the field it names, Keep-Alive,
// Proxy-Connection), also in a forwarded 103, never reach the client; the
// other fields do. The upstream's answers are written by hand (raw).
func TestProxyHopByHopResponse(t *testing.T) {
	t.Parallel()
	curl := harness.Peer(t, "curl")
	up := startUpstream(t, upstreamConfig{Name: "raw"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo("http://"+up.Addrs.Raw))))
	for _, flag := range []string{"--http1.1", "--http2"} {
		head, body := curlProxied(t, s, curl, flag, "/hop")
		if body != "ok" || !slices.Equal(headerIn(head, "X-Kept"), []string{"yes"}) {
			t.Errorf("%s /hop: body %q, X-Kept %q; want \"ok\" and [yes]\n%s", flag, body, headerIn(head, "X-Kept"), head)
		}
		for _, k := range []string{"X-Hop-Resp", "Keep-Alive", "Proxy-Connection"} {
			if v := headerIn(head, k); len(v) > 0 {
				t.Errorf("%s /hop: client got hop-by-hop %s %q", flag, k, v)
			}
		}
		if strings.Contains(strings.ToLower(head), "x-hop-resp") {
			t.Errorf("%s /hop: the head still names X-Hop-Resp:\n%s", flag, head)
		}
		head, _ = curlProxied(t, s, curl, flag, "/hints-hop")
		if !strings.Contains(head, " 103") {
			t.Errorf("%s /hints-hop: no 103 forwarded:\n%s", flag, head)
		}
		if strings.Contains(strings.ToLower(head), "x-hop-hint") {
			t.Errorf("%s /hints-hop: the 103's hop-by-hop field reached the client:\n%s", flag, head)
		}
	}
}

// TestProxyTrustedProxies: from a client inside trusted_proxies, the
// X-Forwarded-For it sent is kept and anx appends the client's address;
// its X-Forwarded-Proto and -Host are kept.
func TestProxyTrustedProxies(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "app"})
	s := startProxy(t, proxyConfig(`trusted_proxies = ["127.0.0.1/32"]`+"\n", route("/", proxyTo(up.URL()))))
	for _, p := range harness.Protos {
		e := echoOf(t, string(p), get(s, p, s.Client(p), "/echo", "X-Forwarded-For", "6.6.6.6",
			"X-Forwarded-Proto", "http", "X-Forwarded-Host", "front.example"))
		if got := strings.Join(e.Header.Values("X-Forwarded-For"), ", "); got != "6.6.6.6, 127.0.0.1" {
			t.Errorf("%s: X-Forwarded-For %q, want %q", p, got, "6.6.6.6, 127.0.0.1")
		}
		if got := e.Header.Get("X-Forwarded-Host"); got != "front.example" {
			t.Errorf("%s: X-Forwarded-Host %q, want the trusted proxy's %q", p, got, "front.example")
		}
	}
}

// TestProxyEarlyHints: a 103 Early Hints of the upstream reaches curl over
// h1, h2 and h3 with its Link field, before the 200.
func TestProxyEarlyHints(t *testing.T) {
	t.Parallel()
	peers := curlPeers(t)
	up := startUpstream(t, upstreamConfig{Name: "app"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(up.URL()))))
	for _, p := range peers {
		head, body := curlProxied(t, s, p.curl, p.flag, "/early-hints")
		i103, i200 := strings.Index(head, " 103"), strings.LastIndex(head, " 200")
		if i103 < 0 || i200 < i103 {
			t.Errorf("%s: want a 103 before the 200 in the heads:\n%s", p.proto, head)
		}
		if !strings.Contains(strings.ToLower(head), "link: </style.css>; rel=preload; as=style") {
			t.Errorf("%s: the 103's Link field is missing:\n%s", p.proto, head)
		}
		if body != "after hints\n" {
			t.Errorf("%s: body %q, want %q", p.proto, body, "after hints\n")
		}
	}
}

// TestProxyExpectContinue: curl's Expect: 100-continue upload (2 MiB) over
// h1 and h2 gets its 100 Continue (curl waits up to a minute for it, so
// a missing 100 shows) and arrives whole.
func TestProxyExpectContinue(t *testing.T) {
	t.Parallel()
	curl := harness.Peer(t, "curl")
	up := startUpstream(t, upstreamConfig{Name: "app"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(up.URL()))))
	data := harness.Noise("expect", 2<<20)
	file := filepath.Join(t.TempDir(), "upload")
	harness.WriteFile(t, file, data)
	for _, flag := range []string{"--http1.1", "--http2"} {
		head, body := curlProxied(t, s, curl, flag, "/upload", "--expect100-timeout", "60",
			"-H", "Expect: 100-continue", "--data-binary", "@"+file)
		if !strings.Contains(head, " 100") {
			t.Errorf("%s: no 100 Continue in the heads:\n%s", flag, head)
		}
		var e echoReply
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Errorf("%s: not the upstream's answer: %v (%q)", flag, err, clip([]byte(body), 0))
			continue
		}
		if e.BodyLen != int64(len(data)) || e.BodySHA256 != sha256Hex(data) {
			t.Errorf("%s: upstream got %d bytes (sha256 %s), want %d (%s)", flag, e.BodyLen, e.BodySHA256, len(data), sha256Hex(data))
		}
	}
}

// TestProxyUpstreamFraming: the request anx writes upstream has one
// framing, never both: a body with a length goes with Content-Length, a
// body without one (h1 chunked, h2/h3 without content-length) with
// Transfer-Encoding: chunked, and a GET with neither. The heads are read
// as written on the wire by the raw upstream.
func TestProxyUpstreamFraming(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "raw"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo("http://"+up.Addrs.Raw))))
	data := []byte("some body bytes")
	for _, p := range harness.Protos {
		c := s.Client(p)
		cases := []struct {
			name   string
			method string
			body   io.Reader
			cl, te bool // whether Content-Length, Transfer-Encoding must be in the head
		}{
			{"GET", http.MethodGet, nil, false, false},
			{"POST with length", http.MethodPost, bytes.NewReader(data), true, false},
			{"POST without length", http.MethodPost, unsized{bytes.NewReader(data)}, false, true},
		}
		for _, tc := range cases {
			req, err := http.NewRequest(tc.method, s.URL("/ok"), tc.body)
			if err != nil {
				t.Fatal(err)
			}
			what := fmt.Sprintf("%s %s", p, tc.name)
			if r := harness.Send(c, p, req); r.Err != nil || r.Status != http.StatusOK || string(r.Body) != "ok" {
				t.Errorf("%s: status %d body %q err %v, want 200 \"ok\"", what, r.Status, r.Body, r.Err)
				continue
			}
			head := up.Counts(t).Heads["/ok"]
			lower := strings.ToLower(head)
			cl, te := strings.Contains(lower, "\r\ncontent-length:"), strings.Contains(lower, "\r\ntransfer-encoding: chunked")
			if cl != tc.cl || te != tc.te {
				t.Errorf("%s: upstream head has Content-Length %v, Transfer-Encoding chunked %v; want %v, %v\n%s", what, cl, te, tc.cl, tc.te, head)
			}
		}
	}
}

// TestProxyHostHeaderAndForwarded: host_header replaces the Host sent
// upstream, and forwarded = true adds an RFC 7239 Forwarded field naming
// the client, the protocol and the client's Host.
func TestProxyHostHeaderAndForwarded(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "app"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(up.URL()), `host_header = "app.internal"`, "forwarded = true")))
	authority := "localhost:" + strconv.Itoa(s.HTTPSPort)
	for _, p := range harness.Protos {
		e := echoOf(t, string(p), get(s, p, s.Client(p), "/echo"))
		if e.Host != "app.internal" {
			t.Errorf("%s: upstream got Host %q, want app.internal", p, e.Host)
		}
		fwd := strings.ToLower(strings.Join(e.Header.Values("Forwarded"), ", "))
		for _, part := range []string{"for=127.0.0.1", "proto=https", "host=\"" + authority + "\""} {
			if !strings.Contains(strings.ReplaceAll(fwd, `for="127.0.0.1"`, "for=127.0.0.1"), part) {
				t.Errorf("%s: Forwarded %q lacks %s", p, fwd, part)
			}
		}
		if got := e.Header.Get("X-Forwarded-Host"); got != authority {
			t.Errorf("%s: X-Forwarded-Host %q, want the client's %q", p, got, authority)
		}
	}
}

// TestProxyUnixUpstream: an upstream on a Unix socket (unix:/path.sock)
// gets the requests of h1, h2 and h3 clients, bodies intact.
func TestProxyUnixUpstream(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "app.sock")
	up := startUpstream(t, upstreamConfig{Name: "unix", UnixPath: sock})
	s := startProxy(t, proxyConfig("", route("/", proxyTo("unix:"+sock))))
	for _, p := range harness.Protos {
		data := []byte("over a unix socket via " + string(p))
		e := echoOf(t, string(p), s.Do(p, s.Client(p), harness.Request{Method: http.MethodPost, Target: "/echo?u=1", Body: data}))
		if e.Server != "unix" || e.Body != string(data) || e.Target != "/echo?u=1" {
			t.Errorf("%s: upstream %q got %q %q, want unix, /echo?u=1 and %q", p, e.Server, e.Target, e.Body, data)
		}
	}
	if n := up.Counts(t).Paths["/echo"]; n != 3 {
		t.Errorf("the upstream counted %d requests, want 3", n)
	}
}
