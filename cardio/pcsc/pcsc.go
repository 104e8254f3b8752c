// Package pcsc is the PC/SC transport of the terminal's card API, on github.com/ebfe/scard:
// reader listing, card insert/removal watching, T=1 connections, GET RESPONSE and wrong-Le
// handling, transactions, and typed errors. Card implements cardio.Transport.
//
// Concurrency: a Client and a Card are safe for concurrent use; a Card serialises its
// exchanges so that a GET RESPONSE chain is never interleaved with another command. A Watcher
// uses its own PC/SC context, because pcsclite serialises calls per context and a blocked
// GetStatusChange would otherwise stall every Transmit.
package pcsc

import (
	"errors"
	"fmt"

	"github.com/ebfe/scard"

	"madoguchi/cardio/apdu"
)

// Errors callers branch on with errors.Is. Every error returned by this package that comes
// from PC/SC also wraps the scard.Error code.
var (
	// ErrNoService: pcscd is not running.
	ErrNoService = errors.New("pcsc: pc/sc service not available")
	// ErrNoReader: no reader, or the named reader does not exist (any more).
	ErrNoReader = errors.New("pcsc: reader not found")
	// ErrNoCard: the reader has no card.
	ErrNoCard = errors.New("pcsc: no card in the reader")
	// ErrCardRemoved: the card was removed (or its link failed) since it was connected.
	ErrCardRemoved = errors.New("pcsc: card removed")
	// ErrCardReset: another application reset the card; its security state is lost.
	ErrCardReset = errors.New("pcsc: card was reset")
	// ErrSharingViolation: another application holds the card exclusively.
	ErrSharingViolation = errors.New("pcsc: card in use by another application")
	// ErrShortResponse: the card answered fewer than 2 bytes. pcscd reports a link dropped in
	// the middle of an APDU as success with a 0-byte response (PLATFORM.md), so this is an
	// error, never an empty success. It is apdu.ErrShortResponse, so either name matches.
	ErrShortResponse = apdu.ErrShortResponse
	// ErrBadCommand: the command APDU is malformed (shorter than its 4-byte header, or not
	// an APDU of any case). It is refused before it reaches PC/SC: ebfe/scard panics on an
	// empty command.
	ErrBadCommand = errors.New("pcsc: malformed command apdu")
	// ErrClosed: the card or client was closed.
	ErrClosed = errors.New("pcsc: closed")
)

// Error is a PC/SC failure: which operation, on which reader, the typed kind and the
// scard code. errors.Is matches both the kind (ErrCardRemoved…) and the scard.Error.
type Error struct {
	Op     string
	Reader string
	Kind   error // one of the sentinel errors above, or nil for an unclassified code
	Code   scard.Error
}

func (e *Error) Error() string {
	kind := "pc/sc failure"
	if e.Kind != nil {
		kind = e.Kind.Error()
	}
	if e.Reader != "" {
		return fmt.Sprintf("%s (%s on %q: 0x%08X %s)", kind, e.Op, e.Reader, uint32(e.Code), e.Code.Error())
	}
	return fmt.Sprintf("%s (%s: 0x%08X %s)", kind, e.Op, uint32(e.Code), e.Code.Error())
}

// Unwrap returns the kind and the scard code.
func (e *Error) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Code}
	}
	return []error{e.Kind, e.Code}
}

// kindOf classifies a PC/SC return code.
func kindOf(code scard.Error) error {
	switch code {
	case scard.ErrNoService, scard.ErrServiceStopped:
		return ErrNoService
	case scard.ErrNoReadersAvailable, scard.ErrUnknownReader, scard.ErrReaderUnavailable:
		return ErrNoReader
	case scard.ErrNoSmartcard:
		return ErrNoCard
	// Just after a removal pcscd answers NOT_TRANSACTED, after its next presence poll
	// REMOVED_CARD (PLATFORM.md); an unpowered or unresponsive card is as good as gone.
	case scard.ErrRemovedCard, scard.ErrNotTransacted, scard.ErrUnpoweredCard, scard.ErrUnresponsiveCard:
		return ErrCardRemoved
	case scard.ErrResetCard:
		return ErrCardReset
	case scard.ErrSharingViolation:
		return ErrSharingViolation
	case scard.ErrInvalidHandle:
		return ErrClosed
	}
	return nil
}

// wrap turns an error from scard into an *Error; other errors pass unchanged.
func wrap(op, reader string, err error) error {
	if err == nil {
		return nil
	}
	var code scard.Error
	if !errors.As(err, &code) {
		return fmt.Errorf("pcsc: %s: %w", op, err)
	}
	return &Error{Op: op, Reader: reader, Kind: kindOf(code), Code: code}
}
