package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

var t0 = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

func openTest(t *testing.T) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.db")
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func sum(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func randHex(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}

// randSerial is a certificate serial as the issuer makes them: 128 random
// bits with the top bit clear and the next set, written as lowercase hex
// without leading zeros (the store orders serials by length, then text).
func randSerial(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[0] = b[0]&0x7f | 0x40
	return fmt.Sprintf("%x", b)
}

// enrol creates a terminal through a token, as tlsca does.
func enrol(t testing.TB, s Writer, id string) Terminal {
	t.Helper()
	ctx := context.Background()
	tok := sum("token-" + id)
	if err := s.CreateEnrolmentToken(ctx, EnrolmentToken{TokenSHA256: tok, Municipality: "131016", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	term, err := s.EnrolTerminal(ctx, tok, Terminal{ID: id, CertSerial: "serial-" + id}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetTerminalCertificate(ctx, id, sum("cert-"+id), t0.AddDate(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	return term
}

// begin opens a channel, records a fresh key and begins an issuance.
func begin(t testing.TB, s Writer, terminal, request string, person []byte, typ CertType, supersedes bool, now time.Time) (Issuance, error) {
	t.Helper()
	return beginOn(t, s, terminal, request, person, typ, supersedes, now, cardFor(person))
}

// cardFor is the person's own card in these tests (issue 17: one card, one person).
func cardFor(person []byte) string {
	if bytes.Equal(person, sum("person")) {
		return "card1"
	}
	return fmt.Sprintf("card-%x", person[:4])
}

// beginOn is begin with the card named.
func beginOn(t testing.TB, s Writer, terminal, request string, person []byte, typ CertType, supersedes bool, now time.Time, card string) (Issuance, error) {
	t.Helper()
	ctx := context.Background()
	ch := Channel{ID: "ch-" + randHex(t), TerminalID: terminal, HostChallenge: []byte("12345678"), CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	if err := s.CreateChannel(ctx, ch); err != nil {
		t.Fatal(err)
	}
	key := sum(randHex(t))
	if err := s.RecordKeyFingerprint(ctx, key, now); err != nil {
		t.Fatal(err)
	}
	is := Issuance{ID: "is-" + randHex(t), TerminalID: terminal, RequestID: request, RequestSHA256: sum(request),
		OperatorID: "op1", ChannelID: ch.ID, CardSerial: card, PersonHash: person, CertType: typ, Supersedes: supersedes,
		Serial: randSerial(t), KeySHA256: key, Deadline: now.Add(10 * time.Minute)}
	return is, s.BeginIssuance(ctx, is, now)
}

func deliver(t testing.TB, s Writer, is Issuance, now time.Time) Issuance {
	t.Helper()
	ctx := context.Background()
	if _, err := s.MarkPrepared(ctx, is.ID, []byte("der-"+is.ID), []byte("script"), []byte("chan"), now); err != nil {
		t.Fatal(err)
	}
	got, err := s.ConfirmIssuance(ctx, is.ID, "confirm-"+is.ID, sum("responses"), now)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestOpenConfiguresSQLiteAndMigratesOnce(t *testing.T) {
	s, path := openTest(t)
	ctx := context.Background()
	var mode string
	var fk, sync int
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := s.w.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if err := s.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || fk != 1 || sync != 2 {
		t.Fatalf("journal_mode=%s foreign_keys=%d synchronous=%d, want wal 1 2", mode, fk, sync)
	}
	ms, _ := migrations()
	if v, err := s.SchemaVersion(ctx); err != nil || v != len(ms) {
		t.Fatalf("schema version %d, %v; want %d", v, err, len(ms))
	}
	enrol(t, s, "t1")
	s.Close()
	s2, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Terminal(ctx, "t1"); err != nil {
		t.Fatalf("data lost on reopen: %v", err)
	}
	// the read pool refuses writes
	if _, err := s2.r.ExecContext(ctx, "DELETE FROM terminals"); err == nil {
		t.Fatal("read pool accepted a write")
	}
}

func TestForeignKeysEnforced(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		err := s.CreateChannel(context.Background(), Channel{ID: "c", TerminalID: "nobody", HostChallenge: []byte{1}, CreatedAt: t0, ExpiresAt: t0})
		if err == nil {
			t.Fatal("channel for an unknown terminal accepted")
		}
	})
}

func TestEnrolmentTokenSingleUseAndExpiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		tok := sum("tok")
		if err := s.CreateEnrolmentToken(ctx, EnrolmentToken{TokenSHA256: tok, Municipality: "131016", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.EnrolTerminal(ctx, tok, Terminal{ID: "a", CertSerial: "01"}, t0.Add(time.Hour)); !errors.Is(err, ErrTokenInvalid) {
			t.Fatalf("expired token: %v, want ErrTokenInvalid", err)
		}
		term, err := s.EnrolTerminal(ctx, tok, Terminal{ID: "a", CertSerial: "01"}, t0.Add(time.Minute))
		if err != nil || term.Municipality != "131016" {
			t.Fatalf("enrol: %+v %v", term, err)
		}
		if _, err := s.EnrolTerminal(ctx, tok, Terminal{ID: "b", CertSerial: "02"}, t0.Add(time.Minute)); !errors.Is(err, ErrTokenInvalid) {
			t.Fatalf("reused token: %v, want ErrTokenInvalid", err)
		}
		if _, err := s.EnrolTerminal(ctx, sum("other"), Terminal{ID: "b", CertSerial: "02"}, t0); !errors.Is(err, ErrTokenInvalid) {
			t.Fatalf("unknown token: %v, want ErrTokenInvalid", err)
		}
		if _, err := s.Terminal(ctx, "b"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("refused enrolment left a terminal: %v", err)
		}
		rev, err := s.RevokeTerminal(ctx, "01", t0.Add(2*time.Minute))
		if err != nil || !rev.Revoked() {
			t.Fatalf("revoke: %+v %v", rev, err)
		}
		if _, err := s.RevokeTerminal(ctx, "ff", t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("revoke unknown: %v", err)
		}
	})
}

func TestIssuanceLifecycleAndIdempotentConfirm(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		enrol(t, s, "t1")
		person := sum("person-1")
		is, err := begin(t, s, "t1", "req-1", person, CertSign, false, t0)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := s.Issuance(ctx, is.ID)
		if got.State != StateIssuing || got.DER != nil {
			t.Fatalf("after begin: %s", got.State)
		}
		if _, err := s.ConfirmIssuance(ctx, is.ID, "c1", sum("r"), t0); !errors.Is(err, ErrState) {
			t.Fatalf("confirm of issuing: %v, want ErrState", err)
		}
		p, err := s.MarkPrepared(ctx, is.ID, []byte("der"), []byte("script"), []byte("chan"), t0)
		if err != nil || p.State != StatePrepared || string(p.Script) != "script" {
			t.Fatalf("prepared: %+v %v", p.State, err)
		}
		if _, err := s.MarkPrepared(ctx, is.ID, []byte("der2"), nil, nil, t0); !errors.Is(err, ErrState) {
			t.Fatalf("second MarkPrepared: %v", err)
		}
		d, err := s.ConfirmIssuance(ctx, is.ID, "c1", sum("r"), t0.Add(time.Minute))
		if err != nil || d.State != StateDelivered || d.Script != nil {
			t.Fatalf("confirm: %s script=%q %v", d.State, d.Script, err)
		}
		again, err := s.ConfirmIssuance(ctx, is.ID, "c1", sum("r"), t0.Add(2*time.Minute))
		if err != nil || !again.DeliveredAt.Equal(d.DeliveredAt) {
			t.Fatalf("replayed confirm: %v %v", again.DeliveredAt, err)
		}
		if _, err := s.ConfirmIssuance(ctx, is.ID, "c2", sum("r"), t0); !errors.Is(err, ErrState) {
			t.Fatalf("confirm with other request id: %v, want ErrState", err)
		}
		if _, err := s.AbortIssuance(ctx, is.ID, "a1", t0); !errors.Is(err, ErrState) {
			t.Fatalf("abort of delivered: %v, want ErrState", err)
		}
		byReq, err := s.IssuanceByRequest(ctx, "t1", "req-1")
		if err != nil || byReq.ID != is.ID {
			t.Fatalf("by request: %v", err)
		}
		if _, err := begin(t, s, "t1", "req-1", sum("person-2"), CertSign, false, t0); !errors.Is(err, ErrDuplicateReq) {
			t.Fatalf("reused request id: %v, want ErrDuplicateReq", err)
		}
	})
}

func TestOneCertificatePerPersonAndType(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		enrol(t, s, "t1")
		person := sum("person-1")
		first, err := begin(t, s, "t1", "r1", person, CertSign, false, t0)
		if err != nil {
			t.Fatal(err)
		}
		// pending: even a renewal is refused while one is on its way
		if _, err := begin(t, s, "t1", "r2", person, CertSign, true, t0); !errors.Is(err, ErrPendingPerson) {
			t.Fatalf("second pending: %v, want ErrPendingPerson", err)
		}
		// the other type is independent
		if _, err := begin(t, s, "t1", "r3", person, CertAuth, false, t0); err != nil {
			t.Fatalf("auth certificate for the same person: %v", err)
		}
		old := deliver(t, s, first, t0)
		if _, err := begin(t, s, "t1", "r4", person, CertSign, false, t0); !errors.Is(err, ErrDuplicatePerson) {
			t.Fatalf("second valid: %v, want ErrDuplicatePerson", err)
		}
		renewal, err := begin(t, s, "t1", "r5", person, CertSign, true, t0.Add(time.Hour))
		if err != nil {
			t.Fatalf("renewal: %v", err)
		}
		// until delivery the old certificate stays valid
		if v, err := s.ValidIssuance(ctx, person, CertSign); err != nil || v.ID != old.ID {
			t.Fatalf("valid before renewal delivered: %v %v", v.ID, err)
		}
		deliver(t, s, renewal, t0.Add(time.Hour))
		v, err := s.ValidIssuance(ctx, person, CertSign)
		if err != nil || v.ID != renewal.ID {
			t.Fatalf("valid after renewal: %v %v", v.ID, err)
		}
		o, _ := s.Issuance(ctx, old.ID)
		if o.State != StateRevoked || o.RevocationReason != ReasonSuperseded {
			t.Fatalf("old certificate: %s reason %d, want revoked 4", o.State, o.RevocationReason)
		}
		// the index itself refuses a second valid row, whatever the code does
		_, err = s.w.ExecContext(ctx, `UPDATE issuances SET state='delivered', revoked_at=NULL, revocation_reason=NULL WHERE id=?`, old.ID)
		if !isUnique(err, "") {
			t.Fatalf("partial unique index did not refuse two valid certificates: %v", err)
		}
	})
}

func TestKeyFingerprintNeverTwice(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		k := sum("key")
		if err := s.RecordKeyFingerprint(ctx, k, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordKeyFingerprint(ctx, k, t0.Add(time.Hour)); !errors.Is(err, ErrDuplicateKey) {
			t.Fatalf("second record: %v, want ErrDuplicateKey", err)
		}
	})
}

