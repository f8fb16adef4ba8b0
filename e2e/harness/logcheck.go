package harness

import (
	"fmt"
	"regexp"
	"strings"
)

// Markers of a crash or a race in a Go program's stderr.
const (
	// raceMarker opens every report of the race detector (a binary built
	// with -race). Without GORACE=halt_on_error=1 the program goes on and
	// exits 66 at the end, so the harness reads the report from the log.
	raceMarker = "WARNING: DATA RACE"
	// errorLevel marks a line of anx's slog text log at level ERROR.
	errorLevel = "level=ERROR"
)

// crashLine matches the first line the Go runtime prints when a program
// panics or dies of a fatal error (e.g. "fatal error: concurrent map writes").
var crashLine = regexp.MustCompile(`^(panic: |fatal error: )`)

// maxProblems caps the problems LogProblems lists, so that a flood of one
// kind (a race in a hot path) does not bury the others.
const maxProblems = 10

// LogProblems reads the stderr of an anx process and lists what must fail
// a test: each race detector report, each panic or fatal error, and each
// level=ERROR line that matches none of expected. It returns nil when
// there is nothing to report.
func LogProblems(log string, expected []*regexp.Regexp) []string {
	var out []string
	races := 0
	for line := range strings.SplitSeq(log, "\n") {
		switch {
		case strings.Contains(line, raceMarker):
			races++
		case crashLine.MatchString(line):
			out = append(out, "anx crashed: "+line)
		case strings.Contains(line, errorLevel) && !matchesAny(line, expected):
			out = append(out, "unexpected "+errorLevel+" line: "+line)
		}
	}
	if races > 0 {
		out = append([]string{fmt.Sprintf("the race detector reported %d data race(s) (%q)", races, raceMarker)}, out...)
	}
	if len(out) > maxProblems {
		out = append(out[:maxProblems], fmt.Sprintf("and %d more", len(out)-maxProblems))
	}
	return out
}

// matchesAny reports whether line matches one of res.
func matchesAny(line string, res []*regexp.Regexp) bool {
	for _, re := range res {
		if re.MatchString(line) {
			return true
		}
	}
	return false
}

// compileExpected compiles Options.ExpectedErrors.
func compileExpected(patterns []string) ([]*regexp.Regexp, error) {
	res := make([]*regexp.Regexp, 0, len(patterns))
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("harness: Options.ExpectedErrors: %w", err)
		}
		res = append(res, re)
	}
	return res, nil
}

// crashProblems is LogProblems for the output of a command that is not a
// server (anx certs, anx doctor, ...): races and crashes only, since such a
// command reports its errors in its exit code and output, which its test reads.
func crashProblems(stderr string) []string {
	anyLine := regexp.MustCompile(``)
	return LogProblems(stderr, []*regexp.Regexp{anyLine})
}
