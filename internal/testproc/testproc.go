// Package testproc reads what tests measure of their own process. It is
// for tests only.
package testproc

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// VmRSS returns the process's resident set in bytes, from
// /proc/self/status. It skips the test where there is no such file or
// field (a system without procfs).
func VmRSS(t testing.TB) int64 {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Skipf("VmRSS: %q", line)
			}
			return kb << 10
		}
	}
	t.Skip("no VmRSS")
	return 0
}
