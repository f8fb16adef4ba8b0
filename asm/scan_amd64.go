//go:build !purego

package asm

import "golang.org/x/sys/cpu"

// scanNibbleAVX2 returns the index of the first byte of s whose class by
// tab (a nibble-table pair, described in scan.go) is zero, or len(s): 32
// bytes per vector, 64 per loop iteration. It needs AVX2 and takes strings
// of any length.
//
//go:noescape
func scanNibbleAVX2(s, tab string) int

// scanNibbleSSE is scanNibbleAVX2 with 16-byte vectors, 32 bytes per loop
// iteration. It needs SSSE3 (PSHUFB) and takes strings of any length.
//
//go:noescape
func scanNibbleSSE(s, tab string) int

// fieldValueEnd is FieldValueEnd: the Go reference for short strings,
// else the best kernel this CPU runs, as golang.org/x/sys/cpu says at the
// call (it honours GODEBUG=cpu.avx2=off and cpu.ssse3=off).
func fieldValueEnd(s string) int {
	if len(s) >= scanShort {
		switch {
		case cpu.X86.HasAVX2:
			return scanNibbleAVX2(s, scanFieldValueTab)
		case cpu.X86.HasSSSE3:
			return scanNibbleSSE(s, scanFieldValueTab)
		}
	}
	return fieldValueEndGeneric(s)
}

// tokenEnd is TokenEnd, dispatched as fieldValueEnd.
func tokenEnd(s string) int {
	if len(s) >= scanShort {
		switch {
		case cpu.X86.HasAVX2:
			return scanNibbleAVX2(s, scanTokenTab)
		case cpu.X86.HasSSSE3:
			return scanNibbleSSE(s, scanTokenTab)
		}
	}
	return tokenEndGeneric(s)
}

// cleanPathEnd is CleanPathEnd, dispatched as fieldValueEnd.
func cleanPathEnd(s string) int {
	if len(s) >= scanShort {
		switch {
		case cpu.X86.HasAVX2:
			return scanNibbleAVX2(s, scanCleanPathTab)
		case cpu.X86.HasSSSE3:
			return scanNibbleSSE(s, scanCleanPathTab)
		}
	}
	return cleanPathEndGeneric(s)
}

// scanImpls lists the implementations of the kernels this CPU runs, the
// Go reference first, for the tests and benchmarks.
func scanImpls() []scanImpl {
	impls := []scanImpl{{"Generic", fieldValueEndGeneric, tokenEndGeneric, cleanPathEndGeneric}}
	if cpu.X86.HasSSSE3 {
		impls = append(impls, scanImpl{"SSE",
			func(s string) int { return scanNibbleSSE(s, scanFieldValueTab) },
			func(s string) int { return scanNibbleSSE(s, scanTokenTab) },
			func(s string) int { return scanNibbleSSE(s, scanCleanPathTab) },
		})
	}
	if cpu.X86.HasAVX2 {
		impls = append(impls, scanImpl{"AVX2",
			func(s string) int { return scanNibbleAVX2(s, scanFieldValueTab) },
			func(s string) int { return scanNibbleAVX2(s, scanTokenTab) },
			func(s string) int { return scanNibbleAVX2(s, scanCleanPathTab) },
		})
	}
	return impls
}
