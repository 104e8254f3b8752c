package issue

import (
	"context"
	"errors"
	"testing"

	"madoguchi/app/workflow"
	"madoguchi/cardio"
	"madoguchi/cardio/vcard"
)

// garbledFinalize passes every command to the card, but replaces the card's answer to
// FINALIZE (INS F0; the card has run it) with two bytes that are no ISO 7816-4 status word: a
// response garbled on the way back, as the fault campaign's garbage@N does.
type garbledFinalize struct{ next cardio.Transport }

func (g garbledFinalize) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	rsp, err := g.next.Transmit(ctx, cmd)
	if err == nil && len(cmd) >= 2 && cmd[0]&0xF0 == 0x80 && cmd[1] == 0xF0 {
		return []byte{0xD8, 0x05}, nil
	}
	return rsp, err
}

// TestGarbledFinalizeAnswerMeansCardMayHoldKey: found by the fault campaign (issue 15, seed
// 20261207, PostgreSQL run, case 45: card-garbage @APDU 19). The card committed FINALIZE, but
// its answer came back as D805, which the orchestrator took for the card's refusal ("a refused
// FINALIZE commits nothing") and so recorded no card cleanup: the card carried the key and
// the certificate of an issuance revoked before delivery, and nothing told the operator not
// to hand it out. Only the refusals the card protocol defines (docs/CARD-PROTOCOL.md §5) mean
// nothing was committed. Failed on the old code: card cleanup recorded false, want true.
func TestGarbledFinalizeAnswerMeansCardMayHoldKey(t *testing.T) {
	f := newFixture(t, workflow.UserAuthCert)
	f.card = cardio.New(garbledFinalize{f.sw})
	_, err := f.o.Issue(context.Background(), f.request())
	var ie *Error
	if !errors.As(err, &ie) || ie.Step != StepScript || !ie.Aborted {
		t.Fatalf("Issue: %v (%+v)", err, ie)
	}
	if f.vcard.Lifecycle() == vcard.LifecycleBlank {
		t.Fatal("the card did not commit FINALIZE: the test shows nothing")
	}
	if !ie.CardCleanup {
		t.Error("the error does not tell the operator that the card must be personalised again")
	}
	f.assertAllAborted(true)
}
