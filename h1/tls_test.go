package h1

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"testing"

	"github.com/anx-gateway/anx/internal/testpki"
)

// serveTLS serves s on a TLS listener the way the tls front end will:
// accept, wrap in tls.Server, hand to ServeConn (here with the handshake
// left to ServeConn), with a certificate for example.test. It returns a
// dialer for clients, which verify that certificate. The timeouts s
// leaves at zero are notUnderTest.
func serveTLS(t *testing.T, s *Server) func() (*tls.Conn, *bufio.Reader) {
	t.Helper()
	timeoutsNotUnderTest(s)
	pki := testpki.New(t, "example.test")
	cfg := pki.ServerConfig("http/1.1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go s.ServeConn(tls.Server(nc, cfg))
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		s.Close()
	})
	return func() (*tls.Conn, *bufio.Reader) {
		nc, _ := dial(t, ln.Addr().String()) // reads and writes fail after hangTimeout without progress
		c := tls.Client(nc, pki.ClientConfig("http/1.1"))
		if err := c.Handshake(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
}

func TestTLSRequestsCarryTLSAndServerName(t *testing.T) {
	dialTLS := serveTLS(t, &Server{Handler: handlerFunc(func(w mrw, r *mreq) {
		io.WriteString(w, r.ServerName+" "+map[bool]string{true: "tls", false: "plain"}[r.TLS]+" "+r.RemoteAddr.Addr().String())
	})})
	c, br := dialTLS()
	for range 2 { // keep-alive over TLS: the idle wait reads through tls.Conn
		send(t, c, "GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
		if _, body := readResponse(t, br, "GET"); body != "example.test tls 127.0.0.1" {
			t.Errorf("body %q, want the SNI name, tls and the client address", body)
		}
	}
	// A refused request over TLS still gets its answer before the close.
	c, br = dialTLS()
	send(t, c, "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	out, _ := io.ReadAll(br)
	if got, want := maskDate(string(out)), errorResponse(400, ""); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
