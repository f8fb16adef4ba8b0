package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/qpack"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/quicvarint"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/anx-gateway/anx/e2e/harness"
)

// smuggled is a whole HTTP/1.1 request hidden in a malformed request: if
// anx let it through, the upstream would count a request for /smuggled.
const smuggled = "GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"

// desyncCase is a request that RFC 9113 section 8.2 and RFC 9114 section
// 4.2 call malformed: fields (beside the pseudo-fields) and a body.
type desyncCase struct {
	name   string
	path   string      // :path; default /echo
	fields [][2]string // after the pseudo-fields, as written on the wire
	body   string      // sent as one DATA frame; the method is then POST
}

// desyncCases are the malformed requests of the h2 and h3 tests.
var desyncCases = []desyncCase{
	{name: "CR in a value", fields: [][2]string{{"x-bad", "a\rb"}}},
	{name: "LF in a value", fields: [][2]string{{"x-bad", "a\r\nx-injected: 1"}}},
	{name: "NUL in a value", fields: [][2]string{{"x-bad", "a\x00b"}}},
	{name: "request smuggled in a value", fields: [][2]string{{"x-bad", "a\r\n\r\n" + smuggled}}},
	{name: "connection", fields: [][2]string{{"connection", "keep-alive"}}},
	{name: "keep-alive", fields: [][2]string{{"keep-alive", "timeout=5"}}},
	{name: "proxy-connection", fields: [][2]string{{"proxy-connection", "keep-alive"}}},
	{name: "transfer-encoding", fields: [][2]string{{"transfer-encoding", "chunked"}}, body: "0\r\n\r\n" + smuggled},
	{name: "upgrade", fields: [][2]string{{"upgrade", "websocket"}}},
	{name: "te other than trailers", fields: [][2]string{{"te", "gzip"}}},
	{name: "upper-case name", fields: [][2]string{{"X-Upper", "v"}}},
	{name: ":path with a space", path: "/echo HTTP/1.1\r\nx: /"},
	{name: ":path with only a space", path: "/echo x"},
	{name: "content-length shorter than DATA", fields: [][2]string{{"content-length", "5"}}, body: "hello" + smuggled},
	{name: "content-length longer than DATA", fields: [][2]string{{"content-length", "100"}}, body: "hello"},
	{name: "two content-lengths", fields: [][2]string{{"content-length", "5"}, {"content-length", "6"}}, body: "hello!"},
}

// method returns the case's :method.
func (c desyncCase) method() string {
	if c.body != "" {
		return http.MethodPost
	}
	return http.MethodGet
}

// target returns the case's :path.
func (c desyncCase) target() string {
	if c.path != "" {
		return c.path
	}
	return "/echo"
}

// checkNothingUpstream fails t if the upstream's counters moved from
// before: a request, a connection or a byte.
func checkNothingUpstream(t *testing.T, what string, up *upstreamProc, before upstreamCounts) {
	t.Helper()
	after := up.Counts(t)
	if after.Total != before.Total || after.Bytes != before.Bytes || after.Paths["/smuggled"] > 0 {
		t.Errorf("%s reached the upstream: requests %d→%d, bytes %d→%d, /smuggled %d",
			what, before.Total, after.Total, before.Bytes, after.Bytes, after.Paths["/smuggled"])
	}
}

// TestProxyDesyncH2: each malformed HTTP/2 request, written frame by frame,
// is refused (a stream or connection error, or a 4xx) and nothing of it
// reaches the upstream. A well-formed request on the same kind of
// connection gets 200 first, so that the frames themselves are right.
func TestProxyDesyncH2(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "app"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(up.URL()))))
	if got := h2Raw(t, s, desyncCase{name: "well-formed", fields: [][2]string{{"x-ok", "1"}}}); got != "status 200" {
		t.Fatalf("a well-formed request written by hand: %s, want status 200", got)
	}
	for _, c := range desyncCases {
		before := up.Counts(t)
		got := h2Raw(t, s, c)
		if strings.HasPrefix(got, "status 2") || strings.HasPrefix(got, "status 5") {
			t.Errorf("h2 %s: %s, want refused (a reset, GOAWAY or 4xx)", c.name, got)
		}
		checkNothingUpstream(t, "h2 "+c.name, up, before)
	}
}

// h2Raw sends c on a new HTTP/2 connection and says how anx answered:
// "status N", "reset CODE", "goaway CODE" or "closed".
func h2Raw(t *testing.T, s *harness.Server, c desyncCase) string {
	t.Helper()
	conn := s.DialTLS("h2")
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(harness.SafetyNet))
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	fields := append([][2]string{{":method", c.method()}, {":scheme", "https"},
		{":authority", "localhost:" + strconv.Itoa(s.HTTPSPort)}, {":path", c.target()}}, c.fields...)
	for _, f := range fields {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	var out bytes.Buffer
	out.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&out, nil)
	_ = fr.WriteSettings()
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndStream: c.body == "", EndHeaders: true})
	if c.body != "" {
		_ = fr.WriteData(1, true, []byte(c.body))
	}
	if _, err := conn.Write(out.Bytes()); err != nil {
		return "closed"
	}
	return h2Answer(conn)
}

