package testenv

import (
	"path/filepath"
	"testing"

	"madoguchi/internal/services"
)

// Display is a running Xvfb X server.
type Display struct {
	Name    string // DISPLAY value, e.g. ":1"
	Number  int
	LogPath string
}

// XvfbOptions configures XvfbWith. The zero value gives Xvfb's 1280x800x24 screen.
type XvfbOptions struct {
	Binary string // default "Xvfb" from PATH
	Screen string // WxHxDepth, default "1280x800x24"
}

// Xvfb starts an X server on a free display number with a 1280x800x24 screen and sets DISPLAY
// for the rest of the test.
func Xvfb(t testing.TB) *Display {
	t.Helper()
	return XvfbWith(t, XvfbOptions{})
}

// XvfbWith is Xvfb with options.
func XvfbWith(t testing.TB, opts XvfbOptions) *Display {
	t.Helper()
	d, err := services.StartXvfb(services.XvfbOptions{
		Binary:  opts.Binary,
		Screen:  opts.Screen,
		LogPath: filepath.Join(t.TempDir(), "xvfb.log"),
		Timeout: timeout(),
	})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cleanup(t, d.Service())
	t.Setenv("DISPLAY", d.Name)
	return &Display{Name: d.Name, Number: d.Number, LogPath: d.LogPath}
}

// Screenshot saves the display's root window to path (the format follows the extension; use
// .png) with ImageMagick's `import`. It fails the test if the capture fails.
func (d *Display) Screenshot(t testing.TB, path string) {
	t.Helper()
	if err := d.Capture(path); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// Capture is Screenshot returning an error.
func (d *Display) Capture(path string) error {
	return services.CaptureDisplay(d.Name, path)
}
