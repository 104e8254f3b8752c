package api

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"madoguchi/ca-server/issuance/issuancetest"
	"madoguchi/ca-server/store"
	"madoguchi/jpki/wire"
)

// fuzzAPI is the API over the real issuance service, store (SQLite in a temp dir), internal
// TLS CA and audit log, with software card keys (issuancetest), built once per fuzz process,
// and one enrolled terminal whose certificate the requests carry as if over mutual TLS.
type fuzzAPI struct {
	srv     *Server
	st      *store.SQLite
	raw     *sql.DB
	tlsConn *tls.ConnectionState
	channel wire.ChannelResponse
}

func newFuzzAPI(f *testing.F) *fuzzAPI {
	ctx := context.Background()
	parts := NewTestParts(f, issuancetest.Cards{})
	st, raw, ca, alog, svc := parts.Store, parts.Raw, parts.CA, parts.Audit, parts.Service
	srv, err := New(Config{Service: svc, Enroller: ca, Terminals: st, Audit: alog, ClientCAs: ca.Pool(), MaxBody: 16 << 10})
	if err != nil {
		f.Fatal(err)
	}
	tok, err := ca.NewEnrolmentToken(ctx, "131016", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		f.Fatal(err)
	}
	enr, err := ca.Enroll(ctx, tok, csr)
	if err != nil {
		f.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(enr.Certificate)
	if err != nil {
		f.Fatal(err)
	}
	a := &fuzzAPI{srv: srv, st: st, raw: raw, tlsConn: &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}}
	code, body := a.do(f, "POST", "/v1/channels", []byte(`{}`))
	if code != http.StatusOK && code != http.StatusCreated {
		f.Fatalf("open channel: %d %s", code, body)
	}
	if err := json.Unmarshal(body, &a.channel); err != nil {
		f.Fatal(err)
	}
	return a
}

func (a *fuzzAPI) do(t testing.TB, method, path string, body []byte) (int, []byte) {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	r.TLS = a.tlsConn
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(wire.OperatorHeader, "op-1")
	w := httptest.NewRecorder()
	a.srv.ServeHTTP(w, r)
	return w.Code, w.Body.Bytes()
}

// snapshot is every issuance, channel use and terminal row, to prove "no change".
func (a *fuzzAPI) snapshot(t testing.TB) string {
	var s1, s2 sql.NullString
	if err := a.raw.QueryRow(`SELECT group_concat(id || ':' || state || ':' || coalesce(confirm_request_id, ''), ',') FROM (SELECT * FROM issuances ORDER BY id)`).Scan(&s1); err != nil {
		t.Fatal(err)
	}
	if err := a.raw.QueryRow(`SELECT group_concat(id || ':' || coalesce(revoked_at, ''), ',') FROM (SELECT * FROM terminals ORDER BY id)`).Scan(&s2); err != nil {
		t.Fatal(err)
	}
	return s1.String + "|" + s2.String
}