func TestChannelSingleUseExpiryAndOwnership(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		enrol(t, s, "t1")
		enrol(t, s, "t2")
		mk := func(id, term string) {
			if err := s.CreateChannel(ctx, Channel{ID: id, TerminalID: term, HostChallenge: []byte{1}, CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}
		mk("c1", "t1")
		mk("c2", "t2")
		try := func(ch, req string, now time.Time) error {
			key := sum(randHex(t))
			if err := s.RecordKeyFingerprint(ctx, key, now); err != nil {
				t.Fatal(err)
			}
			return s.BeginIssuance(ctx, Issuance{ID: "is-" + req, TerminalID: "t1", RequestID: req, RequestSHA256: sum(req), OperatorID: "op",
				ChannelID: ch, CardSerial: "c", PersonHash: sum(req), CertType: CertAuth, Serial: randHex(t), KeySHA256: key, Deadline: now.Add(time.Minute)}, now)
		}
		if err := try("c2", "r0", t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("other terminal's channel: %v, want ErrNotFound", err)
		}
		if err := try("c1", "r1", t0.Add(time.Minute)); !errors.Is(err, ErrChannelExpired) {
			t.Fatalf("expired channel: %v", err)
		}
		if err := try("c1", "r2", t0); err != nil {
			t.Fatal(err)
		}
		if err := try("c1", "r3", t0); !errors.Is(err, ErrChannelUsed) {
			t.Fatalf("reused channel: %v", err)
		}
	})
}

