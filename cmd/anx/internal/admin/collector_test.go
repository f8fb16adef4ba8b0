package admin

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/anx-gateway/anx/core/message"
)

// testSources gives fixed figures for every source.
func testSources(now time.Time) Sources {
	return Sources{
		Connections: func() []Connections {
			return []Connections{{Proto: "h2", State: "open", Open: 3}, {Proto: "tls", State: "handshake", Open: 1}}
		},
		Handshakes: func() Handshakes {
			return Handshakes{Completed: 10, Failed: map[string]uint64{"timeout": 2, "no_certificate": 1}}
		},
		Certificates: func() []Certificate {
			return []Certificate{
				{Name: "localhost", Issuer: "internal", NotAfter: now.Add(48 * time.Hour)},
				{Name: "example.com", Issuer: "acme", LastError: "acme: rate limited"},
			}
		},
		Upstreams: func() []Upstream {
			return []Upstream{
				{Route: "a /api/*", URL: "http://127.0.0.1:9000", Up: true, Requests: 7, Failures: 1, Retries: 1, InFlight: 2, Pooled: 3},
				{Route: "a /h2/*", URL: "h2c://127.0.0.1:9001", Up: true, Pooled: -1}, // not counted: no series
			}
		},
		Loops: func() []Loop { return []Loop{{Listener: "https", Index: 0, Wakeups: 99, Conns: 5, Queued: 4096}} },
	}
}

func TestCollectorReadsSources(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	c := &collector{requests: NewRequests(), sources: testSources(now), now: func() time.Time { return now }}
	want := `
# HELP anx_certificate_expiry_seconds Seconds until the certificate expires (negative: expired).
# TYPE anx_certificate_expiry_seconds gauge
anx_certificate_expiry_seconds{issuer="internal",name="localhost"} 172800
# HELP anx_certificate_renewal_error 1 for a certificate whose last obtain or renewal failed, with the error.
# TYPE anx_certificate_renewal_error gauge
anx_certificate_renewal_error{error="acme: rate limited",name="example.com"} 1
# HELP anx_tls_handshake_failures_total TLS handshakes on TCP that failed, by reason.
# TYPE anx_tls_handshake_failures_total counter
anx_tls_handshake_failures_total{reason="no_certificate"} 1
anx_tls_handshake_failures_total{reason="timeout"} 2
# HELP anx_upstream_up 1 when requests may go to the upstream, 0 when health checks or passive health took it out.
# TYPE anx_upstream_up gauge
anx_upstream_up{route="a /api/*",upstream="http://127.0.0.1:9000"} 1
anx_upstream_up{route="a /h2/*",upstream="h2c://127.0.0.1:9001"} 1
# HELP anx_upstream_pooled_connections Idle connections to the upstream kept for reuse.
# TYPE anx_upstream_pooled_connections gauge
anx_upstream_pooled_connections{route="a /api/*",upstream="http://127.0.0.1:9000"} 3
# HELP anx_loop_queued_output_bytes Output queued on each event loop's connections, not yet taken by the sockets.
# TYPE anx_loop_queued_output_bytes gauge
anx_loop_queued_output_bytes{listener="https",loop="0"} 4096
# HELP anx_connections_open Open client connections by protocol and state.
# TYPE anx_connections_open gauge
anx_connections_open{proto="h2",state="open"} 3
anx_connections_open{proto="tls",state="handshake"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "anx_certificate_expiry_seconds", "anx_certificate_renewal_error",
		"anx_tls_handshake_failures_total", "anx_upstream_up", "anx_upstream_pooled_connections", "anx_loop_queued_output_bytes",
		"anx_connections_open"); err != nil {
		t.Error(err)
	}
}

func TestCollectorPassesLint(t *testing.T) {
	now := time.Now()
	q := NewRequests()
	info := &message.RouteInfo{Site: "a"}
	q.SetRoutes([]*message.RouteInfo{info})
	observe(q, info, message.HTTP1, 200, time.Millisecond)
	c := &collector{requests: q, sources: testSources(now), now: time.Now}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if _, err := reg.Gather(); err != nil {
		t.Errorf("pedantic registry: %v", err)
	}
}

func TestShortenKeepsRunesWhole(t *testing.T) {
	long := strings.Repeat("é", 150) // 300 bytes
	got := shorten(long)
	if !utf8.ValidString(got) || len(got) > maxErrorLabel+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("shorten: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if shorten("short") != "short" {
		t.Error("shorten changed a short text")
	}
}
