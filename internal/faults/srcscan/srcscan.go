// Package srcscan walks the module's production Go files for the tests that keep the fault
// campaign's hooks out of default builds (internal/faults/buildcheck, internal/wallclock,
// ca-server/internal/hsmfault): each of them asks which non-test file reaches a hook, and a
// file is allowed only if its build constraint requires the faultcampaign tag. Only tests
// import it.
package srcscan

import (
	"go/ast"
	"go/build/constraint"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
)

// ProductionFiles parses, with mode, every .go file under root that is not a test file (and
// none under testdata or a dot directory), and calls fn with its path relative to root.
func ProductionFiles(root string, mode parser.Mode, fn func(rel string, f *ast.File) error) error {
	fset := token.NewFileSet()
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, mode|parser.ParseComments)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		return fn(rel, f)
	})
}

// OnlyFaultCampaign reports whether f's //go:build line requires the faultcampaign tag: the
// constraint is false without the tag, whether the other tags are all set or none is.
func OnlyFaultCampaign(f *ast.File) bool {
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
