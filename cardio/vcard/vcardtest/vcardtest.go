// Package vcardtest builds virtual JPKI cards for tests and plugs them into the real pcscd
// (started by internal/testenv) through vpcd: personalised cards with keys, certificates and
// PINs made at test time, and the wait for pcscd to see a card.
//
// Concurrency: every function may be called from parallel tests; the RSA keys are generated
// once per test binary and shared read-only.
package vcardtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"madoguchi/cardio/pcsc"
	"madoguchi/cardio/scp"
	"madoguchi/cardio/vcard"
)

// Issuer holds issuer master keys drawn at test time (never committed), shared by the test binary.
var Issuer = func() *scp.SoftwareIssuer {
	m := make([]byte, 48)
	if _, err := rand.Read(m); err != nil {
		panic(err)
	}
	return &scp.SoftwareIssuer{MasterENC: m[:16], MasterMAC: m[16:32], MasterDEK: m[32:]}
}()

var rsaKeys struct {
	once       sync.Once
	auth, sign *rsa.PrivateKey
}

// Keys returns the user-auth and signature RSA-2048 keys of this test binary.
func Keys() (auth, sign *rsa.PrivateKey) {
	rsaKeys.once.Do(func() {
		var err error
		if rsaKeys.auth, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaKeys.sign, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaKeys.auth, rsaKeys.sign
}

// Certificate returns a self-signed DER certificate for key.
func Certificate(t testing.TB, key *rsa.PrivateKey, cn string) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// Serial returns the 16-byte serial made of b repeated.
func Serial(b byte) []byte { return bytes.Repeat([]byte{b}, vcard.SerialLen) }

// Blank returns a blank card (card stock) with serial Serial(b) and keys from Issuer.
func Blank(t testing.TB, statePath string, b byte) *vcard.Card {
	t.Helper()
	keys, err := Issuer.CardKeys(Serial(b))
	if err != nil {
		t.Fatal(err)
	}
	c, err := vcard.New(vcard.Config{Serial: Serial(b), Keys: keys, StatePath: statePath})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Loaded is a personalised card and what was put on it.
type Loaded struct {
	Card                       *vcard.Card
	AuthCert, SignCert, CACert []byte
	AuthKey, SignKey           *rsa.PrivateKey
	AuthPIN, SignPIN           string
}

// Personalised returns a card with both keys and certificates and both PINs set (4321,
// JPKI2024), in statePath ("" = memory only). b makes distinct cards distinguishable.
func Personalised(t testing.TB, statePath string, b byte) *Loaded {
	t.Helper()
	authKey, signKey := Keys()
	l := &Loaded{AuthKey: authKey, SignKey: signKey, AuthPIN: "4321", SignPIN: "JPKI2024"}
	c := Blank(t, statePath, b)
	l.Card = c
	l.AuthCert = Certificate(t, authKey, fmt.Sprintf("user-auth %02X", b))
	l.SignCert = Certificate(t, signKey, fmt.Sprintf("signature %02X", b))
	l.CACert = Certificate(t, signKey, "test CA")
	for _, err := range []error{
		c.InstallCertificate(vcard.EFUserAuthCert, l.AuthCert),
		c.InstallCertificate(vcard.EFSignatureCert, l.SignCert),
		c.InstallCertificate(vcard.EFUserAuthCACert, l.CACert),
		c.InstallCertificate(vcard.EFSignatureCACert, l.CACert),
		c.InstallPrivateKey(vcard.EFUserAuthKey, authKey),
		c.InstallPrivateKey(vcard.EFSignatureKey, signKey),
		c.SetPIN(vcard.EFUserAuthPIN, []byte(l.AuthPIN)),
		c.SetPIN(vcard.EFSignaturePIN, []byte(l.SignPIN)),
		c.SetLifecycle(vcard.LifecyclePersonalised),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// PlugIn runs a Link for card to the vpcd port until the test ends (or until the returned
// stop function is called) and waits until pcscd sees the card in reader.
func PlugIn(t testing.TB, card *vcard.Card, port int, reader string) (link *vcard.Link, stop func()) {
	t.Helper()
	link = &vcard.Link{Card: card, Addr: fmt.Sprintf("127.0.0.1:%d", port), Faults: vcard.NewFaults()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- link.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	WaitPresent(t, reader, true)
	return link, stop
}

// WaitPresent waits until pcscd reports a card in reader (present) or none (!present).
func WaitPresent(t testing.TB, reader string, present bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var err error
	if present {
		err = pcsc.WaitForCard(ctx, reader)
	} else {
		err = pcsc.WaitForRemoval(ctx, reader)
	}
	if err != nil {
		t.Fatalf("waiting for card present=%v in %q: %v", present, reader, err)
	}
}

// Connect opens a PC/SC connection to the card in reader (exclusive, T=1), closed at cleanup.
func Connect(t testing.TB, reader string) *pcsc.Card {
	t.Helper()
	cl, err := pcsc.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	card, err := cl.Connect(reader, pcsc.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { card.Close(false) })
	return card
}
