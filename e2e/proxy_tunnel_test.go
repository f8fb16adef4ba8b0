package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/anx-gateway/anx/e2e/harness"
)

// dialWebSocket opens a WebSocket to path through anx over HTTP/1.1 (TLS,
// anx's root trusted); it is closed in t.Cleanup.
func dialWebSocket(t *testing.T, s *harness.Server, path string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), harness.SafetyNet)
	defer cancel()
	c, res, err := websocket.Dial(ctx, "wss://localhost:"+strconv.Itoa(s.HTTPSPort)+path,
		&websocket.DialOptions{HTTPClient: &http.Client{Transport: s.Transport(harness.H1)}})
	if err != nil {
		t.Fatalf("WebSocket %s through anx: %v (status %d)", path, err, statusOfResponse(res))
	}
	c.SetReadLimit(16 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// statusOfResponse returns res's status code, or 0 without a response.
func statusOfResponse(res *http.Response) int {
	if res == nil {
		return 0
	}
	return res.StatusCode
}

// echoMessages sends n messages (text and binary, 0 to 64 KiB, distinct
// bytes) on c and checks each echo: same type, same bytes.
func echoMessages(t *testing.T, c *websocket.Conn, what string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), harness.SafetyNet)
	defer cancel()
	for i := range n {
		typ, msg := websocket.MessageBinary, harness.Noise(fmt.Sprintf("%s-%d", what, i), (i*977)%(64<<10))
		if i%2 == 1 {
			typ, msg = websocket.MessageText, []byte(strings.Repeat(fmt.Sprintf("text %d ", i), i%100))
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			t.Fatalf("%s: writing message %d: %v", what, i, err)
		}
		gotTyp, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("%s: reading echo %d: %v", what, i, err)
		}
		if gotTyp != typ || !bytes.Equal(got, msg) {
			t.Fatalf("%s: echo %d: type %v, %d bytes; want type %v, the %d bytes sent", what, i, gotTyp, len(got), typ, len(msg))
		}
	}
}

// TestProxyWebSocketEcho: a coder/websocket client through anx over
// HTTP/1.1 gets 1000 messages echoed byte-identical by a WebSocket
// upstream.
func TestProxyWebSocketEcho(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "ws"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(up.URL()))))
	c := dialWebSocket(t, s, "/ws")
	echoMessages(t, c, "ws", 1000)
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("closing the WebSocket: %v", err)
	}
}

// TestProxyReloadKeepsWebSocket: a SIGHUP that moves the route to another
// upstream leaves an open WebSocket tunnel to the first one echoing, while
// new requests go to the new upstream.
func TestProxyReloadKeepsWebSocket(t *testing.T) {
	t.Parallel()
	a, b := startUpstream(t, upstreamConfig{Name: "a"}), startUpstream(t, upstreamConfig{Name: "b"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(a.URL()))))
	c := dialWebSocket(t, s, "/ws")
	echoMessages(t, c, "before reload", 10)
	if line := s.Reload(t, renderConfig(s, proxyConfig("", route("/", proxyTo(b.URL()))))); !strings.Contains(line, "msg=reloaded") {
		t.Fatalf("reload: %s", line)
	}
	if e := echoOf(t, "GET /echo after the reload", get(s, harness.H1, s.Client(harness.H1), "/echo")); e.Server != "b" {
		t.Errorf("after the reload /echo was answered by %q, want the new upstream b", e.Server)
	}
	echoMessages(t, c, "after reload", 100)
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("closing the WebSocket after the reload: %v", err)
	}
}

// grpcClient dials anx over TLS h2 (trusting its root) for gRPC.
func grpcClient(t *testing.T, s *harness.Server) *grpc.ClientConn {
	t.Helper()
	creds := credentials.NewTLS(&tls.Config{RootCAs: s.CAPool(), ServerName: "localhost"})
	dial := func(ctx context.Context, _ string) (net.Conn, error) {
		d := net.Dialer{Timeout: harness.SafetyNet}
		return d.DialContext(ctx, "tcp", s.HTTPS)
	}
	cc, err := grpc.NewClient("passthrough:///localhost:"+strconv.Itoa(s.HTTPSPort),
		grpc.WithTransportCredentials(creds), grpc.WithContextDialer(dial))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// TestProxyGRPC: a grpc-go client through anx (TLS h2) to a grpc-go server
// over h2c and over TLS h2: the health check, a unary echo, a
// server-streaming call and an error status (its grpc-status and
// grpc-message trailers) arrive intact.
func TestProxyGRPC(t *testing.T) {
	t.Parallel()
	pki := newUpstreamTLS(t)
	up := startUpstream(t, upstreamConfig{Name: "grpc", CertFile: pki.CertFile, KeyFile: pki.KeyFile})
	upstreams := map[string][]string{
		"h2c":    {proxyTo("h2c://" + up.Addrs.GRPC)},
		"TLS h2": {proxyTo("https://" + up.Addrs.GRPCS), "tls_ca = " + strconv.Quote(pki.CAFile), `tls_server_name = "upstream.test"`},
	}
	for kind, opts := range upstreams {
		t.Run(strings.ReplaceAll(kind, " ", "_"), func(t *testing.T) {
			t.Parallel()
			s := startProxy(t, proxyConfig("", route("/", opts...)))
			checkGRPC(t, grpcClient(t, s))
		})
	}
}

// checkGRPC makes the calls of TestProxyGRPC on cc.
func checkGRPC(t *testing.T, cc *grpc.ClientConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), harness.SafetyNet)
	defer cancel()
	hc, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health Check: %v, %v; want SERVING", hc.GetStatus(), err)
	}
	tc := testgrpc.NewTestServiceClient(cc)
	body := harness.Noise("grpc", 100<<10)
	res, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: body}})
	if err != nil || !bytes.Equal(res.GetPayload().GetBody(), body) {
		t.Errorf("UnaryCall: %d bytes back, err %v; want the %d bytes sent", len(res.GetPayload().GetBody()), err, len(body))
	}
	sizes := []int32{1, 1000, 70000, 5, 0}
	params := make([]*testgrpc.ResponseParameters, len(sizes))
	for i, n := range sizes {
		params[i] = &testgrpc.ResponseParameters{Size: n}
	}
	stream, err := tc.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{ResponseParameters: params})
	if err != nil {
		t.Fatalf("StreamingOutputCall: %v", err)
	}
	for i, n := range sizes {
		m, err := stream.Recv()
		if err != nil || len(m.GetPayload().GetBody()) != int(n) {
			t.Fatalf("StreamingOutputCall message %d: %d bytes, err %v; want %d", i, len(m.GetPayload().GetBody()), err, n)
		}
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("StreamingOutputCall end: %v, want EOF", err)
	}
	const msg = "no such thing: ünïcode % and spaces"
	_, err = tc.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseStatus: &testgrpc.EchoStatus{Code: int32(codes.NotFound), Message: msg}})
	if st, _ := status.FromError(err); st.Code() != codes.NotFound || st.Message() != msg {
		t.Errorf("UnaryCall asking for NotFound: code %v message %q, want %v %q", st.Code(), st.Message(), codes.NotFound, msg)
	}
}
