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
		"certs":                  {},
		"tls/terminate":          {"certs", "asm"},
		"h1":                     {"core/message", "core/pool", "core/route", "core/netpoll", "asm"},
		"h2":                     {"core/message", "core/nethttp", "core/route"},
		"h3":                     {"core/message", "core/nethttp", "core/route"},
		"core/message":           {},
		"core/pool":              {},
		"core/nethttp":           {"core/message"},
		"core/route":             {"core/message", "core/static", "core/proxy"},
		"core/static":            {"core/message", "core/pool", "asm", "core/static/statictest"},
		"core/static/statictest": {"core/message"},
		"e2e":                    {"e2e/harness", "core/static/statictest"},
		"e2e/harness":            {"core/static/statictest"},
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}} {{join .TestImports \" \"}} {{join .XTestImports \" \"}}", "github.com/anx-gateway/anx/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/anx-gateway/anx/"
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		if pkg == "cmd/anx" {
			continue
		}
		allowed, known := allowedImports[pkg]
		if !known {
			t.Errorf("package %s is not in allowedImports: add it, with the layer DESIGN.md gives it", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			dep, ours := strings.CutPrefix(imp, module)
			if ours && dep != pkg && !slices.Contains(allowed, dep) {
				t.Errorf("%s imports %s, which its layer may not (allowed: %v)", pkg, dep, allowed)
			}
		}
	}
}
