package vcard

import (
	"context"
	"errors"
)

// InProcess connects a caller straight to a Card without pcscd, for unit tests of card logic.
// It implements cardio.Transport. The real-stack path is Link + pcscd + cardio/pcsc.
//
// Concurrency: safe for concurrent use (the Card serialises commands).
type InProcess struct {
	card *Card
}

// Insert powers card on and returns a transport to it.
func Insert(card *Card) *InProcess {
	card.PowerOn()
	return &InProcess{card: card}
}

// Transmit sends one command APDU to the card and returns its response APDU.
func (t *InProcess) Transmit(ctx context.Context, command []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(command) < 4 {
		return nil, errors.New("vcard: command apdu shorter than its 4-byte header")
	}
	return t.card.Process(command), nil
}
