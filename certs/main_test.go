package certs

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if goroutines outlive the tests: every
// Manager is closed by its test, and Close stops certmagic's maintenance
// and the rate limiter.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// certmagic keeps the lock file of an obtain fresh until it
		// notices, within 5 s, that the lock was released.
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.keepLockfileFresh"),
	)
}
