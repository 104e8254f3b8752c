package printout

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/app/workflow"
	"madoguchi/assets/fonts/printfonts"
	"madoguchi/ca-server/applicant"
	"madoguchi/ca-server/issuer"
	"madoguchi/ca-server/profile"
)

// screenshots, when set, is the directory that receives page 1 of each document as PNG
// (docs/screenshots: go test ./app/printout -args -printout.screenshots=$PWD/docs/screenshots).
var (
	screenshots = flag.String("printout.screenshots", "", "directory for PNG renderings of page 1")
	keepPDFs    = flag.String("printout.pdfs", "", "directory to keep the PDFs the tests make")
)

var (
	printerOnce sync.Once
	printer     *Printer
	printerErr  error
)

func readFonts(tb testing.TB) Fonts {
	tb.Helper()
	return Fonts{Regular: printfonts.Regular(), Bold: printfonts.Bold()}
}

// testPrinter parses the fonts once per test binary (about a second under -race).
func testPrinter(tb testing.TB) *Printer {
	tb.Helper()
	printerOnce.Do(func() { printer, printerErr = New(readFonts(tb)) })
	if printerErr != nil {
		tb.Fatal(printerErr)
	}
	return printer
}

var (
	issuedAt  = time.Date(2026, 1, 15, 5, 3, 5, 0, time.UTC) // 14:03:05 JST
	longAddr  = "北海道札幌市中央区北一条西二丁目１番地　札幌市役所本庁舎東棟十八階　髙橋・𠮷田共同住宅（旧称：北一条西グランドメゾン）第三別館４０２号室"
	holder    = "𠮷田　髙橋"
	serialSig = new(big.Int).SetBytes([]byte{0x0A, 0x1B, 0x2C, 0x3D, 0x4E, 0x5F, 0x60, 0x71})
	serialAut = big.NewInt(0x1234ABCD)
)

func testNotice() IssuanceNotice {
	return IssuanceNotice{
		Municipality: "北海道札幌市長",
		Date:         issuedAt,
		ReceiptNo:    "2026-000123",
		OperatorID:   "op-0042",
		HolderName:   holder,
		Certificates: []Certificate{
			{Kind: Signature, Serial: serialSig, NotBefore: issuedAt, NotAfter: time.Date(2030, 5, 14, 14, 59, 59, 0, time.UTC)},
			{Kind: UserAuth, Serial: serialAut, NotBefore: issuedAt, NotAfter: time.Date(2030, 5, 14, 14, 59, 59, 0, time.UTC)},
		},
		Explanations: []Explanation{LegalEffect, ProtectKey, ReportLoss, FalseApplication},
	}
}

func testCopy() CertificateCopy {
	return CertificateCopy{
		Municipality:       "北海道札幌市長",
		Date:               issuedAt,
		OperatorID:         "op-0042",
		Certificate:        Certificate{Kind: Signature, Serial: serialSig, NotBefore: issuedAt, NotAfter: time.Date(2030, 5, 14, 14, 59, 59, 0, time.UTC)},
		Subject:            "C=JP, O=JPKI, OU=Madoguchi Test, CN=0A1B2C3D4E5F6071",
		Issuer:             "C=JP, O=JPKI, OU=Madoguchi Test CA",
		PublicKey:          "RSA 2048ビット",
		SignatureAlgorithm: "SHA256-RSA",
		KeyUsage:           x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		Policies:           []string{"1.2.392.200149.8.5.1.1.10"},
		FingerprintSHA256:  [32]byte{0xDE, 0xAD, 0xBE, 0xEF, 31: 0x01},
		Personal: &Personal{
			Name:          Text{Value: holder, Substitutes: []int{4}},
			BirthDate:     Date{1985, time.April, 1},
			Sex:           Female,
			Address:       Text{Value: longAddr, Substitutes: []int{3}},
			FormerSurname: Text{Value: "髙野"},
		},
	}
}

func testRevocation() RevocationNotice {
	return RevocationNotice{
		Municipality: "北海道札幌市長",
		Date:         issuedAt.Add(2 * time.Hour),
		ReceiptNo:    "2026-000124",
		OperatorID:   "op-0042",
		HolderName:   holder,
		ReceivedAt:   issuedAt,
		Revoked: []Revoked{
			{Kind: Signature, Serial: serialSig, Reason: KeyCompromise, RevokedAt: issuedAt.Add(10 * time.Minute)},
			{Kind: UserAuth, Serial: serialAut, Reason: KeyCompromise, RevokedAt: issuedAt.Add(10 * time.Minute)},
		},
	}
}

