package ui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/data/binding"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/apperr"
	"madoguchi/app/resident"
	"madoguchi/app/workflow"
)

// The 外字 step of the issuance wizard. A character of the applicant's name or address outside
// the certificate's character set (JIS X 0208: 髙, 﨑, 𠮷, ...) cannot go into the certificate;
// it is replaced before approval, and the positions are recorded with the case (R02
// II-2-5(4)(5)):
//   - in a name (氏名, 旧氏, 通称) the applicant chooses the substitute: a similar character the
//     domain offers (resident.Candidates) or the reading in kana;
//   - in an address the substitute is fixed in advance (resident.FixedSubstitute) and only shown.
//
// The step appears only when the record has such characters (gaijiNeeded).

// gaijiField is one personal item that goes into the signature certificate (the fields of
// workflow.Case.SetSubstitutions), with its translation key.
type gaijiField struct {
	name  string // "name", "former_surname", "alias_name", "address"
	key   string
	value string
}

// gaijiFields lists the case's items that go into the certificate, in the order shown; the
// address of a person abroad is the 附票 address (TS Art. 3(1)).
func gaijiFields(c *workflow.Case) []gaijiField {
	a := c.Applicant
	addr, addrKey := a.Address, "reception.applicant.address"
	if a.Status == resident.StatusAbroad {
		addr, addrKey = a.FuhyoAddress, "reception.applicant.fuhyo_address"
	}
	return []gaijiField{
		{"name", "cs.name", a.Name},
		{"former_surname", "reception.applicant.former_surname", a.FormerSurname},
		{"alias_name", "reception.applicant.alias", a.AliasName},
		{"address", addrKey, addr},
	}
}

// gaijiNeeded reports whether any item of the case has a character outside the character set.
func gaijiNeeded(c *workflow.Case) bool {
	for _, f := range gaijiFields(c) {
		if len(resident.FindOutside(f.value)) > 0 {
			return true
		}
	}
	return false
}

// gaijiChoice is one character to replace and the substitute chosen for it.
type gaijiChoice struct {
	field gaijiField
	at    resident.Outside
	// fixed is the address's fixed substitute; fixedErr when the address character has none.
	fixed    string
	fixedErr error
	// names: the offered similar characters, or the kana reading typed in.
	candidates *widget.RadioGroup
	kana       *widget.Entry
	preview    *widget.Label
}

// isName reports whether the applicant chooses the substitute (every field but the address).
func (g *gaijiChoice) isName() bool { return g.field.name != "address" }

// substitute returns the chosen substitute, or "" while none is chosen (or none is valid).
func (g *gaijiChoice) substitute() string {
	if !g.isName() {
		return g.fixed
	}
	if k := strings.TrimSpace(g.kana.Text); k != "" {
		if validKanaReading(k) {
			return k
		}
		return ""
	}
	return g.candidates.Selected
}

// validKanaReading reports whether s is a short reading in hiragana or katakana, every character
// of which the certificate can hold.
func validKanaReading(s string) bool {
	rs := []rune(s)
	if len(rs) == 0 || len(rs) > 10 {
		return false
	}
	for _, r := range rs {
		kana := (r >= 'ぁ' && r <= 'ゖ') || (r >= 'ァ' && r <= 'ヶ') || r == 'ー'
		if !kana || !resident.InCharset(r) {
			return false
		}
	}
	return true
}

// afterExistence goes on from the existence check: to the 外字 step when the record needs it,
// else to the identity check.
func (w *issueWizard) afterExistence() {
	if gaijiNeeded(w.c) {
		w.showGaiji()
		return
	}
	w.showIdentity()
}

// showGaiji shows the 外字 page of the open case.
func (w *issueWizard) showGaiji() {
	w.recGaijiPage = newRecGaijiPage(w.c, w.shell.theme.withTextSize(40), w.submitGaiji)
	w.show(stepGaiji, w.recGaijiPage.content(w.stopButton()))
	w.updateGaiji()
}

// recGaijiPage is the 外字 step's page: one card per character to replace, with the choice of
// substitute (names) or the fixed one (addresses), and how the item will read. It owns its
// widgets and says what is chosen (substitutions); the wizard records it with the case.
//
// Concurrency: touched on the UI goroutine only.
type recGaijiPage struct {
	gaiji     []*gaijiChoice
	allChosen binding.Bool // every character has its substitute: the button is enabled
	gaijiBtn  *widget.Button
	list      *fyne.Container
}

