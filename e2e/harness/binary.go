package harness

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// modulePath is the module whose root RepoRoot looks for.
const modulePath = "github.com/anx-gateway/anx"

// binPath is the anx binary the tests run; set by Main.
var binPath string

// Main is the body of a TestMain: it finds the anx binary (ANX_BIN) or builds
// ./cmd/anx once into a temporary directory, runs the tests and cleans up.
// It returns the exit code for os.Exit.
func Main(m *testing.M) int {
	if bin := os.Getenv("ANX_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: ANX_BIN: %v\n", err)
			return 2
		}
		binPath = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "anx-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 2
	}
	defer os.RemoveAll(dir)
	bin, err := build(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building ./cmd/anx: %v\n", err)
		return 2
	}
	binPath = bin
	return m.Run()
}

// build compiles ./cmd/anx of the repository into dir and returns its path.
func build(dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "anx")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/anx")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w\n%s", err, out.String())
	}
	return bin, nil
}

// Binary returns the path of the anx binary under test.
func Binary() string {
	if binPath == "" {
		panic("harness: Binary called without harness.Main in TestMain")
	}
	return binPath
}

// RepoRoot returns the directory holding anx's go.mod, found by walking up
// from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module "+modulePath) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("harness: no go.mod of %s above the working directory", modulePath)
		}
		dir = parent
	}
}
