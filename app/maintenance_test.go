package app_test

import (
	"context"
	"crypto/rand"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/issue"
	"madoguchi/app/pinrule"
	"madoguchi/app/workflow"
	"madoguchi/assets/translations"
	"madoguchi/cardio"
	"madoguchi/cardio/perso"
	"madoguchi/cardio/scp"
	"madoguchi/cardio/vcard"
	"madoguchi/cardio/vcard/vcardtest"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// hostEndCA is an in-process CA for the maintenance unit tests: the real host end of the
// secure channel (scp over vcardtest.Issuer's card keys, perso scripts and response checks),
// without the CA's store rules (those are tested in ca-server/api over mTLS, and the whole
// path in app/issue's TestCardMaintenanceEndToEnd). refuse, when set, answers every prepare.
type hostEndCA struct {
	mu       sync.Mutex
	hc       map[string][]byte
	scripts  map[string]*perso.Script
	refuse   error
	prepared []wire.MaintenanceRequest
	done     int
}

var _ app.CardMaintenanceCA = (*hostEndCA)(nil)

func (c *hostEndCA) OpenChannel(context.Context, string) (wire.ChannelResponse, error) {
	hc, err := scp.NewHostChallenge(rand.Reader)
	if err != nil {
		return wire.ChannelResponse{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hc == nil {
		c.hc, c.scripts = map[string][]byte{}, map[string]*perso.Script{}
	}
	id := "ch-" + string(rune('a'+len(c.hc)))
	c.hc[id] = hc
	return wire.ChannelResponse{ChannelID: id, HostChallenge: hc, ExpiresAt: time.Now().Add(time.Minute)}, nil
}

func (c *hostEndCA) PrepareMaintenance(ctx context.Context, _ string, req wire.MaintenanceRequest) (wire.MaintenanceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prepared = append(c.prepared, req)
	if c.refuse != nil {
		return wire.MaintenanceResponse{}, c.refuse
	}
	sess, err := scp.NewHostSession(ctx, vcardtest.Issuer, c.hc[req.ChannelID], req.InitUpdateResponse)
	if err != nil {
		return wire.MaintenanceResponse{}, &raclient.Error{Status: 422, Code: wire.CodeCardAuthFailed, Message: err.Error()}
	}
	defer sess.Close()
	fids := map[string][2]uint16{"sign": {perso.FIDSignaturePIN, perso.FIDSignatureKey}, "auth": {perso.FIDUserAuthPIN, perso.FIDUserAuthKey}}
	var items []perso.Item
	for _, t := range req.Targets {
		if req.Operation == wire.MaintenancePINReset {
			items = append(items, perso.ResetPIN{FID: fids[t][0]})
		} else {
			items = append(items, perso.DestroyKey{FID: fids[t][1]})
		}
	}
	script, err := perso.BuildIssuanceScript(ctx, sess, items...)
	if err != nil {
		return wire.MaintenanceResponse{}, err
	}
	id := "mt-" + req.RequestID
	c.scripts[id] = script.WithoutAPDUs()
	return wire.MaintenanceResponse{MaintenanceID: id, State: wire.MaintenanceAuthorised, Operation: req.Operation, Targets: req.Targets, Script: script.APDUs()}, nil
}

func (c *hostEndCA) ConfirmMaintenance(ctx context.Context, _, id string, req wire.ConfirmRequest) (wire.MaintenanceStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	script := c.scripts[id]
	sess, err := scp.ResumeHostSession(ctx, vcardtest.Issuer, script.Session)
	if err != nil {
		return wire.MaintenanceStatus{}, err
	}
	defer sess.Close()
	if _, err := perso.VerifyResponses(sess, script, req.CardResponses); err != nil {
		return wire.MaintenanceStatus{}, &raclient.Error{Status: 422, Code: wire.CodeCardResponseFailed, Message: err.Error()}
	}
	c.done++
	return wire.MaintenanceStatus{MaintenanceID: id, State: wire.MaintenanceDone}, nil
}

// TestResetPINWithTheApplicant: after the CA-authorised reset the applicant is asked for a new
// PIN (Existing false); a birthday PIN is refused by the TS Art. 4 rules and asked again; an
// applicant who gives up leaves the PIN "not set" (kind PINNotSet, audited with the CA's
// maintenance id, case still approved), and the procedure run again sets and verifies the new
// PIN and completes the case. A CA refusal reaches the clerk as its own kind, before any PIN
// is asked. No PIN in any audit record.
func TestResetPINWithTheApplicant(t *testing.T) {
	l := vcardtest.Personalised(t, "", 0x41)
	card := cardio.New(vcard.Insert(l.Card))
	ca := &hostEndCA{}
	// The terminal's CA client and the card in its reader (the procedure takes both itself).
	f, _, rc := counterWith(t, func(c *app.Config) {
		c.CA = maintenanceCA{newFakeCA(time.Now), ca}
		c.Cards = func(context.Context) (issue.Card, func(), error) { return card, func() {}, nil }
	})
	ctx := context.Background()
	id := counterCase(t, rc, workflow.PINReset, "90000000011", licence)
	c, err := rc.Case(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	birth, err := c.Applicant.Birth()
	if err != nil {
		t.Fatal(err)
	}
	birthdayPIN := birth.Format("0102") // MMDD: guessable (TS Art. 4)

	// A CA refusal: no PIN is asked.
	ca.refuse = &raclient.Error{Status: 403, Code: wire.CodeCardOtherMunicipality, Message: "other municipality"}
	never := func(context.Context, issue.PINRequest) (pinrule.PIN, pinrule.PIN, error) {
		t.Fatal("the applicant was asked for a PIN although the CA refused")
		return pinrule.PIN{}, pinrule.PIN{}, nil
	}
	if err := rc.ResetPIN(ctx, id, pinrule.UserAuth, never); !errors.Is(err, apperr.CardOtherMunicipality) || !strings.Contains(translations.ErrorText("ja", err), "他の市区町村") {
		t.Fatalf("refused by the CA: %v (%s)", err, translations.ErrorText("ja", err))
	}
	ca.refuse = nil

	// The applicant gives up after a refused entry: the PIN stays not set.
	var asked []issue.PINRequest
	giveUp := errors.New("applicant left")
	err = rc.ResetPIN(ctx, id, pinrule.UserAuth, func(_ context.Context, req issue.PINRequest) (pinrule.PIN, pinrule.PIN, error) {
		asked = append(asked, req)
		if req.Attempt == 1 {
			return pinrule.New(birthdayPIN), pinrule.New(birthdayPIN), nil
		}
		return pinrule.PIN{}, pinrule.PIN{}, giveUp
	})
	var weak *pinrule.Error
	if !errors.Is(err, apperr.PINNotSet) || !errors.Is(err, giveUp) || len(asked) != 2 || asked[0].Existing || asked[0].Kind != pinrule.UserAuth ||
		!errors.As(asked[1].Refused, &weak) {
		t.Fatalf("applicant gave up: %v, asked %+v", err, asked)
	}
	if st, _, _ := l.Card.PINStatus(vcard.EFUserAuthPIN); st != vcard.PINNotSet {
		t.Fatalf("user-auth PIN after the reset: %v", st)
	}
	last := f.lastAudit(t)
	if last.Action != "card.pin_reset" || last.Result != audit.ResultRefused || last.Detail["error_kind"] != "pin not set" || last.Detail["maintenance_id"] == "" {
		t.Errorf("audit %+v", last)
	}
	if c, _ := rc.Case(ctx, id); c.State != workflow.Approved {
		t.Errorf("case %s after the applicant gave up", c.State)
	}

	// Again: the new PIN is set, verified, and the signature PIN is untouched.
	err = rc.ResetPIN(ctx, id, pinrule.UserAuth, func(context.Context, issue.PINRequest) (pinrule.PIN, pinrule.PIN, error) {
		return pinrule.New("5931"), pinrule.New("5931"), nil
	})
	if err != nil {
		t.Fatalf("ResetPIN: %v", err)
	}
	if err := card.VerifyPIN(ctx, cardio.UserAuth, []byte("5931")); err != nil {
		t.Fatal(err)
	}
	if err := card.VerifyPIN(ctx, cardio.Signature, []byte(l.SignPIN)); err != nil {
		t.Fatalf("signature PIN after a user-auth reset: %v", err)
	}
	if c, _ := rc.Case(ctx, id); c.State != workflow.Completed {
		t.Errorf("case %s after the reset", c.State)
	}
	if ca.done != 2 || len(ca.prepared) != 3 || ca.prepared[2].Operation != wire.MaintenancePINReset || ca.prepared[2].Targets[0] != "auth" ||
		ca.prepared[1].RequestID == ca.prepared[2].RequestID {
		t.Errorf("CA saw %+v, %d confirmations", ca.prepared, ca.done)
	}
	recs, err := audit.List(ctx, f.t.DB(), audit.Filter{Operator: "rc1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		for _, v := range r.Detail {
			v = longHex.ReplaceAllString(v, "") // ids and serials: random hex may hold any 4 digits
			if strings.Contains(v, "5931") || strings.Contains(v, birthdayPIN) {
				t.Errorf("PIN in audit record %s: %v", r.Action, r.Detail)
			}
		}
	}
}

// maintenanceCA is the counter's fake CA with hostEndCA's card maintenance: one client, as the
// terminal's (its OpenChannel is the maintenance host end's).
type maintenanceCA struct {
	*fakeCA
	*hostEndCA
}

func (m maintenanceCA) OpenChannel(ctx context.Context, op string) (wire.ChannelResponse, error) {
	return m.hostEndCA.OpenChannel(ctx, op)
}

// longHex matches the random hexadecimal ids and serials in audit details.
var longHex = regexp.MustCompile(`[0-9A-Fa-f]{16,}`)

// TestProceduresTakeCardAndCAFromTerminal (issue 16): the procedures take the CA client in
// effect (Config.CurrentCA) and the card in the terminal's reader (Config.Cards) themselves, at
// each call: without a CA they are refused before the card is opened; once a CA is there
// (enrolment at run time) the next call uses it and asks the reader for the card.
func TestProceduresTakeCardAndCAFromTerminal(t *testing.T) {
	var current app.CA
	opened := 0
	_, _, rc := counterWith(t, func(c *app.Config) {
		c.CurrentCA = func() (app.CA, error) { return current, nil }
		c.Cards = func(context.Context) (issue.Card, func(), error) {
			opened++
			return nil, nil, errors.New("pcsc: no card in the reader")
		}
	})
	ctx := context.Background()
	if _, err := rc.Issue(ctx, app.IssueRequest{CaseID: 1}); !errors.Is(err, app.ErrNoCA) || !errors.Is(err, apperr.CAUnavailable) || opened != 0 {
		t.Fatalf("issuance without a CA: %v (card opened %d times)", err, opened)
	}
	current = newFakeCA(time.Now)
	if _, err := rc.Issue(ctx, app.IssueRequest{CaseID: 1}); !errors.Is(err, app.ErrNoCard) || opened != 1 {
		t.Fatalf("issuance with a CA and no card: %v (card opened %d times)", err, opened)
	}
	kd := counterCase(t, rc, workflow.KeyDestruction, "90000000011", licence)
	if err := rc.DestroyKeys(ctx, kd); !errors.Is(err, apperr.CAUnavailable) || opened != 1 {
		t.Fatalf("key destruction with a CA that offers no card maintenance: %v (card opened %d times)", err, opened)
	}
	current = maintenanceCA{newFakeCA(time.Now), &hostEndCA{}}
	if err := rc.DestroyKeys(ctx, kd); !errors.Is(err, app.ErrNoCard) || opened != 2 {
		t.Fatalf("key destruction with no card: %v (card opened %d times)", err, opened)
	}
}