func TestAbortAndOverdue(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		enrol(t, s, "t1")
		a, _ := begin(t, s, "t1", "r1", sum("p1"), CertSign, false, t0)
		b, _ := begin(t, s, "t1", "r2", sum("p2"), CertSign, false, t0)
		if _, err := s.MarkPrepared(ctx, b.ID, []byte("der"), []byte("s"), nil, t0); err != nil {
			t.Fatal(err)
		}
		ab, err := s.AbortIssuance(ctx, a.ID, "abort-1", t0)
		if err != nil || ab.State != StateRevoked || ab.RevocationReason != 0 {
			t.Fatalf("abort: %v %v", ab.State, err)
		}
		if _, err := s.AbortIssuance(ctx, a.ID, "abort-1", t0.Add(time.Second)); err != nil {
			t.Fatalf("replayed abort: %v", err)
		}
		if _, err := s.AbortIssuance(ctx, a.ID, "abort-2", t0); !errors.Is(err, ErrState) {
			t.Fatalf("abort with another id: %v", err)
		}
		if od, _ := s.OverdueIssuances(ctx, t0.Add(5*time.Minute), 10); len(od) != 0 {
			t.Fatalf("overdue before deadline: %d", len(od))
		}
		od, err := s.OverdueIssuances(ctx, t0.Add(11*time.Minute), 10)
		if err != nil || len(od) != 1 || od[0].ID != b.ID {
			t.Fatalf("overdue: %v %v", od, err)
		}
		if _, err := s.AbortIssuance(ctx, "nope", "", t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("abort unknown: %v", err)
		}
	})
}

func TestAuditAppendOrder(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		if _, err := s.LastAuditRecord(ctx); !errors.Is(err, ErrNotFound) {
			t.Fatalf("empty log: %v", err)
		}
		for i := int64(1); i <= 3; i++ {
			op := "alice"
			if i == 2 {
				op = "bob"
			}
			if err := s.AppendAudit(ctx, AuditRecord{Seq: i, At: t0, Operator: op, Action: "x", PrevHash: []byte{}, Hash: []byte{byte(i)}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AppendAudit(ctx, AuditRecord{Seq: 5, At: t0, PrevHash: []byte{}, Hash: []byte{5}}); !errors.Is(err, ErrConflict) {
			t.Fatalf("gap: %v", err)
		}
		recs, _ := s.AuditRecordsByOperator(ctx, "alice", 0, 10)
		if len(recs) != 2 || recs[0].Seq != 1 || recs[1].Seq != 3 {
			t.Fatalf("by operator: %+v", recs)
		}
	})
}
