package wallclock

import (
	"go/ast"
	"go/build/constraint"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOffset(t *testing.T) {
	before := time.Now()
	if got := Now(); got.Before(before) || got.Sub(before) > time.Hour {
		t.Fatalf("Now without offset: %v, real %v", got, before)
	}
	restore := SetOffset(func() time.Duration { return -2 * time.Hour })
	got := Now()
	restore()
	if d := time.Now().Sub(got); d < 2*time.Hour || d > 3*time.Hour {
		t.Fatalf("Now with a -2h offset is %v behind", d)
	}
	if got := Now(); time.Since(got) > time.Hour {
		t.Fatal("offset still applied after restore")
	}
}

// TestOffsetSetOnlyByFaultCampaignBuilds: no file of the module calls SetOffset except tests
// and files built only with the faultcampaign tag, so no production build moves the clock.
func TestOffsetSetOnlyByFaultCampaignBuilds(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		if OnlyFaultCampaign(f) {
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "SetOffset" {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "wallclock" {
					t.Errorf("%s calls wallclock.SetOffset outside a faultcampaign build", path)
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

// OnlyFaultCampaign reports whether f's //go:build line requires the faultcampaign tag.
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
			// Required: false without the tag, whether the other tags are all set or none is.
			return !expr.Eval(func(tag string) bool { return tag != "faultcampaign" }) &&
				!expr.Eval(func(string) bool { return false })
		}
	}
	return false
}
