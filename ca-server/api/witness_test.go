package api_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"madoguchi/ca-server/api"
	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/store"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// testWitness is the env's terminal audit witness: receipts signed by the env's audit
// checkpoint key ak (ECDSA here; the HSM's RSA key in ca-server/audit's receipt test and in the
// terminal's end-to-end test), with a self-signed certificate as the ceremony makes one.
func testWitness(t *testing.T, st *store.SQLite, ak *ecdsa.PrivateKey) *api.Witness {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "test audit checkpoint key"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ak.Public(), ak)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := audit.NewReceiptSigner(ak, cert, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &api.Witness{Heads: st, Receipts: rs}
}

func chainHash(n int) []byte { h := sha256.Sum256([]byte{byte(n)}); return h[:] }

// TestTerminalAuditWitness drives the witness endpoints over the real mTLS listener: receipts
// verify under the audit checkpoint key (and name the terminal, seq and hash); the CA keeps the
// last head per terminal in its own audit log; a head that goes backwards or forks from a
// witnessed one, or whose anchor is not the witnessed hash, is refused with 409 and its code,
// audited, and changes nothing; each terminal has its own heads; malformed heads are 400.
func TestTerminalAuditWitness(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	certA, enrA := e.enrol(e.ca)
	a := e.client(certA)
	certB, _ := e.enrol(e.ca)
	b := e.client(certB)

	latest, err := a.LatestAuditHead(ctx, "op-1")
	if err != nil || latest.Found || latest.TerminalID != enrA.TerminalID || len(latest.KeyCertificate) == 0 {
		t.Fatalf("latest before any head = %+v, %v", latest, err)
	}
	keyCert, err := x509.ParseCertificate(latest.KeyCertificate)
	if err != nil {
		t.Fatal(err)
	}
	keyID, _ := audit.KeyIDOf(e.auditK.Public())

	rc, err := a.WitnessAuditHead(ctx, "op-1", wire.AuditHeadRequest{Seq: 3, Hash: chainHash(3), NewestAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if rc.TerminalID != enrA.TerminalID || rc.Seq != 3 || !bytes.Equal(rc.Hash, chainHash(3)) || rc.KeyID != keyID {
		t.Fatalf("receipt = %+v", rc)
	}
	if err := wire.VerifyAuditReceipt(keyCert.PublicKey, rc); err != nil {
		t.Fatalf("receipt does not verify under the served key certificate: %v", err)
	}
	if err := audit.VerifyReceipt(rc, []audit.Key{{ID: keyID, Public: e.auditK.Public()}}); err != nil {
		t.Fatal(err)
	}
	forged := rc
	forged.Hash = chainHash(4)
	if err := wire.VerifyAuditReceipt(keyCert.PublicKey, forged); err == nil {
		t.Fatal("a receipt with another hash verifies")
	}
	if r := e.lastAudit(); r.Action != api.ActionAuditHead || r.Target != enrA.TerminalID || r.Result != "ok" || r.Terminal != enrA.TerminalID ||
		!strings.Contains(r.Detail, "seq=3 hash=") {
		t.Fatalf("head not recorded in the CA audit log: %+v", r)
	}

	// extend: anchored at the witnessed head
	if _, err := a.WitnessAuditHead(ctx, "op-1", wire.AuditHeadRequest{Seq: 5, Hash: chainHash(5), AnchorSeq: 3, AnchorHash: chainHash(3)}); err != nil {
		t.Fatal(err)
	}
	// the same head again (a log-out with nothing new) is fine
	if _, err := a.WitnessAuditHead(ctx, "op-1", wire.AuditHeadRequest{Seq: 5, Hash: chainHash(5), AnchorSeq: 5, AnchorHash: chainHash(5)}); err != nil {
		t.Fatal(err)
	}

	refusals := []struct {
		name   string
		req    wire.AuditHeadRequest
		code   wire.Code
		status int
		kind   error
	}{
		{"backwards", wire.AuditHeadRequest{Seq: 4, Hash: chainHash(4), AnchorSeq: 3, AnchorHash: chainHash(3)}, wire.CodeAuditHeadBackwards, 409, raclient.ErrAuditHeadRefused},
		{"fork at the witnessed seq", wire.AuditHeadRequest{Seq: 5, Hash: chainHash(50), AnchorSeq: 5, AnchorHash: chainHash(50)}, wire.CodeAuditHeadForked, 409, raclient.ErrAuditHeadRefused},
		{"fork below a new head", wire.AuditHeadRequest{Seq: 9, Hash: chainHash(9), AnchorSeq: 5, AnchorHash: chainHash(50)}, wire.CodeAuditHeadForked, 409, raclient.ErrAuditHeadRefused},
		{"stale anchor", wire.AuditHeadRequest{Seq: 9, Hash: chainHash(9), AnchorSeq: 3, AnchorHash: chainHash(3)}, wire.CodeAuditAnchorStale, 409, raclient.ErrAuditAnchorStale},
		{"no anchor after a witnessed head", wire.AuditHeadRequest{Seq: 9, Hash: chainHash(9)}, wire.CodeAuditAnchorStale, 409, raclient.ErrAuditAnchorStale},
		{"short hash", wire.AuditHeadRequest{Seq: 9, Hash: []byte{1, 2}, AnchorSeq: 5, AnchorHash: chainHash(5)}, wire.CodeInvalidRequest, 400, raclient.ErrInvalidRequest},
		{"anchor after head", wire.AuditHeadRequest{Seq: 9, Hash: chainHash(9), AnchorSeq: 10, AnchorHash: chainHash(10)}, wire.CodeInvalidRequest, 400, raclient.ErrInvalidRequest},
	}
	for _, r := range refusals {
		e.logs.Reset()
		_, err := a.WitnessAuditHead(ctx, "op-1", r.req)
		wantCode(t, r.name, err, r.code, r.status)
		// serve's log raises the tamper alarm for a head that contradicts a witnessed one,
		// and not for a stale anchor: that is a terminal which lost a receipt (killed, or its
		// fsyncs failed, between the send and keeping the answer: the fault campaign's
		// fsync-error case) and re-anchors by protocol.
		logs := e.logs.String()
		tamper := strings.Contains(logs, "level=ERROR") && strings.Contains(logs, "rewritten or replaced")
		switch r.code {
		case wire.CodeAuditHeadBackwards, wire.CodeAuditHeadForked:
			if !tamper {
				t.Errorf("%s: no tamper alarm in serve's log:\n%s", r.name, logs)
			}
		case wire.CodeAuditAnchorStale:
			if tamper || strings.Contains(logs, "level=ERROR") {
				t.Errorf("%s: a stale anchor logged as an error:\n%s", r.name, logs)
			}
		}
		if !errors.Is(err, r.kind) {
			t.Errorf("%s: %v is not %v", r.name, err, r.kind)
		}
		rec := e.lastAudit()
		if rec.Action != api.ActionAuditHead || rec.Result != string(r.code) || rec.Target != enrA.TerminalID {
			t.Errorf("%s: refusal not audited: %+v", r.name, rec)
		}
		if l, err := a.LatestAuditHead(ctx, "op-1"); err != nil || !l.Found || l.Seq != 5 || !bytes.Equal(l.Hash, chainHash(5)) {
			t.Fatalf("%s: witnessed head changed: %+v, %v", r.name, l, err)
		}
	}

	// another terminal's heads are its own
	if _, err := b.WitnessAuditHead(ctx, "op-2", wire.AuditHeadRequest{Seq: 1, Hash: chainHash(1)}); err != nil {
		t.Fatalf("terminal B's first head: %v", err)
	}
	if l, _ := a.LatestAuditHead(ctx, "op-1"); l.Seq != 5 {
		t.Fatalf("terminal A's head moved with B's: %+v", l)
	}

	// method and authentication like every endpoint
	resp, err := e.rawClient(nil).Post(e.url+"/v1/terminal-audit/heads", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("head without a client certificate: %d", resp.StatusCode)
	}
	// the CA audit log with the head records still verifies
	if _, err := audit.Verify(ctx, e.st, e.auditK.Public()); err != nil {
		t.Fatal(err)
	}
}
