package campaign

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// The same seed and case number draw the same fault: what makes `-seed S -from K -n 1` a
// replay of case K.
func TestDrawIsReplayable(t *testing.T) {
	for k := 0; k < 200; k++ {
		a := Draw(42, k, AllKinds, 2*time.Second, 30*time.Second)
		b := Draw(42, k, AllKinds, 2*time.Second, 30*time.Second)
		if a != b {
			t.Fatalf("case %d drew %v then %v", k, a, b)
		}
		if a.When < 0 || a.When >= 2*time.Second {
			t.Fatalf("case %d: moment %v outside the operation", k, a.When)
		}
	}
	if Draw(42, 7, AllKinds, time.Second, time.Second) == Draw(43, 7, AllKinds, time.Second, time.Second) &&
		Draw(42, 8, AllKinds, time.Second, time.Second) == Draw(43, 8, AllKinds, time.Second, time.Second) {
		t.Error("another seed draws the same faults")
	}
}

// Over a long run every kind is drawn.
func TestDrawCoversEveryKind(t *testing.T) {
	seen := map[Kind]bool{}
	for k := 0; k < 1000; k++ {
		seen[Draw(1, k, AllKinds, time.Second, time.Second).Kind] = true
	}
	for _, k := range AllKinds {
		if !seen[k] {
			t.Errorf("kind %s never drawn in 1000 cases", k)
		}
	}
}

// The card faults are in vcard.Faults.Apply's syntax; the database kinds need PostgreSQL.
func TestUsableKinds(t *testing.T) {
	use, dropped := usableKinds(AllKinds, "sqlite", nil)
	if len(use)+len(dropped) != len(AllKinds) {
		t.Fatalf("%d + %d kinds", len(use), len(dropped))
	}
	for _, k := range dropped {
		if k != KindDBRestart && k != KindDBCut {
			t.Errorf("%s left out on sqlite", k)
		}
	}
	if use, _ := usableKinds(AllKinds, "postgres", nil); len(use) != len(AllKinds) {
		t.Errorf("postgres: %d of %d kinds usable", len(use), len(AllKinds))
	}
}

func TestReportTable(t *testing.T) {
	r := NewReport(9, "sqlite")
	r.Add(CaseResult{Op: "issue", Fault: Fault{Kind: KindNone}, Outcome: "delivered", Fired: true, Resolve: time.Second})
	r.Add(CaseResult{Op: "issue", Fault: Fault{Kind: KindKillServe}, Outcome: "revoked", Fired: true, Resolve: 3 * time.Second})
	r.Add(CaseResult{Op: "issue", Fault: Fault{Kind: KindKillServe}, Outcome: "delivered", Resolve: 5 * time.Second})
	var b bytes.Buffer
	r.Table(&b)
	for _, want := range []string{"| none | 1 | 1 | 1 | 0 |", "| kill-serve | 2 | 1 | 1 | 1 | 0 | 0 | 0 | 0 | 3.0 s | 5.0 s |", "| **all** | 3 | 2 | 2 | 1 |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
