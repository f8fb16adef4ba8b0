package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestImportsPointDown(t *testing.T) {
	// allowedImports lists, for each of anx's packages, the packages of anx it
	// may import (DESIGN.md, "Layout"): dependencies point down and never up,
	// protocol packages do not import certs, and core knows no protocol.
	// cmd/anx may import everything; e2e tests only the built binary.
	allowedImports := map[string][]string{
		"certs":                   {},
		"asm":                     {},
		"tls/terminate":           {"certs", "asm"},
		"tls/onloop":              {"core/netpoll", "core/pool"},
		"h1":                      {"tls/onloop", "core/message", "core/pool", "core/route", "core/netpoll", "core/chunked", "asm"},
		"h2":                      {"tls/onloop", "core/message", "core/nethttp", "core/netpoll", "core/pool", "core/route", "internal/frontendtest"},
		"h3":                      {"core/message", "core/nethttp", "core/route", "internal/frontendtest"},
		"core/message":            {},
		"core/pool":               {},
		"core/nethttp":            {"core/message"},
		"core/route":              {"core/message", "core/static", "core/proxy"},
		"core/static":             {"core/message", "core/pool", "core/encode", "asm", "core/static/statictest"},
		"core/static/statictest":  {"core/message"},
		"e2e":                     {"e2e/harness", "e2e/h2abuse", "core/static/statictest"},
		"e2e/harness":             {"core/static/statictest"},
		"e2e/h2abuse":             {},
		"e2e/bench":               {},
		"core/netpoll":            {"core/pool"},
		"core/connlimit":          {},
		"core/limit":              {"core/message", "core/route"},
		"core/proxy":              {"core/message", "core/netpoll", "core/pool", "core/chunked", "core/encode", "asm"},
		"core/encode":             {"core/message"},
		"core/chunked":            {"core/message", "asm"},
		"core/accesslog":          {"core/message", "core/pool", "core/route"},
		"internal/testpki":        {},
		"internal/testproc":       {},
		"internal/testlisten":     {},
		"internal/frontendtest":   {"core/message"},
		"internal/testrun":        {},
		"cmd/anx/internal/config": {"certs", "core/route", "core/proxy", "core/encode", "core/limit"},
		"cmd/anx/internal/admin":  {"core/message"},
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \" \"}}|{{join .TestImports \" \"}} {{join .XTestImports \" \"}}", "github.com/anx-gateway/anx/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		pkg := strings.TrimPrefix(parts[0], module)
		if pkg == "cmd/anx" {
			continue
		}
		allowed, known := allowedImports[pkg]
		if !known {
			t.Errorf("package %s is not in allowedImports: add it, with the layer DESIGN.md gives it", pkg)
			continue
		}
		checkImports(t, pkg, "imports", strings.Fields(parts[1]), allowed)
		// Any package's tests may make throwaway certificates and read
		// their own process's figures.
		checkImports(t, pkg, "tests import", strings.Fields(parts[2]), append(slices.Clone(allowed), "internal/testpki", "internal/testproc", "internal/testlisten"))
	}
}

// module is the import path prefix of anx's packages.
const module = "github.com/anx-gateway/anx/"

// checkImports reports each of anx's packages in imports that is not in
// allowed.
func checkImports(t *testing.T, pkg, verb string, imports, allowed []string) {
	t.Helper()
	for _, imp := range imports {
		dep, ours := strings.CutPrefix(imp, module)
		if ours && dep != pkg && !slices.Contains(allowed, dep) {
			t.Errorf("%s %s %s, which its layer may not (allowed: %v)", pkg, verb, dep, allowed)
		}
	}
}
