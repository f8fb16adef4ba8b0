package onloop

import (
	"crypto/tls"
	"fmt"
	"testing"
	"time"
)

// waitStats waits until the handler's Stats satisfy cond; the counts
// change on the loop after the client has seen its side end.
func waitStats(t *testing.T, h *Handler, what string, cond func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(hangTimeout)
	for {
		st := h.Stats()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s: %+v", what, st)
		}
		time.Sleep(time.Millisecond) // polling a counter, not a wait for time to pass
	}
}

func TestStatsCountConnectionsAndHandshakes(t *testing.T) {
	h, pki := tlsHandler(t, "h2", "http/1.1")
	h.Protocols = map[string]Protocol{"http/1.1": &lineProto{name: "h1"}, "h2": &lineProto{name: "h2"}}
	h.HandshakeTimeout = 200 * time.Millisecond
	srv := start(t, h, 1)

	h1 := dialTLS(t, srv, pki.ClientConfig("http/1.1"))
	h2 := dialTLS(t, srv, pki.ClientConfig("h2"))
	for _, c := range []*client{h1, h2} {
		c.send(t, "echo up\n")
	}
	h1.expect(t, "h1: up")
	h2.expect(t, "h2: up")
	waitStats(t, h, "one connection of each protocol", func(st Stats) bool {
		return st.HTTP1 == 1 && st.HTTP2 == 1 && st.Choosing == 0 && st.Handshakes == 2
	})

	// A client that speaks no TLS, one that offers only TLS 1.0, one
	// that asks for a name we have no certificate for, and one that
	// says nothing: four failures, each for its reason.
	plain := dialPlain(t, srv)
	plain.send(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	old := dialRaw(t, srv)
	if tls.Client(old, &tls.Config{MaxVersion: tls.VersionTLS10, MinVersion: tls.VersionTLS10, InsecureSkipVerify: true}).Handshake() == nil {
		t.Fatal("a TLS 1.0 handshake succeeded")
	}
	silent := dialRaw(t, srv)
	_ = silent
	st := waitStats(t, h, "the failed handshakes", func(st Stats) bool {
		return st.Failed[FailBadRecord] == 1 && st.Failed[FailProtocolVersion] == 1 && st.Failed[FailTimeout] == 1
	})
	if st.Handshakes != 2 {
		t.Errorf("%d handshakes completed, want 2", st.Handshakes)
	}

	h1.Close()
	h2.Close()
	waitStats(t, h, "every connection closed", func(st Stats) bool { return st.HTTP1 == 0 && st.HTTP2 == 0 && st.Choosing == 0 })
}

func TestClassifyFailure(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Failure
	}{
		{fmt.Errorf("certs: name not allowed: %q", "x.example"), FailNoCertificate},
		{fmt.Errorf("tls: no certificates configured"), FailNoCertificate},
		{fmt.Errorf("remote error: tls: bad certificate"), FailClientAlert},
		{fmt.Errorf("tls: client offered only unsupported versions: [301]"), FailProtocolVersion},
		{fmt.Errorf("local error: tls: bad record MAC"), FailBadRecord},
		{fmt.Errorf("tls: no cipher suite supported by both client and server"), FailOther},
	} {
		if got := classifyFailure(tc.err); got != tc.want {
			t.Errorf("classifyFailure(%q) = %s, want %s", tc.err, FailureReasons[got], FailureReasons[tc.want])
		}
	}
}
