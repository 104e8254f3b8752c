package wallclock

import (
	"go/ast"
	"path/filepath"
	"testing"
	"time"

	"madoguchi/internal/faults/srcscan"
)

func TestOffset(t *testing.T) {
	before := time.Now()
	if got := Now(); got.Before(before) || got.Sub(before) > time.Hour {
		t.Fatalf("Now without offset: %v, real %v", got, before)
	}
	restore := SetOffset(func() time.Duration { return -2 * time.Hour })
	got := Now()
	restore()
	if d := time.Since(got); d < 2*time.Hour || d > 3*time.Hour {
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
	err := srcscan.ProductionFiles(root, 0, func(path string, f *ast.File) error {
		if srcscan.OnlyFaultCampaign(f) {
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
