package ui

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"unicode"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/apperr"
	"madoguchi/app/issue"
	"madoguchi/app/resident"
	"madoguchi/app/workflow"
	"madoguchi/assets/translations"
)

// Tests that --lang en shows no Japanese outside personal data (issue 16, "one path from error
// to message"). Written before the fix and seen failing on the old code (57 findings): the
// issuance wizard's refusals and the settings screen's enrolment failure came from
// app.MessageJA, a Japanese-only table in app; the wizard, the PIN screen and the operator
// list joined and bracketed words with Japanese punctuation (、・（）); the header named the
// terminal 窓口; the revocation result showed the CA's Japanese reason; the 外字 kana
// placeholder held Japanese. The start-up report (Japanese strings built in main.go) and the
// error table test were added with the new API.

// isJapanese reports whether r is a Japanese character or Japanese punctuation: Hiragana,
// Katakana, Han (CJK ideographs), the CJK symbols and punctuation block (、。「」〓, U+3000–303F),
// the Katakana block's middle dot (・) and the full-width forms （）：～ (U+FF00–FFEF).
func isJapanese(r rune) bool {
	return unicode.In(r, unicode.Hiragana, unicode.Katakana, unicode.Han) ||
		(r >= 0x3000 && r <= 0x30FF) || (r >= 0xFF00 && r <= 0xFFEF)
}

// englishWalk collects the text a screen shows and reports every piece with Japanese in it
// once the personal data of the fixtures (names, kana, addresses, typed references: what the
// clerk or the register wrote, never the terminal's own words) is taken out.
type englishWalk struct {
	t        *testing.T
	personal []string
}

// withPersonal adds the string fields of residents as personal data.
func (e *englishWalk) withPersonal(rs ...resident.Resident) {
	for _, r := range rs {
		v := reflect.ValueOf(r)
		for i := 0; i < v.NumField(); i++ {
			if s, ok := v.Field(i).Interface().(string); ok && s != "" {
				e.personal = append(e.personal, s)
			}
		}
	}
}

func (e *englishWalk) check(where, text string) {
	e.t.Helper()
	// Longest first, so a name goes whole before a character of it.
	sort.Slice(e.personal, func(i, j int) bool { return len(e.personal[i]) > len(e.personal[j]) })
	rest := text
	for _, p := range e.personal {
		rest = strings.ReplaceAll(rest, p, "")
	}
	if strings.IndexFunc(rest, isJapanese) >= 0 {
		e.t.Errorf("%s: Japanese text with --lang en: %q", where, text)
	}
}

// walk checks every text in o's tree: the texts of the text widgets (whole, before they are
// wrapped or cut with an ellipsis), the options of selects and radio groups (drawn only when
// opened), entries' placeholders, cards' titles, and every canvas.Text drawn by other widgets.
func (e *englishWalk) walk(where string, o fyne.CanvasObject) {
	e.t.Helper()
	switch x := o.(type) {
	case nil:
		return
	case *fyne.Container:
		for _, c := range x.Objects {
			e.walk(where, c)
		}
	case *canvas.Text:
		e.check(where, x.Text)
	case *widget.Label:
		e.check(where+" (label)", x.Text)
	case *widget.Button:
		e.check(where+" (button)", x.Text)
	case *widget.Check:
		e.check(where+" (check)", x.Text)
	case *widget.Hyperlink:
		e.check(where+" (link)", x.Text)
	case *widget.RichText:
		e.check(where+" (rich text)", x.String())
	case *widget.Entry:
		e.check(where+" (placeholder)", x.PlaceHolder)
		e.check(where+" (entry)", x.Text)
	case *widget.Select:
		for _, opt := range x.Options {
			e.check(where+" (select option)", opt)
		}
		e.check(where+" (select placeholder)", x.PlaceHolder)
	case *widget.RadioGroup:
		for _, opt := range x.Options {
			e.check(where+" (radio option)", opt)
		}
	case *widget.Card:
		e.check(where+" (card title)", x.Title)
		e.check(where+" (card subtitle)", x.Subtitle)
		e.walk(where, x.Content)
	case fyne.Widget:
		for _, c := range test.WidgetRenderer(x).Objects() {
			e.walk(where, c)
		}
	}
}

