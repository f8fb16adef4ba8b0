package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// startServer serves the admin endpoints on a free loopback port; the
// test shuts it down at its end.
func startServer(t *testing.T, q *Requests) string {
	t.Helper()
	s := &Server{Requests: q, Sources: testSources(time.Now())}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return "http://" + s.Addr().String()
}

// fetch gets url and returns its status, content type and body.
func fetch(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

func TestServerEndpoints(t *testing.T) {
	q := NewRequests()
	info := &message.RouteInfo{Site: "example.com", Path: "/api/*"}
	q.SetRoutes([]*message.RouteInfo{info})
	for range 4 {
		observe(q, info, message.HTTP3, 200, time.Millisecond)
	}
	base := startServer(t, q)

	status, ctype, body := fetch(t, base+"/metrics")
	for _, want := range []string{
		`anx_http_requests_total{code_class="2xx",proto="h3",route="/api/*",site="example.com"} 4`,
		`anx_certificate_expiry_seconds{issuer="internal",name="localhost"}`,
		"go_goroutines ", "process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics (%d, %s) lacks %q", status, ctype, want)
		}
	}

	status, ctype, body = fetch(t, base+"/status.json")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil || status != 200 || ctype != "application/json" {
		t.Fatalf("/status.json: %d %s %v\n%s", status, ctype, err, body)
	}
	if st.RequestsByProto["h3"] != 4 || len(st.Certificates) != 2 || len(st.Upstreams) != 2 || !st.Upstreams[0].Up || st.Upstreams[0].Pooled != 3 {
		t.Errorf("/status.json = %+v", st)
	}

	status, ctype, body = fetch(t, base+"/")
	if status != 200 || !strings.HasPrefix(ctype, "text/html") || !strings.Contains(body, `fetch("status.json"`) {
		t.Errorf("/: %d %s, %d bytes", status, ctype, len(body))
	}
	if status, _, _ = fetch(t, base+"/other"); status != 404 {
		t.Errorf("/other: %d, want 404", status)
	}
}

func TestSamplerRates(t *testing.T) {
	q := NewRequests()
	info := &message.RouteInfo{Site: "a"}
	q.SetRoutes([]*message.RouteInfo{info})
	t0 := time.Unix(1000, 0)
	s := newSampler(q, t0)
	for i := 1; i <= 10; i++ {
		for range 20 {
			observe(q, info, message.HTTP2, 200, time.Millisecond)
		}
		s.take(t0.Add(time.Duration(i) * time.Second))
	}
	current, history := s.rates()
	if current["h2"] != 20 || current["h1"] != 0 {
		t.Errorf("rates = %v, want 20/s on h2", current)
	}
	if len(history) != 10 || history[9].RPS != 20 || history[9].Time != 1010 {
		t.Errorf("history = %+v, want 10 seconds at 20/s", history)
	}
}
