package printout

import (
	"fmt"
	"math/big"
	"strings"
	"time"

	"madoguchi/app/apperr"
)

// CertKind is which of the two certificates of a card (DOMAIN §2).
type CertKind int

// The certificate kinds.
const (
	Signature CertKind = iota + 1 // 署名用電子証明書
	UserAuth                      // 利用者証明用電子証明書
)

func (k CertKind) ja() string {
	switch k {
	case Signature:
		return "署名用電子証明書"
	case UserAuth:
		return "利用者証明用電子証明書"
	}
	return ""
}

// Certificate is the summary of one issued certificate.
type Certificate struct {
	Kind      CertKind
	Serial    *big.Int
	NotBefore time.Time
	NotAfter  time.Time
}

func (c Certificate) check(field string) error {
	if c.Kind.ja() == "" {
		return apperr.New(apperr.InvalidInput, "printout: %s: unknown certificate kind %d", field, c.Kind)
	}
	if c.Serial == nil || c.Serial.Sign() <= 0 {
		return apperr.New(apperr.InvalidInput, "printout: %s: serial number must be positive", field)
	}
	if c.NotBefore.IsZero() || !c.NotAfter.After(c.NotBefore) {
		return apperr.New(apperr.InvalidInput, "printout: %s: validity must end after it begins", field)
	}
	return nil
}

// formatSerial prints a serial number as colon-separated hexadecimal octets, as certificate
// viewers do, followed by the decimal value that verifiers' logs use.
func formatSerial(n *big.Int) string {
	b := n.Bytes()
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02X", x)
	}
	return strings.Join(parts, ":") + "（10進数 " + n.String() + "）"
}

// Explanation is one item the applicant must be told at issuance (TS Art. 9; G Art. 8).
type Explanation int

// The explanation items, in the order of TS Art. 9.
const (
	LegalEffect      Explanation = iota + 1 // Art. 9(1)(i): an e-signature has effect like a seal
	ProtectKey                              // Art. 9(1)(i), (2)(i): protect the key and the PIN
	ReportLoss                              // Art. 9(1)(ii), (2)(ii): report loss, leak, unusable card
	FalseApplication                        // Art. 9(1)(iii): a false application is a crime (Act Art. 73)
)

var explanationName = map[Explanation]string{
	LegalEffect: "legal effect", ProtectKey: "protect key", ReportLoss: "report loss", FalseApplication: "false application",
}

var explanationText = map[Explanation][2]string{
	LegalEffect: {"電子署名の効果",
		"署名用電子証明書を用いて行った電子署名は、本人による手書きの署名や押印と同様の法的効果を持つことがあります。"},
	ProtectKey: {"秘密鍵と暗証番号の管理",
		"秘密鍵はマイナンバーカードの中にあり、カードの外に取り出すことはできません。カードを他人に貸したり預けたりせず、暗証番号は他人に知られないよう厳重に管理してください。暗証番号を書いたものをカードと一緒に保管しないでください。"},
	ReportLoss: {"紛失・漏えい等の届出",
		"カードを紛失し又は盗まれたとき、秘密鍵や暗証番号が他人に知られたおそれがあるとき、カードが使えなくなったときは、速やかに住所地の市区町村の窓口に届け出てください。電子証明書の失効の手続を行います。"},
	FalseApplication: {"虚偽の申請の禁止",
		"偽りその他不正の手段により電子証明書の発行を受けた者は、電子署名等に係る地方公共団体情報システム機構の認証業務に関する法律第73条により罰せられます。"},
}

// IssuanceNotice is the notice handed to the holder when certificates are delivered to a card:
// what was issued, and the explanations given (TS Art. 9 requires the explanation; the printed
// notice is the holder's copy of it and the municipality's record that it was given).
type IssuanceNotice struct {
	Municipality string    // issuing municipality (e.g. "東京都千代田区長")
	Date         time.Time // delivery time
	ReceiptNo    string    // the case's reception number
	OperatorID   string    // the operator's id, not their name (DOMAIN §9: collect only what is needed)
	HolderName   string    // 氏名 as in the certificate
	Certificates []Certificate
	Explanations []Explanation // the items given and acknowledged, each at most once
}

