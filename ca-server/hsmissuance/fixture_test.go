package hsmissuance

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"madoguchi/ca-server/api"
	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/cardkeys"
	"madoguchi/ca-server/ceremony"
	"madoguchi/ca-server/issuance"
	"madoguchi/ca-server/store"
	"madoguchi/ca-server/tlsca"
	"madoguchi/cardio"
	"madoguchi/cardio/vcard"
	"madoguchi/internal/testenv"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// clock is a settable clock for the issuance service (deadlines, the CA
// key's usable period).
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// fixture is a whole CA in process: dev key ceremony on a real SoftHSM
// token, activation, real SQLite store, the issuance service over the
// HSM-backed dependencies, the mTLS API on a loopback listener, and one
// enrolled terminal (raclient).
type fixture struct {
	dataDir string
	active  *ceremony.Active
	deps    *Deps
	st      *store.SQLite
	svc     *issuance.Service
	clock   *clock
	client  *raclient.Client
	caller  issuance.Caller
	cards   *cardkeys.Issuer
}

const (
	operator     = "op-0001"
	municipality = "131016"
	deadline     = 10 * time.Minute
)

type fixtureOptions struct {
	poolSize, poolWorkers, sessions int
}

// ceremonyDev runs the dev init ceremony (1-of-1) and activates the CA.
func ceremonyDev(t testing.TB, dataDir string, sessions int) *ceremony.Active {
	t.Helper()
	// testenv.SoftHSM checks the module and points SOFTHSM2_CONF at a
	// private config; the ceremony then provisions its embedded token under
	// the data dir (hsm.Provision sets SOFTHSM2_CONF to it before
	// C_Initialize).
	testenv.SoftHSM(t)
	ctx := context.Background()
	shares := filepath.Join(dataDir, "shares")
	common := ceremony.Common{DataDir: dataDir}
	common.HSM.PoolSize = sessions
	if _, err := ceremony.Init(ctx, ceremony.InitOptions{Common: common, Custodians: []ceremony.Custodian{{Name: "dev"}},
		Threshold: 1, SharesDir: shares, Dev: true}); err != nil {
		t.Fatalf("ceremony init: %v", err)
	}
	m, _ := filepath.Glob(filepath.Join(shares, ceremony.PurposeToken+"-*.share"))
	if len(m) != 1 {
		t.Fatalf("token shares: %v", m)
	}
	a, err := ceremony.Activate(ctx, ceremony.ActivateOptions{Common: common, Shares: []ceremony.PresentedShare{{Path: m[0]}}})
	if err != nil {
		t.Fatalf("activate: %v", err)
	}
	t.Cleanup(func() { a.HSM.Close() })
	return a
}

