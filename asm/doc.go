// Package asm holds anx's own SIMD kernels, each beside its pure-Go
// reference, and the CPU report. The kernels are the byte scans of the
// HTTP/1.1 parser, which the standard library has no assembly for: where
// a field value ends or turns invalid, where a token ends, where a
// request path stops being clean. Each has an amd64 version (AVX2, or SSE
// with SSSE3's PSHUFB, chosen at run time from the CPU), an arm64 version
// (NEON) and the Go reference, which the purego build tag selects
// everywhere. All three classify bytes with the two-nibble table lookup
// (simdjson's); see scan_amd64.s.
//
// Cryptography is not here: Go's standard library already runs AES-GCM,
// SHA-2 and CRC32 on AES-NI, PCLMULQDQ and SHA-NI (amd64) and on the ARMv8
// Crypto Extensions (arm64), and crypto/tls and quic-go use those paths.
// The CPU report says whether the hardware they need is there.
//
// The package imports nothing of anx's.
package asm
