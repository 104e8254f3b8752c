package audit_test

import (
	"context"
	"errors"
	"testing"

	"madoguchi/app/apperr"
	"madoguchi/app/audit"
)

// TestVerifyWitnessed checks the chain against heads witnessed outside the database: a matching
// anchor counts its records as witnessed; an anchor past the end (records cut, chain rebuilt
// shorter) or with another hash (records rewritten and every hash recomputed) is AuditBroken at
// the anchor, where plain Verify sees nothing wrong.
func TestVerifyWitnessed(t *testing.T) {
	ctx := context.Background()
	db, _ := seed(t, 6)
	h4, ok, err := audit.HashAt(ctx, db, 4)
	if err != nil || !ok {
		t.Fatal(err)
	}
	seq, head, _, err := audit.Head(ctx, db)
	if err != nil || seq != 6 {
		t.Fatalf("head = %d, %v", seq, err)
	}
	rep, err := audit.VerifyWitnessed(ctx, db, []audit.Anchor{{Seq: 4, Hash: h4, Source: "CA"}})
	if err != nil || rep.Witnessed != 4 || rep.Unwitnessed != 2 {
		t.Fatalf("verify = %+v, %v", rep, err)
	}
	rep, err = audit.VerifyWitnessed(ctx, db, []audit.Anchor{{Seq: 4, Hash: h4, Source: "CA"}, {Seq: 6, Hash: head, Source: "receipt"}})
	if err != nil || rep.Witnessed != 6 || rep.Unwitnessed != 0 {
		t.Fatalf("verify = %+v, %v", rep, err)
	}
	for name, c := range map[string]struct {
		a      audit.Anchor
		seq    int64
		reason string
	}{
		"rewritten": {audit.Anchor{Seq: 4, Hash: head, Source: "CA"}, 4, "rewritten before a witnessed head"},
		"truncated": {audit.Anchor{Seq: 9, Hash: head, Source: "CA"}, 7, "truncated before a witnessed head"},
	} {
		rep, err := audit.VerifyWitnessed(ctx, db, []audit.Anchor{c.a})
		if !errors.Is(err, apperr.AuditBroken) || rep.Problem == nil || rep.Problem.Seq != c.seq || rep.Problem.Reason != c.reason || rep.Witnessed != 0 {
			t.Errorf("%s: %+v, %v", name, rep, err)
		}
	}
	if rep, err := audit.Verify(ctx, db); err != nil || rep.Unwitnessed != 6 {
		t.Fatalf("plain verify = %+v, %v", rep, err)
	}
}
