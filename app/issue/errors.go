package issue

import (
	"errors"
	"fmt"
	"strings"

	"madoguchi/app/apperr"
	"madoguchi/cardio"
	"madoguchi/raclient"
)

// Step names where an issuance failed.
type Step string

// The steps of an issuance, in order.
const (
	StepCase    Step = "case"    // loading and checking the reception case
	StepCard    Step = "card"    // reading the card serial, INITIALIZE UPDATE
	StepChannel Step = "channel" // opening the secure channel at the CA
	StepPrepare Step = "prepare" // the CA generating the key and issuing
	StepScript  Step = "script"  // relaying the CA's script to the card
	StepPIN     Step = "pin"     // the applicant setting the PINs
	StepVerify  Step = "verify"  // reading the card back and comparing
	StepConfirm Step = "confirm" // confirming delivery at the CA
)

// Sentinel causes, matched with errors.Is on an *Error.
var (
	// ErrBusy: another issuance or recovery holds this terminal's issuance lock (one card
	// reader, one issuance at a time).
	ErrBusy = errors.New("issue: another issuance is running on this terminal")
	// ErrUnresolved: the case has journal entries that recovery has not resolved yet.
	ErrUnresolved = errors.New("issue: earlier issuances of this case are not resolved; run recovery first")
	// ErrReadBack: the card read back through the JPKI AP does not hold what the CA issued.
	ErrReadBack = errors.New("issue: card content differs from what the CA issued")
	// ErrPINCancelled: the applicant did not finish setting the PINs.
	ErrPINCancelled = errors.New("issue: pin entry cancelled")
	// ErrNothingToIssue: every requested certificate of the case is delivered already.
	ErrNothingToIssue = errors.New("issue: every requested certificate of the case is delivered")
	// ErrCAAnswer: the CA answered something the protocol does not allow.
	ErrCAAnswer = errors.New("issue: unexpected answer from the CA")
)

// Error is a failed issuance: the step, what happened to the CA issuances of the case, and
// whether the card needs to be personalised again. It carries an apperr.Kind for callers that
// branch, and the Japanese message for the operator (app.MessageJA).
type Error struct {
	Step Step
	Kind apperr.Kind
	// Aborted: the issuances started by this call were revoked before delivery (reason 0).
	Aborted bool
	// AbortPending: at least one issuance could not be aborted at the CA now (unreachable); it
	// stays in the journal for Recover, and the CA revokes it at its deadline anyway.
	AbortPending bool
	// CardCleanup: the card may hold a key of an aborted issuance and must be personalised
	// again before it is handed out.
	CardCleanup bool
	Err         error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "issue: %s failed", e.Step)
	if e.Aborted {
		b.WriteString(" (revoked before delivery)")
	}
	if e.AbortPending {
		b.WriteString(" (abort pending)")
	}
	if e.CardCleanup {
		b.WriteString(" (card must be personalised again)")
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorKind implements apperr.Kinded.
func (e *Error) ErrorKind() apperr.Kind { return e.Kind }

// MessageJA is what the operator is told: the reason, what happened at the CA, what to do with
// the card.
func (e *Error) MessageJA() string {
	parts := []string{reasonJA(e)}
	switch {
	case e.AbortPending:
		parts = append(parts, "発行途中の電子証明書の失効を認証局に届けられませんでした。端末の次回起動時に自動で失効を届け出ます（届かない場合も認証局が期限後に失効します）。")
	case e.Aborted:
		parts = append(parts, "発行途中の電子証明書は交付前に失効しました（失効理由：交付前に破棄）。")
	}
	if e.CardCleanup {
		parts = append(parts, "このカードには失効した鍵が書き込まれている可能性があるため、交付せず、再度発行の手続を行ってください。")
	}
	return strings.Join(parts, "")
}

func reasonJA(e *Error) string {
	err := e.Err
	switch {
	case errors.Is(err, ErrBusy):
		return "この端末では別の発行処理が実行中です。終了してから操作してください。"
	case errors.Is(err, ErrUnresolved):
		return "この申請には処理が完了していない発行があります。端末を再起動して未完了の発行を処理してください。"
	case errors.Is(err, ErrNothingToIssue):
		return "申請された電子証明書はすべて交付済みです。"
	case errors.Is(err, cardio.ErrCardSwapped):
		return "発行の途中でカードが差し替えられたため、発行を中止しました。"
	case errors.Is(err, ErrReadBack):
		return "カードから読み出した内容が発行した電子証明書と一致しないため、発行を中止しました。"
	case errors.Is(err, ErrPINCancelled):
		return "暗証番号の設定が完了しなかったため、発行を中止しました。"
	case errors.Is(err, raclient.ErrCardOtherPerson):
		return "このカードには別の方の電子証明書が記録されているため、何も書き込まずに発行を中止しました。未使用のカードか、申請者ご本人のカードで発行してください。"
	case errors.Is(err, raclient.ErrCardStateUnknown), errors.Is(err, ErrCardNotApplicants):
		return "このカードが未使用のカードか申請者ご本人のカードであることを確認できないため、何も書き込まずに発行を中止しました。カードを確認してください。"
	case errors.Is(err, raclient.ErrDuplicatePerson):
		return "この方には有効な同じ種類の電子証明書が既にあるため、新たに発行できません。"
	case errors.Is(err, raclient.ErrPendingPerson):
		return "この方の同じ種類の電子証明書を別の窓口で発行中です。"
	case errors.Is(err, raclient.ErrRenewalTooEarly):
		return "認証局の記録では現在の電子証明書の有効期限まで3か月以上あるため、更新できません。"
	case errors.Is(err, raclient.ErrInvalidApplicant):
		return "申請者の情報が認証局で受け付けられませんでした。住民票記載事項を確認してください。"
	case errors.Is(err, raclient.ErrForbidden):
		return "この端末は認証局に登録されていないか、利用を停止されています。管理者に連絡してください。"
	case errors.Is(err, raclient.ErrCard):
		return "カードと認証局の相互認証、または書込み結果の確認に失敗したため、発行を中止しました。"
	case errors.Is(err, raclient.ErrChannelExpired):
		return "カードとの通信路の有効期限が切れたため、発行を中止しました。"
	case errors.Is(err, raclient.ErrUnavailable), errors.Is(err, raclient.ErrInternal):
		return "認証局と通信できないため、発行を中止しました。"
	case e.Kind == apperr.Cancelled:
		return "操作が中断されたため、発行を中止しました。"
	}
	switch e.Step {
	case StepCase:
		return "この申請は発行できる状態ではありません。"
	case StepCard, StepScript, StepVerify:
		return "カードの読み書きに失敗したため、発行を中止しました。カードの挿入状態を確認してください。"
	case StepPIN:
		return "暗証番号をカードに設定できなかったため、発行を中止しました。"
	}
	return "電子証明書の発行に失敗したため、発行を中止しました。"
}
