package buildcheck

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

// campaignOnly are the packages that turn an environment variable into a fault; only files
// built with the faultcampaign tag (and tests) may import them.
var campaignOnly = []string{
	"madoguchi/internal/faults/clockskew",
	"madoguchi/internal/faults/fsyncfail",
	"madoguchi/ca-server/internal/hsmfault/hsmspec",
}

// TestFaultPackagesOnlyInFaultCampaignFiles: no file of the module that a default build
// compiles imports a campaign-only package, so the default binaries cannot reach them however
// the code changes (the binary grep of TestFaultHooksOnlyInFaultCampaignBuilds checks the
// result; this names the file).
func TestFaultPackagesOnlyInFaultCampaignFiles(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		if onlyFaultCampaign(f) {
			return nil
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, c := range campaignOnly {
				if p == c {
					t.Errorf("%s imports %s without //go:build faultcampaign", path, p)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// onlyFaultCampaign reports whether f's //go:build line requires the faultcampaign tag.
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
