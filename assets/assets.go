// Package assets bundles the terminal's static files into the binary with go:embed: the Noto
// Sans CJK JP fonts (SIL OFL 1.1, licence in fonts/LICENSE-OFL.txt) and the application icon.
// The Japanese and English translations are package assets/translations (no Fyne import, so
// the CLI prints from the same files).
//
// Concurrency: every value is immutable after package initialisation and safe for concurrent use.
package assets

import (
	_ "embed"

	"fyne.io/fyne/v2"
)

var (
	//go:embed fonts/NotoSansCJKjp-Regular.otf
	fontRegular []byte
	//go:embed fonts/NotoSansCJKjp-Bold.otf
	fontBold []byte
	//go:embed fonts/LICENSE-OFL.txt
	fontLicence string
	//go:embed icon/madoguchi.png
	icon []byte
)

// Regular, Bold and Icon are the bundled resources. They are single-face OpenType files because
// Fyne cannot load a TrueType collection (PLATFORM.md: a TTC makes Fyne crash); the bold face is
// bundled because without it Fyne draws bold Japanese with the regular face.
var (
	Regular = fyne.NewStaticResource("NotoSansCJKjp-Regular.otf", fontRegular)
	Bold    = fyne.NewStaticResource("NotoSansCJKjp-Bold.otf", fontBold)
	Icon    = fyne.NewStaticResource("madoguchi.png", icon)
)

// FontLicence returns the SIL Open Font License text and copyright notice that must accompany
// the bundled fonts (OFL 1.1 condition 2); the terminal shows it in its about box.
func FontLicence() string { return fontLicence }
