package hsmissuance

import (
	"context"
	"fmt"
	"testing"
	"time"

	"madoguchi/ca-server/applicant"
	"madoguchi/ca-server/issuer"
	"madoguchi/cardio"
	"madoguchi/jpki/wire"
)

// TestEarlyRenewalSixthBirthdayWithSoftHSM: the whole CA in process (SoftHSM keys and CA
// signer, SQLite store, mTLS API, a virtual card) with the service's clock moved forward
// instead of waiting. The current certificate runs to the holder's 5th birthday, four years
// and a day from now; 30 days before that (still inside the CA key's 4-year usable period,
// TS Art. 8(3)) the holder renews onto a new card and the CA, from its own record, gives the
// 6th birthday (CPS §6.3.2.2 ①). Seen failing before the fix: the renewal got the 5th
// birthday (hsmissuance never set EarlyRenewal).
func TestEarlyRenewalSixthBirthdayWithSoftHSM(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	// Born 30 years before tomorrow (JST), skipping 29 February.
	next := f.clock.Now().In(applicant.JST).AddDate(0, 0, 1)
	if next.Month() == time.February && next.Day() == 29 {
		next = next.AddDate(0, 0, 1)
	}
	birth := applicant.NewDate(next.Year()-30, next.Month(), next.Day())
	a := applicantData("52345678901")
	a.BirthDate = birth.String()
	a.CardExpiry = applicant.DateOf(next.AddDate(15, 0, 0)).String()
	n := 0
	issue := func(card *cardio.Card, serial, kind string) wire.PrepareResponse {
		t.Helper()
		n++
		id := fmt.Sprintf("renew-%d", n)
		ch, err := f.client.OpenChannel(ctx, operator)
		if err != nil {
			t.Fatal(err)
		}
		iu, err := card.InitializeUpdate(ctx, ch.HostChallenge)
		if err != nil {
			t.Fatal(err)
		}
		prep, err := f.client.Prepare(ctx, operator, wire.PrepareRequest{RequestID: id, ChannelID: ch.ChannelID, CardSerial: serial,
			InitUpdateResponse: iu, CertType: "sign", Supersedes: kind != wire.KindNew, Kind: kind, Applicant: a})
		if err != nil {
			t.Fatalf("prepare %s: %v", kind, err)
		}
		responses, err := card.RunScript(ctx, prep.Script)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.client.Confirm(ctx, operator, prep.IssuanceID, wire.ConfirmRequest{RequestID: id + "-c", CardResponses: responses}); err != nil {
			t.Fatal(err)
		}
		return prep
	}
	card, _, serial := f.newCard(t)
	cur := parseCert(t, issue(card, serial, wire.KindNew).Certificate)
	wa, _ := ToApplicant(a)
	if want, _ := issuer.NotAfter(cur.NotBefore, &wa); !cur.NotAfter.Equal(want) {
		t.Fatalf("current certificate ends %v, want the 5th birthday %v", cur.NotAfter, want)
	}

	f.clock.Advance(time.Until(cur.NotAfter) - 30*24*time.Hour)
	card2, _, serial2 := f.newCard(t)
	renewed := parseCert(t, issue(card2, serial2, wire.KindRenewal).Certificate)
	early := wa
	early.EarlyRenewal, early.CurrentExpiry = true, applicant.DateOf(cur.NotAfter)
	sixth, err := issuer.NotAfter(renewed.NotBefore, &early)
	if err != nil {
		t.Fatal(err)
	}
	if !renewed.NotAfter.Equal(sixth) {
		fifth, _ := issuer.NotAfter(renewed.NotBefore, &wa)
		t.Fatalf("renewal 30 days before expiry ends %v, want the 6th birthday %v (the 5th is %v)", renewed.NotAfter, sixth, fifth)
	}
	if d := applicant.DateOf(renewed.NotAfter); d != birth.BirthdayIn(next.Year()+9) {
		t.Fatalf("renewed certificate ends on %v, want %v", d, birth.BirthdayIn(next.Year()+9))
	}
}
