package asm

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestSHANIMatchesKernel compares the CPUID probe with the flags the Linux
// kernel reports in /proc/cpuinfo.
func TestSHANIMatchesKernel(t *testing.T) {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if key, flags, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(key) == "flags" {
			want := slices.Contains(strings.Fields(flags), "sha_ni")
			if got := hasSHANI(); got != want {
				t.Errorf("hasSHANI() = %v, /proc/cpuinfo sha_ni = %v", got, want)
			}
			return
		}
	}
	t.Fatal("no flags line in /proc/cpuinfo")
}
