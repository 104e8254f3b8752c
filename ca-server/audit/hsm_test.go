package audit

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"madoguchi/ca-server/hsm"
	"madoguchi/ca-server/store"
	"madoguchi/internal/testenv"
)

// hsmSigner generates an RSA-2048 checkpoint key in a real SoftHSM token
// (internal/testenv) and returns its signer.
func hsmSigner(t *testing.T) *hsm.Signer {
	t.Helper()
	tok := testenv.SoftHSM(t)
	t.Setenv("MADOGUCHI_TEST_AUDIT_PIN", tok.UserPIN)
	h, err := hsm.Open(hsm.Config{ModulePath: tok.Module, SoftHSMConf: tok.ConfPath, TokenLabel: tok.TokenLabel,
		PINSource: "env:MADOGUCHI_TEST_AUDIT_PIN", PoolSize: 1})
	if err != nil {
		t.Fatalf("open softhsm: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	kp, err := h.GenerateRSA(context.Background(), "AUDIT-CHECKPOINT", hsm.KeyOptions{Token: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := h.Signer(kp)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openStore(t *testing.T) *store.SQLite {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func record(t *testing.T, l *Log, n int, op string) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := l.Record(context.Background(), Entry{Terminal: "local", Operator: op, Action: "terminal.token", Target: "131016", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
}

// Checkpoints signed by the HSM key verify with its public key alone; the
// records of an unsigned log (a local command without custodians) are
// chained and covered by the server's next checkpoint; a checkpoint forged
// with another key is detected, whether it claims the HSM key's id or its
// own.
func TestHSMCheckpointsVerifyAndForgeryIsDetected(t *testing.T) {
	ctx := context.Background()
	signer := hsmSigner(t)
	st := openStore(t)
	server, err := Open(ctx, st, Options{Signer: signer, Every: 4, Interval: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	record(t, server, 5, "clerk") // checkpoint at 4
	local, err := OpenUnsigned(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if local.Signing() || !server.Signing() {
		t.Fatal("Signing() wrong")
	}
	record(t, local, 3, "supervisor") // chained onto 5, no checkpoint
	if err := local.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	cps, _ := st.AuditCheckpoints(ctx)
	if len(cps) != 1 || cps[0].Seq != 4 {
		t.Fatalf("checkpoints before the server's next: %+v", cps)
	}
	// The server's Log has not seen records 6..8; its next record chains on.
	record(t, server, 1, "clerk")
	if err := server.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	id, err := KeyIDOf(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	keys := []Key{{ID: id, Public: signer.Public()}}
	rep, err := VerifyKeys(ctx, st, keys)
	if err != nil || rep.Records != 9 || rep.LastCheckpoint != 9 || rep.Unprotected != 0 {
		t.Fatalf("verify with the HSM public key: %+v %v", rep, err)
	}
	cps, _ = st.AuditCheckpoints(ctx)
	if cps[len(cps)-1].KeyID != id {
		t.Fatalf("checkpoint key id %q, want %q", cps[len(cps)-1].KeyID, id)
	}

	// An attacker with the data dir but not the HSM: rewrite record 3,
	// recompute the chain and re-sign every checkpoint with another key.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherID, _ := KeyIDOf(other.Public())
	for _, claim := range []string{id, otherID} {
		forged := openStore(t)
		recs, _ := st.AuditRecords(ctx, 0, 100)
		prev, link, number := make([]byte, 32), make([]byte, 32), int64(0)
		for _, r := range recs {
			if r.Seq == 3 {
				r.Operator = "mallory"
			}
			r.PrevHash = prev
			r.Hash = RecordHash(r)
			prev = r.Hash
			if err := forged.AppendAudit(ctx, r); err != nil {
				t.Fatal(err)
			}
			if r.Seq == 4 || r.Seq == 9 {
				number++
				c := store.AuditCheckpoint{Seq: r.Seq, At: r.At, Hash: r.Hash, KeyID: claim, Number: number, PrevHash: link}
				c.Signature, _ = other.Sign(rand.Reader, checkpointDigest(c), crypto.SHA256)
				link = CheckpointLink(link, c)
				if err := forged.AppendAuditCheckpoint(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
		}
		rep, err := VerifyKeys(ctx, forged, keys)
		if !errors.Is(err, ErrTampered) {
			t.Fatalf("forgery claiming key %q not detected: %+v", claim, rep)
		}
		want := "bad-signature"
		if claim == otherID {
			want = "unknown-key"
		}
		firstProblem(t, rep, err, 4, want)
		firstProblem(t, rep, err, 9, want)
	}
}

// VerifyKeys accepts checkpoints from a key list (an older file key and the
// HSM key after migration) and refuses a checkpoint whose key is not listed.
func TestVerifyKeysAcceptsRolledKeys(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	old, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	l1, err := Open(ctx, st, Options{Signer: old, KeyID: "audit-checkpoint-file", Every: 3})
	if err != nil {
		t.Fatal(err)
	}
	record(t, l1, 3, "a")
	signer := hsmSigner(t)
	l2, err := Open(ctx, st, Options{Signer: signer, Every: 3})
	if err != nil {
		t.Fatal(err)
	}
	record(t, l2, 3, "b")
	newID, _ := KeyIDOf(signer.Public())
	both := []Key{{ID: "audit-checkpoint-file", Public: old.Public()}, {ID: newID, Public: signer.Public()}}
	if rep, err := VerifyKeys(ctx, st, both); err != nil || rep.Checkpoints != 2 {
		t.Fatalf("verify with both keys: %+v %v", rep, err)
	}
	rep, err := VerifyKeys(ctx, st, both[1:])
	firstProblem(t, rep, err, 3, "unknown-key")
}

// Several Logs appending to one store at once (the server and local
// commands) keep one unbroken chain.
func TestConcurrentLogsKeepOneChain(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	server, err := Open(ctx, st, Options{Signer: key, Every: 7})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 3; w++ {
		local, err := OpenUnsigned(ctx, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if err := local.Record(ctx, Entry{Operator: "local", Action: "x", Result: "ok"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 10; i++ {
			if err := server.Record(ctx, Entry{Operator: "server", Action: "y", Result: "ok"}); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := server.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, st, key.Public())
	if err != nil || rep.Records != 40 || rep.Unprotected != 0 {
		t.Fatalf("after concurrent appends: %+v %v", rep, err)
	}
}
