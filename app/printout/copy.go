package printout

import (
	"crypto/x509"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"madoguchi/app/apperr"
)

// Text is a name or address as recorded in the certificate, with the 0-based code-point indexes
// of its substitute characters (代替文字, R02 II-2-5(4)(5)), strictly ascending. Code points, not
// bytes or UTF-16 units, so 𠮷 counts once (the encoding of ca-server/issuer).
type Text struct {
	Value       string
	Substitutes []int
}

func (t Text) check(field string) error {
	n := utf8.RuneCountInString(t.Value)
	prev := -1
	for _, p := range t.Substitutes {
		if p <= prev || p >= n {
			return apperr.New(apperr.InvalidInput, "printout: %s: substitute position %d out of order or range", field, p)
		}
		prev = p
	}
	return nil
}

// Sex is 男女の別 as coded in the certificate: 1 male, 2 female.
type Sex int

// Sex codes.
const (
	Male   Sex = 1
	Female Sex = 2
)

// Personal is the personal data of a signature certificate: the four items (TS Art. 11) and
// 旧氏 or 通称 when recorded (TS Art. 3(1)).
type Personal struct {
	Name          Text
	BirthDate     Date
	Sex           Sex
	Address       Text
	FormerSurname Text // 旧氏, optional
	Alias         Text // 通称, optional
}

// CertificateCopy is the human-readable copy of one certificate (CPS §4.4.1.1).
type CertificateCopy struct {
	Municipality string    // municipality handing the copy over
	Date         time.Time // when printed
	OperatorID   string
	Certificate
	Subject            string // subject distinguished name
	Issuer             string // issuer distinguished name
	PublicKey          string // e.g. "RSA 2048ビット"
	SignatureAlgorithm string // e.g. "sha256WithRSAEncryption"
	KeyUsage           x509.KeyUsage
	ExtKeyUsage        []string // dotted OIDs or names; optional
	Policies           []string // certificate policy OIDs, dotted
	FingerprintSHA256  [32]byte // of the DER certificate
	// Personal is required for a signature certificate and must be nil for a
	// user-authentication certificate, which carries no personal data (CPS §3.1, §7.1).
	Personal *Personal
}

// keyUsageNames in bit order (RFC 5280 §4.2.1.3), with the Japanese terms.
var keyUsageNames = []struct {
	bit    x509.KeyUsage
	en, ja string
}{
	{x509.KeyUsageDigitalSignature, "digitalSignature", "デジタル署名"},
	{x509.KeyUsageContentCommitment, "nonRepudiation", "否認防止"},
	{x509.KeyUsageKeyEncipherment, "keyEncipherment", "鍵暗号化"},
	{x509.KeyUsageDataEncipherment, "dataEncipherment", "データ暗号化"},
	{x509.KeyUsageKeyAgreement, "keyAgreement", "鍵共有"},
	{x509.KeyUsageCertSign, "keyCertSign", "証明書署名"},
	{x509.KeyUsageCRLSign, "cRLSign", "CRL署名"},
	{x509.KeyUsageEncipherOnly, "encipherOnly", "暗号化のみ"},
	{x509.KeyUsageDecipherOnly, "decipherOnly", "復号のみ"},
}

func formatKeyUsage(ku x509.KeyUsage) string {
	var parts []string
	for _, k := range keyUsageNames {
		if ku&k.bit != 0 {
			parts = append(parts, k.ja+"（"+k.en+"）")
		}
	}
	if len(parts) == 0 {
		return "なし"
	}
	return strings.Join(parts, "、")
}

func formatFingerprint(fp [32]byte) string {
	parts := make([]string, len(fp))
	for i, b := range fp {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "なし"
	}
	return strings.Join(list, "\n")
}

