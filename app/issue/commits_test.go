package issue

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"madoguchi/app/workflow"
)

// TestIssuanceDurableCommits counts the terminal database commits (one fsync each, WAL with
// synchronous=FULL) of one issuance of both certificates, the largest part of the counter's
// own time in BenchmarkCounterIssuance (issue 17 "Counter benchmark"). Only these must be
// durable before the action that follows them (recover.go treats prepared, written, pin set
// and verified alike):
//
//	case approved + user-auth started            (1)  before its channel
//	channel opened, prepared           × 2 types (4)  before the prepare / before the script
//	user-auth written + signature started        (1)  before the signature channel
//	signature written                            (1)  before the applicant's PIN screens
//	pin set (both), verified (both)              (2)  one transaction per step
//	user-auth delivered                          (1)  after its confirm
//	signature delivered + case completed         (1)  after its confirm
//
// 11 commits; the old code made 16 (each item's step in its own transaction, the case approval
// and the case completion on their own). Seen failing on the old code (16).
func TestIssuanceDurableCommits(t *testing.T) {
	f := newFixture(t)
	commits := 0
	f.o.cfg.committed = func(time.Duration) { commits++ }
	if _, err := f.o.Issue(context.Background(), f.request()); err != nil {
		t.Fatal(err)
	}
	if commits != 11 {
		t.Errorf("%d commits for one issuance of both certificates, want 11", commits)
	}
}

// TestCaseCompletedWithLastDelivery: the case is completed in the same transaction as its last
// certificate is journaled delivered, so a terminal killed right after that commit does not
// leave a case with every certificate delivered but still "approved" (Issue then refuses it
// with ErrNothingToIssue and nothing ever completes it). Seen failing on the old code (the
// case stayed approved).
func TestCaseCompletedWithLastDelivery(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.o.cfg.stop = func(e Entry) error {
		if e.State == workflow.IssDelivered && e.CertType == workflow.SignatureCert {
			return errStopped
		}
		return nil
	}
	if _, err := f.o.Issue(ctx, f.request()); !errors.Is(err, errStopped) {
		t.Fatalf("Issue: %v, want the simulated crash", err)
	}
	var c *workflow.Case
	err := f.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		c, err = workflow.Load(ctx, tx, f.caseID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.State != workflow.Completed {
		t.Errorf("case %s after the last delivery was committed, want %s", c.State, workflow.Completed)
	}
	for _, e := range f.journal() {
		if e.State != workflow.IssDelivered {
			t.Errorf("journal %s %s", e.CertType, e.State)
		}
	}
}
