package static_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if goroutines started by the tests (the cache
// sweepers of handlers) are still alive once every test has passed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
