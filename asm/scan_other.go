//go:build purego || !(amd64 || arm64)

package asm

// fieldValueEnd is FieldValueEnd where there is no assembly: the reference.
func fieldValueEnd(s string) int { return fieldValueEndGeneric(s) }

// tokenEnd is TokenEnd where there is no assembly: the reference.
func tokenEnd(s string) int { return tokenEndGeneric(s) }

// cleanPathEnd is CleanPathEnd where there is no assembly: the reference.
func cleanPathEnd(s string) int { return cleanPathEndGeneric(s) }

// scanImpls lists the implementations of the kernels: only the reference.
func scanImpls() []scanImpl {
	return []scanImpl{{"Generic", fieldValueEndGeneric, tokenEndGeneric, cleanPathEndGeneric}}
}
