package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/anx-gateway/anx/core/message"
)

// stdTransport sends requests through net/http's client machinery: to
// https:// upstreams (net/http.Transport, which offers h2 and http/1.1 by
// ALPN) and to h2c:// ones (x/net/http2's Transport with prior
// knowledge). gRPC's trailers and 1xx responses pass through both.
type stdTransport struct {
	scheme string // "https" or "http" (h2c) in the URLs it builds
	addr   string
	rt     http.RoundTripper
	idle   func()
}

// newHTTPSTransport returns a transport to an https:// upstream.
func newHTTPSTransport(t Target, o *transportOptions) *stdTransport {
	tc := &tls.Config{
		RootCAs:            o.tls.RootCAs,
		ServerName:         o.tls.ServerName,
		InsecureSkipVerify: o.tls.InsecureSkipVerify, //nolint:gosec // only by an explicitly named option
		MinVersion:         tls.VersionTLS12,
	}
	if tc.ServerName == "" {
		tc.ServerName = t.Host
	}
	dialer := &net.Dialer{Timeout: o.connectTimeout}
	tr := &http.Transport{
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   o.connectTimeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   max(o.keepAlive, 0),
		DisableKeepAlives:     o.keepAlive < 0,
		IdleConnTimeout:       o.keepAliveTimeout,
		ResponseHeaderTimeout: o.responseHeaderTimeout,
		DisableCompression:    true,
	}
	return &stdTransport{scheme: "https", addr: t.Addr, rt: tr, idle: tr.CloseIdleConnections}
}

// newH2CTransport returns a transport to an h2c:// upstream: HTTP/2 over
// plain TCP with prior knowledge.
func newH2CTransport(t Target, o *transportOptions) *stdTransport {
	dialer := &net.Dialer{Timeout: o.connectTimeout}
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
		DisableCompression: true,
		IdleConnTimeout:    o.keepAliveTimeout,
		ReadIdleTimeout:    o.keepAliveTimeout,
	}
	return &stdTransport{scheme: "http", addr: t.Addr, rt: tr, idle: tr.CloseIdleConnections}
}

func (s *stdTransport) closeIdle() { s.idle() }

// recycle closes the body; net/http's responses are not reused.
func (s *stdTransport) recycle(resp *inResponse) {
	if resp.Body != nil {
		resp.Body.Close()
	}
}

// roundTrip translates req into an *http.Request, sends it and
// translates the response back.
func (s *stdTransport) roundTrip(ctx context.Context, req *outRequest) (*inResponse, error) {
	var sent sentTrace
	hr, err := s.request(httptrace.WithClientTrace(ctx, sent.trace(req.Interim)), req)
	if err != nil {
		return nil, err
	}
	resp, err := s.rt.RoundTrip(hr)
	if err != nil {
		return nil, sent.classify(err)
	}
	return s.response(resp, req), nil
}

// request builds the *http.Request: the target is kept as the client sent
// it (URL.Opaque), so nothing is re-encoded.
func (s *stdTransport) request(ctx context.Context, req *outRequest) (*http.Request, error) {
	u, err := targetURL(s.scheme, s.addr, req.Target)
	if err != nil {
		return nil, errors.Join(errNotSent, err)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, "", nil)
	if err != nil {
		return nil, errors.Join(errNotSent, err)
	}
	hr.URL, hr.Host = u, req.Host
	hr.Header = make(http.Header, req.Header.Len())
	for _, f := range req.Header.Fields() {
		k := textproto.CanonicalMIMEHeaderKey(f.Name)
		hr.Header[k] = append(hr.Header[k], f.Value)
	}
	hr.ContentLength = req.ContentLength
	if req.ContentLength != 0 && req.Body != nil {
		hr.Trailer = http.Header{}
		hr.Body = &trailerBody{r: req.Body, src: req.Trailer, dst: hr.Trailer}
		if req.ContentLength < 0 {
			hr.ContentLength = -1
		}
	} else {
		hr.ContentLength = 0
	}
	return hr, nil
}

// targetURL makes the URL whose RequestURI is target exactly: net/http
// writes an Opaque URL as it is, except one starting with "//", which it
// would take for an authority; such a path goes in Path and RawPath.
func targetURL(scheme, addr, target string) (*url.URL, error) {
	path, query, _ := cutQuery(target)
	u := &url.URL{Scheme: scheme, Host: addr, Opaque: path, RawQuery: query}
	if strings.HasPrefix(path, "//") {
		decoded, err := url.PathUnescape(path)
		if err != nil {
			return nil, fmt.Errorf("proxy: request path %q: %w", path, err)
		}
		u.Opaque, u.Path, u.RawPath = "", decoded, path
		if u.EscapedPath() != path {
			return nil, fmt.Errorf("proxy: request path %q cannot be sent as it is", path)
		}
	}
	return u, nil
}

