package ceremony

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"os"
	"testing"
	"time"

	"madoguchi/ca-server/hsm"
	"madoguchi/ca-server/tlsca"
)

// Init generates the audit checkpoint key and the TLS CA key in the token;
// Activate hands them out checked against their certificates; a key that
// no longer matches its certificate stops activation.
func TestServiceKeysInTheHSM(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}
	dataDir, sharesDir := t.TempDir(), t.TempDir()
	st, err := Init(ctx, InitOptions{Common: common(t, dataDir, clk), Custodians: outs(t, sharesDir, custodians), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{RoleAuditCheckpoint, RoleTLSCA} {
		recs := st.ServiceKeyRecords(role)
		if len(recs) != 1 || recs[0].Certificate == "" || !recs[0].BackupWrappable || !recs[0].IsService() {
			t.Fatalf("%s records: %+v", role, recs)
		}
	}
	tlsRec := st.ServiceKeyRecords(RoleTLSCA)[0]
	tlsCert, err := ReadCertificate(tlsRec)
	if err != nil {
		t.Fatal(err)
	}
	if !tlsCert.IsCA || tlsCert.NotAfter.Sub(tlsCert.NotBefore) > tlsca.MaxCAValidity+time.Hour || len(tlsCert.Policies) != 1 || !tlsCert.Policies[0].Equal(tlsca.PolicyTLS) {
		t.Fatalf("tls ca certificate: ca=%v validity=%v policies=%v", tlsCert.IsCA, tlsCert.NotAfter.Sub(tlsCert.NotBefore), tlsCert.Policies)
	}
	auditCert, err := ReadCertificate(st.ServiceKeyRecords(RoleAuditCheckpoint)[0])
	if err != nil || auditCert.IsCA || auditCert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Fatalf("audit certificate: %v ca=%v usage=%v", err, auditCert.IsCA, auditCert.KeyUsage)
	}

	shares := []PresentedShare{{Path: sharePath(t, sharesDir, PurposeToken, "alice"), Passphrase: alicePass}, {Path: sharePath(t, sharesDir, PurposeToken, "carol"), Passphrase: carolPass}}
	a, err := Activate(ctx, ActivateOptions{Common: common(t, dataDir, clk), Shares: shares})
	if err != nil {
		t.Fatal(err)
	}
	if a.AuditCheckpoint == nil || a.TLSCA == nil {
		t.Fatal("activation without service keys")
	}
	s, err := a.AuditCheckpoint.Signer()
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("checkpoint"))
	sig, err := s.Sign(nil, d[:], crypto.SHA256)
	if err != nil || rsa.VerifyPKCS1v15(auditCert.PublicKey.(*rsa.PublicKey), crypto.SHA256, d[:], sig) != nil {
		t.Fatalf("audit key signature does not verify with its certificate: %v", err)
	}
	// The TLS CA key in the HSM drives tlsca.
	ts, err := a.TLSCA.Signer()
	if err != nil {
		t.Fatal(err)
	}
	if !ts.Public().(*rsa.PublicKey).Equal(tlsCert.PublicKey) {
		t.Fatal("tls ca key differs from its certificate")
	}
	// Replace the audit key in the token: activation must refuse.
	if err := a.HSM.Destroy(ctx, a.AuditCheckpoint.KeyPair.Private); err != nil {
		t.Fatal(err)
	}
	if err := a.HSM.Destroy(ctx, a.AuditCheckpoint.KeyPair.Public); err != nil {
		t.Fatal(err)
	}
	if _, err := a.HSM.GenerateRSA(ctx, LabelAuditCheckpoint, hsm.KeyOptions{Token: true}); err != nil {
		t.Fatal(err)
	}
	a.HSM.Close()
	if _, err := Activate(ctx, ActivateOptions{Common: common(t, dataDir, clk), Shares: shares}); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("activation with a swapped audit key: %v", err)
	}
}

// A CA initialised before the service keys existed activates without them,
// and AddAuditKey then gives it an audit checkpoint key, recorded in the
// inventory, which the next activation finds.
func TestAddAuditKeyToOlderCA(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}
	dataDir, sharesDir := t.TempDir(), t.TempDir()
	if _, err := Init(ctx, InitOptions{Common: common(t, dataDir, clk), Custodians: outs(t, sharesDir, custodians), Threshold: 2}); err != nil {
		t.Fatal(err)
	}
	shares := []PresentedShare{{Path: sharePath(t, sharesDir, PurposeToken, "alice"), Passphrase: alicePass}, {Path: sharePath(t, sharesDir, PurposeToken, "carol"), Passphrase: carolPass}}
	// Make it look older: no service keys in token or inventory.
	a, err := Activate(ctx, ActivateOptions{Common: common(t, dataDir, clk), Shares: shares})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*ServiceKey{a.AuditCheckpoint, a.TLSCA} {
		if err := a.HSM.Destroy(ctx, k.KeyPair.Private); err != nil {
			t.Fatal(err)
		}
		if err := a.HSM.Destroy(ctx, k.KeyPair.Public); err != nil {
			t.Fatal(err)
		}
	}
	a.HSM.Close()
	st, _ := LoadState(dataDir)
	var keep []KeyRecord
	for _, k := range st.Keys {
		if !k.IsService() {
			keep = append(keep, k)
		} else if err := os.Remove(k.Certificate); err != nil {
			t.Fatal(err)
		}
	}
	st.Keys = keep
	if err := saveState(dataDir, st); err != nil {
		t.Fatal(err)
	}

	a, err = Activate(ctx, ActivateOptions{Common: common(t, dataDir, clk), Shares: shares})
	if err != nil {
		t.Fatal(err)
	}
	if a.AuditCheckpoint != nil || a.TLSCA != nil {
		t.Fatal("older CA activated with service keys")
	}
	k, err := AddAuditKey(ctx, common(t, dataDir, clk), a)
	if err != nil {
		t.Fatal(err)
	}
	if k2, err := AddAuditKey(ctx, common(t, dataDir, clk), a); err != nil || k2 != k {
		t.Fatalf("second AddAuditKey: %v", err)
	}
	a.HSM.Close()
	st, _ = LoadState(dataDir)
	if len(st.ServiceKeyRecords(RoleAuditCheckpoint)) != 1 || len(st.ServiceKeyRecords(RoleTLSCA)) != 0 {
		t.Fatalf("inventory after AddAuditKey: %+v", st.Keys)
	}
	a, err = Activate(ctx, ActivateOptions{Common: common(t, dataDir, clk), Shares: shares})
	if err != nil {
		t.Fatal(err)
	}
	defer a.HSM.Close()
	if a.AuditCheckpoint == nil || !a.AuditCheckpoint.KeyPair.PublicKey.Equal(k.KeyPair.PublicKey) {
		t.Fatal("added audit key not found at the next activation")
	}
}
