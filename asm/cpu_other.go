//go:build !amd64

package asm

// hasSHANI reports false: SHA-NI is an amd64 feature.
func hasSHANI() bool { return false }