// window checks the window's content and every overlay (dialogs).
func (e *englishWalk) window(where string, w fyne.Window) {
	e.t.Helper()
	e.walk(where, w.Content())
	for _, o := range w.Canvas().Overlays().List() {
		e.walk(where+" (dialog)", o)
	}
}

// useEnglish switches the screens to English for one test.
func useEnglish(t *testing.T) {
	t.Helper()
	if err := UseLanguage("en"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := UseLanguage("ja"); err != nil {
			t.Error(err)
		}
	})
}

// TestEnglishScreensHaveNoJapanese walks every screen of the shell's table with --lang en, with
// each screen's results shown (the same fills as TestScreensFitCounterWindow), and finds no
// Japanese outside personal data; then the log-in screen and the start-up report.
func TestEnglishScreensHaveNoJapanese(t *testing.T) {
	useEnglish(t)
	covered := map[string]bool{}
	for _, tc := range wideScreenCases() {
		covered[tc.id] = true
		t.Run(tc.id, func(t *testing.T) {
			s, w, b := wideShell(t)
			e := &englishWalk{t: t, personal: []string{longName, longKana, longRequest, longReasonJa, "管理 太郎", "受付 花子",
				"東京都千代田区霞が関一丁目一番一号中央合同庁舎第二号館十八階"}}
			for _, r := range b.desk.residents {
				e.withPersonal(r)
			}
			if err := s.Show(tc.id); err != nil {
				t.Fatal(err)
			}
			e.window(tc.id, w)
			if tc.fill != nil {
				tc.fill(t, s, b)
				e.window(tc.id+" with results", w)
			}
		})
	}
	// The screens without a fill of their own there (PIN reset, key destruction): as opened.
	for _, sc := range Screens() {
		if covered[sc.ID] || sc.ID == ReceptionIssueID {
			continue
		}
		t.Run(sc.ID, func(t *testing.T) {
			s, w, _ := wideShell(t)
			if err := s.Show(sc.ID); err != nil {
				t.Fatal(err)
			}
			(&englishWalk{t: t, personal: []string{longName}}).window(sc.ID, w)
		})
	}
	t.Run("settings enrolment refused", func(t *testing.T) {
		_, v := newSettingsHarness(t, &fakeSettings{})
		test.Type(v.token, "not-a-token")
		test.Tap(v.enrol)
		(&englishWalk{t: t, personal: []string{"管理 太郎", "受付 花子"}}).window("settings", v.shell.win)
		if v.message.Text == "" {
			t.Error("no message for a refused token")
		}
	})
	t.Run("login", func(t *testing.T) {
		s, w := newTestShell(t, newFakeBackend(receptionClerk()), Screens(), false)
		e := &englishWalk{t: t, personal: []string{"受付 花子"}}
		e.window("log-in", w)
		loginAs(t, s, "X999") // an unknown operator: the refusal
		e.window("log-in refused", w)
	})
	t.Run("startup report", func(t *testing.T) {
		s, w := newTestShell(t, newFakeBackend(receptionClerk()), Screens(), false)
		ShowStartupReport(s, StartupReport{
			EnrolFailed:      apperr.New(apperr.CAUnavailable, "terminal: enrolment"),
			SettingsFailed:   apperr.New(apperr.InvalidInput, "terminal: settings"),
			Recovered:        recoveryOutcomes(),
			RecoveryDeferred: true,
		})
		(&englishWalk{t: t}).window("start-up report", w)
	})
}

// recoveryOutcomes is one resolution of every outcome.
func recoveryOutcomes() []issue.Resolution {
	return []issue.Resolution{
		{Entry: issue.Entry{CaseID: 7, CertType: workflow.SignatureCert}, Outcome: issue.OutcomeAborted, CAState: "revoked", CardCleanup: true},
		{Entry: issue.Entry{CaseID: 8, CertType: workflow.UserAuthCert}, Outcome: issue.OutcomeAborted},
		{Entry: issue.Entry{CaseID: 9, CertType: workflow.UserAuthCert}, Outcome: issue.OutcomeDelivered, CAState: "delivered"},
		{Entry: issue.Entry{CaseID: 10, CertType: workflow.SignatureCert}, Outcome: issue.OutcomePending},
	}
}

