package harness

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Result is the outcome of a finished anx command.
type Result struct {
	Stdout, Stderr string
	ExitCode       int  // -1 if killed
	TimedOut       bool // killed after the timeout
}

// RunAnx runs the anx binary with args in dir until it exits or timeout
// passes (then it is killed by pid and TimedOut is set). It fails t if
// anx's stderr shows a race detector report, a panic or a fatal error; the
// test reads the exit code and the output for the rest.
func RunAnx(t testing.TB, dir string, timeout time.Duration, args ...string) Result {
	t.Helper()
	r := RunCmd(t, dir, timeout, Binary(), args...)
	for _, p := range crashProblems(r.Stderr) {
		t.Errorf("harness: anx %q: %s", args, p)
	}
	return r
}

// RunCmd runs any program like RunAnx, in its own process group (killed as
// a group on timeout); stdout and stderr are captured.
func RunCmd(t testing.TB, dir string, timeout time.Duration, name string, args ...string) Result {
	t.Helper()
	r, err := runCmd(dir, timeout, name, args...)
	if err != nil {
		t.Fatalf("harness: running %s: %v", name, err)
	}
	return r
}

// GoCmd starts RunCmd in a goroutine and returns the channel its Result
// arrives on; a failure to start is reported with t.Errorf.
func GoCmd(t testing.TB, dir string, timeout time.Duration, name string, args ...string) <-chan Result {
	ch := make(chan Result, 1)
	go func() {
		r, err := runCmd(dir, timeout, name, args...)
		if err != nil {
			t.Errorf("harness: running %s: %v", name, err)
			r.ExitCode = -1
		}
		ch <- r
	}()
	return ch
}

// runCmd runs name and returns its result, or an error if it did not start.
func runCmd(dir string, timeout time.Duration, name string, args ...string) (Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	// Its own process group, so a timeout ends the program and its
	// children (Chromium's) by the group's id, and nothing else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.ExitCode = ee.ExitCode()
	default:
		return r, err
	}
	r.TimedOut = ctx.Err() != nil
	return r, nil
}
