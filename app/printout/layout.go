package printout

import (
	"fmt"
	"strings"
	"time"

	"github.com/signintech/gopdf"
)

// Page geometry in points (1/72 inch) on A4 portrait.
const (
	pageW        = 595.0 // gopdf.PageSizeA4, rounded as gopdf rounds it
	pageH        = 842.0
	marginX      = 56.0 // about 20 mm
	marginTop    = 48.0
	marginBottom = 64.0 // leaves room for the page number
	contentW     = pageW - 2*marginX
	labelW       = 132.0 // grid label column
	cellPad      = 4.0
	bodySize     = 10.5
	bodyLine     = 15.0 // line pitch of body text
	smallSize    = 8.5
	smallLine    = 13.0
	titleSize    = 18.0
	headingSize  = 12.0
)

type face int

const (
	fontRegular face = iota
	fontBold
)

var families = [...]string{fontRegular: familyRegular, fontBold: familyBold}

// sheet lays out one document: a title, sections and grid rows flowing over A4 pages, then page
// numbers. The first error is kept and every later call does nothing, so the document builders
// read as straight-line code and check s.err once at the end.
type sheet struct {
	p      *Printer
	pdf    *gopdf.GoPdf
	title  string
	y      float64
	err    error
	widths [2]map[rune]float64 // advance widths at 1 pt, by face
	field  string              // the document field being drawn, for MissingGlyphError
}

func (p *Printer) newSheet(title string, created time.Time) *sheet {
	s := &sheet{p: p, pdf: &gopdf.GoPdf{}, title: title, widths: [2]map[rune]float64{{}, {}}}
	s.pdf.Start(gopdf.Config{PageSize: *gopdf.PageSizeA4, Unit: gopdf.UnitPT})
	// No personal data in the document information dictionary: it is shown by file managers
	// and indexed by desktop search, unlike the page content (DOMAIN §9).
	s.pdf.SetInfo(gopdf.PdfInfo{Title: title, Creator: "Madoguchi", Producer: "Madoguchi", CreationDate: created.In(jst)})
	for _, fam := range families {
		if err := s.pdf.AddTTFFontFromFontContainer(fam, p.fonts); err != nil {
			s.err = fmt.Errorf("printout: font %s: %w", fam, err)
			return s
		}
	}
	s.newPage()
	return s
}

func (s *sheet) newPage() {
	s.pdf.AddPage()
	s.y = marginTop
}

// setFont selects a face and size.
func (s *sheet) setFont(f face, size float64) {
	if s.err != nil {
		return
	}
	if err := s.pdf.SetFont(families[f], "", size); err != nil {
		s.err = fmt.Errorf("printout: set font: %w", err)
	}
}

// check refuses characters the face cannot draw.
func (s *sheet) check(f face, text string) bool {
	if s.err != nil {
		return false
	}
	for _, r := range text {
		if r == '\n' {
			continue
		}
		if !s.p.coverage[f].has(r) {
			s.err = &MissingGlyphError{Rune: r, Field: s.field}
			return false
		}
	}
	return true
}

// width returns the advance width of r at size in face f (no kerning: gopdf places glyphs by
// their advance widths when kerning is off, which is how the Printer sets its fonts up).
func (s *sheet) width(f face, r rune, size float64) float64 {
	w, ok := s.widths[f][r]
	if !ok {
		s.setFont(f, 1000)
		if s.err != nil {
			return 0
		}
		m, err := s.pdf.MeasureTextWidth(string(r))
		if err != nil {
			s.err = fmt.Errorf("printout: measure %U: %w", r, err)
			return 0
		}
		w = m / 1000
		s.widths[f][r] = w
	}
	return w * size
}

func (s *sheet) textWidth(f face, text []rune, size float64) float64 {
	var w float64
	for _, r := range text {
		w += s.width(f, r, size)
	}
	return w
}

// draw puts text with its top-left corner at (x, top) in a line of height lineH.
func (s *sheet) draw(f face, size, x, top, lineH float64, text string) {
	if text == "" || !s.check(f, text) {
		return
	}
	s.setFont(f, size)
	if s.err != nil {
		return
	}
	// PDF fills glyphs with the non-stroking colour, which the cell shading also sets.
	s.pdf.SetFillColor(0, 0, 0)
	// Noto Sans CJK: ascender 0.88 em, descender 0.12 em; centre the em box in the line.
	s.pdf.SetXY(x, top+(lineH-size)/2+size*0.88)
	if err := s.pdf.Text(text); err != nil {
		s.err = fmt.Errorf("printout: draw text: %w", err)
	}
}

