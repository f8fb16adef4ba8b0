package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // of build-output events
}

// skip is a test that skipped, with what it said.
type skip struct {
	Package, Test, Reason string
}

// report turns go test's events into go test's usual terse output and
// collects the skips. Its methods run on one goroutine.
type report struct {
	out     io.Writer
	verbose bool
	pending map[string][]string // a running test's output lines, by Package+" "+Test
	skips   []skip
	failed  bool // a test, a package or a build failed
}

func newReport(out io.Writer, verbose bool) *report {
	return &report{out: out, verbose: verbose, pending: map[string][]string{}}
}

// read consumes go test -json output until EOF. A line that is not an
// event (go test can print some errors plainly) is printed as it is.
func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(r.out, sc.Text())
			continue
		}
		r.handle(e)
	}
	return sc.Err()
}

// handle takes one event.
func (r *report) handle(e event) {
	switch {
	case e.Action == "build-output":
		io.WriteString(r.out, e.Output)
	case e.Action == "build-fail":
		r.failed = true
	case e.Test == "":
		r.handlePackage(e)
	default:
		r.handleTest(e)
	}
}

// handlePackage takes a package-level event: its summary line, and
// whatever the test binary printed outside any test (TestMain, a panic).
func (r *report) handlePackage(e event) {
	switch e.Action {
	case "fail":
		r.failed = true
	case "output":
		if e.Output != "PASS\n" || r.verbose {
			io.WriteString(r.out, e.Output)
		}
	}
}

// handleTest takes an event of one test: its output is held until the test
// ends, and printed if it failed.
func (r *report) handleTest(e event) {
	key := e.Package + " " + e.Test
	switch e.Action {
	case "output":
		if r.verbose {
			io.WriteString(r.out, e.Output)
			return
		}
		r.pending[key] = append(r.pending[key], e.Output)
	case "fail":
		r.failed = true
		for _, line := range r.pending[key] {
			io.WriteString(r.out, line)
		}
		delete(r.pending, key)
	case "skip":
		r.skips = append(r.skips, skip{Package: e.Package, Test: e.Test, Reason: skipReason(r.pending[key])})
		delete(r.pending, key)
	case "pass":
		delete(r.pending, key)
	}
}

// skipReason is what a skipped test logged, without go test's own
// "=== RUN" and "--- SKIP" lines.
func skipReason(lines []string) string {
	var said []string
	for _, line := range lines {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "=== ") || strings.HasPrefix(trimmed, "--- SKIP") {
			continue
		}
		said = append(said, trimmed)
	}
	return strings.Join(said, " | ")
}

// finish prints the skips, the allowed ones and then the others, and
// returns the exit code: 1 if go test failed or a skip is not allowed.
func (r *report) finish(allowed allowlist, testErr error) int {
	var refused []skip
	for _, s := range r.skips {
		why, ok := allowed.match(s.Package, s.Test)
		if !ok {
			refused = append(refused, s)
			continue
		}
		fmt.Fprintf(r.out, "SKIP (allowed) %s %s: %s\n    allowed because: %s\n", s.Package, s.Test, s.Reason, why)
	}
	for _, s := range refused {
		fmt.Fprintf(r.out, "SKIP (not allowed) %s %s: %s\n", s.Package, s.Test, s.Reason)
	}
	switch {
	case len(refused) > 0:
		fmt.Fprintf(r.out, "testrun: %d test(s) skipped that %s does not allow: make them run here, or add them with the reason\n", len(refused), allowed.file)
		return 1
	case testErr != nil || r.failed:
		if testErr != nil {
			fmt.Fprintf(r.out, "testrun: go test: %v\n", testErr)
		}
		return 1
	}
	return 0
}
