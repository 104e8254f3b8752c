package ui

import (
	"bytes"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/apperr"
)

// pinHarness shows the applicant PIN screen over a logged-in shell and records hand-overs.
type pinHarness struct {
	s         *Shell
	w         fyne.Window
	p         *pinEntry
	before    fyne.CanvasObject
	delivered [][]byte // copies of what Submit received
	handed    [][]byte // the slices Submit received, to check they are wiped
	refuse    func(pin []byte) error
	cancelled bool
}

func newPINHarness(t *testing.T, kind PINKind) *pinHarness {
	s, w := newTestShell(t, newFakeBackend(receptionClerk()), Screens(), false)
	loginAs(t, s, "R001")
	h := &pinHarness{s: s, w: w, before: w.Content()}
	s.ShowApplicantPIN(PINRequest{
		Kind: kind,
		Submit: func(pin []byte) error {
			if h.refuse != nil {
				if err := h.refuse(pin); err != nil {
					return err
				}
			}
			h.delivered = append(h.delivered, bytes.Clone(pin))
			h.handed = append(h.handed, pin)
			return nil
		},
		Cancelled: func() { h.cancelled = true },
	})
	if w.Content() == h.before {
		t.Fatal("PIN screen did not take over the window")
	}
	h.p = findPINEntry(t, s)
	return h
}

// findPINEntry returns the PIN screen the shell shows.
func findPINEntry(t *testing.T, s *Shell) *pinEntry {
	t.Helper()
	if s.pin == nil || s.win.Content() != s.pin.view {
		t.Fatal("the PIN screen is not the window content")
	}
	return s.pin
}

// enter types both fields; Enter in the first moves to the second, Enter there submits.
func (h *pinHarness) enter(first, second string) {
	test.Type(h.p.first, first)
	h.p.first.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	test.Type(h.p.second, second)
	h.p.second.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
}

func (h *pinHarness) expectRefused(t *testing.T, wantKey string) {
	t.Helper()
	if got := h.p.message.Text; got != tr(wantKey) {
		t.Errorf("message = %q, want %q", got, tr(wantKey))
	}
	if len(h.delivered) != 0 {
		t.Errorf("PIN handed over despite refusal")
	}
	if h.p.first.Text != "" || h.p.second.Text != "" {
		t.Error("refused PIN left in the fields")
	}
	if h.w.Canvas().Focused() != h.p.first {
		t.Error("cursor not back in the first field")
	}
}

func TestPINSignatureAccepted(t *testing.T) {
	h := newPINHarness(t, PINSignature)
	if h.w.Canvas().Focused() != h.p.first {
		t.Error("first field not focused")
	}
	for _, e := range []*widget.Entry{h.p.first, h.p.second} {
		if _, tappable := e.ActionItem.(fyne.Tappable); tappable || e.ActionItem.Visible() {
			t.Error("PIN field has a reveal button")
		}
	}
	h.enter("AB12CD", "AB12CD")
	if len(h.delivered) != 1 || string(h.delivered[0]) != "AB12CD" {
		t.Fatalf("delivered %d PINs", len(h.delivered))
	}
	// Nothing can read the PIN back: the fields are empty, the handed-over slice is wiped, and
	// the shell is back as it was.
	if h.p.first.Text != "" || h.p.second.Text != "" {
		t.Error("PIN still in the fields after hand-over")
	}
	if !bytes.Equal(h.handed[0], make([]byte, 6)) {
		t.Error("handed-over PIN slice not wiped after Submit returned")
	}
	if h.w.Content() != h.before {
		t.Error("window not restored after the PIN was set")
	}
	if h.s.Current() != HomeID {
		t.Errorf("shell screen = %q", h.s.Current())
	}
}

func TestPINMismatch(t *testing.T) {
	h := newPINHarness(t, PINSignature)
	h.enter("AB12CD", "AB12CE")
	h.expectRefused(t, "pin.error.mismatch")
	if got := tr("pin.error.mismatch"); got != "1回目と2回目の入力が一致しません。もう一度入力してください" {
		t.Errorf("mismatch message = %q", got)
	}
}

func TestPINSignatureFormat(t *testing.T) {
	for _, pin := range []string{
		"AB12",              // too short
		"ABCDEFGH12345678X", // 17: too long
		"ab12cd",            // lower case
		"ABCDEF",            // no digit
		"123456",            // no letter
		"AB-12CD",           // symbol
		"ＡＢ１２ＣＤ",            // full-width (IME)
	} {
		t.Run(pin, func(t *testing.T) {
			h := newPINHarness(t, PINSignature)
			h.enter(pin, pin)
			h.expectRefused(t, "pin.error.format_signature")
		})
	}
}

func TestPINUserAuthFormat(t *testing.T) {
	for _, pin := range []string{"123", "12345", "12a4", "ABCD"} {
		t.Run(pin, func(t *testing.T) {
			h := newPINHarness(t, PINUserAuth)
			h.enter(pin, pin)
			h.expectRefused(t, "pin.error.format_user_auth")
		})
	}
	h := newPINHarness(t, PINUserAuth)
	h.enter("5830", "5830")
	if len(h.delivered) != 1 || string(h.delivered[0]) != "5830" {
		t.Fatal("valid user-auth PIN not delivered")
	}
}

func TestPINWeakRefusedByDomain(t *testing.T) {
	h := newPINHarness(t, PINUserAuth)
	h.refuse = func(pin []byte) error {
		if string(pin) == "1234" {
			return apperr.New(apperr.WeakPIN, "pinrule: run of digits")
		}
		return nil
	}
	h.enter("1234", "1234")
	h.expectRefused(t, "pin.error.weak")
	if h.w.Content() == h.before {
		t.Error("PIN screen closed after a refusal")
	}
	h.enter("5830", "5830")
	if len(h.delivered) != 1 {
		t.Fatal("second, acceptable PIN not delivered")
	}
}

func TestPINRuleMarks(t *testing.T) {
	h := newPINHarness(t, PINSignature)
	marks := func() []string {
		var out []string
		for _, m := range h.p.marks {
			out = append(out, string([]rune(m.Text)[0]))
		}
		return out
	}
	eq := func(got []string, want ...string) bool {
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if got[i] != want[i] {
				return false
			}
		}
		return true
	}
	if got := marks(); !eq(got, "・", "・", "・", "・") {
		t.Errorf("empty: marks %v", got)
	}
	test.Type(h.p.first, "ABCDEF")
	if got := marks(); !eq(got, "○", "○", "×", "・") {
		t.Errorf("ABCDEF: marks %v", got)
	}
	test.Type(h.p.first, "1")
	test.Type(h.p.second, "ABCDEF1")
	if got := marks(); !eq(got, "○", "○", "○", "○") {
		t.Errorf("ABCDEF1 twice: marks %v", got)
	}
}

func TestPINCancel(t *testing.T) {
	h := newPINHarness(t, PINSignature)
	test.Type(h.p.first, "AB12CD")
	test.Tap(h.p.cancel)
	if !h.cancelled || len(h.delivered) != 0 {
		t.Fatalf("cancelled=%v delivered=%d", h.cancelled, len(h.delivered))
	}
	if h.p.first.Text != "" || h.w.Content() != h.before {
		t.Error("cancel left the PIN or the screen behind")
	}
}