func (a *fuzzAPI) lastAudit(t testing.TB) store.AuditRecord {
	r, err := a.st.LastAuditRecord(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fuzzRoutes are the JSON-body endpoints of the terminal API that New mounts (the revocation
// endpoints need a revocation service: MountRevocation); the fuzzer picks one per input.
var fuzzRoutes = []struct{ path, action string }{
	{"/v1/enroll", "terminal.enroll"},
	{"/v1/issuances", "issuance.prepare"},
	{"/v1/issuances/does-not-exist/confirm", "issuance.confirm"},
	{"/v1/issuances/does-not-exist/abort", "issuance.abort"},
	{"/v1/card-maintenance", "card.maintenance.prepare"},
}

// FuzzAPIRequest: the JSON request bodies of the terminal API (jpki/wire types) through the
// real handler with a fixed, enrolled terminal identity. Every answer is JSON: a success, or a
// problem whose code is known and whose HTTP status is the one statusOf gives it; a refused
// request changes no issuance or terminal; every request of the authenticated terminal is
// audited exactly once (enrolment refusals are counted, not audited); and no applicant
// name, address or resident code from the body reaches the answer or the audit record.
func FuzzAPIRequest(f *testing.F) {
	a := newFuzzAPI(f)
	ap := wire.Applicant{ResidentCode: "33333333333", Name: "髙橋 𠮷子", BirthDate: "1996-02-29", Sex: "2", Address: "東京都千代田区千代田1-1", CardExpiry: "2031-02-28"}
	prep, _ := json.Marshal(wire.PrepareRequest{RequestID: "r-1", ChannelID: a.channel.ChannelID, CardSerial: "CARD-3",
		InitUpdateResponse: issuancetest.CardCryptogram("CARD-3", a.channel.HostChallenge), CertType: "sign", Applicant: ap})
	f.Add(byte(1), prep)
	f.Add(byte(1), bytes.Replace(prep, []byte("1996-02-29"), []byte("1997-02-29"), 1))
	f.Add(byte(1), bytes.Replace(prep, []byte(`"cert_type":"sign"`), []byte(`"cert_type":"sign","x":1`), 1))
	f.Add(byte(1), append(bytes.Clone(prep), "{}"...))
	conf, _ := json.Marshal(wire.ConfirmRequest{RequestID: "c-1", CardResponses: [][]byte{{0x90, 0x00}}})
	f.Add(byte(2), conf)
	abort, _ := json.Marshal(wire.AbortRequest{RequestID: "a-1", Reason: "card damaged", CardWritten: true})
	f.Add(byte(3), abort)
	enr, _ := json.Marshal(wire.EnrollRequest{Token: "not-a-token", CSR: []byte{0x30, 0}})
	f.Add(byte(0), enr)
	for i := range fuzzRoutes {
		f.Add(byte(i), []byte(`{"request_id":1}`))
		f.Add(byte(i), []byte(`[`))
	}
	f.Fuzz(func(t *testing.T, route byte, body []byte) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		before, seq := a.snapshot(t), a.lastAudit(t).Seq
		status, resp := a.do(t, "POST", rt.path, body)
		if !json.Valid(resp) {
			t.Fatalf("%s answered %d with a body that is not JSON: %q", rt.path, status, resp)
		}
		if status >= 300 {
			var p wire.Problem
			if err := json.Unmarshal(resp, &p); err != nil || p.Code == "" {
				t.Fatalf("%s answered %d without a problem body: %s", rt.path, status, resp)
			}
			if want := statusOf(p.Code); want != status {
				t.Fatalf("%s: code %s answered with status %d, statusOf says %d", rt.path, p.Code, status, want)
			}
			if p.Code == wire.CodeInternal {
				t.Fatalf("%s: internal error for a client's body: %s", rt.path, resp)
			}
			if after := a.snapshot(t); after != before {
				t.Fatalf("%s: refused request (%s) changed the store", rt.path, p.Code)
			}
		}
		last := a.lastAudit(t)
		switch {
		case rt.path == "/v1/enroll" && last.Seq != seq:
			t.Fatalf("refused enrolment audited as record %d", last.Seq)
		case rt.path != "/v1/enroll" && (last.Seq != seq+1 || last.Action != rt.action):
			t.Fatalf("%s: audit went from %d to %d (%s)", rt.path, seq, last.Seq, last.Action)
		}
		var pr wire.PrepareRequest
		if json.Unmarshal(body, &pr) == nil {
			for _, v := range []string{pr.Applicant.Name, pr.Applicant.Address, pr.Applicant.FormerSurname, pr.Applicant.Alias, pr.Applicant.ResidentCode} {
				if len(v) < 6 || (strings.Trim(v, "0123456789") != "" && !hasNonASCII(v)) {
					continue // too short or plain ASCII words, which fixed messages may contain
				}
				if bytes.Contains(resp, []byte(v)) || strings.Contains(last.Detail, v) || strings.Contains(last.Target, v) {
					t.Fatalf("%s: personal data %q in the answer or the audit record", rt.path, v)
				}
			}
		}
	})
}

func hasNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}
