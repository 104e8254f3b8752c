package raclient

import "errors"

// Card ownership refusals of prepare (ca-server/issuance/ownership.go, issue 17).
var (
	// ErrCardOtherPerson: the card holds, or was delivered with, another person's
	// certificates; the CA prepared nothing.
	ErrCardOtherPerson = errors.New("raclient: the card holds another person's certificates")
	// ErrCardStateUnknown: the card is not blank and the CA has no record explaining its
	// content; the CA prepared nothing.
	ErrCardStateUnknown = errors.New("raclient: the CA cannot account for the card's content")
)
