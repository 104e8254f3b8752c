package campaign

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"madoguchi/cardio"
	"madoguchi/cardio/pcsc"
	"madoguchi/cardio/vcard"
)

// pinResetCase: one PIN (signature or user-auth, drawn) of an earlier delivered person's card
// reset at the counter (`pin-reset`: the CA authorises the card's reset script, the applicant
// sets the new PIN), with the fault. The person's card goes back in the reader from its state
// file. After recovery (the operator runs the procedure again, on a new case once the first
// is spent, until it succeeds) the certificates on that card and at the CA are unchanged and
// valid, the new PIN verifies on the card, the old one is refused.
func (r *Runner) pinResetCase(ctx context.Context, k int, f Fault, rnd *rand.Rand) (CaseResult, error) {
	res := CaseResult{K: k, Op: "pin-reset", Fault: f}
	p := &r.people[rnd.IntN(len(r.people))]
	typ, flag, which := "signature", "signature", cardio.Signature
	if rnd.IntN(2) == 1 {
		typ, flag, which = "user_auth", "user-auth", cardio.UserAuth
	}
	path := p.cards[typ]
	oldPIN, newPIN := p.sigPIN, ""
	if which == cardio.Signature {
		newPIN, _ = casePINs(r.opt.Seed^0x9e5e7, k)
		r.secrets = append(r.secrets, newPIN)
	} else {
		oldPIN = p.authPIN
		// Another of the weak-PIN-safe four-digit PINs. They are too short to look for in the
		// logs (a timestamp holds any four digits); the signature PINs stand for both there.
		for newPIN = oldPIN; newPIN == oldPIN; {
			newPIN = userAuthPINs[rnd.IntN(len(userAuthPINs))]
		}
	}
	if newPIN == oldPIN {
		return res, fmt.Errorf("the drawn new PIN equals the old one")
	}
	caseID, err := r.openMaintenance(p.code, "pin_reset")
	if err != nil {
		return res, err
	}
	r.slot.eject() // the last case's card out first: it may be this very card, its state file now final
	card, err := vcard.Open(path, nil)
	if err != nil {
		return res, err
	}
	if err := r.slot.insert(card, path, f.vcardSpec(), f.CardSeed); err != nil {
		return res, err
	}
	pins := fmt.Sprintf("%s:%s\n%s:%s\n", flag, newPIN, flag, newPIN)
	resetArgs := func(caseID string) []string {
		return []string{"-user", "rc1", "pin-reset", "-case", caseID, "-reader", r.s.Reader, "-pin", flag}
	}
	fr, err := r.faulted(f, func(killAfter time.Duration) Result {
		return r.s.CLI(CLIRun{Stdin: rcPass, PINs: pins, WithCA: true, KillAfter: killAfter, Patience: r.opt.Patience, Args: resetArgs(caseID)})
	})
	res.Fired = fr.Fired
	if err != nil {
		return res, err
	}
	run, began := fr.Result, fr.Began
	if err := r.slot.reinsert(path); err != nil {
		return res, err
	}
	// The operator runs the procedure again: on the same case first, then (a case the
	// failure completed or left unusable) on a new one.
	var failures []string
	for attempt := 0; run.Code != 0 && attempt < 6; attempt++ {
		failures = append(failures, fmt.Sprintf("exit %d: %s", run.Code, lastLines(run.Out+run.Err, 2)))
		if attempt >= 2 {
			if caseID, err = r.openMaintenance(p.code, "pin_reset"); err != nil {
				return res, err
			}
		}
		time.Sleep(500 * time.Millisecond)
		run = r.s.CLI(CLIRun{Stdin: rcPass, PINs: pins, WithCA: true, Patience: r.opt.Patience, Args: resetArgs(caseID)})
	}
	res.Resolve = time.Since(began)
	if run.Code != 0 {
		res.Outcome = "not-issued"
		res.Violations = append(res.Violations, "the PIN reset did not succeed after the fault and six retries: "+fmt.Sprint(failures))
		r.slot.eject()
		return res, nil
	}
	res.Outcome = "delivered"
	if which == cardio.Signature {
		p.sigPIN = newPIN
	} else {
		p.authPIN = newPIN
	}
	res.Violations = append(res.Violations, checkPINs(r.s, which, oldPIN, newPIN)...)
	res.Violations = append(res.Violations, r.checkCardUnchanged(ctx, p, path)...)
	r.slot.eject()
	if len(res.Violations) == 0 {
		res.Violations = append(res.Violations, r.afterCase(ctx, k)...)
	}
	return res, nil
}

