package cli

import (
	"context"
	"crypto/x509"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"madoguchi/app/internal/e2e"
	"madoguchi/ca-server/profile"
	"madoguchi/cardio"
	"madoguchi/jpki"
)

// TestCLISubstitutionAgainstRealCA: `madoguchi cli` issues for 𠮷野 次郎 and 髙橋 一郎 (fixture
// residents whose names are outside the certificate character set, R02 II-2-5(4)) headless,
// through a running ca-server over mTLS, SoftHSM and virtual cards in pcscd: `case substitute`
// lists the 外字, records the applicant's choice (吉, 高), the terminal sends the substituted
// name with its positions, the CA writes them, and the card read back holds 吉野　次郎 with
// name positions "10000" (and 高橋　一郎 / "10000").
//
// Seen failing on the old code: the CLI had no substitution step (`case substitute` was an
// unknown case command), so issuance for these residents could only fail at the 外字 check.
func TestCLISubstitutionAgainstRealCA(t *testing.T) {
	c := startCounter(t)
	const rc = rcStdin
	set, err := profile.Default()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := set.Get("signature")
	if err != nil {
		t.Fatal(err)
	}
	layout, _ := sig.Layout()

	for i, tc := range []struct {
		code, caseID, listed, spec, wantName string
	}{
		{"90000000033", "2", "name:1\t𠮷\tU+20BB7\t吉", "name:1=吉", "吉野\u3000次郎"},
		{"90000000011", "3", "name:1\t髙\tU+9AD9\t高", "name:1=高", "高橋\u3000一郎"},
	} {
		file := filepath.Join(c.dir, tc.code+".json")
		c.must(rc, false, "-user", "rc1", "resident", "export", tc.code, "-o", file)
		c.must(rc, false, "-user", "rc1", "case", "open", "-kind", "new_issuance", "-file", file, "-types", "signature,user_auth")
		c.must(rc, false, "-user", "rc1", "case", "identity", tc.caseID, "-document", "passport")
		r := c.must(rc, false, "-user", "rc1", "case", "substitute", tc.caseID)
		if !strings.Contains(r.out, tc.listed) {
			t.Fatalf("case substitute %s lists:\n%s\nwant a line %q", tc.caseID, r.out, tc.listed)
		}
		// Only a 外字 is substituted: a character in the set cannot be marked '1'.
		if r := run(t, c.cfg, rc, "-user", "rc1", "case", "substitute", tc.caseID, tc.spec, "name:2=埜"); r.code == 0 {
			t.Errorf("substituting an in-set character was accepted: %s", r.out)
		}
		c.must(rc, false, "-user", "rc1", "case", "substitute", tc.caseID, tc.spec)
		c.must(rc, false, "-user", "rc1", "case", "explain", tc.caseID)

		c.ca.PlugInStockCard(t, c.pc, i)
		r = c.must(rc, true, "-pin-fd", pinFD(t, "signature:SAKURA73\nsignature:SAKURA73\nuser-auth:4826\nuser-auth:4826\n"),
			"-user", "rc1", "issue", "-case", tc.caseID, "-reader", c.pc.Readers[i], "-card-expiry", time.Now().AddDate(10, 0, 0).Format("2006-01-02"))
		if n := len(regexp.MustCompile(`delivered (\w+) serial`).FindAllString(r.out, -1)); n != 2 {
			t.Fatalf("issue case %s: %s", tc.caseID, r.out)
		}

		pcard, closeCard := e2e.ConnectCard(t, c.pc.Readers[i])
		card := cardio.New(pcard)
		ctx := context.Background()
		if err := card.VerifyPIN(ctx, cardio.Signature, []byte("SAKURA73")); err != nil {
			t.Fatal(err)
		}
		der, err := card.ReadCertificate(ctx, cardio.FileSignatureCert)
		closeCard()
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		b, err := jpki.ReadBasicInfo(cert, layout)
		if err != nil {
			t.Fatal(err)
		}
		if b.Name != tc.wantName || b.NamePositions != "10000" || b.AddressPositions != strings.Repeat("0", len([]rune(b.Address))) {
			t.Errorf("card holds name %q positions %q / %q; want %q 10000", b.Name, b.NamePositions, b.AddressPositions, tc.wantName)
		}
	}
}
