package buildcheck

import (
	"go/ast"
	"go/parser"
	"path/filepath"
	"strconv"
	"testing"

	"madoguchi/internal/faults/srcscan"
)

// campaignOnly are the packages that turn an environment variable into a fault; only files
// built with the faultcampaign tag (and tests) may import them.
var campaignOnly = []string{
	"madoguchi/internal/faults/campaignenv",
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
	err := srcscan.ProductionFiles(root, parser.ImportsOnly, func(path string, f *ast.File) error {
		if srcscan.OnlyFaultCampaign(f) {
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