// TestEnglishIssuanceWizardHasNoJapanese walks every page of the issuance wizard with --lang
// en (file, existence, 外字, identity, explanation, card, issuing, the applicant's PIN screens,
// result) and a refused issuance with its dialog.
func TestEnglishIssuanceWizardHasNoJapanese(t *testing.T) {
	useEnglish(t)
	h := newRecHarness(t)
	h.desk.applicant = gaijiApplicant()
	e := &englishWalk{t: t, personal: []string{"受付 花子", "高橋 一郎", "神奈川県架空市高尾町五丁目10番11号", "髙", "高"}}
	e.withPersonal(recApplicant(), *gaijiApplicant())
	e.window("file", h.w)
	h.toGaiji()
	e.window("gaiji", h.w)
	for _, g := range h.wiz.gaiji {
		if g.candidates != nil && len(g.candidates.Options) > 0 {
			g.candidates.SetSelected(g.candidates.Options[0])
		}
	}
	e.window("gaiji chosen", h.w)
	test.Tap(h.wiz.gaijiBtn)
	h.waitStep(stepIdentity)
	e.window("identity", h.w)
	h.identityFromHere()
	e.window("explanation", h.w)
	h.explainAll()
	e.window("card", h.w)
	h.start()
	e.window("issuing", h.w)
	p := h.pinScreen(PINUserAuth)
	e.window("applicant PIN", h.w)
	recEnterPIN(p, "5830")
	recEnterPIN(h.pinScreen(PINSignature), "SAKURA73")
	h.waitStep(stepResult)
	waitFor(t, "the notice", func() bool { return h.wiz.savedPath() != "" })
	e.window("result", h.w)

	// A refused issuance: the failure page and its dialog.
	h2 := newRecHarness(t)
	h2.desk.issue = func(ctx context.Context, o IssuanceOrder) (*issue.Result, error) {
		o.Progress(issue.StepPrepare, workflow.UserAuthCert)
		return nil, &issue.Error{Step: issue.StepScript, Kind: apperr.Internal, Aborted: true, CardCleanup: true, Err: recCardRemoved}
	}
	h2.importFile()
	h2.identitySelf()
	h2.explainAll()
	h2.start()
	h2.waitStep(stepFailed)
	e.window("failed", h2.w)
}

// TestEnglishErrorMessages renders every apperr kind and every detail code of the table with
// --lang en and finds no Japanese; with Japanese every message is Japanese (never a raw key).
func TestEnglishErrorMessages(t *testing.T) {
	cases := errorSamples()
	useEnglish(t)
	e := &englishWalk{t: t}
	for _, err := range cases {
		msg := errorMessage(err)
		e.check(fmt.Sprintf("%v", err), msg)
		if msg == "" || strings.Contains(msg, "error.") {
			t.Errorf("%v: message %q", err, msg)
		}
	}
	if err := UseLanguage("ja"); err != nil {
		t.Fatal(err)
	}
	for _, err := range cases {
		if msg := errorMessage(err); strings.IndexFunc(msg, isJapanese) < 0 {
			t.Errorf("%v: Japanese message %q", err, msg)
		}
	}
}

// errorSamples is one error of every kind, one of every kind and detail code in the table,
// and an issuance failure with every note.
func errorSamples() []error {
	var out []error
	for k := apperr.Kind(0); k.String() != fmt.Sprintf("kind(%d)", uint8(k)); k++ {
		out = append(out, apperr.New(k, "test: %s", k))
	}
	for _, kd := range translations.Details() {
		out = append(out, &apperr.Error{Kind: kd.Kind, Detail: kd.Detail, Msg: "test: detail"})
	}
	out = append(out, &issue.Error{Step: issue.StepPIN, Kind: apperr.Cancelled, AbortPending: true, CardCleanup: true, Err: issue.ErrPINCancelled},
		&issue.Error{Step: issue.StepScript, Kind: apperr.Internal, Aborted: true, Err: recCardRemoved})
	return out
}