// newRecGaijiPage builds the page for the characters of case c, drawn large with big; submit
// records the substitutions (the button, and Enter in a kana reading).
func newRecGaijiPage(c *workflow.Case, big fyne.Theme, submit func()) *recGaijiPage {
	p := &recGaijiPage{allChosen: binding.NewBool()}
	intro := widget.NewLabel(tr("reception.gaiji.intro"))
	intro.Wrapping = fyne.TextWrapWord
	p.list = container.NewVBox(intro)
	for _, f := range gaijiFields(c) {
		for _, at := range resident.FindOutside(f.value) {
			g := &gaijiChoice{field: f, at: at, preview: widget.NewLabel("")}
			g.preview.Wrapping = fyne.TextWrapBreak
			where := widget.NewLabelWithStyle(tr("reception.gaiji.where", map[string]any{"Field": tr(f.key), "Value": f.value, "Pos": at.Pos + 1}),
				fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
			where.Wrapping = fyne.TextWrapBreak
			char := widget.NewLabelWithStyle(string(at.Char), fyne.TextAlignCenter, fyne.TextStyle{})
			code := widget.NewLabelWithStyle(fmt.Sprintf("U+%04X", at.Char), fyne.TextAlignCenter, fyne.TextStyle{})
			original := container.NewVBox(widget.NewLabelWithStyle(tr("reception.gaiji.original"), fyne.TextAlignCenter, fyne.TextStyle{}),
				container.NewThemeOverride(char, big), code)
			arrow := widget.NewLabelWithStyle("→", fyne.TextAlignCenter, fyne.TextStyle{})
			var choice fyne.CanvasObject
			if g.isName() {
				g.candidates = widget.NewRadioGroup(resident.Candidates(at.Char), nil)
				g.candidates.Horizontal = true
				g.kana = widget.NewEntry()
				g.kana.SetPlaceHolder(tr("reception.gaiji.kana_placeholder"))
				g.candidates.OnChanged = func(sel string) {
					if sel != "" && g.kana.Text != "" {
						g.kana.SetText("")
					}
					p.updateGaiji()
				}
				g.kana.OnChanged = func(string) {
					if g.kana.Text != "" && g.candidates.Selected != "" {
						g.candidates.SetSelected("")
					}
					p.updateGaiji()
				}
				g.kana.OnSubmitted = func(string) { submit() }
				var offered fyne.CanvasObject = widget.NewLabel(tr("reception.gaiji.no_candidates"))
				if len(g.candidates.Options) > 0 {
					offered = container.NewThemeOverride(g.candidates, big)
				}
				choice = container.NewVBox(widget.NewLabel(tr("reception.gaiji.choose")), offered,
					container.New(layout.NewFormLayout(), widget.NewLabel(tr("reception.gaiji.kana")), g.kana))
			} else {
				g.fixed, g.fixedErr = resident.FixedSubstitute(at.Char)
				if g.fixedErr != nil {
					l := procDangerLabel(tr("reception.gaiji.no_fixed"))
					choice = l
				} else {
					sub := widget.NewLabelWithStyle(g.fixed, fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
					choice = container.NewVBox(widget.NewLabel(tr("reception.gaiji.fixed")), container.NewThemeOverride(sub, big))
				}
			}
			row := container.NewBorder(nil, nil, container.NewHBox(original, container.NewCenter(arrow)), nil, choice)
			p.list.Add(widget.NewCard("", "", container.NewVBox(where, row, g.preview)))
			p.gaiji = append(p.gaiji, g)
		}
	}
	p.gaijiBtn = widget.NewButtonWithIcon(tr("reception.gaiji.record"), theme.NavigateNextIcon(), submit)
	p.gaijiBtn.Importance = widget.HighImportance
	bindEnabled(p.gaijiBtn, p.allChosen)
	return p
}

// content is the page with the wizard's stop button beside its own.
func (p *recGaijiPage) content(stop fyne.CanvasObject) fyne.CanvasObject {
	return container.NewBorder(nil, container.NewHBox(stop, layout.NewSpacer(), p.gaijiBtn), nil, nil,
		container.NewVScroll(p.list))
}

// substitutions returns what the step records, or ok=false while a choice is missing.
func (p *recGaijiPage) substitutions() ([]resident.Substitution, bool) {
	var out []resident.Substitution
	ok := true
	for _, g := range p.gaiji {
		sub := g.substitute()
		if sub == "" {
			ok = false
			continue
		}
		out = append(out, resident.Substitution{Field: g.field.name, Pos: g.at.Pos, Original: string(g.at.Char),
			Substitute: sub, ChosenByApp: g.isName()})
	}
	return out, ok
}

// updateGaiji shows each item as it will read in the certificate and enables the button once
// every character has its substitute.
func (p *recGaijiPage) updateGaiji() {
	subs, complete := p.substitutions()
	for _, g := range p.gaiji {
		switch {
		case g.isName() && strings.TrimSpace(g.kana.Text) != "" && g.substitute() == "":
			g.preview.Importance = widget.DangerImportance
			g.preview.SetText(tr("reception.gaiji.kana_invalid"))
		case g.substitute() == "":
			g.preview.Importance = widget.MediumImportance
			g.preview.SetText(tr("reception.gaiji.not_chosen"))
		default:
			g.preview.Importance = widget.SuccessImportance
			g.preview.SetText(tr("reception.gaiji.preview", map[string]any{"Value": gaijiPreview(g.field, subs)}))
		}
	}
	p.allChosen.Set(complete)
}

// gaijiPreview is the field as the certificate will read, with the substitutions chosen so far;
// characters still without a substitute show as "〓" (the customary mark for a missing glyph).
func gaijiPreview(f gaijiField, subs []resident.Substitution) string {
	repl := map[int]string{}
	for _, s := range subs {
		if s.Field == f.name {
			repl[s.Pos] = s.Substitute
		}
	}
	var b strings.Builder
	for i, r := range []rune(f.value) {
		switch v, ok := repl[i]; {
		case ok:
			b.WriteString(v)
		case !resident.InCharset(r):
			b.WriteString("〓")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// submitGaiji records the substitutions with the case, then goes on to the identity check.
func (w *issueWizard) submitGaiji() {
	subs, ok := w.substitutions()
	if !ok || !isSet(w.allChosen) {
		return
	}
	id := w.c.ID
	w.allChosen.Set(false)
	w.shell.async(func() {
		c, err := w.desk.SetSubstitutions(context.Background(), id, subs)
		w.shell.do(func() {
			if err != nil {
				w.updateGaiji()
				if errors.Is(err, apperr.InvalidInput) {
					// The domain refused a substitute (it does not fit the character or the
					// fixed substitute): say so rather than the general "input error".
					msg := tr("reception.gaiji.refused")
					w.shared.message.Set(msg)
					showReceptionDialog(w.shell.win, tr("reception.error.title"), msg)
					return
				}
				w.refuse(err)
				return
			}
			w.setCase(c)
			w.showIdentity()
		})
	})
}