// poppler runs a poppler-utils command and fails the test on any diagnostic: poppler reports a
// damaged cross-reference table or font as "Syntax Error" on stderr and repairs silently.
func poppler(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v: %s (install poppler-utils)", name, err, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Fatalf("%s complained: %s", name, stderr.String())
	}
	return stdout.String()
}

// checkPDF writes pdf, checks that poppler reads it cleanly, that every font is embedded, and
// returns the text of all pages extracted with -layout.
func checkPDF(t *testing.T, name string, pdf []byte) (layout string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, name+".pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	if *keepPDFs != "" {
		if err := os.WriteFile(filepath.Join(*keepPDFs, name+".pdf"), pdf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	info := poppler(t, "pdfinfo", path)
	if !strings.Contains(info, "Page size:       595 x 842 pts (A4)") {
		t.Errorf("not A4:\n%s", info)
	}
	fonts := poppler(t, "pdffonts", path)
	for _, l := range strings.Split(fonts, "\n")[2:] {
		if l != "" && !strings.Contains(l, "CID TrueType      Identity-H       yes") {
			t.Errorf("font not embedded as CID TrueType: %s", l)
		}
	}
	layout = poppler(t, "pdftotext", "-layout", path, "-")
	poppler(t, "pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", path, filepath.Join(dir, name))
	png, err := os.ReadFile(filepath.Join(dir, name+".png"))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("no PNG rendering: %v", err)
	}
	if *screenshots != "" {
		if err := os.WriteFile(filepath.Join(*screenshots, "print-"+name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return layout
}

// squeeze drops all white space, so wrapped lines compare as one string.
func squeeze(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "　", " ")), "")
}

func wantText(t *testing.T, got string, want ...string) {
	t.Helper()
	sq := squeeze(got) // callers pass -layout text: a value's wrapped lines stay together
	for _, w := range want {
		if !strings.Contains(sq, squeeze(w)) {
			t.Errorf("extracted text lacks %q", w)
		}
	}
}

func TestNoticeExtractsAndRenders(t *testing.T) {
	pdf, err := testPrinter(t).Notice(testNotice())
	if err != nil {
		t.Fatal(err)
	}
	layout := checkPDF(t, "notice", pdf)
	// The non-BMP 𠮷 must extract as itself, not as U+20BB "₻" (gopdf's ToUnicode bug).
	if !strings.Contains(squeeze(layout), "𠮷田髙橋様") || strings.Contains(layout, "₻") {
		t.Errorf("holder name does not extract as 𠮷田　髙橋:\n%s", layout)
	}
	wantText(t, layout,
		"電子証明書交付通知書", "北海道札幌市長", "受付番号", "2026-000123", "取扱者ID", "op-0042",
		"署名用電子証明書", "利用者証明用電子証明書",
		"0A:1B:2C:3D:4E:5F:60:71（10進数 "+serialSig.String()+"）", "12:34:AB:CD",
		"令和8年1月15日（2026-01-15）14:03:05 JST", "令和12年5月14日（2030-05-14）23:59:59 JST",
		"手書きの署名や押印と同様の法的効果", "暗証番号は他人に知られないよう", "速やかに住所地の市区町村の窓口に届け出て",
		"第73条により罰せられます", "1 / 2 ページ", "2 / 2 ページ")
}

func TestCertificateCopyExtractsAndRenders(t *testing.T) {
	pdf, err := testPrinter(t).CertificateCopy(testCopy())
	if err != nil {
		t.Fatal(err)
	}
	layout := checkPDF(t, "copy", pdf)
	if !strings.Contains(layout, "𠮷田") || !strings.Contains(layout, "髙橋") || strings.Contains(layout, "₻") {
		t.Errorf("name does not extract:\n%s", layout)
	}
	wantText(t, layout,
		"電子証明書の写し", "主体者", "C=JP, O=JPKI, OU=Madoguchi Test, CN=0A1B2C3D4E5F6071",
		"発行者", "シリアル番号", "0A:1B:2C:3D:4E:5F:60:71", "有効期間の満了", "2030-05-14",
		"デジタル署名（digitalSignature）、否認防止（nonRepudiation）", "1.2.392.200149.8.5.1.1.10",
		"SHA-256: DE:AD:BE:EF:00", "氏名", holder, "昭和60年4月1日（1985-04-01）", "性別", "女",
		"住所", longAddr, "旧氏", "髙野",
		"氏名の5文字目「橋」", "住所の4文字目「札」", "下線を付した文字は代替文字です")
}

