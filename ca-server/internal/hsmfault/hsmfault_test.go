package hsmfault

import (
	"go/ast"
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
// (hsm/heal.go) imports the package at all.
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
