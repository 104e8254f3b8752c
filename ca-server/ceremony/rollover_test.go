package ceremony

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"madoguchi/ca-server/applicant"
	"madoguchi/ca-server/hsm"
	"madoguchi/ca-server/issuer"
	"madoguchi/ca-server/profile"
)

func openssl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("openssl not installed: %v", err)
	}
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err
}

func writeCertPEM(t *testing.T, dir, name string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pemCert(der), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// issueUser issues a user-authentication certificate with the CA key the
// way the issuance service does: issuer.New over the key's issuance signer.
func issueUser(t *testing.T, k *CAKey, now time.Time) (*x509.Certificate, error) {
	t.Helper()
	signer, err := k.IssuanceSigner(now)
	if err != nil {
		return nil, err
	}
	iss, err := issuer.New(issuer.Config{Certificate: k.Certificate, Signer: signer, KeyUsableUntil: k.IssueUntil(), Now: func() time.Time { return now }})
	if err != nil {
		return nil, err
	}
	set, err := profile.Default()
	if err != nil {
		t.Fatal(err)
	}
	p, err := set.Get("user-authentication")
	if err != nil {
		t.Fatal(err)
	}
	user, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	today := applicant.DateOf(now)
	a := &applicant.Applicant{Name: applicant.Text{Value: "山田　花子"}, NameKana: "ヤマダ　ハナコ", BirthDate: applicant.NewDate(1990, 5, 14),
		Sex: applicant.SexFemale, Address: applicant.Text{Value: "東京都千代田区霞が関二丁目1番2号"}, ResidentCode: "12345678901",
		CardExpiry: applicant.NewDate(today.Year+8, 12, 31)}
	got, err := iss.Issue(context.Background(), issuer.Request{Profile: p, Applicant: a, PublicKey: &user.PublicKey})
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(got.DER)
}

// Rollover of the signature CA key: new key and certificate, link
// certificates that openssl accepts both ways, issuance by the new key
// only, the old key signing CRLs only, each key's own 4-year limit, backup
// and restore of both generations, fingerprints, and retirement.
func TestCeremonyRollover(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)}
	dataDir, sharesDir := t.TempDir(), t.TempDir()
	st, err := Init(ctx, InitOptions{Common: common(t, dataDir, clk), Custodians: outs(t, sharesDir, custodians), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	old, _ := st.Key(RoleSignatureCA)
	token := []PresentedShare{{Path: sharePath(t, sharesDir, PurposeToken, "alice"), Passphrase: alicePass}, {Path: sharePath(t, sharesDir, PurposeToken, "carol"), Passphrase: carolPass}}
	pemDir := t.TempDir()

	// A certificate the old key issued before the rollover.
	a, err := Activate(ctx, ActivateOptions{Common: common(t, dataDir, clk), Shares: token})
	if err != nil {
		t.Fatal(err)
	}
	oldCA, _ := a.IssuingKey(RoleSignatureCA)
	leafOld, err := issueUser(t, oldCA, clk.t)
	a.HSM.Close()
	if err != nil {
		t.Fatal(err)
	}

	if _, err := Rollover(ctx, RolloverOptions{Common: common(t, dataDir, clk), Shares: token[:1], Role: RoleSignatureCA}); !errors.Is(err, ErrNotEnoughShares) {
		t.Fatalf("rollover by one custodian: %v", err)
	}
	if _, err := Rollover(ctx, RolloverOptions{Common: common(t, dataDir, clk), Shares: token, Role: RolePersonHash}); !errors.Is(err, ErrBadInput) {
		t.Fatalf("rollover of a non-ca key: %v", err)
	}
	clk.t = clk.t.AddDate(3, 6, 0) // 2029-10-01: before the old key's 4 years end
	rollAt := clk.t
	var log strings.Builder
	c := common(t, dataDir, clk)
	c.Log = &log
	st, err = Rollover(ctx, RolloverOptions{Common: c, Shares: token, Role: RoleSignatureCA})
	if err != nil {
		t.Fatal(err)
	}

	// The inventory: generation 2 issues, generation 1 signs CRLs only.
	cur, err := st.IssuingKey(RoleSignatureCA)
	if err != nil || cur.Gen() != 2 || !cur.Generated.Equal(rollAt) || cur.Label == old.Label || cur.Fingerprints == nil {
		t.Fatalf("issuing key after rollover: %+v %v", cur, err)
	}
	crlOnly := st.CRLOnlyKeys(RoleSignatureCA)
	oldCert, _ := ReadCertificate(old)
	if len(crlOnly) != 1 || crlOnly[0].Label != old.Label || !crlOnly[0].Superseded.Equal(rollAt) || !crlOnly[0].CRLSigningUntil.Equal(oldCert.NotAfter) {
		t.Fatalf("crl-only keys: %+v", crlOnly)
	}
	if auth, _ := st.IssuingKey(RoleAuthCA); auth.Gen() != 1 {
		t.Fatal("rollover of the signature ca touched the user-authentication ca")
	}
	if len(st.Links) != 2 {
		t.Fatalf("links: %+v", st.Links)
	}
	newCert, _ := ReadCertificate(cur)
	if newCert.Subject.String() != oldCert.Subject.String() || newCert.NotAfter.Sub(newCert.NotBefore) < 10*365*24*time.Hour {
		t.Fatalf("new certificate %v %v..%v", newCert.Subject, newCert.NotBefore, newCert.NotAfter)
	}
	links := map[string]*x509.Certificate{}
	for _, l := range st.Links {
		lc, err := ReadLinkCertificate(l)
		if err != nil || l.OldGeneration != 1 || l.NewGeneration != 2 || !l.Generated.Equal(rollAt) {
			t.Fatalf("link %+v: %v", l, err)
		}
		links[l.Kind] = lc
	}
	if !links[LinkOldWithNew].PublicKey.(*rsa.PublicKey).Equal(oldCert.PublicKey) || links[LinkOldWithNew].CheckSignatureFrom(newCert) != nil {
		t.Fatal("OldWithNew is not the old key signed by the new")
	}
	if !links[LinkNewWithOld].PublicKey.(*rsa.PublicKey).Equal(newCert.PublicKey) || links[LinkNewWithOld].CheckSignatureFrom(oldCert) != nil {
		t.Fatal("NewWithOld is not the new key signed by the old")
	}
	// Fingerprints printed at the ceremony and listed for publication.
	pub, err := PublishedFingerprints(st)
	if err != nil || len(pub) != 5 {
		t.Fatalf("published fingerprints: %d %v", len(pub), err)
	}
	for _, p := range pub {
		out, err := openssl(t, "x509", "-in", p.Path, "-noout", "-fingerprint", "-sha256")
		if err != nil || !strings.Contains(out, "="+Colons(p.SHA256)) {
			t.Fatalf("%s: openssl says %s, we publish %s", p.Path, out, Colons(p.SHA256))
		}
		out, err = openssl(t, "x509", "-in", p.Path, "-noout", "-fingerprint", "-sha1")
		if err != nil || !strings.Contains(out, "="+Colons(p.SHA1)) {
			t.Fatalf("%s: openssl says %s, we publish %s", p.Path, out, Colons(p.SHA1))
		}
		if p.Kind != "ca" || p.Generation == 2 {
			if !strings.Contains(log.String(), Colons(p.SHA256)) || !strings.Contains(log.String(), Colons(p.SHA1)) {
				t.Fatalf("rollover did not print the fingerprints of %s:\n%s", p.Path, log.String())
			}
		}
	}

	// Activation: the new key issues; the old one signs CRLs, never a certificate.
	a, err = Activate(ctx, ActivateOptions{Common: common(t, dataDir, clk), Shares: token})
	if err != nil {
		t.Fatal(err)
	}
	issuing, err := a.IssuingKey(RoleSignatureCA)
	if err != nil || issuing.Record.Gen() != 2 || !a.SignatureCA.PublicKey.Equal(newCert.PublicKey) {
		t.Fatalf("activated issuing key: %v", err)
	}
	if len(a.CRLOnly) != 1 || len(a.CRLOnlyKeys(RoleSignatureCA)) != 1 || len(a.CRLOnlyKeys(RoleAuthCA)) != 0 {
		t.Fatalf("activated crl-only keys: %d", len(a.CRLOnly))
	}
	oldKey := a.CRLOnly[0]
	leafNew, err := issueUser(t, issuing, clk.t)
	if err != nil {
		t.Fatal(err)
	}
	if leafNew.CheckSignatureFrom(newCert) != nil || string(leafNew.AuthorityKeyId) != string(newCert.SubjectKeyId) {
		t.Fatal("issuance after rollover did not use the new key")
	}
	if _, err := oldKey.IssuanceSigner(clk.t); !errors.Is(err, ErrNotIssuingKey) {
		t.Fatalf("old key issuance signer: %v", err)
	}
	if _, err := issueUser(t, oldKey, clk.t); !errors.Is(err, ErrNotIssuingKey) {
		t.Fatalf("issuance with the old key: %v", err)
	}
	crlSigner, err := oldKey.CRLSigner()
	if err != nil {
		t.Fatal(err)
	}
	// Even handed straight to the issuer (or x509), the CRL signer refuses certificates.
	if _, err := issuer.New(issuer.Config{Certificate: oldKey.Certificate, Signer: crlSigner, KeyUsableUntil: oldKey.IssueUntil(), Now: clk.now}); !errors.Is(err, issuer.ErrCAKeyExpired) {
		t.Fatalf("issuer over the old key: %v", err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), NotBefore: clk.t, NotAfter: clk.t.AddDate(1, 0, 0)}
	if _, err := x509.CreateCertificate(rand.Reader, tmpl, oldKey.Certificate, leafNew.PublicKey, crlSigner); !errors.Is(err, ErrNotIssuingKey) {
		t.Fatalf("certificate signed by the crl signer: %v", err)
	}
	crlDER, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: clk.t, NextUpdate: clk.t.Add(72 * time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: leafOld.SerialNumber, RevocationTime: clk.t}}}, oldKey.Certificate, crlSigner)
	if err != nil {
		t.Fatal(err)
	}
	if rl, err := x509.ParseRevocationList(crlDER); err != nil || rl.CheckSignatureFrom(oldCert) != nil {
		t.Fatalf("crl by the old key: %v", err)
	}
	a.HSM.Close()

	// openssl: a relying party trusting only the new CA certificate checks
	// the old key's certificate through OldWithNew, and one trusting only
	// the old checks the new key's through NewWithOld.
	at := fmt.Sprint(clk.t.Unix())
	oldPEM := writeCertPEM(t, pemDir, "old.pem", oldCert.Raw)
	newPEM := writeCertPEM(t, pemDir, "new.pem", newCert.Raw)
	owPEM := writeCertPEM(t, pemDir, "oldwithnew.pem", links[LinkOldWithNew].Raw)
	nwPEM := writeCertPEM(t, pemDir, "newwithold.pem", links[LinkNewWithOld].Raw)
	leafOldPEM := writeCertPEM(t, pemDir, "leaf-old.pem", leafOld.Raw)
	leafNewPEM := writeCertPEM(t, pemDir, "leaf-new.pem", leafNew.Raw)
	for _, v := range []struct {
		name            string
		root, untrusted string
		leaf            string
		ok              bool
	}{
		{"old leaf, new root, via OldWithNew", newPEM, owPEM, leafOldPEM, true},
		{"new leaf, old root, via NewWithOld", oldPEM, nwPEM, leafNewPEM, true},
		{"OldWithNew under the new root", newPEM, "", owPEM, true},
		{"NewWithOld under the old root", oldPEM, "", nwPEM, true},
		{"old leaf, new root, no link", newPEM, "", leafOldPEM, false},
		{"new leaf, old root, no link", oldPEM, "", leafNewPEM, false},
	} {
		args := []string{"verify", "-x509_strict", "-attime", at, "-CAfile", v.root}
		if v.untrusted != "" {
			args = append(args, "-untrusted", v.untrusted)
		}
		out, err := openssl(t, append(args, v.leaf)...)
		if ok := err == nil && strings.TrimSpace(out) == v.leaf+": OK"; ok != v.ok {
			t.Errorf("%s: openssl verify ok=%v, want %v:\n%s", v.name, ok, v.ok, out)
		}
	}

	// Backup and restore carry both generations, statuses and links.
	kekDir := t.TempDir()
	backupPath, err := Backup(ctx, BackupOptions{Common: common(t, dataDir, clk), Shares: token, Custodians: outs(t, kekDir, []Custodian{{Name: "dave", Passphrase: davePass}, {Name: "erin", Passphrase: erinPass}}),
		Threshold: 2, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	newDir, newShares := t.TempDir(), t.TempDir()
	rst, err := Restore(ctx, RestoreOptions{Common: common(t, newDir, clk), BackupFile: backupPath, Custodians: outs(t, newShares, custodians), Threshold: 2,
		KEKShares: []PresentedShare{{Path: sharePath(t, kekDir, PurposeBackupKEK, "dave"), Passphrase: davePass}, {Path: sharePath(t, kekDir, PurposeBackupKEK, "erin"), Passphrase: erinPass}}})
	if err != nil {
		t.Fatal(err)
	}
	rpub, err := PublishedFingerprints(rst)
	if err != nil || len(rpub) != 5 || len(rst.CRLOnlyKeys(RoleSignatureCA)) != 1 {
		t.Fatalf("restored inventory: %d fingerprints, %v", len(rpub), err)
	}
	for i := range pub {
		if rpub[i].Fingerprints != pub[i].Fingerprints {
			t.Fatalf("restored %s differs", rpub[i].Path)
		}
	}
	newToken := []PresentedShare{{Path: sharePath(t, newShares, PurposeToken, "bob"), Passphrase: bobPass}, {Path: sharePath(t, newShares, PurposeToken, "carol"), Passphrase: carolPass}}
	ra, err := Activate(ctx, ActivateOptions{Common: common(t, newDir, clk), Shares: newToken})
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := ra.IssuingKey(RoleSignatureCA); !k.KeyPair.PublicKey.Equal(newCert.PublicKey) || len(ra.CRLOnly) != 1 || !ra.CRLOnly[0].KeyPair.PublicKey.Equal(oldCert.PublicKey) {
		t.Fatal("restored ca has other keys")
	}
	ra.HSM.Close()

	// The user-authentication CA rolls over too (its first key's 4 years
	// end with the signature CA's).
	if _, err := Rollover(ctx, RolloverOptions{Common: common(t, dataDir, clk), Shares: token, Role: RoleAuthCA}); err != nil {
		t.Fatal(err)
	}
	// 4 years per key: the old key's 4 years ending does not stop the CA
	// (it only signs CRLs now); the new key's does.
	clk.t = old.Generated.AddDate(4, 0, 1)
	a, err = Activate(ctx, ActivateOptions{Common: common(t, dataDir, clk), Shares: token})
	if err != nil {
		t.Fatalf("activate after the old key's 4 years: %v", err)
	}
	if len(a.CRLOnly) != 2 {
		t.Fatalf("%d crl-only keys after their 4 years", len(a.CRLOnly))
	}
	a.HSM.Close()
	clk.t = cur.Generated.AddDate(4, 0, 0)
	if _, err := Activate(ctx, ActivateOptions{Common: common(t, dataDir, clk), Shares: token}); !errors.Is(err, ErrCAKeyExpired) {
		t.Fatalf("activate after the new key's 4 years: %v", err)
	}
	if err := cur.CheckIssuing(clk.t.Add(-time.Second)); err != nil {
		t.Fatalf("new key in its last second: %v", err)
	}
	if err := crlOnly[0].CheckIssuing(rollAt); !errors.Is(err, ErrNotIssuingKey) {
		t.Fatalf("old key check issuing: %v", err)
	}

	// Retire: not while its certificates may be valid; then every copy goes.
	clk.t = rollAt.AddDate(1, 0, 0)
	if err := Retire(ctx, RetireOptions{Common: common(t, dataDir, clk), Shares: token, Role: RoleSignatureCA, Generation: 1}); !errors.Is(err, ErrStillSigningCRLs) {
		t.Fatalf("early retire: %v", err)
	}
	if err := Retire(ctx, RetireOptions{Common: common(t, dataDir, clk), Shares: token, Role: RoleSignatureCA, Generation: 2}); !errors.Is(err, ErrBadInput) {
		t.Fatalf("retire the issuing key: %v", err)
	}
	if err := Retire(ctx, RetireOptions{Common: common(t, dataDir, clk), Shares: token, Role: RoleSignatureCA, Generation: 1,
		IssuedValidUntil: clk.t.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	bf, err := readBackupFile(backupPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range bf.Keys {
		if e.Key.Label == old.Label {
			t.Fatal("retired key still in the backup file")
		}
	}
	if len(bf.Keys) != 8 { // of 9: sig g1 and g2, auth g1, person hash, 3 master keys, audit checkpoint, TLS CA
		t.Fatalf("backup keys after retire: %d", len(bf.Keys))
	}
	clk.t = rollAt.AddDate(1, 0, 0)
	a, err = Activate(ctx, ActivateOptions{Common: common(t, dataDir, clk), Shares: token})
	if err != nil {
		t.Fatal(err)
	}
	left, _ := a.HSM.FindKeys(ctx, hsm.KeyQuery{Kind: hsm.KindRSAPrivate, Label: old.Label})
	a.HSM.Close()
	if len(a.CRLOnlyKeys(RoleSignatureCA)) != 0 || len(a.CRLOnlyKeys(RoleAuthCA)) != 1 || len(left) != 0 {
		t.Fatalf("after retire: %d crl-only keys, %d objects", len(a.CRLOnly), len(left))
	}
	st, _ = LoadState(dataDir)
	if k := st.Keys[0]; k.Status != StatusRetired || k.Retired == nil {
		t.Fatalf("retired record: %+v", k)
	}
	if pub, err := PublishedFingerprints(st); err != nil || len(pub) != 8 {
		t.Fatalf("fingerprints after retire: %d %v", len(pub), err)
	}
}

func TestCRLSignerRecognisesWhatItSigns(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: now, NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte{1, 2, 3}}
	caDER, _ := x509.CreateCertificate(rand.Reader, ca, ca, &key.PublicKey, key)
	caCert, _ := x509.ParseCertificate(caDER)
	crlDER, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, caCert, key)
	if err != nil {
		t.Fatal(err)
	}
	rl, _ := x509.ParseRevocationList(crlDER)
	if !isCRLOrOCSP(rl.RawTBSRevocationList) {
		t.Error("TBSCertList not recognised")
	}
	if isCRLOrOCSP(caCert.RawTBSCertificate) {
		t.Error("TBSCertificate taken for a CRL")
	}
	v1 := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: now, NotAfter: now.Add(time.Hour)}
	v1DER, _ := x509.CreateCertificate(rand.Reader, v1, caCert, &key.PublicKey, key)
	v1Cert, _ := x509.ParseCertificate(v1DER)
	if isCRLOrOCSP(v1Cert.RawTBSCertificate) {
		t.Error("end-entity TBSCertificate taken for a CRL")
	}
	// OCSP ResponseData: [0] version absent, [1] responderID byName, producedAt.
	ocsp := []byte{0x30, 0x17, 0xa1, 0x02, 0x30, 0x00, 0x18, 0x0f}
	ocsp = append(ocsp, []byte("20260101000000Z")...)
	ocsp[1] = byte(len(ocsp) - 2)
	if !isCRLOrOCSP(ocsp) {
		t.Error("OCSP ResponseData not recognised")
	}
	for _, junk := range [][]byte{nil, {0x30}, {0x04, 0x00}, append(append([]byte{}, rl.RawTBSRevocationList...), 0)} {
		if isCRLOrOCSP(junk) {
			t.Errorf("%x taken for a CRL", junk)
		}
	}
}