// h2Answer reads frames from conn until stream 1 is answered or reset, or
// the connection goes away.
func h2Answer(conn io.ReadWriter) string {
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(65536, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return "closed"
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 {
				return "status " + f.PseudoValue("status")
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				return "reset " + f.ErrCode.String()
			}
		case *http2.GoAwayFrame:
			return "goaway " + f.ErrCode.String()
		}
	}
}

// TestProxyDesyncH3: each malformed HTTP/3 request, written as frames on
// a QUIC stream, is refused (a stream error or a 4xx) and nothing of it
// reaches the upstream; a well-formed one written the same way gets 200.
func TestProxyDesyncH3(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "app"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(up.URL()))))
	if got := h3Raw(t, s, desyncCase{name: "well-formed", fields: [][2]string{{"x-ok", "1"}}}); got != "status 200" {
		t.Fatalf("a well-formed request written by hand: %s, want status 200", got)
	}
	for _, c := range desyncCases {
		before := up.Counts(t)
		got := h3Raw(t, s, c)
		if strings.HasPrefix(got, "status 2") || strings.HasPrefix(got, "status 5") {
			t.Errorf("h3 %s: %s, want refused (a stream error or 4xx)", c.name, got)
		}
		checkNothingUpstream(t, "h3 "+c.name, up, before)
	}
}

// h3Raw sends c on a new QUIC connection (with a control stream holding an
// empty SETTINGS) and says how anx answered: "status N", "reset: ..." or
// "closed: ...".
func h3Raw(t *testing.T, s *harness.Server, c desyncCase) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), harness.SafetyNet)
	defer cancel()
	conn, err := quic.DialAddr(ctx, s.HTTPS, s.TLSConfig(http3.NextProtoH3), &quic.Config{MaxIdleTimeout: harness.SafetyNet})
	if err != nil {
		t.Fatalf("quic dial: %v", err)
	}
	defer conn.CloseWithError(0, "")
	ctrl, err := conn.OpenUniStream()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = ctrl.Write([]byte{0x00, 0x04, 0x00}) // control stream, SETTINGS, empty
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var block bytes.Buffer
	enc := qpack.NewEncoder(&block)
	fields := append([][2]string{{":method", c.method()}, {":scheme", "https"},
		{":authority", "localhost:" + strconv.Itoa(s.HTTPSPort)}, {":path", c.target()}}, c.fields...)
	for _, f := range fields {
		_ = enc.WriteField(qpack.HeaderField{Name: f[0], Value: f[1]})
	}
	_ = enc.Close()
	msg := h3Frame(nil, 0x01, block.Bytes())
	if c.body != "" {
		msg = h3Frame(msg, 0x00, []byte(c.body))
	}
	_ = str.SetDeadline(time.Now().Add(harness.SafetyNet))
	if _, err := str.Write(msg); err != nil {
		return "reset: " + err.Error()
	}
	_ = str.Close()
	return h3Answer(str)
}

// h3Frame appends an HTTP/3 frame of type typ with payload p to b.
func h3Frame(b []byte, typ uint64, p []byte) []byte {
	b = quicvarint.Append(b, typ)
	b = quicvarint.Append(b, uint64(len(p)))
	return append(b, p...)
}

// h3Answer reads frames from a request stream until its HEADERS.
func h3Answer(str io.Reader) string {
	r := bufio.NewReader(str)
	for {
		typ, err := quicvarint.Read(r)
		if err != nil {
			return h3Err(err)
		}
		n, err := quicvarint.Read(r)
		if err != nil {
			return h3Err(err)
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(r, p); err != nil {
			return h3Err(err)
		}
		if typ != 0x01 {
			continue
		}
		next := qpack.NewDecoder().Decode(p)
		for {
			f, err := next()
			if err != nil {
				return "headers without :status"
			}
			if f.Name == ":status" {
				return "status " + f.Value
			}
		}
	}
}

// h3Err names how a stream ended.
func h3Err(err error) string {
	var se *quic.StreamError
	if errors.As(err, &se) {
		return fmt.Sprintf("reset: code %#x", uint64(se.ErrorCode))
	}
	return "closed: " + err.Error()
}

// TestProxyDesyncH1: HTTP/1.1 requests with both Content-Length and
// Transfer-Encoding, or with bad chunking, each hiding a second request,
// get 400 and a close, and nothing reaches the upstream.
func TestProxyDesyncH1(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "app"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(up.URL()))))
	cases := []struct{ name, raw string }{
		{"CL and TE", "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE and CL", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + smuggled},
		{"bad chunk size", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" + smuggled},
		{"chunked not last", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n" + smuggled},
		{"two content-lengths", "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 45\r\n\r\nhello" + smuggled},
	}
	for _, c := range cases {
		before := up.Counts(t)
		conn := s.DialTLS("http/1.1")
		got, closed, err := harness.Exchange(conn, []byte(c.raw), harness.SafetyNet)
		conn.Close()
		res, _ := harness.ParseResponses(got)
		if err != nil || !closed || len(res) != 1 || res[0].Status != http.StatusBadRequest {
			t.Errorf("h1 %s: %d responses %v (closed %v, err %v), want one 400 and a close\n%q", c.name, len(res), statuses(res), closed, err, got)
		}
		checkNothingUpstream(t, "h1 "+c.name, up, before)
	}
}