// CertificateCopy renders the copy. Municipality, Date, OperatorID and a valid Certificate are
// required; Personal must be present exactly for a signature certificate, with name, address,
// a valid date of birth and sex (kind InvalidInput otherwise). Substitute characters are
// underlined and listed by position, since the certificate records their positions and the
// holder must be able to see which characters stand in for others (R02 II-2-5(5)).
func (p *Printer) CertificateCopy(c CertificateCopy) ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	s := p.newSheet("電子証明書の写し", c.Date)
	s.heading(formatDay(c.Date), c.Municipality)
	s.paragraph("前文", "次のとおり、電子証明書に記録されている事項を表示します。")

	s.section("電子証明書の記録事項")
	s.grid(
		row{label: "種類", value: c.Kind.ja()},
		row{label: "発行者", value: c.Issuer},
		row{label: "主体者", value: c.Subject},
		row{label: "シリアル番号", value: formatSerial(c.Serial)},
		row{label: "有効期間の開始", value: formatInstant(c.NotBefore)},
		row{label: "有効期間の満了", value: formatInstant(c.NotAfter)},
		row{label: "公開鍵", value: c.PublicKey},
		row{label: "署名アルゴリズム", value: c.SignatureAlgorithm},
		row{label: "鍵用途", value: formatKeyUsage(c.KeyUsage)},
		row{label: "拡張鍵用途", value: orNone(c.ExtKeyUsage)},
		row{label: "証明書ポリシー", value: orNone(c.Policies)},
		row{label: "フィンガープリント", value: "SHA-256: " + formatFingerprint(c.FingerprintSHA256)},
	)

	if pd := c.Personal; pd != nil {
		s.section("基本4情報等（署名用電子証明書の記録事項）")
		sex := map[Sex]string{Male: "男", Female: "女"}[pd.Sex]
		rows := []row{
			{label: "氏名", value: pd.Name.Value, marks: pd.Name.Substitutes},
			{label: "生年月日", value: pd.BirthDate.format()},
			{label: "性別", value: sex},
			{label: "住所", value: pd.Address.Value, marks: pd.Address.Substitutes},
		}
		if pd.FormerSurname.Value != "" {
			rows = append(rows, row{label: "旧氏", value: pd.FormerSurname.Value, marks: pd.FormerSurname.Substitutes})
		}
		if pd.Alias.Value != "" {
			rows = append(rows, row{label: "通称", value: pd.Alias.Value, marks: pd.Alias.Substitutes})
		}
		var subs []string
		for _, f := range []struct {
			label string
			t     Text
		}{{"氏名", pd.Name}, {"住所", pd.Address}, {"旧氏", pd.FormerSurname}, {"通称", pd.Alias}} {
			runes := []rune(f.t.Value)
			for _, pos := range f.t.Substitutes {
				subs = append(subs, fmt.Sprintf("%sの%d文字目「%s」", f.label, pos+1, string(runes[pos])))
			}
		}
		if len(subs) > 0 {
			rows = append(rows, row{label: "代替文字", value: strings.Join(subs, "\n")})
		}
		s.grid(rows...)
		if len(subs) > 0 {
			s.y += 6
			s.note("注記", "下線を付した文字は代替文字です。住民票に記載されている文字をシステムで表すことができないため、氏名は申請者が選んだ文字で、住所は定められた文字で置き換えて記録しています。")
		}
	}
	s.y += 6
	s.note("注記", "この書面は電子証明書に記録されている事項を表示したものであり、電子証明書そのものではありません。")
	s.note("注記", fmt.Sprintf("作成：%s　取扱者ID：%s", formatInstant(c.Date), c.OperatorID))
	return s.finish()
}

func (c CertificateCopy) validate() error {
	for _, f := range []struct{ name, v string }{
		{"municipality", c.Municipality}, {"operator id", c.OperatorID}, {"subject", c.Subject}, {"issuer", c.Issuer},
	} {
		if strings.TrimSpace(f.v) == "" {
			return apperr.New(apperr.InvalidInput, "printout: certificate copy needs the %s", f.name)
		}
	}
	if c.Date.IsZero() {
		return apperr.New(apperr.InvalidInput, "printout: certificate copy needs the date")
	}
	if err := c.Certificate.check("certificate"); err != nil {
		return err
	}
	switch {
	case c.Kind == UserAuth && c.Personal != nil:
		return apperr.New(apperr.InvalidInput, "printout: a user-authentication certificate carries no personal data (CPS §3.1)")
	case c.Kind == Signature && c.Personal == nil:
		return apperr.New(apperr.InvalidInput, "printout: a signature certificate copy needs the personal data (TS Art. 11)")
	case c.Personal == nil:
		return nil
	}
	pd := c.Personal
	if strings.TrimSpace(pd.Name.Value) == "" || strings.TrimSpace(pd.Address.Value) == "" {
		return apperr.New(apperr.InvalidInput, "printout: a signature certificate copy needs the name and address")
	}
	if !pd.BirthDate.valid() {
		return apperr.New(apperr.InvalidInput, "printout: invalid date of birth")
	}
	if pd.Sex != Male && pd.Sex != Female {
		return apperr.New(apperr.InvalidInput, "printout: unknown sex code %d", pd.Sex)
	}
	for _, f := range []struct {
		name string
		t    Text
	}{{"name", pd.Name}, {"address", pd.Address}, {"former surname", pd.FormerSurname}, {"alias", pd.Alias}} {
		if err := f.t.check(f.name); err != nil {
			return err
		}
	}
	return nil
}
