package testenv

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestXvfbScreenshot proves the display works: a root-window capture is a 1280x800 PNG.
func TestXvfbScreenshot(t *testing.T) {
	start := time.Now()
	d := Xvfb(t)
	t.Logf("Xvfb ready in %v on %s", time.Since(start), d.Name)
	if got := os.Getenv("DISPLAY"); got != d.Name {
		t.Fatalf("DISPLAY = %q, want %q", got, d.Name)
	}
	path := filepath.Join(t.TempDir(), "root.png")
	d.Screenshot(t, path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if cfg.Width != 1280 || cfg.Height != 800 {
		t.Fatalf("screenshot is %dx%d, want 1280x800", cfg.Width, cfg.Height)
	}
}
