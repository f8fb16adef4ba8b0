package asm

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/cpu"
)

func TestCPUListsTheArchitecturesFeatures(t *testing.T) {
	r := CPU()
	if r.Arch != runtime.GOARCH {
		t.Errorf("Arch = %q, want %q", r.Arch, runtime.GOARCH)
	}
	var names []string
	for _, f := range r.Features {
		names = append(names, f.Name)
		if f.Why == "" {
			t.Errorf("feature %s has no Why", f.Name)
		}
	}
	want := map[string][]string{
		"amd64": {"AES-NI", "PCLMULQDQ", "SHA-NI", "SSE4.2", "AVX2"},
		"arm64": {"AES", "PMULL", "SHA1", "SHA2", "SHA512", "CRC32", "ASIMD"},
	}[runtime.GOARCH]
	if !slices.Equal(names, want) {
		t.Errorf("features %q, want %q", names, want)
	}
	t.Logf("%+v", r)
}

// TestCPUAgreesWithXSysCPU checks each feature against the flag of
// golang.org/x/sys/cpu it comes from, and the TLS conclusions against the
// conditions of crypto/internal/fips140/aes/gcm (supportsAESGCM) and
// crypto/internal/fips140/sha256 (useSHANI, useSHA2).
func TestCPUAgreesWithXSysCPU(t *testing.T) {
	r := CPU()
	var flags map[string]bool
	var aesgcm, sha256 bool
	switch runtime.GOARCH {
	case "amd64":
		x := cpu.X86
		flags = map[string]bool{"AES-NI": x.HasAES, "PCLMULQDQ": x.HasPCLMULQDQ, "SSE4.2": x.HasSSE42, "AVX2": x.HasAVX2}
		aesgcm = x.HasAES && x.HasPCLMULQDQ && x.HasSSE41 && x.HasSSSE3
		sha256 = r.Has("SHA-NI") && x.HasAVX && x.HasSSE41 && x.HasSSSE3
	case "arm64":
		a := cpu.ARM64
		flags = map[string]bool{"AES": a.HasAES, "PMULL": a.HasPMULL, "SHA1": a.HasSHA1, "SHA2": a.HasSHA2,
			"SHA512": a.HasSHA512, "CRC32": a.HasCRC32, "ASIMD": a.HasASIMD}
		aesgcm = a.HasAES && a.HasPMULL
		sha256 = a.HasSHA2
	default:
		if len(r.Features) != 0 || r.AESGCM || r.SHA256 {
			t.Errorf("on %s: %+v, want no features", runtime.GOARCH, r)
		}
		return
	}
	for name, want := range flags {
		if got := r.Has(name); got != want {
			t.Errorf("%s present = %v, x/sys/cpu says %v", name, got, want)
		}
	}
	if r.AESGCM != aesgcm || r.SHA256 != sha256 {
		t.Errorf("AESGCM, SHA256 = %v, %v; want %v, %v", r.AESGCM, r.SHA256, aesgcm, sha256)
	}
}

func TestGodebugOff(t *testing.T) {
	tests := []struct {
		env  string
		want bool
	}{
		{"", false},
		{"cpu.sha=off", true},
		{"cpu.aes=off,cpu.sha=off", true},
		{"cpu.shax=off", false},
		{"cpu.sha=on", false},
		{"cpu.all=off", true},
		{"cpu.all=off,cpu.sha=on", false},
		{"cpu.sha=off,cpu.all=on", false},
		{"cpu.sha", false},
		{"madvdontneed=1,cpu.sha=off,", true},
	}
	for _, tt := range tests {
		if got := godebugOff(tt.env, "sha"); got != tt.want {
			t.Errorf("godebugOff(%q, sha) = %v, want %v", tt.env, got, tt.want)
		}
	}
}

func TestOff(t *testing.T) {
	r := Report{Features: []Feature{
		{Name: "A", Present: true, Switch: "cpu.a"},
		{Name: "B", Present: false, Switch: "cpu.b"},
		{Name: "C", Present: true},
		{Name: "D", Present: true, Switch: "cpu.d"},
	}}
	if got, want := r.Off(), "cpu.a=off,cpu.d=off"; got != want {
		t.Errorf("Off() = %q, want %q", got, want)
	}
	if got := (Report{}).Off(); got != "" {
		t.Errorf("Off() of an empty report = %q, want \"\"", got)
	}
}

// cpuChildEnv makes the test binary print its CPU report and exit, for
// TestSwitchesTurnFeaturesOff.
const cpuChildEnv = "ANX_ASM_CPU_CHILD"

// TestSwitchesTurnFeaturesOff runs this test binary again with GODEBUG set
// to Off() and checks that the child sees every switched feature absent
// and that the Go runtime knew every option (it prints "GODEBUG: unknown
// cpu feature" for one it does not, e.g. a feature its GOAMD64 level
// requires).
func TestSwitchesTurnFeaturesOff(t *testing.T) {
	if os.Getenv(cpuChildEnv) == "1" {
		json.NewEncoder(os.Stdout).Encode(CPU())
		return
	}
	r := CPU()
	off := r.Off()
	if off == "" {
		t.Skipf("no feature to switch off on %s", runtime.GOARCH)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestSwitchesTurnFeaturesOff$")
	cmd.Env = append(os.Environ(), cpuChildEnv+"=1", "GODEBUG="+off)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if errors.Is(err, syscall.ENOEXEC) {
		t.Fatalf("cannot run this %s binary again (%v): under an emulator, register it with binfmt_misc (make peers does for qemu-aarch64)", runtime.GOARCH, err)
	}
	if err != nil {
		t.Fatalf("child with GODEBUG=%s: %v\n%s", off, err, stderr.String())
	}
	for line := range strings.Lines(stderr.String()) {
		if strings.HasPrefix(line, "GODEBUG: ") {
			t.Errorf("the runtime refused an option of GODEBUG=%s: %s", off, line)
		}
	}
	var child Report
	dec := json.NewDecoder(strings.NewReader(string(out)))
	if err := dec.Decode(&child); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	for _, f := range r.Features {
		if f.Present && f.Switch != "" && child.Has(f.Name) {
			t.Errorf("GODEBUG=%s: child still reports %s", off, f.Name)
		}
	}
	if child.AESGCM || child.SHA256 {
		t.Errorf("GODEBUG=%s: child reports AES-GCM %v, SHA-256 %v on hardware", off, child.AESGCM, child.SHA256)
	}
	t.Logf("GODEBUG=%s; child stderr: %q", off, stderr.String())
}
