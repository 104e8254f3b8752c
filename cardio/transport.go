// Package cardio is the terminal's card API: the JPKI AP read side (certificates, PIN tries,
// PIN verification, signing), the applicant's PIN set, the relay of a CA-protected
// personalisation script and the card identity check, all over a Transport.
//
// Imports: cardio/apdu (APDUs), cardio/perso and cardio/scp (the personalisation relay and its
// secure channel), cardio/pinrule (PIN formats); nothing of app, ui or ca-server.
//
// Concurrency: a Card serialises its own commands (one APDU sequence at a time), because a
// card has one security state and interleaved SELECTs from two goroutines would corrupt it.
package cardio

import "context"

// Transport carries command APDUs to one card. cardio/pcsc implements it over PC/SC; tests
// may connect cardio directly to cardio/vcard's in-process card.
type Transport interface {
	// Transmit sends one command APDU and returns the full response APDU (data || SW1 SW2).
	// Transports resolve 61xx (GET RESPONSE) and 6Cxx (wrong Le) themselves.
	Transmit(ctx context.Context, command []byte) ([]byte, error)
}