// openMaintenance opens an identity-checked (the holder's own card), approved case of kind
// for resident code: a revocation or a PIN reset.
func (r *Runner) openMaintenance(code, kind string) (string, error) {
	open := r.s.CLI(CLIRun{Stdin: rcPass, Args: []string{"-user", "rc1", "case", "open", "-kind", kind, "-code", code}})
	m := caseOpened.FindStringSubmatch(open.Out)
	if open.Code != 0 || m == nil {
		return "", fmt.Errorf("case open: %s", lastLines(open.Out+open.Err, 3))
	}
	for _, args := range [][]string{
		{"-user", "rc1", "case", "identity", m[1], "-document", "my_number_card"},
		{"-user", "rc1", "case", "approve", m[1]},
	} {
		if res := r.s.CLI(CLIRun{Stdin: rcPass, Args: args}); res.Code != 0 {
			return "", fmt.Errorf("cli %v: %s", args, lastLines(res.Out+res.Err, 3))
		}
	}
	return m[1], nil
}

// checkPINs presents the old PIN (it must be refused as wrong) and then the new one (it must
// verify) to the card in the reader, as the holder would. The old one first: the new one's
// success resets the try counter the refusal used.
func checkPINs(s *Stack, which cardio.Which, oldPIN, newPIN string) []string {
	var v []string
	err := withCard(s, func(ctx context.Context, c *cardio.Card) error {
		if err := c.VerifyPIN(ctx, which, []byte(oldPIN)); !errors.Is(err, cardio.ErrWrongPIN) {
			// No PIN in the message: the log scan would count it as a leak.
			v = append(v, fmt.Sprintf("after the %s PIN reset the old PIN is not refused as wrong: %v", which, err))
		}
		if err := c.VerifyPIN(ctx, which, []byte(newPIN)); err != nil {
			v = append(v, fmt.Sprintf("after the %s PIN reset the new PIN does not verify: %v", which, err))
		}
		return nil
	})
	if err != nil {
		v = append(v, "reading the card after the PIN reset: "+err.Error())
	}
	return v
}

// withCard connects to the card in the stack's reader (waiting for it, as readCard does).
func withCard(s *Stack, f func(context.Context, *cardio.Card) error) error {
	cl, err := pcsc.Open()
	if err != nil {
		return err
	}
	defer cl.Close()
	var pc *pcsc.Card
	for i := 0; ; i++ {
		pc, err = cl.Connect(s.Reader, pcsc.Shared)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	defer pc.Close(false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return f(ctx, cardio.New(pc))
}

// checkCardUnchanged: every certificate of p on the card at path is still on it, byte for
// byte, verifies under its CA, and is still delivered at the CA (a PIN reset changes no
// certificate).
func (r *Runner) checkCardUnchanged(ctx context.Context, p *person, path string) []string {
	var v []string
	onCard, err := readCard(r.s, p.sigPIN)
	if err != nil {
		return []string{"the card is unreadable after the PIN reset: " + err.Error()}
	}
	for typ, serial := range p.serials {
		if p.cards[typ] != path {
			continue
		}
		c, err := r.st.caBySerial(ctx, serial)
		if err != nil {
			return append(v, "reading the CA store: "+err.Error())
		}
		if c == nil || c.State != "delivered" {
			state := "absent"
			if c != nil {
				state = c.State
			}
			v = append(v, fmt.Sprintf("after the PIN reset the CA's %s certificate %s is %s, not delivered", typ, serial, state))
			continue
		}
		if msg := cardHolds(r.s, onCard, typ, c.DER); msg != "" {
			v = append(v, "after the PIN reset "+msg)
		}
	}
	return v
}
