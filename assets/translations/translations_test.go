package translations

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode"

	"madoguchi/app/apperr"
)

// TestEveryKeyInBothLanguages: every key of ja.json is in en.json and back, and no text is
// empty, so neither language ever shows a raw key.
func TestEveryKeyInBothLanguages(t *testing.T) {
	ja, en := Catalogue("ja"), Catalogue("en")
	if len(ja) < 600 {
		t.Fatalf("ja.json has %d keys: not loaded", len(ja))
	}
	for name, pair := range map[string][2]map[string]string{"ja": {ja, en}, "en": {en, ja}} {
		for k, v := range pair[0] {
			// Fyne's own words are keyed by their English text and translated in ja.json only.
			if _, ok := pair[1][k]; !ok && (name == "en" || strings.Contains(k, ".")) {
				t.Errorf("key %q is in %s.json only", k, name)
			}
			if strings.TrimSpace(v) == "" {
				t.Errorf("%s.json: %q is empty", name, k)
			}
		}
	}
}

func japanese(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool {
		return unicode.In(r, unicode.Hiragana, unicode.Katakana, unicode.Han) || (r >= 0x3000 && r <= 0x30FF) || (r >= 0xFF00 && r <= 0xFFEF)
	}) >= 0
}

// TestEnglishHasNoJapanese: no English text holds a Japanese character, so --lang en shows
// Japanese only where personal data is filled in.
func TestEnglishHasNoJapanese(t *testing.T) {
	for k, v := range Catalogue("en") {
		if japanese(v) {
			t.Errorf("en.json %q = %q", k, v)
		}
	}
}

// TestEveryKindAndDetailTranslated renders every apperr kind, every row of the table and an
// error with notes in both languages: every key exists, English has no Japanese, Japanese is
// Japanese.
func TestEveryKindAndDetailTranslated(t *testing.T) {
	var errs []error
	for k := apperr.Kind(0); k.String() != fmt.Sprintf("kind(%d)", uint8(k)); k++ {
		errs = append(errs, apperr.New(k, "test"))
	}
	for _, r := range Details() {
		errs = append(errs, &apperr.Error{Kind: r.Kind, Detail: r.Detail, Msg: "test"})
	}
	for _, r := range Rows() {
		for _, lang := range Languages {
			if _, ok := Catalogue(lang)[r.Key]; !ok {
				t.Errorf("row %+v: no %s text", r, lang)
			}
		}
	}
	for _, err := range errs {
		en, ja := ErrorText("en", err), ErrorText("ja", err)
		if japanese(en) || !japanese(ja) || strings.Contains(en, "error.") || strings.Contains(ja, "error.") {
			t.Errorf("%v (%q): en %q, ja %q", err, apperr.DetailOf(err), en, ja)
		}
	}
	for _, code := range []string{"recovery.delivered", "recovery.pending", "recovery.aborted", "recovery.not_issued"} {
		m := apperr.Message{Code: code, Args: map[string]string{"Case": "7", "Cert": "signature"}, Notes: []string{"issue.card_cleanup"}}
		en, ja := MessageText("en", m), MessageText("ja", m)
		if japanese(en) || !strings.Contains(ja, "申請7の署名用電子証明書：") || !strings.Contains(en, "Application 7") {
			t.Errorf("%s: en %q, ja %q", code, en, ja)
		}
	}
}

// TestErrorKeyFallsBack: the most specific row wins; a context falls back to General; an error
// without a kind is Internal, a cancelled context Cancelled.
func TestErrorKeyFallsBack(t *testing.T) {
	for _, tc := range []struct {
		ctx  Context
		err  error
		want string
	}{
		{General, errors.New("x"), "error.internal"},
		{General, fmt.Errorf("x: %w", context.DeadlineExceeded), "error.cancelled"},
		{Procedure, &apperr.Error{Kind: apperr.InvalidTransition, Detail: "already_revoked"}, "revoke.error.already_revoked"},
		{General, &apperr.Error{Kind: apperr.InvalidTransition, Detail: "already_revoked"}, "error.ca.already_revoked"},
		{Procedure, apperr.New(apperr.LockedOut, "x"), "error.locked_out"},
		{Login, apperr.New(apperr.NotFound, "x"), "error.not_found"},
		{General, apperr.New(apperr.NotFound, "x"), "error.no_such_record"},
		{Settings, &apperr.Error{Kind: apperr.PrintFailed, Detail: "bad_request"}, "settings.printer.bad"},
		{General, &apperr.Error{Kind: apperr.PrintFailed, Detail: "bad_request"}, "print.error.other"},
		{General, &apperr.Error{Kind: apperr.WeakPIN, Detail: "no_such_rule"}, "pin.error.weak"},
	} {
		if got := ErrorKey(tc.ctx, tc.err); got != tc.want {
			t.Errorf("ErrorKey(%q, %v) = %q, want %q", tc.ctx, tc.err, got, tc.want)
		}
	}
}
