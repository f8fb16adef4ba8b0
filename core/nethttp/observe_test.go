package nethttp

import (
	"crypto/tls"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/anx-gateway/anx/core/message"
)

// lastOutcome is an Observer that keeps what it saw last.
type lastOutcome struct {
	mu         sync.Mutex
	method     string
	proto      message.Proto
	tlsVersion uint16
	out        message.Outcome
	n          int
}

func (l *lastOutcome) Observe(r *message.Request, o *message.Outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.method, l.proto, l.tlsVersion, l.out = r.Method, r.Proto, r.TLSVersion, *o
	l.n++
}

func TestObserverSeesEachExchange(t *testing.T) {
	obs := &lastOutcome{}
	h := &Handler{MaxBodyBytes: 10, Observer: obs, Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		buf := make([]byte, 100)
		n, _ := r.Body.Read(buf)
		w.Write(buf[:n])
		w.Write([]byte("!"))
	})}
	for name, start := range servers(t, h) {
		client, base := start()
		t.Run(name, func(t *testing.T) {
			for _, c := range []struct {
				body         string
				status       int
				sent, recved int64
			}{
				{"abc", 200, 4, 3},
				{"0123456789A", 413, 0, 0}, // over MaxBodyBytes: answered without the engine
			} {
				resp, err := client.Post(base, "text/plain", strings.NewReader(c.body))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				obs.mu.Lock()
				got := obs.out
				wantTLS := uint16(0)
				if name == "HTTP/2" {
					wantTLS = tls.VersionTLS13
				}
				if got.Status != c.status || got.Sent != c.sent || got.Received != c.recved || got.Cut ||
					obs.method != http.MethodPost || obs.tlsVersion != wantTLS || got.Start.IsZero() || got.End.Before(got.Start) {
					t.Errorf("POST %q: saw %s TLS %x %+v, want status %d, %d sent, %d received, TLS %x",
						c.body, obs.method, obs.tlsVersion, got, c.status, c.sent, c.recved, wantTLS)
				}
				obs.mu.Unlock()
			}
		})
	}
}
