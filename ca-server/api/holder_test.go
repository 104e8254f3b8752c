package api_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"madoguchi/ca-server/api"
	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/status"
	"madoguchi/ca-server/traffic"
	"madoguchi/jpki/wire"
)

// fakeHolders accepts the payload "ok" and refuses everything else as a bad signature (the
// real checks are status.TestRevokeOnlineRules and the real-stack app/cli
// TestHolderRevokeOnlineAgainstRealCA).
type fakeHolders struct{}

func (fakeHolders) RevokeOnline(_ context.Context, req wire.HolderRevocation) (status.OnlineRevocation, error) {
	if string(req.Payload) != "ok" {
		return status.OnlineRevocation{}, wire.Errorf(wire.CodeHolderSignatureInvalid, "the signature does not verify")
	}
	return status.OnlineRevocation{Ack: wire.RevocationAck{Serial: "4242", CertType: "sign", Reason: 5, ReasonName: "cessationOfOperation", Kind: "stop-using",
		RevokedAt: time.Now().UTC()}, Serial: "4242", RequestID: "request-0000000001", PayloadSHA256: strings.Repeat("ab", 32)}, nil
}

// TestHolderRevokeOnPublicListener: POST /v1/holder/revoke on the public listener answers an
// accepted request with the acknowledgement signed by the audit key and audits it as the
// holder's action; refusals (bad signature, wrong method, oversized or malformed body) are
// counted like every public request and never audited one by one (issue 13 threat 4).
func TestHolderRevokeOnPublicListener(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alog, err := audit.OpenUnsigned(ctx, e.st, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "audit checkpoint (test)"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	keyCert, _ := x509.ParseCertificate(der)
	acks, err := audit.NewReceiptSigner(key, keyCert, nil)
	if err != nil {
		t.Fatal(err)
	}
	guard := traffic.NewGuard(traffic.GuardConfig{Listener: "public", Audit: alog})
	cfg := api.StatusConfig{CRLs: noCRLs{}, Audit: alog, Traffic: guard, Holders: fakeHolders{}}
	if _, err := api.NewPublicHandler(cfg); err == nil {
		t.Fatal("public handler with a revoker and no acknowledgement signer")
	}
	cfg.Acks = acks
	h, err := api.NewPublicHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := e.ca.ServerCertificate([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	hc := ts.Client()
	hc.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify = true
	count := func() int {
		recs, err := e.st.AuditRecords(ctx, 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}
	post := func(method, ctype string, body []byte) (int, []byte) {
		req, _ := http.NewRequest(method, ts.URL+"/v1/holder/revoke", bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes()
	}
	body := func(payload string) []byte {
		b, _ := json.Marshal(wire.HolderRevocation{Payload: []byte(payload), Signature: []byte{1}})
		return b
	}

	before := count()
	for _, tc := range []struct {
		method, ctype string
		body          []byte
		status        int
		code          wire.Code
	}{
		{"POST", "application/json", body("forged"), http.StatusUnauthorized, wire.CodeHolderSignatureInvalid},
		{"GET", "application/json", nil, http.StatusMethodNotAllowed, wire.CodeMethodNotAllowed},
		{"POST", "text/plain", body("ok"), http.StatusUnsupportedMediaType, wire.CodeUnsupportedMedia},
		{"POST", "application/json", []byte(`{"payload":"b2s=","signature":"AQ==","extra":1}`), http.StatusBadRequest, wire.CodeUnknownField},
		{"POST", "application/json", body(strings.Repeat("x", 16<<10)), http.StatusRequestEntityTooLarge, wire.CodeBodyTooLarge},
	} {
		for range 5 {
			st, b := post(tc.method, tc.ctype, tc.body)
			var p wire.Problem
			json.Unmarshal(b, &p)
			if st != tc.status || p.Code != tc.code {
				t.Fatalf("%s %s: %d %s, want %d %s", tc.method, tc.code, st, b, tc.status, tc.code)
			}
		}
	}
	if n := count(); n != before {
		t.Fatalf("refusals on the public listener wrote %d audit records", n-before)
	}

	st, b := post("POST", "application/json", body("ok"))
	if st != http.StatusOK {
		t.Fatalf("accepted: %d %s", st, b)
	}
	var signed wire.SignedRevocationAck
	if err := json.Unmarshal(b, &signed); err != nil {
		t.Fatal(err)
	}
	if err := wire.VerifyRevocationAck(keyCert.PublicKey, signed); err != nil || signed.Ack.Reason != 5 || signed.Ack.Serial != "4242" {
		t.Fatalf("acknowledgement %+v: %v", signed.Ack, err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := wire.VerifyRevocationAck(other.Public(), signed); err == nil {
		t.Fatal("acknowledgement verified under another key")
	}
	recs, _ := e.st.AuditRecords(ctx, 0, 10000)
	last := recs[len(recs)-1]
	if len(recs) != before+1 || last.Action != "certificate.revoke.online" || last.Terminal != status.HolderTerminal ||
		last.Operator != "certificate 4242" || last.Target != "4242" || last.Result != "ok" {
		t.Fatalf("audit of the accepted request: %d records, last %+v", len(recs)-before, last)
	}
}
