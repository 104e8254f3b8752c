package printout

import (
	"fmt"
	"math/big"
	"strings"
	"time"

	"madoguchi/app/apperr"
)

// Reason is an RFC 5280 CRL reason code as JPKI uses it (CPS §4.9.9).
type Reason int

// The reason codes JPKI uses.
const (
	Unspecified          Reason = 0 // destroyed before delivery
	KeyCompromise        Reason = 1
	CACompromise         Reason = 2
	AffiliationChanged   Reason = 3
	Superseded           Reason = 4
	CessationOfOperation Reason = 5
	CertificateHold      Reason = 6
)

// reasonText holds each code's RFC 5280 name and its JPKI meaning in Japanese, worded as in
// ca-server/revocation/rules.json (the test checks they agree).
var reasonText = map[Reason][2]string{
	Unspecified:          {"unspecified", "交付前に破棄した"},
	KeyCompromise:        {"keyCompromise", "利用者の秘密鍵が危殆化した"},
	CACompromise:         {"cACompromise", "CAの秘密鍵が危殆化した"},
	AffiliationChanged:   {"affiliationChanged", "電子証明書の記載内容に変更が生じた"},
	Superseded:           {"superseded", "電子証明書を更新した"},
	CessationOfOperation: {"cessationOfOperation", "電子証明書の必要性がなくなった"},
	CertificateHold:      {"certificateHold", "秘密鍵の安全性に疑義が生じたため一時的に保留した"},
}

// Revoked is one revoked certificate.
type Revoked struct {
	Kind      CertKind
	Serial    *big.Int
	Reason    Reason
	RevokedAt time.Time // the revocation time the CA recorded
}

// RevocationNotice is the written acknowledgement handed to the holder after the CA revoked
// at their request (CPS §4.9.3.1): the request was received and the revocation is complete.
type RevocationNotice struct {
	Municipality string    // municipality that received the request
	Date         time.Time // when printed
	ReceiptNo    string
	OperatorID   string
	HolderName   string
	ReceivedAt   time.Time // when the request was received at the counter
	Revoked      []Revoked
}

// RevocationNotice renders the acknowledgement. Municipality, Date, OperatorID, HolderName,
// ReceivedAt and at least one certificate are required; each certificate needs a known kind, a
// positive serial, a known reason and a revocation time not before ReceivedAt, since the CA
// revokes only after the request (kind InvalidInput otherwise).
func (p *Printer) RevocationNotice(n RevocationNotice) ([]byte, error) {
	if err := n.validate(); err != nil {
		return nil, err
	}
	s := p.newSheet("電子証明書失効受付・失効完了通知書", n.Date)
	s.heading(formatDay(n.Date), n.Municipality)
	s.paragraph("前文", n.HolderName+" 様")
	s.paragraph("前文", "あなたから届出のあった電子証明書の失効の申請を受け付け、次のとおり失効の手続が完了しました。失効した電子証明書は、再び有効にすることはできません。")

	s.section("受付")
	s.grid(
		row{label: "氏名", value: n.HolderName},
		row{label: "受付番号", value: n.ReceiptNo},
		row{label: "受付日時", value: formatInstant(n.ReceivedAt)},
		row{label: "受付市区町村", value: n.Municipality},
		row{label: "取扱者ID", value: n.OperatorID},
	)
	for _, r := range n.Revoked {
		t := reasonText[r.Reason]
		s.section("失効した電子証明書：" + r.Kind.ja())
		s.grid(
			row{label: "種類", value: r.Kind.ja()},
			row{label: "シリアル番号", value: formatSerial(r.Serial)},
			row{label: "失効理由", value: fmt.Sprintf("%s（%d: %s）", t[1], int(r.Reason), t[0])},
			row{label: "失効日時", value: formatInstant(r.RevokedAt)},
		)
	}
	s.y += 6
	s.note("注記", "失効した電子証明書を用いた電子署名や利用者証明は、失効日時以後、検証者により無効と判断されます。新たに電子証明書が必要なときは、市区町村の窓口で発行の申請をしてください。")
	return s.finish()
}

func (n RevocationNotice) validate() error {
	for _, f := range []struct{ name, v string }{
		{"municipality", n.Municipality}, {"operator id", n.OperatorID}, {"holder name", n.HolderName},
	} {
		if strings.TrimSpace(f.v) == "" {
			return apperr.New(apperr.InvalidInput, "printout: revocation notice needs the %s", f.name)
		}
	}
	if n.Date.IsZero() || n.ReceivedAt.IsZero() {
		return apperr.New(apperr.InvalidInput, "printout: revocation notice needs the date and the time the request was received")
	}
	if len(n.Revoked) == 0 {
		return apperr.New(apperr.InvalidInput, "printout: revocation notice needs at least one certificate")
	}
	for i, r := range n.Revoked {
		switch {
		case r.Kind.ja() == "":
			return apperr.New(apperr.InvalidInput, "printout: revoked certificate %d: unknown kind %d", i+1, r.Kind)
		case r.Serial == nil || r.Serial.Sign() <= 0:
			return apperr.New(apperr.InvalidInput, "printout: revoked certificate %d: serial number must be positive", i+1)
		case reasonText[r.Reason][0] == "":
			return apperr.New(apperr.InvalidInput, "printout: revoked certificate %d: unknown reason code %d", i+1, r.Reason)
		case r.RevokedAt.Before(n.ReceivedAt):
			return apperr.New(apperr.InvalidInput, "printout: revoked certificate %d: revoked before the request was received", i+1)
		}
	}
	return nil
}
