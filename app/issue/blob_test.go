package issue

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"madoguchi/app/workflow"
	"madoguchi/jpki/wire"
)

// keepingCA is the fake CA seen through a layer that keeps a reference to every script it
// handed the terminal, so a test can see whether the terminal erased it; breakCert makes the
// CA's certificate unreadable, a failure after the script arrived but before it is relayed.
type keepingCA struct {
	CA
	breakCert bool
	mu        sync.Mutex
	scripts   [][][]byte
}

func (k *keepingCA) Prepare(ctx context.Context, operator string, req wire.PrepareRequest) (wire.PrepareResponse, error) {
	resp, err := k.CA.Prepare(ctx, operator, req)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err == nil {
		k.scripts = append(k.scripts, resp.Script)
		if k.breakCert {
			resp.Certificate = []byte{0x30, 0x00}
		}
	}
	return resp, err
}

func (k *keepingCA) assertErased(t *testing.T) {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.scripts) == 0 {
		t.Fatal("no script was handed out")
	}
	for i, s := range k.scripts {
		for j, a := range s {
			if len(a) == 0 || !bytes.Equal(a, make([]byte, len(a))) {
				t.Errorf("script %d apdu %d (%d bytes) not erased", i, j, len(a))
			}
		}
	}
}

// TestScriptErasedOnEveryPath: the script carries the applicant's private key wrapped for the
// card; the terminal erases it after writing (TS Art. 5(iv), 6(iii)), and also when the
// issuance fails after the CA answered and before the script was relayed.
func TestScriptErasedOnEveryPath(t *testing.T) {
	for _, tc := range []struct {
		name      string
		breakCert bool
	}{{"delivered", false}, {"unreadable certificate", true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, workflow.UserAuthCert)
			ctx := context.Background()
			k := &keepingCA{CA: f.ca, breakCert: tc.breakCert}
			o, err := New(ctx, Config{DB: f.db, CA: k, Clock: f.clk})
			if err != nil {
				t.Fatal(err)
			}
			_, err = o.Issue(ctx, f.request())
			var ie *Error
			switch {
			case tc.breakCert && (!errors.As(err, &ie) || ie.Step != StepPrepare || !ie.Aborted):
				t.Fatalf("Issue with an unreadable certificate: %v, want aborted at prepare", err)
			case !tc.breakCert && err != nil:
				t.Fatalf("Issue: %v", err)
			}
			k.assertErased(t)
		})
	}
}
