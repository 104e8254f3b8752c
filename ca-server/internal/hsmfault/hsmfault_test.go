package hsmfault

import (
	"go/ast"
	"path/filepath"
	"strconv"
	"testing"

	"madoguchi/internal/faults/srcscan"
)

// The hook must stay out of production reach: no non-test file under
// ca-server/ calls hsmfault.Set, and only the hsm package's call boundary
// (hsm/heal.go) imports the package at all. The one exception is the fault
// campaign's file, ca-server/faultcampaign.go, and only while it is built
// with the faultcampaign tag alone (issue 15).
func TestFaultHookSetOnlyByTests(t *testing.T) {
	root := filepath.Join("..", "..")
	err := srcscan.ProductionFiles(root, 0, func(rel string, f *ast.File) error {
		if filepath.Dir(rel) == filepath.Join("internal", "hsmfault") {
			return nil
		}
		if rel == "faultcampaign.go" {
			if !srcscan.OnlyFaultCampaign(f) {
				t.Errorf("%s may reach the HSM fault hook only under //go:build faultcampaign", rel)
			}
			return nil
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == "madoguchi/ca-server/internal/hsmfault" && rel != filepath.Join("hsm", "heal.go") {
				t.Errorf("%s imports the test-only HSM fault hook", rel)
			}
		}
		if rel != filepath.Join("hsm", "heal.go") {
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "hsmfault" && sel.Sel.Name != "Hook" {
					t.Errorf("%s uses hsmfault.%s; production code may only read Hook", rel, sel.Sel.Name)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
