package e2e

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/e2e/harness"
)

// TestH2CurlNegotiates: curl --http2 negotiates h2 and gets the exact bytes.
func TestH2CurlNegotiates(t *testing.T) {
	t.Parallel()
	curl := harness.Peer(t, "curl")
	s := harness.Start(t, harness.Options{})
	out := filepath.Join(t.TempDir(), "out")
	r := runCurl(t, s, curl, "--http2", "-o", out, "-w", "%{http_code} %{http_version}", s.URL("/data.bin"))
	if r.Stdout != "200 2" {
		t.Errorf("curl --http2 -w '%%{http_code} %%{http_version}': got %q, want %q", r.Stdout, "200 2")
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "/data.bin over h2 (curl)", got, s.File("data.bin"))
}

// h2loadSummary matches h2load's request summary line.
var h2loadSummary = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored`)

// TestH2Load: h2load -c16 -m16 -n 20000 finishes with every request done
// and succeeded, none failed or errored, all 2xx.
func TestH2Load(t *testing.T) {
	t.Parallel()
	h2load := harness.Peer(t, "h2load")
	s := harness.Start(t, harness.Options{})
	const n = 20000
	r := harness.RunCmd(t, s.Dir, harness.PeerTimeout, h2load, "-c16", "-m16", "-n", strconv.Itoa(n), s.URL("/hello.txt"))
	t.Logf("h2load:\n%s%s", r.Stdout, r.Stderr)
	if r.ExitCode != 0 || r.TimedOut {
		t.Fatalf("h2load: exit %d (timed out %v)", r.ExitCode, r.TimedOut)
	}
	m := h2loadSummary.FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("h2load printed no request summary")
	}
	want := []string{strconv.Itoa(n), strconv.Itoa(n), strconv.Itoa(n), strconv.Itoa(n), "0", "0"}
	if !slices.Equal(m[1:], want) {
		t.Errorf("h2load total/started/done/succeeded/failed/errored: got %v, want %v", m[1:], want)
	}
	if wantCodes := "status codes: " + strconv.Itoa(n) + " 2xx,"; !strings.Contains(r.Stdout, wantCodes) {
		t.Errorf("h2load status codes: want %q in its output", wantCodes)
	}
}

// h2specTotal is the number of cases h2spec v2.2.1 runs: without -S, and
// in strict mode (-S), which adds one.
const (
	h2specTotal       = 145
	h2specStrictTotal = 146
)

// TestH2Spec runs every h2spec case over TLS (ALPN h2 on the HTTPS port)
// and over h2c (prior knowledge on the plain port), in default and strict
// mode: every case must pass, first time. It reads h2spec's JUnit report:
// a skipped case counts as not passed, like a failed one.
func TestH2Spec(t *testing.T) {
	t.Parallel()
	h2spec := harness.Peer(t, "h2spec")
	s := harness.Start(t, harness.Options{})
	for _, tc := range []struct {
		name  string
		args  []string
		total int
	}{
		{"TLS", []string{"-t", "-k", "-p", strconv.Itoa(s.HTTPSPort)}, h2specTotal},
		{"TLS/strict", []string{"-S", "-t", "-k", "-p", strconv.Itoa(s.HTTPSPort)}, h2specStrictTotal},
		{"h2c", []string{"-p", strconv.Itoa(s.HTTPPort)}, h2specTotal},
		{"h2c/strict", []string{"-S", "-p", strconv.Itoa(s.HTTPPort)}, h2specStrictTotal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-h", "127.0.0.1", "-o", "5"}, tc.args...)
			cases, r, err := runH2spec(t, s, h2spec, args)
			if err != nil {
				t.Fatalf("h2spec report: %v\nstdout:\n%s\nstderr:\n%s", err, r.Stdout, r.Stderr)
			}
			var notPassed []string
			for _, c := range cases {
				if !c.passed() {
					notPassed = append(notPassed, c.id+" "+c.outcome()+" "+c.desc+"\n    "+c.why)
				}
			}
			if len(cases) != tc.total {
				t.Errorf("h2spec %q ran %d cases, want %d", args, len(cases), tc.total)
			}
			if len(notPassed) > 0 {
				t.Errorf("h2spec %q: %d of %d cases did not pass:\n  %s", args, len(notPassed), len(cases), strings.Join(notPassed, "\n  "))
			}
		})
	}
}

// runH2spec runs h2spec with args (and any case ids among them) and reads
// its JUnit report.
func runH2spec(t *testing.T, s *harness.Server, h2spec string, args []string) ([]h2specCase, harness.Result, error) {
	t.Helper()
	report := filepath.Join(t.TempDir(), "h2spec.xml")
	r := harness.RunCmd(t, s.Dir, harness.PeerTimeout, h2spec, append(args, "-j", report)...)
	if r.TimedOut {
		t.Fatalf("h2spec %q timed out after %v:\n%s", args, harness.PeerTimeout, r.Stdout)
	}
	cases, err := readH2specReport(report)
	return cases, r, err
}

// h2specCase is one test case of an h2spec JUnit report.
type h2specCase struct {
	id, desc, why   string // id as h2spec prints it: "http2/6.5.3/1"
	failed, skipped bool
}

// passed reports whether the case ran and passed.
func (c h2specCase) passed() bool { return !c.failed && !c.skipped }

// outcome names a case's result for messages.
func (c h2specCase) outcome() string {
	switch {
	case c.failed:
		return "failed"
	case c.skipped:
		return "skipped"
	}
	return "passed"
}

// readH2specReport parses h2spec's JUnit file; a case's number is its
// 1-based position within its suite, as h2spec numbers them.
func readH2specReport(path string) ([]h2specCase, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Suites []struct {
			Package string `xml:"package,attr"`
			Cases   []struct {
				Desc    string  `xml:"classname,attr"`
				Failure *string `xml:"failure"`
				Error   *string `xml:"error"`
				Skipped *string `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	var out []h2specCase
	for _, s := range doc.Suites {
		for i, c := range s.Cases {
			hc := h2specCase{id: s.Package + "/" + strconv.Itoa(i+1), desc: c.Desc}
			for _, f := range []*string{c.Failure, c.Error} {
				if f != nil {
					hc.failed, hc.why = true, strings.TrimSpace(*f)
				}
			}
			if c.Skipped != nil && !hc.failed {
				hc.skipped, hc.why = true, strings.TrimSpace(*c.Skipped)
			}
			out = append(out, hc)
		}
	}
	return out, nil
}