// Japanese line-breaking rules (JIS X 4051 禁則, the common subset): these may not start a line…
const noLineStart = "、。，．・：；？！ー）」』】〕〉》］｝’”ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ々〻…‥,.:;?!)]}"

// …and these may not end one.
const noLineEnd = "（「『【〔〈《［｛‘“([{"

// wrap breaks text into lines no wider than width, at any character (Japanese has no spaces
// between words) except where the line-breaking rules forbid, and at '\n'. It returns each
// line as a half-open range of rune indexes into text, so that marks on characters (substitute
// characters, R02 II-2-5(5)) can be placed on the wrapped lines.
func (s *sheet) wrap(f face, text []rune, width, size float64) [][2]int {
	var lines [][2]int
	start := 0
	var w float64
	for i := 0; i < len(text); i++ {
		r := text[i]
		if r == '\n' {
			lines = append(lines, [2]int{start, i})
			start, w = i+1, 0
			continue
		}
		rw := s.width(f, r, size)
		if w+rw > width && i > start {
			br := i
			// Push a forbidden line start, and a forbidden line end, to the next line while
			// the current line keeps at least one character.
			for br-1 > start && (strings.ContainsRune(noLineStart, text[br]) || strings.ContainsRune(noLineEnd, text[br-1])) {
				br--
			}
			// Inside a run of Latin letters and digits (serial numbers, fingerprints, names
			// of distinguished-name attributes) break after a separator if there is one.
			if isWordRune(text[br]) && isWordRune(text[br-1]) {
				for k := br - 1; k > start && k > br-16; k-- {
					if strings.ContainsRune(" :,./-", text[k]) {
						br = k + 1
						break
					}
				}
			}
			lines = append(lines, [2]int{start, br})
			start = br
			w = s.textWidth(f, text[br:i], size)
		}
		w += rw
	}
	return append(lines, [2]int{start, len(text)})
}

