// Command testrun runs `go test -json` with the arguments it is given,
// prints what a failing test or package said, one line per package, and a
// list of every skipped test; it fails when go test fails or when a test
// skipped that the allowlist does not name.
//
// make test runs every suite through it, so that a test cannot turn itself
// off silently on some machine: a skip either has a commented entry in
// skips.txt, saying why it may happen, or it fails the run.
//
// Usage:
//
//	go run ./internal/testrun [-skips FILE] [-v] [-busy] -- GO-TEST-ARGS...
//
// GO-TEST-ARGS are those of `go test` (packages, -race, -count, -run,
// -args ...); testrun adds -json. The environment is passed on, so GOARCH
// and the like apply. -busy keeps one CPU busy while the tests run, as
// another process on a loaded machine would (make stress uses it).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main with its arguments and outputs, returning the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("testrun", flag.ContinueOnError)
	flags.SetOutput(stderr)
	skipsFile := flags.String("skips", "internal/testrun/skips.txt", "the allowlist of skips")
	verbose := flags.Bool("v", false, "print every test's output, as go test -v does")
	busy := flags.Bool("busy", false, "keep one CPU busy while the tests run")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	allowed, err := readAllowlist(*skipsFile)
	if err != nil {
		fmt.Fprintf(stderr, "testrun: %v\n", err)
		return 2
	}
	goTestArgs := append([]string{"test", "-json"}, flags.Args()...)
	if *busy {
		stop := make(chan struct{})
		defer close(stop)
		go spin(stop)
	}
	rep := newReport(stdout, *verbose)
	testErr := runGoTest(goTestArgs, rep, stderr)
	return rep.finish(allowed, testErr)
}

// runGoTest runs `go` with args, feeding its standard output to rep and
// its standard error to stderr, and returns how it ended.
func runGoTest(args []string, rep *report, stderr io.Writer) error {
	cmd := exec.Command("go", args...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	readErr := rep.read(out)
	waitErr := cmd.Wait()
	return errors.Join(waitErr, readErr)
}

// spin keeps the CPU of one OS thread busy until stop is closed.
func spin(stop <-chan struct{}) {
	runtime.LockOSThread()
	for {
		select {
		case <-stop:
			return
		default:
		}
	}
}
