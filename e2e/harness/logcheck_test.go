package harness

import (
	"strings"
	"testing"
)

// TestLogProblems: races, panics, fatal errors and ERROR lines outside the
// expected patterns are reported; INFO and WARN lines and expected ERROR
// lines are not.
func TestLogProblems(t *testing.T) {
	const (
		info     = `time=2025-01-01T00:00:00Z level=INFO msg=ready https=127.0.0.1:1`
		warn     = `time=2025-01-01T00:00:00Z level=WARN msg="udp buffer small"`
		reload   = `time=2025-01-01T00:00:00Z level=ERROR msg="reload failed" err="anx.toml:3: site.root"`
		certFail = `time=2025-01-01T00:00:00Z level=ERROR msg="certificate failed" name=a.test err="connection refused"`
		race     = "=================="
	)
	cases := []struct {
		name     string
		log      []string
		expected []string
		want     []string // a substring of each problem, in order
	}{
		{"clean", []string{info, warn}, nil, nil},
		{"unexpected error", []string{info, reload}, nil, []string{"unexpected level=ERROR line: " + reload}},
		{"expected error", []string{info, reload}, []string{`msg="reload failed"`}, nil},
		{"one of two expected", []string{reload, certFail}, []string{`msg="reload failed"`}, []string{certFail}},
		{"panic", []string{info, "panic: runtime error: index out of range [3] with length 3", "", "goroutine 7 [running]:"},
			nil, []string{"anx crashed: panic: runtime error"}},
		{"fatal error", []string{"fatal error: concurrent map writes"}, []string{``}, []string{"anx crashed: fatal error"}},
		{"race", []string{race, "WARNING: DATA RACE", "Write at 0x00c0001 by goroutine 9:", race, race, "WARNING: DATA RACE", race},
			nil, []string{"reported 2 data race(s)"}},
		{"race and error", []string{"WARNING: DATA RACE", certFail}, nil, []string{"data race", certFail}},
		{"the word panic in a message", []string{`level=INFO msg="recovered handler panic: x"`}, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := compileExpected(c.expected)
			if err != nil {
				t.Fatal(err)
			}
			got := LogProblems(strings.Join(c.log, "\n")+"\n", res)
			ok := len(got) == len(c.want)
			for i := 0; ok && i < len(got); i++ {
				ok = strings.Contains(got[i], c.want[i])
			}
			if !ok {
				t.Errorf("LogProblems(%q, %q):\ngot  %q\nwant problems containing %q", c.log, c.expected, got, c.want)
			}
		})
	}
}

// TestLogProblemsCapped: a flood of one problem is cut at maxProblems and
// says how many more there were.
func TestLogProblemsCapped(t *testing.T) {
	log := strings.Repeat("level=ERROR msg=x\n", maxProblems+5)
	got := LogProblems(log, nil)
	if len(got) != maxProblems+1 || got[maxProblems] != "and 5 more" {
		t.Errorf("got %d problems ending %q, want %d then \"and 5 more\"", len(got), got[len(got)-1], maxProblems)
	}
}

// TestCompileExpectedBad: a malformed pattern is an error naming the option.
func TestCompileExpectedBad(t *testing.T) {
	_, err := compileExpected([]string{`ok`, `(`})
	if err == nil || !strings.Contains(err.Error(), "ExpectedErrors") {
		t.Errorf("compileExpected with %q: error %v, want one naming ExpectedErrors", "(", err)
	}
}

// TestCrashProblems: a command's own ERROR lines are its test's business;
// races and panics are the harness's.
func TestCrashProblems(t *testing.T) {
	for _, c := range []struct {
		stderr string
		want   int
	}{
		{"level=ERROR msg=\"bad config\"\n", 0},
		{"WARNING: DATA RACE\n", 1},
		{"panic: boom\n", 1},
	} {
		if got := crashProblems(c.stderr); len(got) != c.want {
			t.Errorf("crashProblems(%q) = %q, want %d problem(s)", c.stderr, got, c.want)
		}
	}
}
