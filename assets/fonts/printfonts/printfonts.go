// Package printfonts bundles the fonts the terminal prints with: TrueType-outline copies of the
// bundled Noto Sans CJK JP faces, renamed "Madoguchi Print JP" as the SIL Open Font License
// requires of a modified font (licence in ../LICENSE-OFL.txt). The PDF writer of
// app/printout embeds only TrueType outlines, so the OpenType (CFF) faces the screen uses cannot
// serve; make_ttf.py regenerates these files from the faces in .. and keeps every character.
//
// The package imports no GUI code, so domain packages and their tests may use it. The bytes
// are mapped from the binary and read only when something prints.
package printfonts

import _ "embed"

var (
	//go:embed MadoguchiPrintJP-Regular.ttf
	regular []byte
	//go:embed MadoguchiPrintJP-Bold.ttf
	bold []byte
)

// Regular and Bold return the font files. Callers must not modify the returned slices.
func Regular() []byte { return regular }

// Bold returns the bold face; see Regular.
func Bold() []byte { return bold }
