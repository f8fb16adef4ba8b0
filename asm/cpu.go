package asm

import (
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"golang.org/x/sys/cpu"
)

// Feature is one CPU feature of the report.
type Feature struct {
	// Name is the feature's usual name: "AES-NI", "PMULL", ...
	Name string `json:"name"`
	// Present is whether this process may use it: the CPU has it and
	// GODEBUG does not switch it off.
	Present bool `json:"present"`
	// Why says what uses it.
	Why string `json:"why"`
	// Switch is the GODEBUG option that turns the feature off, e.g.
	// "cpu.aes": the Go runtime honours it for its own feature flags
	// (which crypto/aes, crypto/sha256 and crypto/tls read), and so does
	// golang.org/x/sys/cpu (which anx's kernels and golang.org/x/crypto
	// read) for the features it knows. It is empty when the runtime
	// cannot turn the feature off: a baseline of the architecture, or of
	// the GOAMD64 level the binary was built for.
	Switch string `json:"godebug,omitempty"`
}

// Report says which of the CPU features anx cares about this process can
// use, and what follows for TLS. Its Features are empty on architectures
// other than amd64 and arm64.
type Report struct {
	// Arch is runtime.GOARCH.
	Arch     string    `json:"arch"`
	Features []Feature `json:"features"`
	// AESGCM is whether AES-GCM (crypto/cipher, hence crypto/tls and
	// quic-go) runs on the CPU's AES and carry-less multiply
	// instructions: AES-NI and PCLMULQDQ (with SSE4.1 and SSSE3) on
	// amd64, AES and PMULL on arm64. It is the condition under which
	// crypto/tls prefers AES-GCM suites to ChaCha20-Poly1305.
	AESGCM bool `json:"aes_gcm_hardware"`
	// SHA256 is whether crypto/sha256 runs on SHA instructions: SHA-NI
	// (with AVX, SSE4.1 and SSSE3) on amd64, SHA2 on arm64. TLS uses
	// SHA-256 for the handshake transcript, HKDF and HMAC.
	SHA256 bool `json:"sha256_hardware"`
}

// CPU returns the report for the CPU this process runs on, as
// golang.org/x/sys/cpu sees it (SHA-NI, which x/sys/cpu does not report,
// is read with CPUID). A feature switched off by GODEBUG (cpu.aes=off,
// ...) is reported absent, as the Go runtime and x/sys/cpu then treat it.
func CPU() Report {
	r := Report{Arch: runtime.GOARCH, Features: []Feature{}}
	switch runtime.GOARCH {
	case "amd64":
		x := cpu.X86
		shaNI := hasSHANI() && !godebugOff(os.Getenv("GODEBUG"), "sha")
		level := amd64Level()
		r.Features = []Feature{
			{"AES-NI", x.HasAES, "AES rounds in hardware: AES-GCM", "cpu.aes"},
			{"PCLMULQDQ", x.HasPCLMULQDQ, "carry-less multiply: GHASH of AES-GCM, CRC-32", "cpu.pclmulqdq"},
			{"SHA-NI", shaNI, "SHA-256 in hardware: TLS transcript hash, HKDF, HMAC", "cpu.sha"},
			{"SSE4.2", x.HasSSE42, "CRC-32C in hardware (hash/crc32)", switchBelow(level, 2, "cpu.sse42")},
			{"AVX2", x.HasAVX2, "32-byte vectors: anx's HTTP/1.1 scans, ChaCha20-Poly1305, SHA-256 without SHA-NI", switchBelow(level, 3, "cpu.avx2")},
		}
		r.AESGCM = x.HasAES && x.HasPCLMULQDQ && x.HasSSE41 && x.HasSSSE3
		r.SHA256 = shaNI && x.HasAVX && x.HasSSE41 && x.HasSSSE3
	case "arm64":
		a := cpu.ARM64
		r.Features = []Feature{
			{"AES", a.HasAES, "AES rounds in hardware: AES-GCM", "cpu.aes"},
			{"PMULL", a.HasPMULL, "polynomial multiply: GHASH of AES-GCM", "cpu.pmull"},
			{"SHA1", a.HasSHA1, "SHA-1 in hardware: legacy signatures, WebSocket handshake", "cpu.sha1"},
			{"SHA2", a.HasSHA2, "SHA-256 in hardware: TLS transcript hash, HKDF, HMAC", "cpu.sha2"},
			{"SHA512", a.HasSHA512, "SHA-384/512 in hardware: TLS_AES_256_GCM_SHA384, P-384 signatures", "cpu.sha512"},
			{"CRC32", a.HasCRC32, "CRC-32 in hardware (hash/crc32)", "cpu.crc32"},
			{"ASIMD", a.HasASIMD, "NEON vectors: anx's HTTP/1.1 scans, ChaCha20-Poly1305", ""},
		}
		r.AESGCM = a.HasAES && a.HasPMULL
		r.SHA256 = a.HasSHA2
	}
	return r
}

// Has reports whether the feature called name is present.
func (r Report) Has(name string) bool {
	for _, f := range r.Features {
		if f.Name == name {
			return f.Present
		}
	}
	return false
}

// Off returns the GODEBUG setting that turns off every present feature
// that has a Switch, e.g. "cpu.aes=off,cpu.pclmulqdq=off": a process
// started with it runs Go's cryptography on its portable code, which is
// how one measures what the hardware is worth. It is empty when nothing
// can be switched off.
func (r Report) Off() string {
	var opts []string
	for _, f := range r.Features {
		if f.Present && f.Switch != "" {
			opts = append(opts, f.Switch+"=off")
		}
	}
	return strings.Join(opts, ",")
}

// switchBelow returns name when the binary was built for a GOAMD64 level
// below the one that requires the feature (the runtime refuses to turn
// off what its level assumes), else "".
func switchBelow(level, requiredAt int, name string) string {
	if level < requiredAt {
		return name
	}
	return ""
}

// amd64Level is the GOAMD64 level (1 to 4) the binary was built for, from
// its build information; 1 when that is missing.
func amd64Level() int {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "GOAMD64" && len(s.Value) == 2 && s.Value[0] == 'v' && s.Value[1] >= '1' && s.Value[1] <= '4' {
				return int(s.Value[1] - '0')
			}
		}
	}
	return 1
}

// godebugOff reports whether the GODEBUG value env turns the CPU option
// name off, the way the Go runtime reads it: "cpu.NAME=off" or
// "cpu.all=off", the last mention of either winning.
func godebugOff(env, name string) bool {
	off := false
	for field := range strings.SplitSeq(env, ",") {
		key, value, ok := strings.Cut(field, "=")
		if !ok || (key != "cpu."+name && key != "cpu.all") {
			continue
		}
		switch value {
		case "off":
			off = true
		case "on":
			off = false
		}
	}
	return off
}