func isWordRune(r rune) bool {
	return r < 0x80 && (r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z')
}

// room reports whether h more points fit above the bottom margin; if not, it starts a page.
func (s *sheet) room(h float64) {
	if s.y+h > pageH-marginBottom && s.y > marginTop {
		s.newPage()
	}
}

// heading draws the document title centred with the municipality and date lines below it.
func (s *sheet) heading(lines ...string) {
	s.field = "表題"
	title := []rune(s.title)
	s.draw(fontBold, titleSize, (pageW-s.textWidth(fontBold, title, titleSize))/2, s.y, 28, s.title)
	s.y += 34
	for _, l := range lines {
		s.field = "見出し"
		w := s.textWidth(fontRegular, []rune(l), bodySize)
		s.draw(fontRegular, bodySize, pageW-marginX-w, s.y, bodyLine, l)
		s.y += bodyLine
	}
	s.y += 8
}

// paragraph draws wrapped running text over the full width.
func (s *sheet) paragraph(field, text string) {
	s.field = field
	runes := []rune(text)
	for _, ln := range s.wrap(fontRegular, runes, contentW, bodySize) {
		s.room(bodyLine)
		s.draw(fontRegular, bodySize, marginX, s.y, bodyLine, string(runes[ln[0]:ln[1]]))
		s.y += bodyLine
	}
	s.y += 6
}

// note draws wrapped small print.
func (s *sheet) note(field, text string) {
	s.field = field
	runes := []rune(text)
	for _, ln := range s.wrap(fontRegular, runes, contentW, smallSize) {
		s.room(smallLine)
		s.draw(fontRegular, smallSize, marginX, s.y, smallLine, string(runes[ln[0]:ln[1]]))
		s.y += smallLine
	}
}

// section draws a section heading: a grey bar with bold text. It keeps the bar with at least
// one row below it.
func (s *sheet) section(text string) {
	s.field = "見出し"
	s.y += 8
	s.room(22 + bodyLine + 2*cellPad)
	s.pdf.SetFillColor(0xD9, 0xD9, 0xD9)
	s.pdf.RectFromUpperLeftWithStyle(marginX, s.y, contentW, 22, "F")
	s.draw(fontBold, headingSize, marginX+cellPad, s.y, 22, text)
	s.y += 22
}

// row is one line of the grid: a label cell and a value cell with wrapped text. marks are rune
// indexes of value to underline (substitute characters); minLines makes room to write by hand.
type row struct {
	label    string
	value    string
	marks    []int
	minLines int
}

// grid draws rows as a two-column table with ruled cells. A row that does not fit on the rest of
// the page moves to the next page; a row taller than a page continues there with the label
// "（続き）".
func (s *sheet) grid(rows ...row) {
	valueW := contentW - labelW - 2*cellPad
	usable := pageH - marginBottom - marginTop - 2*cellPad
	linesPerPage := int(usable / bodyLine)
	for _, r := range rows {
		if s.err != nil {
			return
		}
		s.field = r.label
		value := []rune(r.value)
		label := []rune(r.label)
		vlines := s.wrap(fontRegular, value, valueW, bodySize)
		llines := s.wrap(fontBold, label, labelW-2*cellPad, bodySize)
		n := max(len(vlines), len(llines), r.minLines, 1)
		for len(vlines) < n {
			vlines = append(vlines, [2]int{len(value), len(value)})
		}
		marked := map[int]bool{}
		for _, m := range r.marks {
			marked[m] = true
		}
		first := true
		for len(vlines) > 0 {
			fit := int((pageH - marginBottom - s.y - 2*cellPad) / bodyLine)
			if fit < len(vlines) && (len(vlines) <= linesPerPage || fit < 1) {
				s.newPage()
				fit = int((pageH - marginBottom - s.y - 2*cellPad) / bodyLine)
			}
			chunk := vlines[:min(fit, len(vlines))]
			vlines = vlines[len(chunk):]
			lab := llines
			if !first {
				lab = [][2]int{{0, 0}}
				label = []rune("（続き）")
				lab[0][1] = len(label)
			}
			h := float64(max(len(chunk), len(lab)))*bodyLine + 2*cellPad
			s.pdf.SetFillColor(0xF0, 0xF0, 0xF0)
			s.pdf.SetStrokeColor(0x40, 0x40, 0x40)
			s.pdf.SetLineWidth(0.6)
			s.pdf.RectFromUpperLeftWithStyle(marginX, s.y, labelW, h, "FD")
			s.pdf.RectFromUpperLeftWithStyle(marginX+labelW, s.y, contentW-labelW, h, "D")
			for i, ln := range lab {
				s.draw(fontBold, bodySize, marginX+cellPad, s.y+cellPad+float64(i)*bodyLine, bodyLine, string(label[ln[0]:ln[1]]))
			}
			for i, ln := range chunk {
				top := s.y + cellPad + float64(i)*bodyLine
				x := marginX + labelW + cellPad
				s.draw(fontRegular, bodySize, x, top, bodyLine, string(value[ln[0]:ln[1]]))
				for k := ln[0]; k < ln[1]; k++ {
					w := s.width(fontRegular, value[k], bodySize)
					if marked[k] {
						// Substitute characters are underlined (R02 II-2-5(5)).
						s.pdf.SetLineWidth(1.2)
						s.pdf.Line(x, top+bodyLine-1.5, x+w, top+bodyLine-1.5)
						s.pdf.SetLineWidth(0.6)
					}
					x += w
				}
			}
			s.y += h
			first = false
		}
	}
}

// finish draws the page numbers and returns the PDF.
func (s *sheet) finish() ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	n := s.pdf.GetNumberOfPages()
	for i := 1; i <= n; i++ {
		if err := s.pdf.SetPage(i); err != nil {
			return nil, fmt.Errorf("printout: page %d: %w", i, err)
		}
		s.field = "ページ番号"
		num := fmt.Sprintf("%d / %d ページ", i, n)
		s.draw(fontRegular, smallSize, pageW-marginX-s.textWidth(fontRegular, []rune(num), smallSize), pageH-marginBottom+24, smallLine, num)
		s.draw(fontRegular, smallSize, marginX, pageH-marginBottom+24, smallLine, s.title)
	}
	if s.err != nil {
		return nil, s.err
	}
	raw, err := s.pdf.GetBytesPdfReturnErr()
	if err != nil {
		return nil, fmt.Errorf("printout: write pdf: %w", err)
	}
	return fixToUnicode(raw)
}
