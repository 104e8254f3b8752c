package app_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"madoguchi/app"
	"madoguchi/app/apperr"
)

// TestResidentFileSingleUseUnderConcurrency: a resident-record file is imported at most once
// (TS Art. 3(1)(2); single use) even when imports race, inside one process and between two
// processes on the same database (the GUI and the CLI): exactly one import succeeds, every
// other one is refused with kind FileUsed.
func TestResidentFileSingleUseUnderConcurrency(t *testing.T) {
	var dbPath string
	f, cs, rc := counterWith(t, func(c *app.Config) { dbPath = c.DBPath })
	ctx := context.Background()
	cfg := app.Config{DBPath: dbPath, Clock: f.clock, Fingerprint: f.fp, Argon2: cheap}
	other, err := app.Open(ctx, cfg) // a second process's view of the same database
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	f.fp.Present("f-rc")
	rc2, err := other.LoginFingerprint(ctx, "rc1", nil)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		data, err := cs.ExportResidentFile(ctx, "90000000011")
		if err != nil {
			t.Fatal(err)
		}
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			s := rc
			if i%2 == 1 {
				s = rc2
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = s.ImportResidentFile(ctx, data)
			}()
		}
		close(start)
		wg.Wait()
		ok := 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, apperr.FileUsed):
				t.Errorf("round %d import %d: %v, want success or FileUsed", round, i, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d imports succeeded, want exactly 1", round, ok)
		}
	}
}
