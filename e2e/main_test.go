package e2e

import (
	"os"
	"testing"

	"github.com/anx-gateway/anx/e2e/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
