package issuance

import (
	"bytes"
	"context"
	"strings"

	"madoguchi/ca-server/store"
	"madoguchi/jpki/wire"
)

// Card ownership (issue 17; CPS §4.3.1.1; TS Arts. 5, 6). A My Number card is issued to one
// resident (番号法 Art. 17(1)) and its JPKI keys are that resident's; the CA writes a key only
// onto blank card stock or onto the applicant's own card (renewal, re-issuance after
// revocation). Writing onto another person's card would destroy a key whose certificate may
// still be valid or held, leaving the CA answering "good" or "on hold" for a key nobody has.
//
// Rules, checked after the card cryptogram verified (so the card serial is proven: only
// cards of the CA's own card-key batches authenticate, their static keys being diversified
// from the issuer master keys in the HSM) and before any key is generated:
//   - a card the CA ever delivered a certificate to, or is issuing or holds one for, for
//     another person is refused (CodeCardOtherPerson), whatever the terminal read on it;
//   - every certificate the terminal read on the card must be one the CA issued to this card
//     for the applicant: another person's is CodeCardOtherPerson, one the CA has no record of
//     on this card is CodeCardStateUnknown;
//   - a card that is not blank (certificates read, or PINs set) with no record of the
//     applicant on it is CodeCardStateUnknown: the CA cannot say what it would overwrite.
//
// BeginIssuance checks the first rule again inside its transaction (store.ErrCardOtherPerson),
// so two terminals cannot both pass the check for one card. The refusal messages carry no
// personal data: they are sent to the terminal and kept in the audit log.

// CardRecords is the part of the store the ownership check uses (store.SQLite, Postgres).
type CardRecords interface {
	CardIssuances(ctx context.Context, cardSerial string) ([]store.CardIssuance, error)
}

// checkCardContents checks the shape of what the terminal reports (a JPKI AP has two user
// certificates and two PINs; a serial is at most 20 octets, RFC 5280 §4.1.2.2).
func checkCardContents(c *wire.CardContents) error {
	if c == nil {
		return nil
	}
	if len(c.Certificates) > 2 || len(c.PINsSet) > 2 {
		return wire.Errorf(wire.CodeInvalidRequest, "card_contents: at most 2 certificates and 2 PINs")
	}
	for _, s := range c.Certificates {
		if len(s) == 0 || len(s) > 40 || strings.Trim(strings.ToLower(s), "0123456789abcdef") != "" {
			return wire.Errorf(wire.CodeInvalidRequest, "card_contents: certificate serials are 1 to 40 hexadecimal digits")
		}
	}
	for _, p := range c.PINsSet {
		if p != "sign" && p != "auth" {
			return wire.Errorf(wire.CodeInvalidRequest, "card_contents: pins_set holds \"sign\" or \"auth\"")
		}
	}
	return nil
}

// checkCardOwner applies the rules above and returns wire.CardOwnerBlank or
// wire.CardOwnerApplicant.
func (s *Service) checkCardOwner(ctx context.Context, cardSerial string, person []byte, contents *wire.CardContents) (string, error) {
	cr, ok := s.cfg.Store.(CardRecords)
	if !ok {
		return "", wire.Errorf(wire.CodeUnavailable, "the store keeps no card records; refusing to write a card whose owner is unknown")
	}
	recs, err := cr.CardIssuances(ctx, cardSerial)
	if err != nil {
		return "", storeError(err)
	}
	own, other := false, false
	for _, r := range recs {
		switch {
		case bytes.Equal(r.PersonHash, person):
			own = true
		case r.Delivered || r.State == store.StateIssuing || r.State == store.StatePrepared ||
			r.State == store.StateDelivered || r.State == store.StateHeld:
			other = true
		}
	}
	if other {
		return "", wire.Errorf(wire.CodeCardOtherPerson, "card %s holds or was delivered with another person's certificates; nothing was prepared", cardSerial)
	}
	if contents != nil {
		for _, serial := range contents.Certificates {
			var found *store.CardIssuance
			for i := range recs {
				if strings.EqualFold(strings.TrimLeft(recs[i].Serial, "0"), strings.TrimLeft(serial, "0")) {
					found = &recs[i]
					break
				}
			}
			switch {
			case found == nil:
				return "", wire.Errorf(wire.CodeCardStateUnknown, "card %s holds a certificate the CA did not deliver to it; nothing was prepared", cardSerial)
			case !bytes.Equal(found.PersonHash, person):
				return "", wire.Errorf(wire.CodeCardOtherPerson, "card %s holds another person's certificate; nothing was prepared", cardSerial)
			}
		}
	}
	if !contents.Blank() && !own {
		return "", wire.Errorf(wire.CodeCardStateUnknown, "card %s is not blank and the CA has no record of the applicant on it; nothing was prepared", cardSerial)
	}
	if own {
		return wire.CardOwnerApplicant, nil
	}
	return wire.CardOwnerBlank, nil
}

// replayCardOwner is the owner a replayed prepare answers: the first answer passed the check,
// and the terminal needs "applicant" exactly when it read the card non-blank.
func replayCardOwner(req wire.PrepareRequest) string {
	if req.CardContents.Blank() {
		return wire.CardOwnerBlank
	}
	return wire.CardOwnerApplicant
}
