package ui

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// PINKind says which of the card's PINs the applicant sets.
type PINKind int

// The card PINs (DOMAIN §2, real-world card rules).
const (
	// PINSignature protects the signature key: 6–16 characters, A–Z and 0–9, at least one
	// letter and one digit.
	PINSignature PINKind = iota
	// PINUserAuth protects the user-authentication key: 4 digits.
	PINUserAuth
)

// PINRequest asks the applicant for one PIN.
type PINRequest struct {
	Kind PINKind
	// Submit receives the PIN once, on the UI goroutine, after the applicant typed it twice
	// identically in the card's format. It judges the rest (TS Art. 4: no easily guessed PIN:
	// repeats, runs, the birthday) and uses it; it returns an error of kind WeakPIN to refuse.
	// It must not keep pin: the screen overwrites the slice when Submit returns.
	Submit func(pin []byte) error
	// Cancelled is called when the clerk cancels the entry. May be nil.
	Cancelled func()
	// Existing: the applicant types the card's current PIN (renewal, certificate copy) once,
	// without the confirmation entry; the card judges it, not the rules for new PINs.
	Existing bool
}

// pinRule is one rule of a PIN's format, shown to the applicant with live feedback.
type pinRule struct {
	key string // translation key of the rule in plain Japanese
	ok  func(pin string) bool
}

// pinRules returns the format rules of a PIN kind. These are the card's own format rules (the
// card enforces them too); the domain's Submit judges guessability.
func pinRules(kind PINKind) []pinRule {
	if kind == PINUserAuth {
		return []pinRule{
			{"pin.rule.four_digits", func(p string) bool { return len(p) == 4 && onlyRunes(p, isDigit) }},
		}
	}
	return []pinRule{
		{"pin.rule.length_6_16", func(p string) bool { return len(p) >= 6 && len(p) <= 16 }},
		{"pin.rule.upper_and_digits_only", func(p string) bool {
			return p != "" && onlyRunes(p, func(r rune) bool { return isUpper(r) || isDigit(r) })
		}},
		{"pin.rule.letter_and_digit", func(p string) bool { return anyRune(p, isUpper) && anyRune(p, isDigit) }},
	}
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }
func isUpper(r rune) bool { return r >= 'A' && r <= 'Z' }

func onlyRunes(s string, f func(rune) bool) bool {
	for _, r := range s {
		if !f(r) {
			return false
		}
	}
	return true
}

func anyRune(s string, f func(rune) bool) bool {
	for _, r := range s {
		if f(r) {
			return true
		}
	}
	return false
}

// pinEntry is the applicant-facing PIN screen: full window, large masked fields without a
// reveal button (the clerk must not be able to read the PIN: CPS §6.4.1.2), the rules in plain
// words with a mark per rule as the applicant types, entered twice.
//
// The PIN is handed over once as a byte slice that is overwritten when Submit returns, and the
// fields are emptied first. The entry widget keeps its text as a Go string, which cannot be
// wiped; emptying the fields drops the last reference so nothing on screen or in the shell can
// show it again. The PIN is never logged or formatted.
type pinEntry struct {
	req     PINRequest
	rules   []pinRule
	done    func()
	first   *widget.Entry
	second  *widget.Entry
	marks   []*widget.Label // one per rule, then one for "both entries match"
	message *widget.Label
	submit  *widget.Button
	cancel  *widget.Button
	view    fyne.CanvasObject
}

