package harness

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Prometheus is a real Prometheus server (Debian's prometheus package) on
// loopback, scraping some targets every second, with its storage in a
// temporary directory. It is stopped by pid at the test's cleanup.
type Prometheus struct {
	URL  string // its HTTP API, http://127.0.0.1:<port>
	proc *process
}

// StartPrometheus starts Prometheus scraping targets (host:port, path
// /metrics) every second as job "anx", and waits until its API answers.
func StartPrometheus(t testing.TB, targets ...string) *Prometheus {
	t.Helper()
	bin := Peer(t, "prometheus")
	dir := t.TempDir()
	cfg := "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: anx\n    static_configs:\n      - targets: ["
	for i, target := range targets {
		if i > 0 {
			cfg += ", "
		}
		cfg += strconv.Quote(target)
	}
	cfg += "]\n"
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := loopback(FreeTCPPort(t))
	proc, err := startProcess("prometheus", dir, bin, os.Environ(), "--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &Prometheus{URL: "http://" + addr, proc: proc}
	t.Cleanup(proc.stop)
	ready := func() error {
		resp, err := http.Get(p.URL + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/-/ready: %s", resp.Status)
		}
		return nil
	}
	if err := waitUntil(proc, ready); err != nil {
		t.Fatalf("harness: prometheus did not become ready: %v\n%s", err, tailString(proc.output(), 3000))
	}
	return p
}

// Log returns Prometheus's output so far.
func (p *Prometheus) Log() string { return p.proc.output() }

// Sample is one series of an instant query's answer.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Query runs an instant query through the HTTP API
// (/api/v1/query) and returns its samples.
func (p *Prometheus) Query(expr string) ([]Sample, error) {
	resp, err := http.Get(p.URL + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var answer struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return nil, fmt.Errorf("prometheus query %q: %w", expr, err)
	}
	if answer.Status != "success" {
		return nil, fmt.Errorf("prometheus query %q: %s", expr, answer.Error)
	}
	var out []Sample
	for _, r := range answer.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("prometheus query %q: value %v", expr, r.Value[1])
		}
		out = append(out, Sample{Labels: r.Metric, Value: v})
	}
	return out, nil
}

// WaitQuery runs expr until some sample satisfies ok and returns it; the
// deadline (SafetyNet) is a safety net.
func (p *Prometheus) WaitQuery(t testing.TB, expr string, ok func(Sample) bool) Sample {
	t.Helper()
	deadline := time.Now().Add(SafetyNet)
	var last []Sample
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = p.Query(expr)
		for _, s := range last {
			if ok(s) {
				return s
			}
		}
		time.Sleep(200 * time.Millisecond) // polling the query, not a wait for time to pass
	}
	t.Fatalf("prometheus: no sample of %q as wanted after %v: last %+v, %v\n%s", expr, SafetyNet, last, lastErr, tailString(p.Log(), 3000))
	return Sample{}
}
