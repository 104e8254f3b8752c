package issue

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"madoguchi/cardio"
	"madoguchi/jpki/wire"
)

// Card ownership (issue 17; TS Arts. 5, 6; CPS §4.3.1.1). The card in the reader is written
// only when it is blank stock or the applicant's own card (renewal, re-issuance after
// revocation): writing another person's card would replace a key whose certificate may still
// be valid or held.
//
// How the terminal knows: before anything is written it reads, without any PIN, what the
// card's JPKI AP shows: the user-authentication certificate (free to read), the signature
// certificate when readable (the card guards it with the signature PIN), and which PINs are
// set. A blank card shows nothing. It sends the certificate serials and the PINs set with the
// prepare (wire.CardContents: no name, address or resident code), and the CA, which records
// the card serial of every certificate it issues and the holder of each (as a keyed hash),
// answers whose card it is (wire.PrepareResponse.CardOwner) or refuses (card_other_person,
// card_state_unknown). The terminal compares the two: a card it read non-blank is written
// only on the CA's explicit "applicant"; anything else ends the issuance before the script
// is relayed, and the prepared issuance is revoked with reason 0. The terminal itself keeps
// no register of whose card is whose, so a person's identifiers stay at the CA, hashed.

// ErrCardNotApplicants: the card is neither blank stock nor the applicant's own card, or the
// CA could not say it is. Nothing was written to it.
var ErrCardNotApplicants = errors.New("issue: the card is neither blank nor the applicant's own; nothing was written")

// readCardContents reads what the card shows before anything is written.
func readCardContents(ctx context.Context, card Card) (*wire.CardContents, error) {
	out := &wire.CardContents{}
	for _, fid := range []uint16{cardio.FileUserAuthCert, cardio.FileSignatureCert} {
		der, err := card.ReadCertificate(ctx, fid)
		switch {
		case err == nil:
			c, perr := x509.ParseCertificate(der)
			if perr != nil {
				// Something is on the card that nobody can account for.
				return nil, fmt.Errorf("%w: certificate file %04X is not a certificate: %v", ErrCardNotApplicants, fid, perr)
			}
			out.Certificates = append(out.Certificates, c.SerialNumber.Text(16))
		case errors.Is(err, cardio.ErrNotJPKICard), errors.Is(err, cardio.ErrCertificateNotPresent),
			errors.Is(err, cardio.ErrPINRequired), errors.Is(err, cardio.ErrPINNotSet):
			// nothing there, or guarded by a PIN (the PIN check below sees that one)
		default:
			return nil, err
		}
	}
	for _, p := range []struct {
		w    cardio.Which
		name string
	}{{cardio.UserAuth, "auth"}, {cardio.Signature, "sign"}} {
		_, err := card.PINTriesLeft(ctx, p.w)
		switch {
		case err == nil, errors.Is(err, cardio.ErrPINBlocked):
			out.PINsSet = append(out.PINsSet, p.name)
		case errors.Is(err, cardio.ErrPINNotSet), errors.Is(err, cardio.ErrNotJPKICard):
		default:
			return nil, err
		}
	}
	return out, nil
}

// checkCardOwner: a card read non-blank is written only when the CA says it is the
// applicant's.
func checkCardOwner(read *wire.CardContents, caOwner string) error {
	if read.Blank() || caOwner == wire.CardOwnerApplicant {
		return nil
	}
	return fmt.Errorf("%w: the card shows %d certificate(s) and %d PIN(s) set, and the CA answered owner %q",
		ErrCardNotApplicants, len(read.Certificates), len(read.PINsSet), caOwner)
}
