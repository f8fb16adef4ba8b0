package harness

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"
)

// DialTLS opens a TLS connection to the https port (SNI localhost, trusting
// anx's root) offering alpn, and checks that the server chose it. The
// connection is closed in t.Cleanup. Call it from the test's goroutine only
// (it may call t.Fatal); elsewhere use Dial.
func (s *Server) DialTLS(alpn string) *tls.Conn {
	s.t.Helper()
	c, err := s.dialTLS(alpn)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// dialTLS is DialTLS returning its error.
func (s *Server) dialTLS(alpn string) (*tls.Conn, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: SafetyNet}, Config: s.TLSConfig(alpn)}
	c, err := d.Dial("tcp", s.HTTPS)
	if err != nil {
		return nil, fmt.Errorf("harness: TLS dial %s: %w", s.HTTPS, err)
	}
	tc := c.(*tls.Conn)
	if got := tc.ConnectionState().NegotiatedProtocol; got != alpn {
		tc.Close()
		return nil, fmt.Errorf("harness: ALPN: got %q, want %q", got, alpn)
	}
	return tc, nil
}

// DialPlain opens a TCP connection to the plain http port, closed in
// t.Cleanup. Call it from the test's goroutine only; elsewhere use Dial.
func (s *Server) DialPlain() net.Conn {
	s.t.Helper()
	c, err := s.Dial("plain")
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Dial opens a connection from any goroutine: kind "plain" (the http
// port), "tls" (https, ALPN http/1.1) or "h2" (https, ALPN h2). The caller
// closes it.
func (s *Server) Dial(kind string) (net.Conn, error) {
	switch kind {
	case "plain":
		return net.DialTimeout("tcp", s.HTTP, SafetyNet)
	case "tls":
		return s.dialTLS("http/1.1")
	case "h2":
		return s.dialTLS("h2")
	}
	return nil, fmt.Errorf("harness: unknown connection kind %q", kind)
}

// Exchange writes raw to c, then reads until the server closes the
// connection or timeout passes. closed reports whether the server closed it
// (EOF or reset) within the timeout.
func Exchange(c net.Conn, raw []byte, timeout time.Duration) (got []byte, closed bool, err error) {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(raw); err != nil {
		return nil, false, err
	}
	return ReadUntilClose(c, timeout)
}

// ReadUntilClose reads c until EOF/reset (closed=true) or until timeout.
func ReadUntilClose(c net.Conn, timeout time.Duration) (got []byte, closed bool, err error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	var buf bytes.Buffer
	_, err = io.Copy(&buf, c)
	switch {
	case err == nil: // EOF
		return buf.Bytes(), true, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return buf.Bytes(), false, nil
	case isReset(err):
		return buf.Bytes(), true, nil
	default:
		return buf.Bytes(), false, err
	}
}

// isReset reports whether err is a connection reset by the peer.
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// ParseResponses parses every HTTP/1.x response in b, in order, reading each
// body per its framing. reqMethods gives the method of each request (for
// HEAD); missing entries mean GET. The rest of b that is not a whole
// response is returned as rest.
func ParseResponses(b []byte, reqMethods ...string) (res []Response, rest []byte) {
	br := bytes.NewReader(b)
	r := bufio.NewReader(br)
	for i := 0; ; i++ {
		start := len(b) - br.Len() - r.Buffered()
		if _, err := r.Peek(1); err != nil {
			return res, nil
		}
		method := http.MethodGet
		if i < len(reqMethods) {
			method = reqMethods[i]
		}
		hr, err := http.ReadResponse(r, &http.Request{Method: method})
		if err != nil {
			return res, b[start:]
		}
		body, err := io.ReadAll(hr.Body)
		hr.Body.Close()
		if err != nil {
			return res, b[start:]
		}
		res = append(res, Response{Proto: H1, Status: hr.StatusCode, Header: hr.Header, Body: body, Version: hr.Proto})
	}
}

// rawH1 writes r by hand on a new TLS connection (ALPN http/1.1) with
// Connection: close and reads the response.
func (s *Server) rawH1(r Request) Response {
	fail := func(err error) Response { return Response{Proto: H1, Err: err} }
	c, err := s.dialTLS("http/1.1")
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	var b bytes.Buffer
	host := "localhost:" + itoa(s.HTTPSPort)
	if h := r.Header.Values("Host"); len(h) > 0 {
		host = h[0]
	}
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.method(), r.Target, host)
	for k, vv := range r.Header {
		if http.CanonicalHeaderKey(k) == "Host" {
			continue
		}
		for _, v := range vv {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	if r.Body != nil {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.Body))
	}
	b.WriteString("Connection: close\r\n\r\n")
	b.Write(r.Body)
	_ = c.SetDeadline(time.Now().Add(RequestTimeout))
	if _, err := c.Write(b.Bytes()); err != nil {
		return fail(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: r.method()})
	if err != nil {
		return fail(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return Response{Proto: H1, Status: res.StatusCode, Header: res.Header, Body: body, Err: err, Version: res.Proto}
}
