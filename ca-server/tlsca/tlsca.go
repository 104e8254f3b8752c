// Package tlsca is the ca-server's internal TLS CA (certificate policy
// 1.2.392.200149.8.5.1.3.130, CPS §1.2): it issues the server certificate
// and one client certificate per counter terminal, bound to its
// municipality, through one-time enrolment tokens, and revokes terminals
// locally.
//
// Mutual authentication of terminal and CA is required by TS Art. 7(i) and
// G Art. 5(ii)(iii). The terminals table in the store, not the certificate
// alone, is the authority: a terminal is accepted only while its row exists,
// matches the certificate's fingerprint and is not revoked.
//
// # Keys
//
// The CA key lives in the HSM: the key ceremony (ceremony-init) generates it
// and self-signs the CA certificate with SelfSign, and `serve` signs
// enrolments and its server certificate with it after M custodians have
// activated the token (TS Art. 27, 45; CPS §6.2: CA keys are used only
// after activation by several custodians). The CA certificate is public and
// stays a file (tls-ca.crt, WriteCertificate) for terminals and verifiers.
// Local commands that only create tokens or revoke terminals use a CA
// without its key (NewPublic); what needs the key then fails with
// ErrNoCAKey. Data dirs made before the key moved into the HSM keep a file
// key (LoadOrCreate) until their ceremony migrates them.
//
// Concurrency: a CA is safe for concurrent use.
package tlsca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"madoguchi/ca-server/store"
	"madoguchi/internal/wallclock"
	"madoguchi/jpki/wire"
)

// PolicyTLS is the certificate policy of TLS certificates for internal JPKI
// links (CPS §1.2).
var PolicyTLS = mustOID(1, 2, 392, 200149, 8, 5, 1, 3, 130)

func mustOID(ints ...uint64) x509.OID {
	o, err := x509.OIDFromInts(ints)
	if err != nil {
		panic(err)
	}
	return o
}

// Validity limits (CPS §6.3.2.3: TLS certificates inside JPKI ≤ 5 years).
const (
	MaxCAValidity       = 5 * 365 * 24 * time.Hour
	TerminalValidity    = 365 * 24 * time.Hour
	ServerValidity      = 365 * 24 * time.Hour
	DefaultTokenTTL     = 24 * time.Hour
	terminalOrg         = "Madoguchi counter terminal"
	caKeyFile           = "tls-ca.key"
	caCertFile          = "tls-ca.crt"
	caCommonName        = "Madoguchi internal TLS CA"
	minRSABits          = 2048
	serialBytes         = 16
	enrolmentTokenBytes = 32
)

// Store is the part of the store the CA uses.
type Store interface {
	CreateEnrolmentToken(ctx context.Context, tok store.EnrolmentToken) error
	// EnrolTerminalSigned consumes the token and records the terminal with
	// its certificate in one transaction, signing inside it.
	EnrolTerminalSigned(ctx context.Context, tokenSHA256 []byte, t store.Terminal, now time.Time, sign store.SignTerminal) (store.Terminal, error)
	RevokeTerminal(ctx context.Context, certSerial string, now time.Time) (store.Terminal, error)
}

var _ Store = (*store.SQLite)(nil)

// ErrNoCAKey is returned for an operation that needs the CA key by a CA
// opened without it (NewPublic): a local command without custodians.
var ErrNoCAKey = errors.New("tlsca: the tls ca key is in the hsm and needs custodian activation (run serve, or give --share M times)")

// CA is the internal TLS CA.
type CA struct {
	cert   *x509.Certificate
	signer crypto.Signer
	st     Store
	clock  func() time.Time
}

