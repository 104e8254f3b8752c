package campaign

import (
	"bytes"
	"math/rand/v2"
	"slices"
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

// -draw v1 draws what the runs of 2026-12-07 drew: the faults of cases recorded in
// docs/RELIABILITY.md (seed 20261207; SQLite's kind list has no database kinds) and the
// PostgreSQL case 45 that TestShortCampaign replays, printed as that run printed them. A kind
// added to AllKinds must not change these.
func TestDrawV1ReplaysRecordedCases(t *testing.T) {
	sqlite, _ := usableKinds(DrawV1.kinds(), "sqlite", nil)
	postgres, _ := usableKinds(DrawV1.kinds(), "postgres", nil)
	for _, c := range []struct {
		kinds []Kind
		k     int
		want  string
	}{
		{sqlite, 906, "card-garbage @APDU 57"},
		{sqlite, 907, "net-delay (delay up @byte 650 for 63ms)"},
		{sqlite, 908, "net-reset (reset up @byte 4046)"},
		{postgres, 45, "card-garbage @APDU 19"},
	} {
		if got := Draw(20261207, c.k, c.kinds, 2*time.Second, 30*time.Second).String(); got != c.want {
			t.Errorf("v1 case %d: %s, recorded %s", c.k, got, c.want)
		}
	}
	if len(KindsV1) != 19 || slices.Contains(KindsV1, KindFsyncError) {
		t.Errorf("KindsV1 changed: %v", KindsV1)
	}
}

// The v1 operation choice is the first run's: a revocation when there is someone to revoke,
// the case's first number is below the revoke share and the fault needs no card; otherwise an
// issuance. With no PIN-reset share, v2 chooses the same.
func TestDrawOpV1(t *testing.T) {
	kinds, _ := usableKinds(KindsV1, "sqlite", nil)
	for k := 0; k < 2000; k++ {
		f := Draw(20261207, k, kinds, 2*time.Second, 30*time.Second)
		people := k % 7 // sometimes nobody yet
		v1 := Options{Seed: 20261207, RevokeShare: 0.1, Draw: DrawV1, PINResetShare: 0.5}
		first := rand.New(rand.NewPCG(20261207^0x0b, uint64(k)))
		want := "issue"
		if people > 0 && first.Float64() < 0.1 && !f.Kind.card() {
			want = "revoke"
		}
		if got, _ := drawOp(v1, k, people, f); got != want {
			t.Fatalf("v1 case %d: %s, the first run drew %s", k, got, want)
		}
		v2 := v1
		v2.Draw, v2.PINResetShare = DrawV2, 0
		if got, _ := drawOp(v2, k, people, f); got != want {
			t.Fatalf("v2 without PIN resets, case %d: %s, v1 %s", k, got, want)
		}
	}
}

// With a PIN-reset share, v2 draws PIN resets near that share (and only when someone was
// delivered).
func TestDrawOpPINResetShare(t *testing.T) {
	n := map[string]int{}
	for k := 0; k < 4000; k++ {
		f := Draw(9, k, AllKinds, 2*time.Second, 30*time.Second)
		op, _ := drawOp(Options{Seed: 9, RevokeShare: 0.1, PINResetShare: 0.1}, k, 3, f)
		n[op]++
		if op, _ := drawOp(Options{Seed: 9, RevokeShare: 0.1, PINResetShare: 0.1}, k, 0, f); op != "issue" {
			t.Fatalf("case %d: %s with nobody delivered", k, op)
		}
	}
	if n["pin-reset"] < 300 || n["pin-reset"] > 500 {
		t.Errorf("%d PIN resets in 4000 cases at a share of 0.1: %v", n["pin-reset"], n)
	}
}

func TestParseDrawVersion(t *testing.T) {
	for in, want := range map[string]DrawVersion{"v1": DrawV1, "v2": DrawV2, "": DrawV2} {
		if got, err := ParseDrawVersion(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := ParseDrawVersion("v3"); err == nil {
		t.Error("v3 accepted")
	}
}

// The fsync fault falls on either side at a moment inside the operation, and says which.
func TestDrawFsyncError(t *testing.T) {
	sides := map[bool]int{}
	for k := 0; k < 200; k++ {
		f := Draw(5, k, []Kind{KindFsyncError}, 2*time.Second, 30*time.Second)
		sides[f.OnCA]++
		if f.When < 0 || f.When >= 2*time.Second {
			t.Fatalf("case %d: moment %v outside the operation", k, f.When)
		}
		want := "fsync-error (terminal at "
		if f.OnCA {
			want = "fsync-error (CA at "
		}
		if !strings.HasPrefix(f.String(), want) {
			t.Fatalf("case %d: %s", k, f)
		}
	}
	if sides[true] == 0 || sides[false] == 0 {
		t.Errorf("one side only: %v", sides)
	}
}
