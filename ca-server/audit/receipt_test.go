package audit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"madoguchi/ca-server/store"
	"madoguchi/jpki/wire"
)

// TestReceiptSignedInHSM signs a terminal audit receipt with an RSA audit checkpoint key in a
// real SoftHSM token: it verifies under the key's certificate, and not once any signed field is
// changed; a checkpoint signature over the same head is no receipt (domain separation), and a
// certificate of another key is refused.
func TestReceiptSignedInHSM(t *testing.T) {
	s := hsmSigner(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "audit checkpoint"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.Public(), s)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	rs, err := NewReceiptSigner(s, cert, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	head := sha256.Sum256([]byte("head"))
	rc, err := rs.Sign("T-1", 42, head[:])
	if err != nil {
		t.Fatal(err)
	}
	if !rc.WitnessedAt.Equal(now) || string(rc.KeyCertificate) != string(der) {
		t.Fatalf("receipt = %+v", rc)
	}
	id, _ := KeyIDOf(s.Public())
	if err := VerifyReceipt(rc, []Key{{ID: id, Public: cert.PublicKey}}); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*wire.AuditReceipt){
		"terminal": func(r *wire.AuditReceipt) { r.TerminalID = "T-2" },
		"seq":      func(r *wire.AuditReceipt) { r.Seq = 41 },
		"hash":     func(r *wire.AuditReceipt) { r.Hash = append([]byte{1}, r.Hash[1:]...) },
		"time":     func(r *wire.AuditReceipt) { r.WitnessedAt = r.WitnessedAt.Add(time.Second) },
	} {
		bad := rc
		edit(&bad)
		if err := wire.VerifyAuditReceipt(cert.PublicKey, bad); !errors.Is(err, wire.ErrBadReceipt) {
			t.Errorf("receipt with another %s: %v", name, err)
		}
	}
	// a checkpoint over the same seq and hash, signed by the same key, is not a receipt
	cp := store.AuditCheckpoint{Seq: 42, At: now, Hash: head[:], KeyID: id}
	sig, err := s.Sign(rand.Reader, checkpointDigest(cp), crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	asReceipt := rc
	asReceipt.Signature = sig
	if err := wire.VerifyAuditReceipt(cert.PublicKey, asReceipt); err == nil {
		t.Fatal("a checkpoint signature verifies as a receipt")
	}
	if VerifyReceipt(rc, nil) == nil {
		t.Fatal("a receipt verifies without a known key")
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := NewReceiptSigner(other, cert, nil); err == nil {
		t.Fatal("receipt signer over another key's certificate")
	}
}