func newFixture(t testing.TB, o fixtureOptions) *fixture {
	t.Helper()
	if o.sessions == 0 {
		o.sessions = 2
	}
	ctx := context.Background()
	f := &fixture{dataDir: t.TempDir(), clock: &clock{}}
	f.active = ceremonyDev(t, f.dataDir, o.sessions+o.poolWorkers)
	var err error
	f.deps, err = FromActive(ctx, f.active, Options{PoolSize: o.poolSize, PoolWorkers: o.poolWorkers})
	if err != nil {
		t.Fatalf("deps: %v", err)
	}
	t.Cleanup(func() {
		if err := f.deps.Close(); err != nil {
			t.Errorf("close deps: %v", err)
		}
	})
	if f.cards, err = cardkeys.New(ctx, f.active.HSM); err != nil {
		t.Fatal(err)
	}
	if f.st, err = store.OpenSQLite(ctx, filepath.Join(f.dataDir, "ca.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.st.Close() })
	f.svc, err = issuance.New(issuance.Config{Store: f.st, Keys: f.deps.Keys, Cards: f.deps.Cards, Issuer: f.deps.Issuer,
		Applicants: f.deps.Applicants, Clock: f.clock.Now, Deadline: deadline})
	if err != nil {
		t.Fatal(err)
	}

	// mTLS API on loopback.
	caCert, caKey, err := tlsca.LoadOrCreate(f.dataDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tca, err := tlsca.New(caCert, caKey, f.st, nil)
	if err != nil {
		t.Fatal(err)
	}
	auditKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	alog, err := audit.Open(ctx, f.st, audit.Options{Signer: auditKey, KeyID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Service: f.svc, Enroller: tca, Terminals: f.st, Audit: alog, ClientCAs: tca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := tca.ServerCertificate([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, TLSConfig: api.TLSConfig(serverCert), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		hs.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	base := "https://" + ln.Addr().String()

	tok, err := tca.NewEnrolmentToken(ctx, municipality, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	termKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	enr, err := raclient.Enroll(ctx, raclient.EnrollConfig{BaseURL: base, RootCAs: tca.Pool(), Token: tok, Key: termKey, Operator: operator})
	if err != nil {
		t.Fatalf("enrol: %v", err)
	}
	tc, err := raclient.TLSCertificate(enr, termKey)
	if err != nil {
		t.Fatal(err)
	}
	f.client, err = raclient.New(raclient.Config{BaseURL: base, Certificate: tc, RootCAs: tca.Pool(), MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.client.Close)
	f.caller = issuance.Caller{TerminalID: enr.TerminalID, Municipality: enr.Municipality, OperatorID: operator}
	return f
}

// newCard makes a blank virtual card from card stock derived in the HSM
// (what the card-batch ceremony hands the manufacturer) and returns the
// terminal-side card API over it.
func (f *fixture) newCard(t testing.TB) (*cardio.Card, *vcard.Card, string) {
	t.Helper()
	serial := make([]byte, 16)
	rand.Read(serial)
	keys, err := f.cards.ExportCardKeys(context.Background(), serial)
	if err != nil {
		t.Fatal(err)
	}
	vc, err := vcard.New(vcard.Config{Serial: serial, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return cardio.New(vcard.Insert(vc)), vc, hex.EncodeToString(serial)
}

// prepare opens a channel, runs INITIALIZE UPDATE on the card and prepares.
func (f *fixture) prepare(t testing.TB, card *cardio.Card, serial, certType, requestID string, a wire.Applicant) (wire.PrepareResponse, error) {
	t.Helper()
	ctx := context.Background()
	ch, err := f.client.OpenChannel(ctx, operator)
	if err != nil {
		t.Fatalf("open channel: %v", err)
	}
	iu, err := card.InitializeUpdate(ctx, ch.HostChallenge)
	if err != nil {
		t.Fatalf("initialize update: %v", err)
	}
	return f.client.Prepare(ctx, operator, wire.PrepareRequest{RequestID: requestID, ChannelID: ch.ChannelID, CardSerial: serial,
		InitUpdateResponse: iu, CertType: certType, Applicant: a})
}

// issue runs the whole issuance: prepare, script on the card, confirm.
func (f *fixture) issue(t testing.TB, card *cardio.Card, serial, certType, requestID string, a wire.Applicant) (wire.PrepareResponse, wire.IssuanceStatus) {
	t.Helper()
	prep, err := f.prepare(t, card, serial, certType, requestID, a)
	if err != nil {
		t.Fatalf("prepare %s: %v", certType, err)
	}
	responses, err := card.RunScript(context.Background(), prep.Script)
	if err != nil {
		t.Fatalf("run script: %v", err)
	}
	st, err := f.client.Confirm(context.Background(), operator, prep.IssuanceID, wire.ConfirmRequest{RequestID: requestID + "-confirm", CardResponses: responses})
	if err != nil {
		t.Fatalf("confirm %s: %v", certType, err)
	}
	return prep, st
}

func applicantData(code string) wire.Applicant {
	return wire.Applicant{ResidentCode: code, Name: "𠮷田 太郎", NameKana: "ヨシダ タロウ", BirthDate: "1990-04-12", Sex: "1",
		Address: "東京都千代田区千代田一丁目1番1号", FormerSurname: "山田", CardExpiry: "2035-04-12"}
}

func parseCert(t testing.TB, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
