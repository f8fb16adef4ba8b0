package harness

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"
)

// Proto names a client protocol.
type Proto string

// The protocols every request can go over.
const (
	H1 Proto = "h1"
	H2 Proto = "h2"
	H3 Proto = "h3"
)

// Protos lists H1, H2 and H3.
var Protos = []Proto{H1, H2, H3}

// RequestTimeout bounds every request made through Client: SafetyNet.
const RequestTimeout = SafetyNet

// TLSConfig trusts anx's root, expects the name localhost and offers alpn.
func (s *Server) TLSConfig(alpn ...string) *tls.Config {
	return &tls.Config{RootCAs: s.CAPool(), ServerName: "localhost", NextProtos: alpn}
}

// Transport returns a RoundTripper that speaks only p to the https port
// (dialling 127.0.0.1 whatever the URL's host), trusts anx's root and never
// asks for compression. It is closed in t.Cleanup.
func (s *Server) Transport(p Proto) http.RoundTripper {
	var rt http.RoundTripper
	switch p {
	case H1:
		rt = s.h1Transport()
	case H2:
		rt = s.h2Transport()
	case H3:
		rt = s.h3Transport()
	default:
		s.t.Fatalf("harness: unknown protocol %q", p)
	}
	s.t.Cleanup(func() { closeTransport(rt) })
	return rt
}

// Client returns an http.Client over Transport(p) that does not follow
// redirects and gives up after RequestTimeout.
func (s *Server) Client(p Proto) *http.Client {
	return &http.Client{
		Transport:     s.Transport(p),
		Timeout:       RequestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (s *Server) h1Transport() *http.Transport {
	var protos http.Protocols
	protos.SetHTTP1(true)
	d := &net.Dialer{Timeout: SafetyNet}
	return &http.Transport{
		TLSClientConfig:    s.TLSConfig("http/1.1"),
		Protocols:          &protos,
		DisableCompression: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, s.HTTPS)
		},
		TLSHandshakeTimeout: SafetyNet,
	}
}

func (s *Server) h2Transport() *http2.Transport {
	return &http2.Transport{
		TLSClientConfig:    s.TLSConfig("h2"),
		DisableCompression: true,
		DialTLSContext: func(ctx context.Context, network, _ string, cfg *tls.Config) (net.Conn, error) {
			d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: SafetyNet}, Config: cfg}
			return d.DialContext(ctx, network, s.HTTPS)
		},
	}
}

func (s *Server) h3Transport() *http3.Transport {
	return &http3.Transport{
		TLSClientConfig:    s.TLSConfig(http3.NextProtoH3),
		DisableCompression: true,
		QUICConfig:         &quic.Config{HandshakeIdleTimeout: SafetyNet, MaxIdleTimeout: SafetyNet},
		Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
			return quic.DialAddr(ctx, s.HTTPS, tc, qc)
		},
	}
}

// closeTransport releases a transport's connections.
func closeTransport(rt http.RoundTripper) {
	switch t := rt.(type) {
	case *http.Transport:
		t.CloseIdleConnections()
	case *http2.Transport:
		t.CloseIdleConnections()
	case io.Closer:
		_ = t.Close()
	}
}

// Response is a fully read response, protocol-neutral.
type Response struct {
	Proto   Proto
	Status  int
	Header  http.Header
	Body    []byte
	Err     error  // transport or body read error
	Version string // the response's Proto, e.g. "HTTP/2.0"
}

// Send sends req with c and reads the whole body.
func Send(c *http.Client, p Proto, req *http.Request) Response {
	res, err := c.Do(req)
	if err != nil {
		return Response{Proto: p, Err: err}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return Response{Proto: p, Status: res.StatusCode, Header: res.Header, Body: body, Err: err, Version: res.Proto}
}

// Get is Send of a GET of path over p with a new client.
func (s *Server) Get(p Proto, path string) Response {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL(path), nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return Send(s.Client(p), p, req)
}

// Request describes a protocol-neutral request.
type Request struct {
	Method string // default GET
	// Target is the origin-form request-target (path and "?query"), sent
	// byte for byte: h2 and h3 put it in :path as is; h1 puts it in the
	// request line, through a raw socket when Raw is set.
	Target string
	// Header holds exactly the fields to send (no User-Agent is added; no
	// Accept-Encoding either). A "Host" entry sets the authority.
	Header http.Header
	Body   []byte
	// Raw sends the h1 request by hand on its own TLS connection, for
	// targets Go's client would not send verbatim (e.g. "//x").
	Raw bool
}

// method returns r.Method or GET.
func (r Request) method() string {
	if r.Method == "" {
		return http.MethodGet
	}
	return r.Method
}

// NewRequest builds an *http.Request for r over p on the https URL. For h2
// and h3 URL.Opaque is "//authority" + Target, which those clients turn
// into a :path of exactly Target; for h1 it is Target itself (which must
// not start with "//": use Raw).
func (s *Server) NewRequest(ctx context.Context, p Proto, r Request) (*http.Request, error) {
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method(), s.URL("/"), body)
	if err != nil {
		return nil, err
	}
	req.URL.Path, req.URL.RawPath = "", ""
	req.URL.Opaque = r.Target
	if p != H1 {
		req.URL.Opaque = "//" + req.URL.Host + r.Target
	}
	req.Header = http.Header{"User-Agent": {""}} // none
	for k, vv := range r.Header {
		if http.CanonicalHeaderKey(k) == "Host" && len(vv) > 0 {
			req.Host = vv[0]
			continue
		}
		req.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vv...)
	}
	return req, nil
}

// Do sends r over p with c (or by hand on a new connection for a Raw h1
// request) and reads the whole response, within RequestTimeout.
func (s *Server) Do(p Proto, c *http.Client, r Request) Response {
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	if p == H1 && r.Raw {
		return s.rawH1(r)
	}
	req, err := s.NewRequest(ctx, p, r)
	if err != nil {
		return Response{Proto: p, Err: err}
	}
	return Send(c, p, req)
}

// DoAll sends r over h1, h2 and h3 (one fresh client each, in parallel) and
// returns the responses indexed by protocol.
func (s *Server) DoAll(r Request) map[Proto]Response {
	return s.DoAllWith(s.Clients(), r)
}

// DoAllWith is DoAll with given clients (to reuse connections across
// calls); it uses the protocols that clients holds.
func (s *Server) DoAllWith(clients map[Proto]*http.Client, r Request) map[Proto]Response {
	type result struct {
		p   Proto
		res Response
	}
	ch := make(chan result, len(clients))
	for p, c := range clients {
		go func() { ch <- result{p, s.Do(p, c, r)} }()
	}
	out := map[Proto]Response{}
	for range clients {
		r := <-ch
		out[r.p] = r.res
	}
	return out
}

// CurlAs runs the curl at curl for scheme://name:<port><path>, with name
// resolved to 127.0.0.1 (the port is the HTTPS one, or the plain-HTTP one
// for "http"), trusting the PEM file cacert, within 30 s; args (such as
// --http2, -o, -w, -D) come before the URL.
func (s *Server) CurlAs(t testing.TB, curl, cacert, scheme, name, path string, args ...string) Result {
	t.Helper()
	port := s.HTTPSPort
	if scheme == "http" {
		port = s.HTTPPort
	}
	p := itoa(port)
	all := append([]string{"-sS", "--max-time", "30", "--cacert", cacert, "--resolve", name + ":" + p + ":127.0.0.1"}, args...)
	return RunCmd(t, s.Dir, PeerTimeout, curl, append(all, scheme+"://"+name+":"+p+path)...)
}
