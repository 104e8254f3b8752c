// Package testca runs ca-server's real HTTPS API in-process for the terminal's tests (tests
// only): TLS 1.3 with the internal TLS CA, enrolment, and the revocation service (counter
// revocation, hold release, resident changes), over the issuance service's in-process fakes
// (issuancetest). The end-to-end tests with a `ca-server serve` child are app/internal/e2e's.
package testca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"madoguchi/ca-server/api"
	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/issuance"
	"madoguchi/ca-server/issuance/issuancetest"
	"madoguchi/ca-server/status"
	"madoguchi/ca-server/store"
	"madoguchi/ca-server/tlsca"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// CA is ca-server's real HTTPS API (TLS 1.3, enrolment, internal TLS CA) in-process, with the
// issuance service's in-process fakes (enrolment and the TLS link do not touch them).
type CA struct {
	TLS    *tlsca.CA
	Store  *store.SQLite
	Status *status.Service // the revocation service the API serves (counter revocation, holds, resident changes)
	URL    string
	CAPEM  string // file with the internal TLS CA certificate
	Srv    *httptest.Server

	handler    http.Handler
	serverCert tls.Certificate
}

// Start starts the CA; it stops when the test ends.
func Start(t *testing.T) *CA {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cert, signer, err := tlsca.LoadOrCreate(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := tlsca.New(cert, signer, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	ak, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	alog, err := audit.Open(ctx, st, audit.Options{Signer: ak, KeyID: "test", Every: 5})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := issuancetest.NewIssuer()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := issuance.New(issuance.Config{Store: st, Keys: &issuancetest.Keys{}, Cards: issuancetest.Cards{}, Issuer: iss,
		Applicants: issuance.BasicApplicantChecker{Key: make([]byte, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Service: svc, Enroller: ca, Terminals: st, Audit: alog, ClientCAs: ca.Pool(), MaxBody: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	// The person key of the issuance service above (BasicApplicantChecker: HMAC under 32 zero
	// bytes), as in ca-server/api's authority test.
	rs, err := status.New(status.Config{Store: st, Audit: alog, Persons: status.HMACPersons{Key: make([]byte, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	srv.MountRevocation(rs)
	serverCert, err := ca.ServerCertificate([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.TLS = api.TLSConfig(serverCert)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	caPEM := filepath.Join(dir, "tls-ca-handed-over.pem")
	if err := os.WriteFile(caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &CA{TLS: ca, Store: st, Status: rs, URL: ts.URL, CAPEM: caPEM, Srv: ts, handler: srv, serverCert: serverCert}
}

// Listen serves the same CA at another address (the CA moved) and returns its URL; the
// listener stops when the test ends.
func (c *CA) Listen(t *testing.T) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(c.handler)
	ts.TLS = api.TLSConfig(c.serverCert)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts.URL
}

// Token is a one-time enrolment token of municipality 131016.
func (c *CA) Token(t *testing.T) string {
	t.Helper()
	tok, err := c.TLS.NewEnrolmentToken(context.Background(), "131016", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// DeliverSign has another terminal of the same municipality issue a signature certificate for
// resident code at the test CA (issuancetest's card cryptograms stand in for the card), and
// returns its serial: the certificates the counter then revokes, releases and changes.
func (c *CA) DeliverSign(t *testing.T, other *raclient.Client, reqID, code string) string {
	t.Helper()
	ctx := context.Background()
	ch, err := other.OpenChannel(ctx, "op-1")
	if err != nil {
		t.Fatal(err)
	}
	card := "CARD-" + code
	prep, err := other.Prepare(ctx, "op-1", wire.PrepareRequest{RequestID: reqID, ChannelID: ch.ChannelID, CardSerial: card,
		InitUpdateResponse: issuancetest.CardCryptogram(card, ch.HostChallenge), CertType: "sign",
		Applicant: wire.Applicant{ResidentCode: code, Name: "髙橋 一郎", BirthDate: "1985-03-15", Sex: "1", Address: "東京都千代田区千代田1-1", CardExpiry: "2031-02-28"}})
	if err != nil {
		t.Fatal(err)
	}
	is, err := c.Store.Issuance(ctx, prep.IssuanceID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Confirm(ctx, "op-1", prep.IssuanceID, wire.ConfirmRequest{RequestID: "c-" + reqID,
		CardResponses: [][]byte{issuancetest.CardResponse(is.ChannelState, []byte("DONE"))}}); err != nil {
		t.Fatal(err)
	}
	return prep.Serial
}

// OtherTerminal enrols a second terminal of municipality 131016 at the test CA.
func (c *CA) OtherTerminal(t *testing.T) *raclient.Client {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	resp, err := raclient.Enroll(context.Background(), raclient.EnrollConfig{BaseURL: c.URL, RootCAs: c.TLS.Pool(), Token: c.Token(t), Key: key, Operator: "installer"})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := raclient.TLSCertificate(resp, key)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := raclient.New(raclient.Config{BaseURL: c.URL, Certificate: pair, RootCAs: c.TLS.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