// New returns a CA. It refuses a signer whose public key does not match the
// certificate, a certificate that is not a CA for the TLS policy, and a
// validity over 5 years (CPS §6.3.2.3). clock may be nil (time.Now).
func New(cert *x509.Certificate, signer crypto.Signer, st Store, clock func() time.Time) (*CA, error) {
	if signer == nil {
		return nil, errors.New("tlsca: certificate, signer and store are required")
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if cert != nil && (!ok || !pub.Equal(cert.PublicKey)) {
		return nil, errors.New("tlsca: signer's public key does not match the CA certificate")
	}
	ca, err := NewPublic(cert, st, clock)
	if err != nil {
		return nil, err
	}
	ca.signer = signer
	return ca, nil
}

// NewPublic returns the CA without its key, for local commands run without
// custodians: Certificate, Pool, NewEnrolmentToken and RevokeTerminal work;
// Enroll, ServerCertificate and VerifierCertificate return ErrNoCAKey. It
// checks the certificate as New does.
func NewPublic(cert *x509.Certificate, st Store, clock func() time.Time) (*CA, error) {
	if cert == nil || st == nil {
		return nil, errors.New("tlsca: certificate and store are required")
	}
	if clock == nil {
		clock = wallclock.Now
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("tlsca: certificate is not a CA certificate with keyCertSign")
	}
	if !hasPolicy(cert) {
		return nil, fmt.Errorf("tlsca: CA certificate lacks policy %v", PolicyTLS)
	}
	if cert.NotAfter.Sub(cert.NotBefore) > MaxCAValidity+24*time.Hour {
		return nil, errors.New("tlsca: CA certificate valid longer than 5 years (CPS §6.3.2.3)")
	}
	return &CA{cert: cert, st: st, clock: clock}, nil
}

// HasKey reports whether the CA can sign (New, not NewPublic).
func (ca *CA) HasKey() bool { return ca.signer != nil }

func hasPolicy(c *x509.Certificate) bool {
	for _, p := range c.Policies {
		if p.Equal(PolicyTLS) {
			return true
		}
	}
	return false
}

// LoadOrCreate loads the CA certificate and its ECDSA P-256 key from dir, or
// creates them (key file mode 0600) when neither exists. It serves data dirs
// made before the TLS CA key moved into the HSM, and tests without an HSM;
// a ceremony-initialised CA keeps its key in the HSM (see the package doc).
func LoadOrCreate(dir string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	keyPath, certPath := filepath.Join(dir, caKeyFile), filepath.Join(dir, caCertFile)
	keyPEM, kerr := os.ReadFile(keyPath)
	certPEM, cerr := os.ReadFile(certPath)
	switch {
	case kerr == nil && cerr == nil:
		return parsePair(keyPEM, certPEM)
	case !errors.Is(kerr, os.ErrNotExist) || !errors.Is(cerr, os.ErrNotExist):
		return nil, nil, fmt.Errorf("tlsca: need both %s and %s (key: %v, certificate: %v)", keyPath, certPath, kerr, cerr)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsca: generate CA key: %w", err)
	}
	cert, err := SelfSign(rand.Reader, key, now)
	if err != nil {
		return nil, nil, err
	}
	der := cert.Raw
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("tlsca: %w", err)
	}
	if err := writeExclusive(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		return nil, nil, err
	}
	if err := writeExclusive(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// SelfSign makes the CA's self-signed certificate for signer (an HSM key
// at the key ceremony): CA for the TLS policy only, path length 0, valid 5
// years (CPS §6.3.2.3).
func SelfSign(rnd io.Reader, signer crypto.Signer, now time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial(rnd)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: caCommonName, Organization: []string{"Madoguchi"}},
		NotBefore: now.Add(-5 * time.Minute), NotAfter: now.Add(MaxCAValidity),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, Policies: []x509.OID{PolicyTLS},
	}
	der, err := x509.CreateCertificate(rnd, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("tlsca: self-sign: %w", err)
	}
	return x509.ParseCertificate(der)
}

// CertificatePath is the CA certificate file under a data dir.
func CertificatePath(dir string) string { return filepath.Join(dir, caCertFile) }

// HasFileKey reports whether dir holds a CA key file (a data dir made
// before the TLS CA key moved into the HSM).
func HasFileKey(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, caKeyFile))
	return err == nil
}