// Notice renders the issuance notice. Municipality, Date, OperatorID, HolderName, at least one
// certificate and at least one explanation are required (kind InvalidInput otherwise); a
// signature certificate needs all four explanations and a user-authentication certificate
// alone needs ProtectKey and ReportLoss (TS Art. 9(1), (2)).
func (p *Printer) Notice(n IssuanceNotice) ([]byte, error) {
	if err := n.validate(); err != nil {
		return nil, err
	}
	s := p.newSheet("電子証明書交付通知書", n.Date)
	s.heading(formatDay(n.Date), n.Municipality)
	s.paragraph("前文", n.HolderName+" 様")
	s.paragraph("前文", "あなたのマイナンバーカードに次の電子証明書を格納し、交付しました。下記の説明事項を大切に保管してください。")

	s.section("交付の内容")
	s.grid(
		row{label: "氏名", value: n.HolderName},
		row{label: "受付番号", value: n.ReceiptNo},
		row{label: "交付日時", value: formatInstant(n.Date)},
		row{label: "交付市区町村", value: n.Municipality},
		row{label: "取扱者ID", value: n.OperatorID},
	)
	for _, c := range n.Certificates {
		s.section(c.Kind.ja())
		s.grid(
			row{label: "種類", value: c.Kind.ja()},
			row{label: "シリアル番号", value: formatSerial(c.Serial)},
			row{label: "有効期間の開始", value: formatInstant(c.NotBefore)},
			row{label: "有効期間の満了", value: formatInstant(c.NotAfter)},
		)
	}
	s.section("説明事項（技術的基準第9条・指針第8条）")
	rows := make([]row, 0, len(n.Explanations))
	for i, e := range n.Explanations {
		t := explanationText[e]
		rows = append(rows, row{label: fmt.Sprintf("%d. %s", i+1, t[0]), value: t[1]})
	}
	s.grid(rows...)

	s.section("確認")
	s.grid(row{label: "説明を受けたことの確認（署名）", value: "上記の説明を受け、内容を理解しました。", minLines: 3})
	s.y += 8
	s.note("注記", "暗証番号はこの通知書に記載していません。暗証番号を忘れたとき又はロックされたときは、本人確認書類とカードを持って市区町村の窓口で初期化の手続をしてください。")
	return s.finish()
}

func (n IssuanceNotice) validate() error {
	for _, f := range []struct{ name, v string }{
		{"municipality", n.Municipality}, {"operator id", n.OperatorID}, {"holder name", n.HolderName},
	} {
		if strings.TrimSpace(f.v) == "" {
			return apperr.New(apperr.InvalidInput, "printout: notice needs the %s", f.name)
		}
	}
	if n.Date.IsZero() {
		return apperr.New(apperr.InvalidInput, "printout: notice needs the delivery date")
	}
	if len(n.Certificates) == 0 {
		return apperr.New(apperr.InvalidInput, "printout: notice needs at least one certificate")
	}
	need := map[Explanation]bool{ProtectKey: true, ReportLoss: true}
	for i, c := range n.Certificates {
		if err := c.check(fmt.Sprintf("certificate %d", i+1)); err != nil {
			return err
		}
		if c.Kind == Signature {
			need[LegalEffect], need[FalseApplication] = true, true
		}
	}
	have := map[Explanation]bool{}
	for _, e := range n.Explanations {
		if _, ok := explanationText[e]; !ok {
			return apperr.New(apperr.InvalidInput, "printout: unknown explanation item %d", e)
		}
		if have[e] {
			return apperr.New(apperr.InvalidInput, "printout: explanation item %d given twice", e)
		}
		have[e] = true
	}
	for _, e := range []Explanation{LegalEffect, ProtectKey, ReportLoss, FalseApplication} {
		if need[e] && !have[e] {
			return apperr.New(apperr.InvalidInput, "printout: explanation %q is required for the certificates issued (TS Art. 9)", explanationName[e])
		}
	}
	return nil
}
