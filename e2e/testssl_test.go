package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anx-gateway/anx/e2e/harness"
)

// testsslTimeout bounds the testssl.sh run: a safety net. It takes 35
// seconds on an idle machine with 2 cores, two to three times that when
// other tests keep both cores busy (testssl.sh is a bash script that forks
// openssl and its own tools for every probe), and more against a -race
// anx: over 10 minutes with the machine's load at 16 (several test runs at
// once), which this net does not cover.
const testsslTimeout = 10 * time.Minute

// testsslChecks are the checks testssl.sh runs: its default run (protocols,
// cipher categories, server preferences, forward secrecy, server defaults,
// headers, vulnerabilities, client simulation) without the client
// simulation, which takes two thirds of the time and plays no part in the
// rating. The rating needs every one of the others (set_rating_state in
// testssl.sh); the server preferences (-P) feed its cipher strength score.
// (--nodns none, below: the target is 127.0.0.1, and there is no DNS to
// ask for its reverse name or CAA records.)
var testsslChecks = []string{"-p", "-s", "-P", "-f", "-S", "-h", "-U"}

// TestTestssl: testssl.sh 3.2 grades anx A+, for the localhost site with
// a certificate of anx's local CA (whose root testssl is given) and an HSTS
// header of two years (HSTS auto sends none for localhost, and without it
// the grade is capped at A). The test logs the grade, the scores and every
// finding worse than OK or INFO.
func TestTestssl(t *testing.T) {
	t.Parallel()
	testssl := harness.Peer(t, "testssl")
	cfg := harness.Config{Site: []string{`hsts = "max-age=63072000; includeSubDomains"`}}
	s := harness.Start(t, harness.Options{Config: cfg.TOML()})
	report := filepath.Join(s.Dir, "testssl.json")
	args := append([]string{"--quiet", "--color", "0", "--warnings", "batch",
		"--connect-timeout", "10", "--openssl-timeout", "10",
		"--nodns", "none", "--ip", "127.0.0.1", "--add-ca", s.CAPath(), "--jsonfile-pretty", report},
		testsslChecks...)
	args = append(args, "https://localhost:"+strconv.Itoa(s.HTTPSPort))

	start := time.Now()
	r := harness.RunCmd(t, s.Dir, testsslTimeout, testssl, args...)
	took := time.Since(start).Round(time.Second)
	if r.TimedOut {
		t.Fatalf("testssl %q did not finish within %v\nstdout: %s\nstderr: %s", args, testsslTimeout, r.Stdout, r.Stderr)
	}
	if r.ExitCode != 0 {
		t.Errorf("testssl %q: exit %d (an error in one of its checks)\nstdout: %s\nstderr: %s", args, r.ExitCode, r.Stdout, r.Stderr)
	}
	res := readTestssl(t, report)
	grade := res.find("overall_grade")
	t.Logf("testssl %s: overall grade %s (final score %s: protocol %s, key exchange %s, cipher strength %s) in %v",
		strings.TrimSpace(res.version), grade, res.find("final_score"), res.find("protocol_support_score"),
		res.find("key_exchange_score"), res.find("cipher_strength_score"), took)
	for _, f := range res.findings {
		if strings.HasPrefix(f.ID, "grade_cap_") || (f.Severity != "OK" && f.Severity != "INFO") {
			t.Logf("  %s %s %s: %s", f.section, f.Severity, f.ID, f.Finding)
		}
	}
	if grade != "A+" {
		t.Errorf("overall grade %q, want A+ (the grade_cap_reason_* and grade_cap_warning_* findings above say why)", grade)
	}
}

// testsslFinding is one finding of testssl.sh's JSON report.
type testsslFinding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"` // OK, INFO, LOW, MEDIUM, HIGH, CRITICAL, WARN
	Finding  string `json:"finding"`
	section  string // e.g. "protocols", "serverDefaults", "rating"
}

// testsslResult is what readTestssl reads of a report.
type testsslResult struct {
	version  string
	findings []testsslFinding
}

// find returns the finding of the first entry with id, or "".
func (r testsslResult) find(id string) string {
	for _, f := range r.findings {
		if f.ID == id {
			return f.Finding
		}
	}
	return ""
}

// readTestssl parses the --jsonfile-pretty report at path, of one target:
// {"version": ..., "scanResult": [{"targetHost": ..., "<section>": [findings]}]},
// keeping the findings in the report's order.
func readTestssl(t *testing.T, path string) testsslResult {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("testssl's report: %v", err)
	}
	var doc struct {
		Version    string            `json:"version"`
		ScanResult []json.RawMessage `json:"scanResult"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("testssl's report %s: %v", path, err)
	}
	if len(doc.ScanResult) != 1 {
		t.Fatalf("testssl's report has %d targets, want 1", len(doc.ScanResult))
	}
	res := testsslResult{version: doc.Version}
	dec := json.NewDecoder(bytes.NewReader(doc.ScanResult[0]))
	if _, err := dec.Token(); err != nil { // {
		t.Fatalf("testssl's report %s: %v", path, err)
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			t.Fatalf("testssl's report %s: %v", path, err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatalf("testssl's report %s: %v", path, err)
		}
		var fs []testsslFinding
		if json.Unmarshal(raw, &fs) != nil {
			continue // a string such as targetHost
		}
		for _, f := range fs {
			f.section = key.(string)
			res.findings = append(res.findings, f)
		}
	}
	return res
}