// WriteCertificate writes cert as the data dir's CA certificate file
// (public, 0644) unless a file with the same certificate is there; it
// refuses to replace a different certificate.
func WriteCertificate(dir string, cert *x509.Certificate) error {
	p := CertificatePath(dir)
	if old, err := LoadCertificate(dir); err == nil {
		if !old.Equal(cert) {
			return fmt.Errorf("tlsca: %s holds another ca certificate (a data dir from before the tls ca key moved into the hsm?)", p)
		}
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return writeExclusive(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
}

// LoadCertificate reads the data dir's CA certificate file; the error
// matches os.ErrNotExist when there is none.
func LoadCertificate(dir string) (*x509.Certificate, error) {
	b, err := os.ReadFile(CertificatePath(dir))
	if err != nil {
		return nil, fmt.Errorf("tlsca: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("tlsca: %s is not a pem certificate", CertificatePath(dir))
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("tlsca: ca certificate: %w", err)
	}
	return c, nil
}

func writeExclusive(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("tlsca: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("tlsca: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("tlsca: sync %s: %w", path, err)
	}
	return f.Close()
}

func parsePair(keyPEM, certPEM []byte) (*x509.Certificate, crypto.Signer, error) {
	kb, _ := pem.Decode(keyPEM)
	cb, _ := pem.Decode(certPEM)
	if kb == nil || cb == nil {
		return nil, nil, errors.New("tlsca: CA key or certificate file is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsca: CA key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("tlsca: CA key cannot sign")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsca: CA certificate: %w", err)
	}
	return cert, signer, nil
}

func randomSerial(r io.Reader) (*big.Int, error) {
	b := make([]byte, serialBytes)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("tlsca: serial: %w", err)
	}
	b[0] = b[0]&0x7f | 0x40
	return new(big.Int).SetBytes(b), nil
}

// SerialHex is how the store names a certificate serial.
func SerialHex(c *x509.Certificate) string { return c.SerialNumber.Text(16) }

// Certificate returns the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Pool returns a pool holding only the CA certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// ServerCertificate issues a server certificate for hosts (DNS names or IP
// addresses) with a fresh in-memory ECDSA P-256 key.
func (ca *CA) ServerCertificate(hosts []string) (tls.Certificate, error) {
	if ca.signer == nil {
		return tls.Certificate{}, ErrNoCAKey
	}
	if len(hosts) == 0 {
		return tls.Certificate{}, errors.New("tlsca: server certificate needs at least one host name or address")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := randomSerial(rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := ca.clock()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: hosts[0], Organization: []string{"Madoguchi"}},
		NotBefore: now.Add(-5 * time.Minute), NotAfter: ca.clip(now.Add(ServerValidity)),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		Policies: []x509.OID{PolicyTLS},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.signer)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsca: sign server certificate: %w", err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// VerifierCertificate issues a registered verifier's TLS client
// certificate for pub (CPS §1.3.4, §2.4; TS Arts. 33, 36: CRLs and OCSP only
// for registered verifiers), valid as long as a terminal's.
func (ca *CA) VerifierCertificate(name string, pub crypto.PublicKey) ([]byte, error) {
	if ca.signer == nil {
		return nil, ErrNoCAKey
	}
	if name == "" {
		return nil, errors.New("tlsca: verifier certificate needs a name")
	}
	serial, err := randomSerial(rand.Reader)
	if err != nil {
		return nil, err
	}
	now := ca.clock()
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name, Organization: []string{"Madoguchi registered verifier"}},
		NotBefore: now.Add(-5 * time.Minute), NotAfter: ca.clip(now.Add(TerminalValidity)), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Policies: []x509.OID{PolicyTLS}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.signer)
	if err != nil {
		return nil, fmt.Errorf("tlsca: sign verifier certificate: %w", err)
	}
	return der, nil
}

// clip keeps a certificate inside the CA's own validity.
func (ca *CA) clip(t time.Time) time.Time {
	if t.After(ca.cert.NotAfter) {
		return ca.cert.NotAfter
	}
	return t
}

// ValidMunicipality checks a 6-digit local government code (全国地方公共団体
// コード, JIS X 0402) including its check digit.
func ValidMunicipality(code string) error {
	if len(code) != 6 {
		return fmt.Errorf("tlsca: municipality code %q must be 6 digits", code)
	}
	sum := 0
	for i, w := range []int{6, 5, 4, 3, 2} {
		d := code[i]
		if d < '0' || d > '9' {
			return fmt.Errorf("tlsca: municipality code %q must be 6 digits", code)
		}
		sum += int(d-'0') * w
	}
	if code[5] < '0' || code[5] > '9' || int(code[5]-'0') != (11-sum%11)%10 {
		return fmt.Errorf("tlsca: municipality code %q has a wrong check digit", code)
	}
	return nil
}

// NewEnrolmentToken creates a one-time enrolment token for a terminal of the
// municipality. Only its SHA-256 is stored; the token itself is returned
// once, to be handed to the terminal's installer out of band.
func (ca *CA) NewEnrolmentToken(ctx context.Context, municipality string, ttl time.Duration) (string, error) {
	if err := ValidMunicipality(municipality); err != nil {
		return "", err
	}
	if ttl <= 0 || ttl > 7*24*time.Hour {
		return "", fmt.Errorf("tlsca: token lifetime %v must be between 0 and 7 days", ttl)
	}
	b := make([]byte, enrolmentTokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("tlsca: token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	now := ca.clock()
	h := sha256.Sum256([]byte(tok))
	if err := ca.st.CreateEnrolmentToken(ctx, store.EnrolmentToken{TokenSHA256: h[:], Municipality: municipality, CreatedAt: now, ExpiresAt: now.Add(ttl)}); err != nil {
		return "", err
	}
	return tok, nil
}

// Enroll consumes a token and signs the terminal's CSR. Signing happens
// inside the store transaction that consumes the token and records the
// terminal with its certificate's fingerprint, so the token is spent only
// when the certificate is stored, and a signed certificate always has its
// record: if signing fails the token stays usable (CodeInternal, retry).
func (ca *CA) Enroll(ctx context.Context, token string, csrDER []byte) (wire.EnrollResponse, error) {
	if ca.signer == nil {
		return wire.EnrollResponse{}, wire.Wrap(wire.CodeUnavailable, ErrNoCAKey, "enrolment unavailable")
	}
	if token == "" || len(token) > 128 {
		return wire.EnrollResponse{}, wire.Errorf(wire.CodeTokenInvalid, "enrolment token unknown, used or expired")
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return wire.EnrollResponse{}, wire.Wrap(wire.CodeInvalidCSR, err, "csr is not a PKCS#10 request")
	}
	if err := csr.CheckSignature(); err != nil {
		return wire.EnrollResponse{}, wire.Wrap(wire.CodeInvalidCSR, err, "csr signature does not verify")
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return wire.EnrollResponse{}, wire.Errorf(wire.CodeInvalidCSR, "csr key must be ECDSA P-256/P-384 or RSA >= 2048")
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return wire.EnrollResponse{}, wire.Errorf(wire.CodeInvalidCSR, "csr key must be ECDSA P-256/P-384 or RSA >= 2048")
		}
	default:
		return wire.EnrollResponse{}, wire.Errorf(wire.CodeInvalidCSR, "csr key must be ECDSA P-256/P-384 or RSA >= 2048")
	}
	serial, err := randomSerial(rand.Reader)
	if err != nil {
		return wire.EnrollResponse{}, wire.Wrap(wire.CodeUnavailable, err, "randomness unavailable")
	}
	idb := make([]byte, 8)
	if _, err := rand.Read(idb); err != nil {
		return wire.EnrollResponse{}, wire.Wrap(wire.CodeUnavailable, err, "randomness unavailable")
	}
	now := ca.clock()
	h := sha256.Sum256([]byte(token))
	id := "term-" + hex.EncodeToString(idb)
	var der []byte
	var signErr error
	sign := func(municipality string) ([]byte, time.Time, error) {
		tmpl := &x509.Certificate{
			SerialNumber: serial,
			// The municipality is in the subject for people reading the
			// certificate; the server trusts only the terminals table.
			Subject:   pkix.Name{CommonName: id, Organization: []string{terminalOrg}, OrganizationalUnit: []string{municipality}},
			NotBefore: now.Add(-5 * time.Minute), NotAfter: ca.clip(now.Add(TerminalValidity)),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			Policies: []x509.OID{PolicyTLS},
		}
		der, signErr = x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.signer)
		if signErr != nil {
			return nil, time.Time{}, signErr
		}
		fp := sha256.Sum256(der)
		return fp[:], tmpl.NotAfter, nil
	}
	term, err := ca.st.EnrolTerminalSigned(ctx, h[:], store.Terminal{ID: id, CertSerial: serial.Text(16)}, now, sign)
	switch {
	case errors.Is(err, store.ErrTokenInvalid):
		return wire.EnrollResponse{}, wire.Wrap(wire.CodeTokenInvalid, err, "enrolment token unknown, used or expired")
	case signErr != nil:
		return wire.EnrollResponse{}, wire.Wrap(wire.CodeInternal, err, "signing failed; the token is still valid")
	case err != nil:
		return wire.EnrollResponse{}, wire.Wrap(wire.CodeInternal, err, "storage error")
	}
	return wire.EnrollResponse{TerminalID: term.ID, Municipality: term.Municipality, Certificate: der, CACertificate: ca.cert.Raw}, nil
}

// RevokeTerminal revokes the terminal holding the certificate with the hex
// serial (a lost or retired terminal); its next request is refused.
func (ca *CA) RevokeTerminal(ctx context.Context, serialHex string) (store.Terminal, error) {
	n, ok := new(big.Int).SetString(serialHex, 16)
	if !ok || n.Sign() <= 0 {
		return store.Terminal{}, fmt.Errorf("tlsca: serial %q is not a positive hexadecimal number", serialHex)
	}
	return ca.st.RevokeTerminal(ctx, n.Text(16), ca.clock())
}
