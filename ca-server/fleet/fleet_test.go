package fleet

import (
	"context"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"madoguchi/ca-server/store"
)

type fakeChanges struct {
	mu   sync.Mutex
	rows []store.StatusChange
}

func (f *fakeChanges) add(seq int64, serial string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows = append(f.rows, store.StatusChange{Seq: seq, Serial: serial})
	sort.Slice(f.rows, func(i, j int) bool { return f.rows[i].Seq < f.rows[j].Seq })
}

func (f *fakeChanges) StatusChangesAfter(_ context.Context, after int64, limit int) ([]store.StatusChange, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.StatusChange
	for _, r := range f.rows {
		if r.Seq > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeChanges) LastStatusChange(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.rows) == 0 {
		return 0, nil
	}
	return f.rows[len(f.rows)-1].Seq, nil
}

// TestFollowLateCommit: PostgreSQL hands out sequence numbers at INSERT, so
// seq 3 can commit after seq 4 is read; the follower still applies it, once,
// and applies every change exactly once.
func TestFollowLateCommit(t *testing.T) {
	src := &fakeChanges{}
	src.add(1, "old") // before the follower started: not applied
	var mu sync.Mutex
	got := map[string]int{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(ctx, FollowConfig{Store: src, Every: 5 * time.Millisecond, Settle: time.Hour, Apply: func(_ context.Context, c store.StatusChange) error {
			mu.Lock()
			got[c.Serial]++
			mu.Unlock()
			return nil
		}}, ready)
	}()
	<-ready
	src.add(2, "a")
	src.add(4, "c")
	wait := func(serial string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			mu.Lock()
			n := got[serial]
			mu.Unlock()
			if n > 0 {
				return
			}
		}
		t.Fatalf("change %s never applied", serial)
	}
	wait("c")
	src.add(3, "b") // the late commit
	wait("b")
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if got["old"] != 0 || got["a"] != 1 || got["b"] != 1 || got["c"] != 1 {
		t.Fatalf("applied %v, want a, b, c once each and not old", got)
	}
}

// TestLeaseOneHolderAndTakeover: two replicas on one store; exactly one
// holds the lease; when it stops renewing (its process killed), the other
// holds it within TTL + Every with a greater fence.
func TestLeaseOneHolderAndTakeover(t *testing.T) {
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	cfg := LeaseConfig{Store: st, Name: "jobs", TTL: 500 * time.Millisecond, Every: 50 * time.Millisecond}
	a, b := cfg, cfg
	a.Holder, b.Holder = "a", "b"
	la, err := Start(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := Start(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Stop()
	first, okA := la.Held()
	if _, okB := lb.Held(); !okA || okB {
		t.Fatalf("a holds %v, b holds %v: want a only", okA, okB)
	}
	// kill a: stop its renewals without releasing
	la.cancel()
	<-la.done
	var second store.Lease
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var ok bool
		if second, ok = lb.Held(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b never took over")
		}
	}
	if second.Fence <= first.Fence || second.Holder != "b" {
		t.Fatalf("after takeover %+v, before %+v", second, first)
	}
}
