// Package issuancetest provides in-process stand-ins for the HSM, the card
// channel and the certificate issuer, for unit tests of ca-server/issuance
// and ca-server/api only. Production wiring uses ca-server/hsm,
// ca-server/cardkeys and ca-server/issuer.
//
// The fakes are safe for concurrent use.
package issuancetest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"sync"
	"time"

	"madoguchi/ca-server/issuance"
	"madoguchi/ca-server/store"
)

// Keys generates ECDSA P-256 keys (fast) and records destruction.
type Keys struct {
	mu        sync.Mutex
	Live      int // generated and not destroyed
	Generated int
	// Repeat, when set, makes the next key a copy of the previous one, to
	// test TS Art. 5(iii).
	Repeat bool
	last   *ecdsa.PrivateKey
}

var _ issuance.KeyGenerator = (*Keys)(nil)

type key struct {
	k     *ecdsa.PrivateKey
	owner *Keys
	once  sync.Once
}

func (k *key) Public() crypto.PublicKey { return k.k.Public() }
func (k *key) Destroy(context.Context) error {
	k.once.Do(func() {
		k.owner.mu.Lock()
		k.owner.Live--
		k.owner.mu.Unlock()
	})
	return nil
}

// GenerateUserKey implements issuance.KeyGenerator.
func (g *Keys) GenerateUserKey(context.Context) (issuance.UserKey, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := g.last
	if !g.Repeat || k == nil {
		var err error
		if k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, err
		}
	}
	g.last = k
	g.Live++
	g.Generated++
	return &key{k: k, owner: g}, nil
}

// LiveKeys returns how many generated keys were not destroyed.
func (g *Keys) LiveKeys() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.Live
}

// CardKey is the fake cards' shared key.
var CardKey = []byte("madoguchi-fake-card-key-0123456789")

// CardCryptogram is what a genuine fake card answers to INITIALIZE UPDATE.
func CardCryptogram(cardSerial string, hostChallenge []byte) []byte {
	m := hmac.New(sha256.New, CardKey)
	m.Write([]byte(cardSerial))
	m.Write(hostChallenge)
	return m.Sum(nil)
}

// CardResponse is what a genuine fake card answers to one script command.
func CardResponse(state, command []byte) []byte {
	m := hmac.New(sha256.New, CardKey)
	m.Write(state)
	m.Write(command)
	return m.Sum(nil)
}

// Cards is a fake card channel using an HMAC in place of SCP03.
type Cards struct{}

var _ issuance.CardChannel = Cards{}

type session struct {
	State_ []byte
}

func (s *session) State() []byte { return s.State_ }

// BuildScript returns three commands: key (a placeholder standing for the
// wrapped key; never the key), certificate, CA certificate.
func (s *session) BuildScript(_ context.Context, _ issuance.UserKey, cert, caCert []byte) ([][]byte, error) {
	return [][]byte{[]byte("PUT-WRAPPED-KEY"), append([]byte("PUT-CERT:"), cert...), append([]byte("PUT-CA:"), caCert...)}, nil
}

// Authenticate implements issuance.CardChannel.
func (Cards) Authenticate(_ context.Context, a issuance.CardAuth) (issuance.CardSession, error) {
	if !hmac.Equal(a.InitUpdateResponse, CardCryptogram(a.CardSerial, a.HostChallenge)) {
		return nil, errors.New("fake card: cryptogram mismatch")
	}
	st, _ := json.Marshal(struct {
		Serial string
		Host   []byte
	}{a.CardSerial, a.HostChallenge})
	return &session{State_: st}, nil
}

// VerifyConfirmation expects CardResponse(state, "DONE") as the last response.
func (Cards) VerifyConfirmation(_ context.Context, state []byte, responses [][]byte) error {
	if len(responses) == 0 || !bytes.Equal(responses[len(responses)-1], CardResponse(state, []byte("DONE"))) {
		return errors.New("fake card: confirmation mismatch")
	}
	return nil
}

// Issuer signs real X.509 certificates with an in-memory CA key.
type Issuer struct {
	mu     sync.Mutex
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	Signed int
	Fail   bool
	last   issuance.IssueRequest
}

// LastRequest returns the last request Issue was given.
func (i *Issuer) LastRequest() issuance.IssueRequest {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.last
}

var _ issuance.Issuer = (*Issuer)(nil)

// NewIssuer makes a fake issuing CA.
func NewIssuer() (*Issuer, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake JPKI CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(der)
	return &Issuer{ca: ca, caKey: k}, nil
}

// Issue implements issuance.Issuer.
func (i *Issuer) Issue(_ context.Context, r issuance.IssueRequest) ([]byte, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.Fail {
		return nil, errors.New("fake issuer: failing on purpose")
	}
	i.last = r
	tmpl := &x509.Certificate{SerialNumber: r.Serial, Subject: pkix.Name{CommonName: "JPKI " + string(r.CertType)},
		NotBefore: r.Now, NotAfter: r.Applicant.CardExpiry, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, i.ca, r.PublicKey, i.caKey)
	if err == nil {
		i.Signed++
	}
	return der, err
}

// SetFail makes Issue fail (true) or work (false).
func (i *Issuer) SetFail(fail bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.Fail = fail
}

// SignedCount returns how many certificates were signed.
func (i *Issuer) SignedCount() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.Signed
}

// CACertificate implements issuance.Issuer.
func (i *Issuer) CACertificate(store.CertType) []byte { return i.ca.Raw }
