package ui

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"

	"madoguchi/assets"
)

// Theme draws every text style with the bundled Noto Sans CJK JP faces (regular, and bold for
// bold text, so bold Japanese is really bold) at sizes readable across a counter, and delegates
// colours, icons and the remaining sizes to Fyne's default theme.
//
// The bundled font also makes rendering reproducible: reference images in tests do not depend
// on the fonts installed on the machine.
type Theme struct {
	base fyne.Theme
	// sizes overrides theme sizes by name; nil uses counterSizes.
	sizes map[fyne.ThemeSizeName]float32
}

var _ fyne.Theme = (*Theme)(nil)

// counterSizes are larger than Fyne's defaults (text 14): clerks read the screen at arm's length
// and applicants read the PIN screen standing.
var counterSizes = map[fyne.ThemeSizeName]float32{
	theme.SizeNameText:            17,
	theme.SizeNameHeadingText:     28,
	theme.SizeNameSubHeadingText:  21,
	theme.SizeNameCaptionText:     13,
	theme.SizeNameInputBorder:     2,
	theme.SizeNameInnerPadding:    10,
	theme.SizeNameInlineIcon:      22,
	theme.SizeNameSelectionRadius: 4,
	theme.SizeNameInputRadius:     6,
}

// NewTheme returns the terminal's theme on top of theme.DefaultTheme().
func NewTheme() *Theme {
	return &Theme{base: theme.DefaultTheme(), sizes: counterSizes}
}

// withTextSize returns a copy of t whose body text is size points (the applicant PIN screen).
func (t *Theme) withTextSize(size float32) *Theme {
	sizes := make(map[fyne.ThemeSizeName]float32, len(t.sizes)+1)
	for k, v := range t.sizes {
		sizes[k] = v
	}
	sizes[theme.SizeNameText] = size
	return &Theme{base: t.base, sizes: sizes}
}

// Font returns the bundled bold face for bold styles, Fyne's symbol font for symbols, and the
// bundled regular face for everything else (italic and monospace included: the CJK faces have
// neither, and a Latin fallback would lose the Japanese glyphs).
func (t *Theme) Font(style fyne.TextStyle) fyne.Resource {
	switch {
	case style.Symbol:
		return t.base.Font(style)
	case style.Bold:
		return assets.Bold
	default:
		return assets.Regular
	}
}

// Color delegates to the default theme.
func (t *Theme) Color(name fyne.ThemeColorName, variant fyne.ThemeVariant) color.Color {
	return t.base.Color(name, variant)
}

// Icon delegates to the default theme.
func (t *Theme) Icon(name fyne.ThemeIconName) fyne.Resource { return t.base.Icon(name) }

// Size returns the counter sizes and delegates the rest to the default theme.
func (t *Theme) Size(name fyne.ThemeSizeName) float32 {
	if v, ok := t.sizes[name]; ok {
		return v
	}
	return t.base.Size(name)
}
