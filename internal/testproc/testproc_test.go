package testproc

import "testing"

func TestVmRSS(t *testing.T) {
	before := VmRSS(t)
	if before <= 0 {
		t.Fatalf("VmRSS = %d, want > 0", before)
	}
	b := make([]byte, 64<<20)
	for i := range len(b) / 4096 {
		b[i*4096] = 1 // touch every page
	}
	if grew := VmRSS(t) - before; grew < 32<<20 {
		t.Errorf("VmRSS grew by %d after touching 64 MiB, want at least 32 MiB", grew)
	}
	_ = b[len(b)-1]
}
