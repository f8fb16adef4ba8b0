package main

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestReportPrintsFailuresAndSkips(t *testing.T) {
	allowed, err := readAllowlist("testdata/skips.txt")
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open("testdata/run.json")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var out strings.Builder
	rep := newReport(&out, false)
	if err := rep.read(in); err != nil {
		t.Fatal(err)
	}
	if code := rep.finish(allowed, nil); code != 1 {
		t.Errorf("exit code %d after a failed test, want 1", code)
	}
	got := out.String()
	for _, want := range []string{
		"    a_test.go:9: got 1, want 2\n--- FAIL: TestFail (0.00s)\n",
		"FAIL\texample.com/m/a\t0.01s\n",
		"ok  \texample.com/m/core/netpoll\t0.02s\n",
		"SKIP (allowed) example.com/m/core/netpoll TestCgroup: c_test.go:3: no memory cgroup\n    allowed because: the first reason, on two lines\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"quiet when it passes", "PASS\n", "not allowed"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("output has %q:\n%s", unwanted, got)
		}
	}
}

func TestReportExitCode(t *testing.T) {
	allowed, err := readAllowlist("testdata/skips.txt")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		events  string
		testErr error
		want    int
		says    string
	}{
		{"all passed", `{"Action":"pass","Package":"m/a","Test":"TestA"}
{"Action":"pass","Package":"m/a"}`, nil, 0, ""},
		{"allowed skip", `{"Action":"output","Package":"github.com/anx-gateway/anx/h1","Test":"TestTLS/big","Output":"    x_test.go:1: why\n"}
{"Action":"skip","Package":"github.com/anx-gateway/anx/h1","Test":"TestTLS/big"}`, nil, 0, "SKIP (allowed) github.com/anx-gateway/anx/h1 TestTLS/big: x_test.go:1: why"},
		{"skip not in the list", `{"Action":"output","Package":"m/h1","Test":"TestOther","Output":"    x_test.go:1: no peer\n"}
{"Action":"skip","Package":"m/h1","Test":"TestOther"}`, nil, 1, "SKIP (not allowed) m/h1 TestOther: x_test.go:1: no peer"},
		{"a pattern's parent is not its subtest", `{"Action":"skip","Package":"github.com/anx-gateway/anx/h1","Test":"TestTLS"}`, nil, 1, "not allowed"},
		{"same test, other package", `{"Action":"skip","Package":"m/other/netpoll","Test":"TestCgroup"}`, nil, 1, "not allowed"},
		{"a tail of the import path", `{"Action":"skip","Package":"m/core/netpoll","Test":"TestCgroup"}`, nil, 0, "SKIP (allowed)"},
		{"suffix is not a path element", `{"Action":"skip","Package":"m/xcore/netpoll","Test":"TestCgroup"}`, nil, 1, "not allowed"},
		{"build failed", `{"ImportPath":"m/a [m/a.test]","Action":"build-output","Output":"a.go:3:1: syntax error\n"}
{"ImportPath":"m/a [m/a.test]","Action":"build-fail"}`, nil, 1, "a.go:3:1: syntax error"},
		{"go test failed without a fail event", "not json: go: bad flag", errors.New("exit status 1"), 1, "not json: go: bad flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			rep := newReport(&out, false)
			if err := rep.read(strings.NewReader(tt.events)); err != nil {
				t.Fatal(err)
			}
			if got := rep.finish(allowed, tt.testErr); got != tt.want {
				t.Errorf("exit code %d, want %d; output:\n%s", got, tt.want, out.String())
			}
			if !strings.Contains(out.String(), tt.says) {
				t.Errorf("output lacks %q:\n%s", tt.says, out.String())
			}
		})
	}
}

func TestAllowlistErrors(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"no reason", "core/netpoll TestX\n", "skips.txt:1: \"core/netpoll TestX\" has no comment above it"},
		{"reason cut by a blank line", "# why\n\ncore/netpoll TestX\n", "skips.txt:3: \"core/netpoll TestX\" has no comment"},
		{"one field", "# why\nTestX\n", "skips.txt:2: want \"PACKAGE TEST\""},
		{"bad pattern", "# why\nh1 TestX[\n", "skips.txt:2: bad pattern \"TestX[\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := t.TempDir() + "/skips.txt"
			if err := os.WriteFile(file, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := readAllowlist(file)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestProjectAllowlistParses reads the allowlist make test uses.
func TestProjectAllowlistParses(t *testing.T) {
	if _, err := readAllowlist("skips.txt"); err != nil {
		t.Fatal(err)
	}
}
