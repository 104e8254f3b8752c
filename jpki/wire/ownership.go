package wire

// Card ownership at prepare (issue 17): a card is written only when it is blank stock or the
// applicant's own card. A My Number card is issued to one resident (番号法 Art. 17(1)); the
// JPKI certificates on it are that resident's (TS Arts. 5, 6: the keys are generated for and
// written onto the applicant's card), so a card holding another person's certificates, or
// holding something the CA has no record of, is never written.
const (
	// CodeCardOtherPerson: the card holds, or was delivered with, another person's
	// certificates (valid, held, being issued, or delivered before). Nothing was prepared.
	CodeCardOtherPerson Code = "card_other_person"
	// CodeCardStateUnknown: the card is not blank (certificates or PINs on it) and the CA has
	// no record that explains its content: certificates the CA did not deliver to this card.
	CodeCardStateUnknown Code = "card_state_unknown"
)

// Card owners a prepare answers (PrepareResponse.CardOwner).
const (
	CardOwnerBlank     = "blank"     // no record of this card and the terminal read it blank
	CardOwnerApplicant = "applicant" // the CA's records of this card are the applicant's
)

// CardContents is what the terminal read from the card's JPKI AP before asking for a prepare,
// without any PIN: the serials (hex, as the certificate carries them) of the certificates it
// could read (the user-authentication certificate is free to read; the signature certificate
// is guarded by its PIN, JPKI AP), and which PINs are set (a blank card has none: the
// applicant sets them, CPS §6.4.1.2). No personal data.
type CardContents struct {
	Certificates []string `json:"certificates"`
	PINsSet      []string `json:"pins_set"` // "sign", "auth"
}

// Blank reports whether the card showed nothing: no certificate and no PIN set.
func (c *CardContents) Blank() bool {
	return c == nil || (len(c.Certificates) == 0 && len(c.PINsSet) == 0)
}
