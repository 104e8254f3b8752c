package hsmfault

import (
	"go/ast"
	"go/build/constraint"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The hook must stay out of production reach: no non-test file under
// ca-server/ calls hsmfault.Set, and only the hsm package's call boundary
// (hsm/heal.go) imports the package at all. The one exception is the fault
// campaign's file, ca-server/faultcampaign.go, and only while it is built
// with the faultcampaign tag alone (issue 15).
func TestFaultHookSetOnlyByTests(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		if filepath.Dir(rel) == filepath.Join("internal", "hsmfault") {
			return nil
		}
		if rel == "faultcampaign.go" {
			f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.ImportsOnly)
			if err != nil {
				return err
			}
			if !onlyFaultCampaign(f) {
				t.Errorf("%s may reach the HSM fault hook only under //go:build faultcampaign", rel)
			}
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
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
		full, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(full, func(n ast.Node) bool {
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

// onlyFaultCampaign reports whether f's //go:build line requires the
// faultcampaign tag: false without it, whether the other tags are all set
// or none is.
func onlyFaultCampaign(f *ast.File) bool {
	for _, cg := range f.Comments {
		if cg.Pos() > f.Package {
			break
		}
		for _, c := range cg.List {
			if !constraint.IsGoBuild(c.Text) {
				continue
			}
			expr, err := constraint.Parse(c.Text)
			if err != nil {
				return false
			}
			return !expr.Eval(func(tag string) bool { return tag != "faultcampaign" }) &&
				!expr.Eval(func(string) bool { return false })
		}
	}
	return false
}
