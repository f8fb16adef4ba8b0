package nethttp

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run if goroutines started by the tests (servers,
// connections, handlers) are still alive once every test has finished.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines waits up to d for every goroutine other than the
// runtime's and the test runner's to exit, and returns the stacks of
// those that did not.
func leakedGoroutines(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		var left []string
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if interesting(g) {
				left = append(left, g)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return strings.Join(left, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// interesting reports whether a goroutine stack is one a test left
// behind: anything but the goroutine taking the dump and the signal
// watcher the runtime may start.
func interesting(stack string) bool {
	stack = strings.TrimSpace(stack)
	return stack != "" &&
		!strings.Contains(stack, "leakedGoroutines") &&
		!strings.Contains(stack, "signal.signal_recv")
}
