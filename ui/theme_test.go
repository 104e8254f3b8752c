package ui

import (
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"

	"madoguchi/assets"
)

func TestThemeServesBundledFont(t *testing.T) {
	th := NewTheme()
	for _, tc := range []struct {
		style fyne.TextStyle
		want  fyne.Resource
	}{
		{fyne.TextStyle{}, assets.Regular},
		{fyne.TextStyle{Italic: true}, assets.Regular},
		{fyne.TextStyle{Monospace: true}, assets.Regular},
		{fyne.TextStyle{Bold: true}, assets.Bold},
		{fyne.TextStyle{Bold: true, Italic: true}, assets.Bold},
	} {
		if got := th.Font(tc.style); got != tc.want {
			t.Errorf("Font(%+v) = %s, want %s", tc.style, got.Name(), tc.want.Name())
		}
	}
	if got := th.Font(fyne.TextStyle{Symbol: true}); got == assets.Regular || got == assets.Bold {
		t.Error("symbol font not delegated to the default theme")
	}
	if th.Size(theme.SizeNameText) <= theme.DefaultTheme().Size(theme.SizeNameText) {
		t.Error("body text not larger than Fyne's default")
	}
	if got, want := th.Size(theme.SizeNameScrollBar), theme.DefaultTheme().Size(theme.SizeNameScrollBar); got != want {
		t.Errorf("unset size not delegated: %v, want %v", got, want)
	}
	if big := th.withTextSize(34); big.Size(theme.SizeNameText) != 34 || th.Size(theme.SizeNameText) == 34 {
		t.Error("withTextSize changed the original theme or did not apply")
	}
	test.AssertAllColorNamesDefined(t, th, "madoguchi")
}

// TestBundledFontsAreSingleFace guards against a font collection slipping in: Fyne crashes on
// a TTC ("collections not allowed").
func TestBundledFontsAreSingleFace(t *testing.T) {
	for _, r := range []fyne.Resource{assets.Regular, assets.Bold} {
		head := string(r.Content()[:4])
		if head == "ttcf" {
			t.Errorf("%s is a font collection", r.Name())
		}
		if head != "OTTO" {
			t.Errorf("%s starts with %q, want an OpenType CFF face (OTTO)", r.Name(), head)
		}
	}
}
