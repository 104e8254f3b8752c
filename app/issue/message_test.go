package issue_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"madoguchi/app/apperr"
	"madoguchi/app/issue"
	"madoguchi/app/pinrule"
	"madoguchi/assets/translations"
	"madoguchi/cardio"
	cardpin "madoguchi/cardio/pinrule"
	"madoguchi/raclient"
)

// TestOperatorToldInJapanese: the operator's message (assets/translations, from the error's
// detail and notes) is the issuance's own: the reason, what
// happened at the CA, what to do with the card.
func TestOperatorToldInJapanese(t *testing.T) {
	for _, tc := range []struct {
		err  *issue.Error
		want []string
	}{
		{&issue.Error{Step: issue.StepVerify, Aborted: true, CardCleanup: true, Err: fmt.Errorf("x: %w", cardio.ErrCardSwapped)},
			[]string{"カードが差し替えられた", "交付前に破棄", "再度発行"}},
		{&issue.Error{Step: issue.StepPrepare, Kind: apperr.AlreadyExists, Err: &raclient.Error{Status: 409, Code: "duplicate_person"}},
			[]string{"有効な同じ種類の電子証明書が既にある"}},
		{&issue.Error{Step: issue.StepConfirm, AbortPending: true, Err: &raclient.Error{Code: "unavailable", Err: errors.New("timeout")}},
			[]string{"認証局と通信できない", "次回起動時"}},
	} {
		wrapped := fmt.Errorf("ui: %w", tc.err)
		msg := translations.ErrorText("ja", wrapped)
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("message of %v = %q, want it to contain %q", tc.err, msg, w)
			}
		}
		if strings.Contains(tc.err.Error(), "。") {
			t.Errorf("English error %q carries Japanese", tc.err.Error())
		}
	}
}

// TestWrongCurrentPINToldWithTries: a renewal's applicant who mistypes the card's current PIN
// is told so with the tries left. On the old code the refusal was the bare *cardio.PINError,
// which has no kind: the CLI printed the internal-error message ("システムエラー…") for it.
func TestWrongCurrentPINToldWithTries(t *testing.T) {
	refused := issue.CurrentPINRefusal(&cardio.PINError{Which: cardio.Signature, TriesLeft: 2}, pinrule.Signature)
	if msg := translations.ErrorText("ja", refused); !strings.Contains(msg, "暗証番号が正しくありません（残り 2 回）") {
		t.Errorf("message %q", msg)
	}
	if !errors.Is(refused, apperr.BadCredentials) {
		t.Errorf("kind %v", apperr.KindOf(refused))
	}
	if msg := translations.ErrorText("en", issue.CurrentPINRefusal(fmt.Errorf("x: %w", cardpin.ErrFormat), pinrule.UserAuth)); !strings.Contains(msg, "4 digits") {
		t.Errorf("format refusal %q", msg)
	}
	if issue.CurrentPINRefusal(cardio.ErrPINBlocked, pinrule.Signature) != nil {
		t.Error("a blocked PIN is asked again")
	}
}
