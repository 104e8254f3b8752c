package app

import (
	"errors"

	"madoguchi/app/apperr"
	"madoguchi/app/pinrule"
)

// messagesJA is the one table that maps each refusal kind to the Japanese message the screens
// and the CLI show (DESIGN habit 4). Keep one entry per apperr.Kind.
var messagesJA = map[apperr.Kind]string{
	apperr.Internal:               "システムエラーが発生しました。管理者に連絡してください。",
	apperr.InvalidInput:           "入力内容に誤りがあります。",
	apperr.NotFound:               "該当するデータが見つかりません。",
	apperr.AlreadyExists:          "既に登録されています。",
	apperr.NotLoggedIn:            "ログインしてください。",
	apperr.SessionExpired:         "一定時間操作がなかったため、自動的にログアウトしました。再度ログインしてください。",
	apperr.PermissionDenied:       "この操作を行う権限がありません。",
	apperr.BadCredentials:         "職員番号またはパスワードが正しくありません。",
	apperr.LockedOut:              "認証に続けて失敗したため、ロックされました。管理者に解除を依頼してください。",
	apperr.OperatorDisabled:       "この操作者は無効化されています。",
	apperr.PasswordNotAllowed:     "この操作者は指紋認証でログインしてください。",
	apperr.FingerprintNoMatch:     "指紋が一致しません。もう一度指を置いてください。",
	apperr.FingerprintUnavailable: "指紋認証装置を利用できません。装置の接続を確認してください。",
	apperr.FingerprintNotEnrolled: "指紋が登録されていません。管理者に登録を依頼してください。",
	apperr.LastSupervisor:         "有効な管理者が一人もいなくなるため、この変更はできません。",
	apperr.ReasonRequired:         "理由を入力してください。",
	apperr.WeakPIN:                "この暗証番号は使用できません。",
	apperr.FileTampered:           "住民票記載事項ファイルが改ざんされているため、取り込めません。",
	apperr.FileExpired:            "住民票記載事項ファイルの有効期限が切れています。作成し直してください。",
	apperr.FileUsed:               "この住民票記載事項ファイルは既に取り込まれています。作成し直してください。",
	apperr.InvalidTransition:      "現在の状態ではこの操作はできません。",
	apperr.IdentityDoubt:          "本人確認に疑義があるため、手続を中止しました。",
	apperr.AuditBroken:            "操作履歴の改ざんまたは欠落を検出しました。監査担当者に連絡してください。",
	apperr.RenewalTooEarly:        "有効期限まで3か月以上あるため、更新の手続はできません。",
	apperr.ResidentNotEligible:    "この住民の記録状態では、この手続はできません。",
	apperr.Cancelled:              "操作が中断されました（時間切れ）。もう一度お試しください。",
	apperr.NotSupported:           "この手続は認証局がまだ対応していないため、この端末では行えません。",
	apperr.CAUnavailable:          "認証局と通信できません。時間をおいて再度お試しください。",
	apperr.CardUnknown:            "このカードには認証局が電子証明書を発行していないため、この手続はできません。",
	apperr.CardOtherMunicipality:  "このカードは他の市区町村で発行されたため、発行した市区町村の窓口で手続してください。",
	apperr.CertificateNotRevoked:  "この鍵の電子証明書がまだ有効（または一時保留中）です。先に電子証明書を失効させてください。",
	apperr.CardRefused:            "カードとの処理を完了できませんでした。カードを確認して、もう一度お試しください。",
	apperr.PINNotSet:              "暗証番号は初期化されましたが、新しい暗証番号が設定されていません。もう一度手続を行い、申請者に暗証番号を設定してもらってください。",
	apperr.CardNotApplicants:      "このカードは未使用のカードでも申請者ご本人のカードでもないため、何も書き込まずに発行を中止しました。カードを確認してください。",
}

// MessageJA returns the Japanese message for err: the specific PIN-rule message for a weak PIN,
// otherwise the message of err's kind. nil gives "".
func MessageJA(err error) string {
	if err == nil {
		return ""
	}
	var pe *pinrule.Error
	if errors.As(err, &pe) {
		return pe.MessageJA()
	}
	// Errors that know their own message (issue.Error: what happened at the CA and to the card).
	var own interface{ MessageJA() string }
	if errors.As(err, &own) {
		return own.MessageJA()
	}
	if m, ok := messagesJA[apperr.KindOf(err)]; ok {
		return m
	}
	return messagesJA[apperr.Internal]
}
