package app_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/internal/e2e"
	"madoguchi/app/operator"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// fakeWitness is an in-process stand-in for the CA's audit witness (the real one, over mutual
// TLS with the HSM key, is in app/cli's TestAuditRewriteDetectedAgainstCAWitness): the same
// rules (a head must extend the last witnessed one exactly), receipts signed with an ECDSA key.
type fakeWitness struct {
	mu    sync.Mutex
	key   *ecdsa.PrivateKey
	cert  []byte
	id    string
	found bool
	seq   int64
	hash  []byte
	down  bool
	// block, when set, makes calls wait for it (or the context): a CA that does not answer
	block   chan struct{}
	entered chan struct{}
}

func newFakeWitness(t *testing.T) *fakeWitness {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "audit checkpoint"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := wire.AuditKeyID(k.Public())
	return &fakeWitness{key: k, cert: der, id: id}
}

func (f *fakeWitness) wait(ctx context.Context) error {
	f.mu.Lock()
	block, entered, down := f.block, f.entered, f.down
	f.mu.Unlock()
	if block != nil {
		if entered != nil {
			entered <- struct{}{}
		}
		select {
		case <-block:
		case <-ctx.Done():
			return &raclient.Error{Code: wire.CodeUnavailable, Err: ctx.Err()}
		}
	}
	if down {
		return &raclient.Error{Code: wire.CodeUnavailable, Err: errors.New("connection refused")}
	}
	return nil
}

