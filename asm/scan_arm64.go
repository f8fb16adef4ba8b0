//go:build !purego

package asm

// scanNibbleNEON returns the index of the first byte of s whose class by
// tab (a nibble-table pair, described in scan.go) is zero, or len(s): 16
// bytes per vector, 64 per loop iteration. NEON (Advanced SIMD) is part of every arm64 CPU; it
// takes strings of any length.
//
//go:noescape
func scanNibbleNEON(s, tab string) int

// fieldValueEnd is FieldValueEnd: the Go reference for short strings, else NEON.
func fieldValueEnd(s string) int {
	if len(s) < scanShort {
		return fieldValueEndGeneric(s)
	}
	return scanNibbleNEON(s, scanFieldValueTab)
}

// tokenEnd is TokenEnd: the Go reference for short strings, else NEON.
func tokenEnd(s string) int {
	if len(s) < scanShort {
		return tokenEndGeneric(s)
	}
	return scanNibbleNEON(s, scanTokenTab)
}

// cleanPathEnd is CleanPathEnd: the Go reference for short strings, else NEON.
func cleanPathEnd(s string) int {
	if len(s) < scanShort {
		return cleanPathEndGeneric(s)
	}
	return scanNibbleNEON(s, scanCleanPathTab)
}

// scanImpls lists the implementations of the kernels this CPU runs, the
// Go reference first, for the tests and benchmarks.
func scanImpls() []scanImpl {
	return []scanImpl{
		{"Generic", fieldValueEndGeneric, tokenEndGeneric, cleanPathEndGeneric},
		{"NEON",
			func(s string) int { return scanNibbleNEON(s, scanFieldValueTab) },
			func(s string) int { return scanNibbleNEON(s, scanTokenTab) },
			func(s string) int { return scanNibbleNEON(s, scanCleanPathTab) },
		},
	}
}