func TestRevocationNoticeExtractsAndRenders(t *testing.T) {
	pdf, err := testPrinter(t).RevocationNotice(testRevocation())
	if err != nil {
		t.Fatal(err)
	}
	layout := checkPDF(t, "revocation", pdf)
	if !strings.Contains(squeeze(layout), "𠮷田髙橋様") || strings.Contains(layout, "₻") {
		t.Errorf("holder name does not extract:\n%s", layout)
	}
	wantText(t, layout,
		"電子証明書失効受付・失効完了通知書", "受付日時", "令和8年1月15日（2026-01-15）14:03:05 JST",
		"失効理由", "利用者の秘密鍵が危殆化した（1: keyCompromise）",
		"失効日時", "令和8年1月15日（2026-01-15）14:13:05 JST", "再び有効にすることはできません")
}

// TestLongRowFlowsOverPages checks page breaks inside a grid row taller than a page, and the
// page numbers.
func TestLongRowFlowsOverPages(t *testing.T) {
	c := testCopy()
	addr := []rune(strings.Repeat(longAddr, 30))
	c.Personal.Address = Text{Value: string(addr), Substitutes: []int{3, len(addr) - 1}}
	pdf, err := testPrinter(t).CertificateCopy(c)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "long.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	var pages int
	for _, l := range strings.Split(poppler(t, "pdfinfo", path), "\n") {
		if v, ok := strings.CutPrefix(l, "Pages:"); ok {
			pages, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	// About 2,300 characters at 32 a line and 44 lines a page: the address alone needs 2 pages.
	if pages < 3 {
		t.Fatalf("%d pages, want at least 3", pages)
	}
	text := poppler(t, "pdftotext", "-layout", path, "-")
	for i := 1; i <= pages; i++ {
		wantText(t, text, fmt.Sprintf("%d / %d ページ", i, pages))
	}
	wantText(t, text, "（続き）", "住所の4文字目「札」", fmt.Sprintf("住所の%d文字目「室」", len(addr)))
	// Every address line arrives in order: drop the page furniture and compare.
	sq := squeeze(text)
	for i := 1; i <= pages; i++ {
		sq = strings.ReplaceAll(sq, fmt.Sprintf("電子証明書の写し%d/%dページ", i, pages), "")
	}
	sq = strings.ReplaceAll(sq, "（続き）", "")
	if !strings.Contains(sq, "住所"+squeeze(string(addr))+"旧氏") {
		t.Errorf("the long address does not extract in order:\n%s", text)
	}
}

func TestWrapKeepsLineBreakingRules(t *testing.T) {
	s := testPrinter(t).newSheet("t", issuedAt)
	width := s.textWidth(fontRegular, []rune("あいうえお"), bodySize) + 0.01 // 5 characters fit
	for text, want := range map[string][]string{
		"あいうえおかきくけこさ":    {"あいうえお", "かきくけこ", "さ"},
		"あいうえお、かき":       {"あいうえ", "お、かき"},       // no line starts with 、
		"あいうえ「おかきくけ":     {"あいうえ", "「おかきく", "け"}, // no line ends with 「
		"あい\nうえ":         {"あい", "うえ"},
		"AB:CD:EF:12:34": {"AB:CD:EF:", "12:34"}, // hex breaks after a colon
	} {
		runes := []rune(text)
		var got []string
		for _, l := range s.wrap(fontRegular, runes, width, bodySize) {
			got = append(got, string(runes[l[0]:l[1]]))
		}
		if s.err != nil {
			t.Fatal(s.err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("wrap(%q) = %q, want %q", text, got, want)
		}
	}
}

func TestMissingGlyphIsRefused(t *testing.T) {
	n := testNotice()
	n.HolderName = "田中\U000F0001"
	_, err := testPrinter(t).Notice(n)
	var mg *MissingGlyphError
	if !errors.As(err, &mg) || mg.Rune != '\U000F0001' || apperr.KindOf(err) != apperr.InvalidInput {
		t.Fatalf("err = %v, want MissingGlyphError for U+F0001 of kind InvalidInput", err)
	}
}

func TestNewRefusesBadFonts(t *testing.T) {
	otf, err := os.ReadFile("../../assets/fonts/NotoSansCJKjp-Regular.otf")
	if err != nil {
		t.Fatal(err)
	}
	good := readFonts(t)
	for name, f := range map[string]Fonts{
		"cff":     {Regular: otf, Bold: good.Bold},
		"missing": {Regular: good.Regular},
		"garbage": {Regular: good.Regular, Bold: []byte("not a font at all")},
	} {
		if _, err := New(f); !errors.Is(err, apperr.InvalidInput) {
			t.Errorf("%s: err = %v, want kind InvalidInput", name, err)
		}
	}
}

func TestInvalidInputIsRefused(t *testing.T) {
	p := testPrinter(t)
	cases := map[string]func() error{
		"notice without operator": func() error { n := testNotice(); n.OperatorID = ""; _, err := p.Notice(n); return err },
		"notice without certificates": func() error {
			n := testNotice()
			n.Certificates = nil
			_, err := p.Notice(n)
			return err
		},
		"signature without legal-effect explanation": func() error {
			n := testNotice()
			n.Explanations = []Explanation{ProtectKey, ReportLoss, FalseApplication}
			_, err := p.Notice(n)
			return err
		},
		"explanation twice": func() error {
			n := testNotice()
			n.Explanations = append(n.Explanations, ProtectKey)
			_, err := p.Notice(n)
			return err
		},
		"zero serial": func() error {
			n := testNotice()
			n.Certificates[0].Serial = big.NewInt(0)
			_, err := p.Notice(n)
			return err
		},
		"validity ends before it begins": func() error {
			n := testNotice()
			n.Certificates[0].NotAfter = n.Certificates[0].NotBefore
			_, err := p.Notice(n)
			return err
		},
		"user-auth copy with personal data": func() error {
			c := testCopy()
			c.Kind = UserAuth
			_, err := p.CertificateCopy(c)
			return err
		},
		"signature copy without personal data": func() error {
			c := testCopy()
			c.Personal = nil
			_, err := p.CertificateCopy(c)
			return err
		},
		"substitute out of range": func() error {
			c := testCopy()
			c.Personal.Name.Substitutes = []int{5}
			_, err := p.CertificateCopy(c)
			return err
		},
		"substitutes not ascending": func() error {
			c := testCopy()
			c.Personal.Address.Substitutes = []int{4, 3}
			_, err := p.CertificateCopy(c)
			return err
		},
		"29 February in a common year": func() error {
			c := testCopy()
			c.Personal.BirthDate = Date{1985, time.February, 29}
			_, err := p.CertificateCopy(c)
			return err
		},
		"unknown sex": func() error { c := testCopy(); c.Personal.Sex = 9; _, err := p.CertificateCopy(c); return err },
		"unknown reason": func() error {
			r := testRevocation()
			r.Revoked[0].Reason = 7
			_, err := p.RevocationNotice(r)
			return err
		},
		"revoked before received": func() error {
			r := testRevocation()
			r.Revoked[1].RevokedAt = r.ReceivedAt.Add(-time.Second)
			_, err := p.RevocationNotice(r)
			return err
		},
	}
	for name, run := range cases {
		if err := run(); !errors.Is(err, apperr.InvalidInput) {
			t.Errorf("%s: err = %v, want kind InvalidInput", name, err)
		}
	}
}

// TestNoSecretFields guards the rule that the documents can never carry a PIN or key
// (CPS §6.4.1.2; TS Art. 5(iv)): no input struct has a field for one.
func TestNoSecretFields(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(ty reflect.Type) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] || ty.PkgPath() != reflect.TypeFor[Fonts]().PkgPath() {
			return
		}
		seen[ty] = true
		for i := range ty.NumField() {
			f := ty.Field(i)
			name := strings.ToLower(f.Name)
			if strings.Contains(name, "pin") || strings.Contains(name, "password") || strings.Contains(name, "private") || name == "key" {
				t.Errorf("%s.%s looks like a secret", ty.Name(), f.Name)
			}
			walk(f.Type)
		}
	}
	for _, v := range []any{IssuanceNotice{}, CertificateCopy{}, RevocationNotice{}} {
		walk(reflect.TypeOf(v))
	}
}

func TestWareki(t *testing.T) {
	for d, want := range map[Date]string{
		{2026, time.January, 15}:  "令和8年1月15日（2026-01-15）",
		{2019, time.May, 1}:       "令和元年5月1日（2019-05-01）",
		{2019, time.April, 30}:    "平成31年4月30日（2019-04-30）",
		{1989, time.January, 8}:   "平成元年1月8日（1989-01-08）",
		{1989, time.January, 7}:   "昭和64年1月7日（1989-01-07）",
		{1926, time.December, 25}: "昭和元年12月25日（1926-12-25）",
		{1926, time.December, 24}: "大正15年12月24日（1926-12-24）",
		{1912, time.July, 30}:     "大正元年7月30日（1912-07-30）",
		{1912, time.July, 29}:     "明治45年7月29日（1912-07-29）",
		{1873, time.January, 1}:   "明治6年1月1日（1873-01-01）",
		{1872, time.December, 31}: "1872-12-31",
		{2000, time.February, 29}: "平成12年2月29日（2000-02-29）",
	} {
		if got := d.format(); got != want {
			t.Errorf("%v: got %s, want %s", d, got, want)
		}
	}
	// An instant is printed in JST: 2026-01-14T15:00Z is already the 15th in Japan.
	if got := formatInstant(time.Date(2026, 1, 14, 15, 0, 0, 0, time.UTC)); got != "令和8年1月15日（2026-01-15） 00:00:00 JST" {
		t.Errorf("formatInstant = %s", got)
	}
}

// TestReasonsMatchRules keeps the printed reasons worded as the revocation rules data.
func TestReasonsMatchRules(t *testing.T) {
	raw, err := os.ReadFile("../../ca-server/revocation/rules.json")
	if err != nil {
		t.Fatal(err)
	}
	var loose struct {
		Reasons []map[string]any `json:"reasons"`
	}
	if err := json.Unmarshal(raw, &loose); err != nil {
		t.Fatal(err)
	}
	if len(loose.Reasons) != len(reasonText) {
		t.Errorf("rules.json has %d reasons, printout %d", len(loose.Reasons), len(reasonText))
	}
	for _, r := range loose.Reasons {
		code := Reason(r["code"].(float64))
		if got := reasonText[code]; got[0] != r["name"] || got[1] != r["ja"] {
			t.Errorf("reason %d: printout %q, rules.json %q %q", code, got, r["name"], r["ja"])
		}
	}
}

func TestConcurrentRendering(t *testing.T) {
	p := testPrinter(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 2 {
		wg.Go(func() { _, err := p.Notice(testNotice()); errs <- err })
		wg.Go(func() { _, err := p.CertificateCopy(testCopy()); errs <- err })
		wg.Go(func() { _, err := p.RevocationNotice(testRevocation()); errs <- err })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestCopyOfIssuedCertificate issues a real signature certificate with ca-server/issuer and the
// embedded profile, and prints its copy: the personal attributes are read from the
// subjectAltName with madoguchi/jpki.
func TestCopyOfIssuedCertificate(t *testing.T) {
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	userKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := issuedAt
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Country: []string{"JP"}, Organization: []string{"JPKI"}, OrganizationalUnit: []string{"Madoguchi Test CA"}},
		NotBefore: now.AddDate(0, -1, 0), NotAfter: now.AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := issuer.New(issuer.Config{Certificate: caCert, Signer: caKey, KeyUsableUntil: caCert.NotBefore.AddDate(4, 0, 0), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	set, err := profile.Default()
	if err != nil {
		t.Fatal(err)
	}
	prof, err := set.Get("signature")
	if err != nil {
		t.Fatal(err)
	}
	issued, err := iss.Issue(context.Background(), issuer.Request{Profile: prof, PublicKey: &userKey.PublicKey, Applicant: &applicant.Applicant{
		Name:          applicant.Text{Value: holder, Substitutes: []int{4}},
		BirthDate:     applicant.NewDate(1985, 4, 1),
		Sex:           applicant.SexFemale,
		Address:       applicant.Text{Value: longAddr},
		FormerSurname: applicant.Text{Value: "髙野"},
		ResidentCode:  "12345678901",
		CardExpiry:    applicant.NewDate(2035, 4, 1),
	}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(issued.DER)
	if err != nil {
		t.Fatal(err)
	}
	c, err := CopyOf(cert, Signature)
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != Signature || c.Personal == nil || c.Personal.Name.Value != holder || c.Personal.Sex != Female ||
		c.Personal.BirthDate != (Date{1985, time.April, 1}) || c.PublicKey != "RSA 2048ビット" {
		t.Fatalf("CopyOf = %+v", c)
	}
	c.Municipality, c.Date, c.OperatorID = "北海道札幌市長", now, "op-0042"
	pdf, err := testPrinter(t).CertificateCopy(c)
	if err != nil {
		t.Fatal(err)
	}
	layout := checkPDF(t, "copy-issued", pdf)
	wantText(t, layout, holder, longAddr, "髙野", "氏名の5文字目「橋」", formatSerial(cert.SerialNumber), cert.Subject.String())
	for _, oid := range cert.PolicyIdentifiers {
		wantText(t, layout, oid.String())
	}

	// The notice's summary and the workflow's explanations convert too.
	sum, err := SummaryOf(cert, Signature)
	if err != nil || sum.Serial.Cmp(cert.SerialNumber) != 0 {
		t.Fatalf("SummaryOf = %+v, %v", sum, err)
	}
	items, err := ExplanationsOf(workflow.RequiredItems([]workflow.CertType{workflow.SignatureCert}))
	if err != nil {
		t.Fatal(err)
	}
	kind, err := KindOf(workflow.SignatureCert)
	if err != nil || kind != Signature {
		t.Fatalf("KindOf = %v, %v", kind, err)
	}
	n := testNotice()
	n.Certificates, n.Explanations = []Certificate{sum}, items
	if _, err := testPrinter(t).Notice(n); err != nil {
		t.Fatal(err)
	}
	if _, err := ExplanationsOf([]workflow.Item{"nonsense"}); !errors.Is(err, apperr.InvalidInput) {
		t.Errorf("unknown item: err = %v", err)
	}
}

// BenchmarkNotice measures one issuance notice with the fonts already parsed, against the
// one-time cost of parsing the fonts (New) in the same run. It reports the PDF size: gopdf
// embeds a subset holding only the glyphs used.
func BenchmarkNotice(b *testing.B) {
	fonts := readFonts(b)
	b.Run("New", func(b *testing.B) {
		for b.Loop() {
			if _, err := New(fonts); err != nil {
				b.Fatal(err)
			}
		}
	})
	p, err := New(fonts)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Notice", func(b *testing.B) {
		var size int
		for b.Loop() {
			pdf, err := p.Notice(testNotice())
			if err != nil {
				b.Fatal(err)
			}
			size = len(pdf)
		}
		b.ReportMetric(float64(size), "pdf-bytes")
		b.ReportMetric(float64(len(fonts.Regular)+len(fonts.Bold)), "font-bytes")
	})
}

// TestToUnicodeIsUTF16 checks the repaired character map directly: 𠮷 U+20BB7 maps as the
// UTF-16 surrogate pair D842 DFB7, and the code space covers all two-byte codes.
func TestToUnicodeIsUTF16(t *testing.T) {
	pdf, err := testPrinter(t).Notice(testNotice())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(pdf, []byte("><D842DFB7>\n")) || bytes.Contains(pdf, []byte("><20BB7>")) {
		t.Error("ToUnicode does not map 𠮷 as a UTF-16 surrogate pair")
	}
	if bytes.Count(pdf, []byte("begincodespacerange\n<0000><FFFF>\n")) != 2 {
		t.Error("want both fonts' code space <0000><FFFF>")
	}
	for _, bad := range [][]byte{nil, []byte("%PDF-1.7\n"), pdf[:len(pdf)/2], bytes.Replace(pdf, []byte("xref\n0 "), []byte("xref\n1 "), 1)} {
		if _, err := fixToUnicode(bad); err == nil {
			t.Errorf("fixToUnicode accepted %d bytes of unexpected input", len(bad))
		}
	}
}

// TestTestPageExtracts: the printer test page names the queue and terminal and shows every
// character class of the counter's documents in the embedded fonts.
func TestTestPageExtracts(t *testing.T) {
	p := testPrinter(t)
	at := time.Date(2026, 12, 4, 9, 30, 0, 0, time.FixedZone("JST", 9*3600))
	pdf, err := p.TestPage(TestPage{Queue: "counter-1", Terminal: "T-0001", Date: at})
	if err != nil {
		t.Fatal(err)
	}
	text := checkPDF(t, "test-page", pdf)
	wantText(t, text, "印刷テスト", "counter-1", "T-0001", "電子証明書交付通知書", "カキクケコ", "0123456789")
	if _, err := p.TestPage(TestPage{Terminal: "T-0001", Date: at}); apperr.KindOf(err) != apperr.InvalidInput {
		t.Errorf("a test page without a queue: %v", err)
	}
}
