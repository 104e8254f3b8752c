package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/issuance"
	"madoguchi/ca-server/issuance/issuancetest"
	"madoguchi/ca-server/store"
	"madoguchi/ca-server/tlsca"
)

// TestParts are the real pieces behind the API in its tests: the issuance service over a SQLite
// store in a temp dir, software card keys (issuancetest), the internal TLS CA and the audit
// log. The fuzz target (package api) and the end-to-end tests (package api_test) build their
// servers from the same parts, so both go through what serve wires.
type TestParts struct {
	Store    *store.SQLite
	Raw      *sql.DB // read-only second connection, to prove what a request changed
	CA       *tlsca.CA
	AuditKey *ecdsa.PrivateKey
	Audit    *audit.Log
	Service  *issuance.Service
}

// NewTestParts builds the parts; cards is the card channel (issuancetest.Cards{} unless a test
// needs the real host end). Everything closes when the test ends.
func NewTestParts(tb testing.TB, cards issuance.CardChannel) *TestParts {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "ca.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "ca.db")+"?mode=ro")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { raw.Close() })
	cert, signer, err := tlsca.LoadOrCreate(dir, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	ca, err := tlsca.New(cert, signer, st, nil)
	if err != nil {
		tb.Fatal(err)
	}
	ak, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	alog, err := audit.Open(ctx, st, audit.Options{Signer: ak, KeyID: "test", Every: 5})
	if err != nil {
		tb.Fatal(err)
	}
	iss, err := issuancetest.NewIssuer()
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := issuance.New(issuance.Config{Store: st, Keys: &issuancetest.Keys{}, Cards: cards, Issuer: iss,
		Applicants: issuance.BasicApplicantChecker{Key: make([]byte, 32)}})
	if err != nil {
		tb.Fatal(err)
	}
	return &TestParts{Store: st, Raw: raw, CA: ca, AuditKey: ak, Audit: alog, Service: svc}
}