// TestReadH2specReport: a JUnit report in h2spec's format is read with
// each case's id, and a skipped case does not count as passed.
func TestReadH2specReport(t *testing.T) {
	report := filepath.Join(t.TempDir(), "h2spec.xml")
	harness.WriteFile(t, report, []byte(`<testsuites>
<testsuite name="3.5. HTTP/2 Connection Preface" package="http2/3.5" tests="2" skipped="1" failures="0" errors="0">
<testcase package="http2/3.5" classname="Sends client connection preface" time="0.001"></testcase>
<testcase package="http2/3.5" classname="Sends invalid connection preface" time="0.001"><skipped></skipped></testcase>
</testsuite>
<testsuite name="6.5.3" package="http2/6.5.3" tests="1" skipped="0" failures="1" errors="0">
<testcase package="http2/6.5.3" classname="Sends multiple values" time="0.001"><failure>Expected: ACK</failure></testcase>
</testsuite>
</testsuites>`))
	got, err := readH2specReport(report)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id, outcome string
	}{{"http2/3.5/1", "passed"}, {"http2/3.5/2", "skipped"}, {"http2/6.5.3/1", "failed"}}
	if len(got) != len(want) {
		t.Fatalf("got %d cases %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		if got[i].id != w.id || got[i].outcome() != w.outcome || got[i].passed() != (w.outcome == "passed") {
			t.Errorf("case %d: got %s %s (passed %v), want %s %s", i, got[i].id, got[i].outcome(), got[i].passed(), w.id, w.outcome)
		}
	}
}
