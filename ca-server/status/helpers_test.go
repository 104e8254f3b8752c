package status

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/crl"
	"madoguchi/ca-server/store"
)

var t0 = time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testCA is a software RSA CA made at test time (keys are never committed).
type testCA struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

var (
	rsaOnce sync.Once
	rsaKeys []*rsa.PrivateKey
)

// rsaKey returns one of a few RSA-2048 keys generated once per test binary.
func rsaKey(t testing.TB, i int) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		for range 6 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys = append(rsaKeys, k)
		}
	})
	return rsaKeys[i]
}

func newTestCA(t testing.TB, cn string, keyIndex int) testCA {
	t.Helper()
	key := rsaKey(t, keyIndex)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(0x1000 + keyIndex)), Subject: pkix.Name{CommonName: cn, Organization: []string{"Madoguchi test"}},
		NotBefore: t0.AddDate(-1, 0, 0), NotAfter: t0.AddDate(9, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte(cn)[:8], SignatureAlgorithm: x509.SHA256WithRSA}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return testCA{cert, key}
}

// env is a revocation service over a real SQLite file and a real archive.
type env struct {
	st      *store.SQLite
	svc     *Service
	clk     *clock
	sig     testCA
	auth    testCA
	dir     string
	archive *crl.FSArchive
	changes []string // serials reported to OnChange
	mu      sync.Mutex
}

const residentA, residentB = "12345678901", "10987654321"

var personKey = []byte("0123456789abcdef0123456789abcdef")

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ak, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	clk := &clock{t: t0}
	alog, err := audit.Open(ctx, st, audit.Options{Signer: ak, KeyID: "test", Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	arch, err := crl.NewFSArchive(filepath.Join(dir, "crl"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, clk: clk, dir: dir, archive: arch, sig: newTestCA(t, "JPKI Signature CA (test)", 0), auth: newTestCA(t, "JPKI User Authentication CA (test)", 1)}
	e.svc, err = New(Config{Store: st, Audit: alog, Persons: HMACPersons{Key: personKey}, Archive: arch, Clock: clk.Now,
		CAs: []CA{{Name: "signature", CertType: store.CertSign, Certificate: e.sig.cert, Signer: e.sig.key},
			{Name: "user-auth", CertType: store.CertAuth, Certificate: e.auth.cert, Signer: e.auth.key}},
		OnChange: func(_ context.Context, _ store.CertType, serial string) error {
			e.mu.Lock()
			e.changes = append(e.changes, serial)
			e.mu.Unlock()
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	tok := sha256.Sum256([]byte("token"))
	if err := st.CreateEnrolmentToken(ctx, store.EnrolmentToken{TokenSHA256: tok[:], Municipality: "131016", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EnrolTerminal(ctx, tok[:], store.Terminal{ID: "term-1", CertSerial: "abc"}, t0); err != nil {
		t.Fatal(err)
	}
	return e
}

var seq int

// issue signs a leaf certificate under ca and takes it through the store's
// issuance life cycle to delivered (deliver=false leaves it prepared).
func (e *env) issue(t *testing.T, resident string, typ store.CertType, deliver bool) (*x509.Certificate, store.Issuance) {
	t.Helper()
	ctx := context.Background()
	ca := e.sig
	if typ == store.CertAuth {
		ca = e.auth
	}
	seq++
	serial := new(big.Int).Lsh(big.NewInt(int64(0x4000+seq)), 100)
	key := rsaKey(t, 2+seq%4)
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: fmt.Sprintf("holder %d", seq)},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.AddDate(5, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, SignatureAlgorithm: x509.SHA256WithRSA}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	person, _ := HMACPersons{Key: personKey}.PersonHash(ctx, resident)
	id := fmt.Sprintf("%d", seq)
	ch := store.Channel{ID: "ch-" + id, TerminalID: "term-1", HostChallenge: []byte("12345678"), CreatedAt: e.clk.Now(), ExpiresAt: e.clk.Now().Add(time.Hour)}
	if err := e.st.CreateChannel(ctx, ch); err != nil {
		t.Fatal(err)
	}
	fp := sha256.Sum256([]byte("key " + id))
	if err := e.st.RecordKeyFingerprint(ctx, fp[:], t0); err != nil {
		t.Fatal(err)
	}
	is := store.Issuance{ID: "is-" + id, TerminalID: "term-1", RequestID: "req-" + id, RequestSHA256: fp[:], OperatorID: "op1", ChannelID: ch.ID,
		CardSerial: fmt.Sprintf("card-%x", person[:8]), PersonHash: person, // one card per person (ownership)
		CertType: typ, Serial: serial.Text(16), KeySHA256: fp[:], Deadline: e.clk.Now().Add(time.Hour)}
	if err := e.st.BeginIssuance(ctx, is, e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.MarkPrepared(ctx, is.ID, der, []byte("script"), []byte("state"), e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	if deliver {
		if is, err = e.st.ConfirmIssuance(ctx, is.ID, "confirm-"+id, fp[:], e.clk.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return cert, is
}

func (e *env) cert(t *testing.T, serial string) store.Certificate {
	t.Helper()
	c, err := e.st.CertificateBySerial(context.Background(), serial)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) lastAudit(t *testing.T) store.AuditRecord {
	t.Helper()
	r, err := e.st.LastAuditRecord(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func writePEM(t *testing.T, path, typ string, der []byte) string {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// openssl runs the real openssl binary; a missing binary fails the test.
func openssl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err
}

func hexSerial(c *x509.Certificate) string { return hex.EncodeToString(c.SerialNumber.Bytes()) }