// newPINEntry builds the screen; done is called after a successful Submit or a cancel.
func newPINEntry(req PINRequest, th *Theme, done func()) *pinEntry {
	p := &pinEntry{req: req, rules: pinRules(req.Kind), done: done}
	p.first = newConcealedEntry()
	p.second = newConcealedEntry()
	p.first.OnChanged = func(string) { p.refreshMarks() }
	p.second.OnChanged = func(string) { p.refreshMarks() }
	p.first.OnSubmitted = func(string) {
		if req.Existing {
			p.doSubmit()
			return
		}
		if c := fyne.CurrentApp().Driver().CanvasForObject(p.first); c != nil {
			c.Focus(p.second)
		}
	}
	p.second.OnSubmitted = func(string) { p.doSubmit() }
	for range p.rules {
		p.marks = append(p.marks, widget.NewLabel(""))
	}
	p.marks = append(p.marks, widget.NewLabel(""))
	p.message = widget.NewLabel("")
	p.message.Importance = widget.DangerImportance
	p.message.Wrapping = fyne.TextWrapWord
	p.submit = widget.NewButtonWithIcon(tr("pin.submit"), theme.ConfirmIcon(), p.doSubmit)
	p.submit.Importance = widget.HighImportance
	p.cancel = widget.NewButtonWithIcon(tr("pin.cancel"), theme.CancelIcon(), p.doCancel)

	titleKey, ruleKey := "pin.title.signature", "pin.rules.signature"
	if req.Kind == PINUserAuth {
		titleKey, ruleKey = "pin.title.user_auth", "pin.rules.user_auth"
	}
	noticeKey := "pin.notice"
	if req.Existing {
		titleKey, noticeKey = titleKey+".existing", "pin.notice.existing"
	}
	title := widget.NewLabelWithStyle(tr(titleKey), fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	title.SizeName = theme.SizeNameHeadingText
	summary := widget.NewLabelWithStyle(tr(ruleKey), fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	summary.SizeName = theme.SizeNameSubHeadingText
	notice := widget.NewLabelWithStyle(tr(noticeKey), fyne.TextAlignCenter, fyne.TextStyle{})
	notice.Wrapping = fyne.TextWrapWord

	big := th.withTextSize(34)
	fields := container.NewVBox(
		widget.NewLabel(tr("pin.first")), container.NewThemeOverride(p.first, big),
		widget.NewLabel(tr("pin.second")), container.NewThemeOverride(p.second, big),
	)
	marks := p.marks
	if req.Existing {
		// Entered once: no confirmation field and no "both entries match" mark.
		fields = container.NewVBox(widget.NewLabel(tr("pin.first")), container.NewThemeOverride(p.first, big))
		marks = marks[:len(p.rules)]
	}
	checklist := container.NewGridWithColumns(2)
	for _, m := range marks {
		checklist.Add(m)
	}
	width := canvas.NewRectangle(color.Transparent)
	width.SetMinSize(fyne.NewSize(640, 0))
	panel := container.NewStack(width, container.NewVBox(
		title, summary, notice, fields, widget.NewLabel(tr("pin.checklist")), checklist, p.message,
		container.NewGridWithColumns(2, p.cancel, p.submit),
	))
	p.view = container.NewCenter(panel)
	p.refreshMarks()
	return p
}

// newConcealedEntry is a password entry without the reveal action, so the masked PIN cannot be
// shown on screen; Fyne's entry also refuses to copy or cut concealed text. Fyne adds its reveal
// button to any password entry whose ActionItem is nil, so the slot holds an empty, hidden
// rectangle instead.
func newConcealedEntry() *widget.Entry {
	e := widget.NewEntry()
	e.Password = true
	noReveal := canvas.NewRectangle(color.Transparent)
	noReveal.Hide()
	e.ActionItem = noReveal
	return e
}

func (p *pinEntry) focus(c fyne.Canvas) {
	if c != nil {
		c.Focus(p.first)
	}
}

// refreshMarks shows, per rule, whether the first entry meets it ("○"), not yet ("・" while
// empty) or not ("×"), and whether both entries match.
func (p *pinEntry) refreshMarks() {
	pin := p.first.Text
	for i, r := range p.rules {
		p.marks[i].SetText(mark(pin == "", r.ok(pin)) + " " + tr(r.key))
		p.marks[i].Importance = importance(pin == "", r.ok(pin))
		p.marks[i].Refresh()
	}
	m := p.marks[len(p.rules)]
	same := p.second.Text != "" && p.first.Text == p.second.Text
	m.SetText(mark(p.second.Text == "", same) + " " + tr("pin.rule.match"))
	m.Importance = importance(p.second.Text == "", same)
	m.Refresh()
}

func mark(empty, ok bool) string {
	switch {
	case empty:
		return tr("pin.rule.pending")
	case ok:
		return "○"
	default:
		return "×"
	}
}

func importance(empty, ok bool) widget.Importance {
	switch {
	case empty:
		return widget.MediumImportance
	case ok:
		return widget.SuccessImportance
	default:
		return widget.DangerImportance
	}
}

// clear empties both fields and puts the cursor back in the first.
func (p *pinEntry) clear() {
	p.first.SetText("")
	p.second.SetText("")
	if c := fyne.CurrentApp().Driver().CanvasForObject(p.first); c != nil {
		c.Focus(p.first)
	}
}

func (p *pinEntry) fail(key string) {
	p.clear()
	p.message.SetText(tr(key))
}

func (p *pinEntry) doSubmit() {
	first, second := p.first.Text, p.second.Text
	for _, r := range p.rules {
		if !r.ok(first) {
			if p.req.Kind == PINUserAuth {
				p.fail("pin.error.format_user_auth")
			} else {
				p.fail("pin.error.format_signature")
			}
			return
		}
	}
	if !p.req.Existing && first != second {
		p.fail("pin.error.mismatch")
		return
	}
	pin := []byte(first)
	// The fields are emptied before the hand-over, so nothing on screen holds the PIN even if
	// Submit takes a while.
	p.clear()
	err := p.req.Submit(pin)
	for i := range pin {
		pin[i] = 0
	}
	if err != nil {
		p.message.SetText(tr(pinErrorKey(err)))
		return
	}
	p.message.SetText("")
	p.done()
}

// pinErrorKey names the message for a refused PIN: the rule the domain says it broke
// (app/pinrule's detail code, through the table of assets/translations), so the applicant
// learns what to change.
func pinErrorKey(err error) string { return errorKey(err) }

func (p *pinEntry) doCancel() {
	p.clear()
	if p.req.Cancelled != nil {
		p.req.Cancelled()
	}
	p.done()
}