func (f *fakeWitness) LatestAuditHead(ctx context.Context, _ string) (wire.WitnessedHead, error) {
	if err := f.wait(ctx); err != nil {
		return wire.WitnessedHead{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return wire.WitnessedHead{Found: f.found, TerminalID: "T-1", Seq: f.seq, Hash: f.hash, KeyCertificate: f.cert}, nil
}

func (f *fakeWitness) WitnessAuditHead(ctx context.Context, _ string, req wire.AuditHeadRequest) (wire.AuditReceipt, error) {
	if err := f.wait(ctx); err != nil {
		return wire.AuditReceipt{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	refuse := func(c wire.Code) (wire.AuditReceipt, error) {
		return wire.AuditReceipt{}, &raclient.Error{Status: 409, Code: c}
	}
	if f.found {
		switch {
		case req.Seq < f.seq:
			return refuse(wire.CodeAuditHeadBackwards)
		case req.Seq == f.seq && !bytes.Equal(req.Hash, f.hash):
			return refuse(wire.CodeAuditHeadForked)
		case req.AnchorSeq != f.seq:
			return refuse(wire.CodeAuditAnchorStale)
		case !bytes.Equal(req.AnchorHash, f.hash):
			return refuse(wire.CodeAuditHeadForked)
		}
	} else if req.AnchorSeq != 0 {
		return refuse(wire.CodeAuditAnchorStale)
	}
	f.found, f.seq, f.hash = true, req.Seq, req.Hash
	rc := wire.AuditReceipt{TerminalID: "T-1", Seq: req.Seq, Hash: req.Hash, WitnessedAt: time.Now().UTC(), KeyID: f.id, KeyCertificate: f.cert}
	sig, err := ecdsa.SignASN1(rand.Reader, f.key, wire.ReceiptDigest(rc))
	rc.Signature = sig
	return rc, err
}

func (f *fakeWitness) set(fn func(f *fakeWitness)) { f.mu.Lock(); fn(f); f.mu.Unlock() }

// TestAuditWitnessOffline: the terminal keeps the CA's receipts (log-outs send the head in the
// background), and with the CA unreachable VerifyAudit checks the chain against them and says
// the CA was not consulted. A rewrite that keeps the receipts is found; a receipt whose
// signature is broken is reported as forged; receipts under a key not pinned here vouch for
// nothing; a rewritten chain's next head is refused by the CA and recorded here.
func TestAuditWitnessOffline(t *testing.T) {
	fw := newFakeWitness(t)
	var dbPath string
	f := newFixtureWith(t, func(c *app.Config) { c.Witness, dbPath = fw, c.DBPath })
	ctx := context.Background()
	if err := f.sup.Grant(ctx, "sup", operator.Audit); err != nil {
		t.Fatal(err)
	}
	if err := f.sup.CreateOperator(ctx, "rc1", "受付 花子"); err != nil {
		t.Fatal(err)
	}
	res, err := f.t.WitnessAudit(ctx, "sup")
	if err != nil || !res.Sent {
		t.Fatalf("witness = %+v, %v", res, err)
	}
	if res, err := f.t.WitnessAudit(ctx, "-"); err != nil || res.Sent {
		t.Fatalf("a head already witnessed is sent again: %+v, %v", res, err)
	}
	rep, err := f.sup.VerifyAudit(ctx)
	if err != nil || !rep.CAConsulted || rep.Witnessed != res.Seq || rep.Receipts != 1 || rep.Unwitnessed != rep.Records-rep.Witnessed {
		t.Fatalf("verify = %+v, %v", rep, err)
	}

	// Offline with the receipts kept: the rewrite shows against the receipt.
	fw.set(func(f *fakeWitness) { f.down = true })
	e2e.RewriteAuditChain(t, dbPath, "operator.create", "rc1", "rc9", false)
	rep, err = f.sup.VerifyAudit(ctx)
	if !errors.Is(err, apperr.AuditBroken) || rep.CAConsulted || rep.Problem == nil || rep.Problem.Reason != "rewritten before a witnessed head" {
		t.Fatalf("offline verify of a rewritten chain = %+v, %v", rep, err)
	}
	if rep.CAError == "" {
		t.Fatal("the report does not say why the CA was not consulted")
	}

	// The CA is back: the rewritten chain's head is refused and the refusal recorded here.
	fw.set(func(f *fakeWitness) { f.down = false })
	if _, err := f.t.WitnessAudit(ctx, "-"); !errors.Is(err, apperr.AuditBroken) || !errors.Is(err, raclient.ErrAuditHeadRefused) {
		t.Fatalf("head of a rewritten chain: %v", err)
	}
	if r := f.lastAudit(t); r.Action != "audit.witness_refused" {
		t.Fatalf("refusal not recorded: %+v", r)
	}

	// A receipt edited to match the rewrite no longer verifies: forged.
	if _, err := f.t.DB().Exec(`UPDATE audit_receipts SET hash = (SELECT hash FROM audit_log WHERE seq = audit_receipts.seq)`); err != nil {
		t.Fatal(err)
	}
	fw.set(func(f *fakeWitness) { f.down = true })
	rep, err = f.sup.VerifyAudit(ctx)
	if !errors.Is(err, apperr.AuditBroken) || rep.Problem == nil || rep.Problem.Reason != "forged receipt" {
		t.Fatalf("verify with a forged receipt = %+v, %v", rep, err)
	}

	// Without the pinned key the receipts cannot vouch for anything (nor count as forged).
	if err := os.Remove(filepath.Join(filepath.Dir(dbPath), "ca", "audit-witness-keys.pem")); err != nil {
		t.Fatal(err)
	}
	rep, err = f.sup.VerifyAudit(ctx)
	if err != nil || rep.Unverified != 1 || rep.Receipts != 0 || rep.Witnessed != 0 || rep.CAConsulted {
		t.Fatalf("verify without pinned key = %+v, %v", rep, err)
	}
}

// TestLogoutWitnessesInBackground: a log-out sends the head without waiting for the CA (one
// that does not answer never holds the counter up), and Close waits for the send.
func TestLogoutWitnessesInBackground(t *testing.T) {
	fw := newFakeWitness(t)
	fw.block, fw.entered = make(chan struct{}), make(chan struct{}, 4)
	f := newFixtureWith(t, func(c *app.Config) { c.Witness = fw })
	ctx := context.Background()
	if err := f.sup.Logout(ctx); err != nil { // returns while the CA is not answering
		t.Fatal(err)
	}
	<-fw.entered // the send is under way
	close(fw.block)
	if err := f.t.Close(); err != nil {
		t.Fatal(err)
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if !fw.found || fw.seq < 3 {
		t.Fatalf("the log-out's head was not witnessed: found %v seq %d", fw.found, fw.seq)
	}
}