func cutQuery(target string) (path, query string, ok bool) {
	for i := 0; i < len(target); i++ {
		if target[i] == '?' {
			return target[:i], target[i+1:], true
		}
	}
	return target, "", false
}

// trailerBody reads the request content and, at its end, copies the
// client's trailer fields into the map net/http sends after it.
type trailerBody struct {
	r   io.Reader
	src *message.Header
	dst http.Header
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("%w: %w", errRequestBody, err)
	}
	if err == io.EOF && b.src != nil {
		for _, f := range b.src.Fields() {
			b.dst.Add(f.Name, f.Value)
		}
		b.src = nil
	}
	return n, err
}

func (b *trailerBody) Close() error { return nil }

// response translates resp. A 101 hands over its body, which net/http
// makes the connection itself.
func (s *stdTransport) response(resp *http.Response, req *outRequest) *inResponse {
	in := &inResponse{Status: resp.StatusCode, ContentLength: resp.ContentLength}
	for k, vs := range resp.Header {
		for _, v := range vs {
			in.Header.Add(k, v)
		}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
			in.Conn = rwc
			return in
		}
	}
	in.Body = &trailerReader{resp: resp, in: in}
	return in
}

// trailerReader reads a response body and, at its end, copies the
// upstream's trailer fields into the inResponse.
type trailerReader struct {
	resp *http.Response
	in   *inResponse
}

func (t *trailerReader) Read(p []byte) (int, error) {
	n, err := t.resp.Body.Read(p)
	if err == io.EOF {
		for k, vs := range t.resp.Trailer {
			for _, v := range vs {
				t.in.Trailer.Add(k, v)
			}
		}
	} else if err != nil {
		err = classifyBodyError(err)
	}
	return n, err
}

func (t *trailerReader) Close() error { return t.resp.Body.Close() }

// classifyBodyError marks a deadline error so that the handler can tell
// it from a broken connection.
func classifyBodyError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && !errors.Is(err, os.ErrDeadlineExceeded) {
		return errors.Join(os.ErrDeadlineExceeded, err)
	}
	return err
}

// sentTrace follows a request through net/http to tell, when it fails,
// whether any of it went out.
type sentTrace struct {
	mu        sync.Mutex
	connected bool // a connection was obtained
	wrote     bool // the head was written
}

func (st *sentTrace) trace(interim func(int, *message.Header)) *httptrace.ClientTrace {
	t := &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) {
			st.mu.Lock()
			st.connected = true
			st.mu.Unlock()
		},
		WroteHeaders: func() {
			st.mu.Lock()
			st.wrote = true
			st.mu.Unlock()
		},
	}
	if interim != nil {
		t.Got1xxResponse = func(code int, h textproto.MIMEHeader) error {
			if code == http.StatusSwitchingProtocols {
				return nil
			}
			var mh message.Header
			for k, vs := range h {
				for _, v := range vs {
					mh.Add(k, v)
				}
			}
			interim(code, &mh)
			return nil
		}
	}
	return t
}

// classify wraps a RoundTrip error with what the handler needs to know.
func (st *sentTrace) classify(err error) error {
	st.mu.Lock()
	connected, wrote := st.connected, st.wrote
	st.mu.Unlock()
	var ne net.Error
	timeout := errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
	switch {
	case !connected || !wrote && isDialError(err):
		return errors.Join(errNotSent, err)
	case timeout:
		return errors.Join(os.ErrDeadlineExceeded, err)
	}
	return err // errRequestBody, when the client's content failed, stays wrapped
}

func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// transportOptions are the settings a transport is built with; two routes
// whose options are equal share the transport, and so its connections.
type transportOptions struct {
	connectTimeout        time.Duration
	responseHeaderTimeout time.Duration
	readTimeout           time.Duration
	keepAlive             int
	keepAliveTimeout      time.Duration
	tls                   TLS
}

// equal reports whether two option sets build the same transport.
func (o *transportOptions) equal(p *transportOptions) bool {
	a, b := *o, *p
	a.tls.RootCAs, b.tls.RootCAs = nil, nil
	if a != b {
		return false
	}
	if o.tls.RootCAs == nil || p.tls.RootCAs == nil {
		return o.tls.RootCAs == p.tls.RootCAs
	}
	return o.tls.RootCAs.Equal(p.tls.RootCAs)
}
