package pcsc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ebfe/scard"

	"madoguchi/cardio/apdu"
)

// Card is a connection to the card in one reader. It implements cardio.Transport.
type Card struct {
	mu     sync.Mutex
	h      *scard.Card
	reader string
	atr    []byte
	dead   error // set when the card was removed: every later call fails with it
}

// Reader returns the reader name.
func (c *Card) Reader() string { return c.reader }

// ATR returns the card's answer-to-reset as seen at connect time.
func (c *Card) ATR() []byte { return bytes.Clone(c.atr) }

// maxGetResponse bounds a 61xx chain: 256 rounds of 256 bytes cover the largest extended
// response (65536 bytes); a card asking for more is broken.
const maxGetResponse = 256

// Transmit sends one command APDU and returns the full response (data || SW1 SW2). It
// resolves 61xx by GET RESPONSE and 6Cxx by re-sending the command with the Le the card asked
// for, so callers see one final status word. A response shorter than 2 bytes is
// ErrShortResponse; a malformed command is refused with ErrBadCommand before it reaches PC/SC.
// ctx is checked before each exchange: a single exchange cannot be interrupted. Once the card
// is reported removed (ErrCardRemoved) the connection releases itself and every later call
// fails with the same error: connect again to talk to whatever card is in the reader now.
func (c *Card) Transmit(ctx context.Context, command []byte) ([]byte, error) {
	if len(command) < 4 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadCommand, len(command))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead != nil {
		return nil, c.dead
	}
	if c.h == nil {
		return nil, ErrClosed
	}
	rsp, err := c.exchange(ctx, command)
	if err != nil {
		return nil, err
	}
	if sw1, sw2 := rsp[len(rsp)-2], rsp[len(rsp)-1]; sw1 == 0x6C {
		cmd, perr := apdu.ParseCommand(command)
		if perr != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadCommand, perr)
		}
		cmd.Ne = int(sw2)
		if cmd.Ne == 0 {
			cmd.Ne = 256
		}
		resend, eerr := cmd.Encode()
		if eerr != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadCommand, eerr)
		}
		rsp, err = c.exchange(ctx, resend)
		clear(resend) // this package's copy of the command, which may carry a PIN (VERIFY)
		if err != nil {
			return nil, err
		}
	}
	if rsp[len(rsp)-2] != 0x61 {
		return rsp, nil
	}
	data := append([]byte(nil), rsp[:len(rsp)-2]...)
	for i := 0; rsp[len(rsp)-2] == 0x61; i++ {
		if i == maxGetResponse {
			return nil, fmt.Errorf("pcsc: transmit on %q: card asked for more than %d get response rounds", c.reader, maxGetResponse)
		}
		getResponse := []byte{command[0] & 0x03, 0xC0, 0x00, 0x00, rsp[len(rsp)-1]}
		if rsp, err = c.exchange(ctx, getResponse); err != nil {
			return nil, err
		}
		data = append(data, rsp[:len(rsp)-2]...)
	}
	return append(data, rsp[len(rsp)-2:]...), nil
}

// exchange is one SCardTransmit with the error mapping.
func (c *Card) exchange(ctx context.Context, command []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rsp, err := c.h.Transmit(command)
	if err != nil {
		err = wrap("transmit", c.reader, err)
		if errors.Is(err, ErrCardRemoved) {
			// The connection is dead. pcscd keeps an exclusive claim until the handle is
			// released, which would refuse the next Connect with a sharing violation.
			c.h.Disconnect(scard.LeaveCard)
			c.h = nil
			c.dead = err
		}
		return nil, err
	}
	if len(rsp) < 2 {
		return nil, fmt.Errorf("pcsc: transmit on %q: %w: %d bytes", c.reader, ErrShortResponse, len(rsp))
	}
	return rsp, nil
}

// BeginTransaction gives this connection exclusive use of the card until EndTransaction, for
// a shared connection whose command sequence must not be interleaved.
func (c *Card) BeginTransaction() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead != nil {
		return c.dead
	}
	if c.h == nil {
		return ErrClosed
	}
	return wrap("begin transaction", c.reader, c.h.BeginTransaction())
}

// EndTransaction ends a transaction; reset resets the card, dropping its security state
// (verified PINs, secure channel).
func (c *Card) EndTransaction(reset bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == nil {
		return ErrClosed
	}
	d := scard.LeaveCard
	if reset {
		d = scard.ResetCard
	}
	return wrap("end transaction", c.reader, c.h.EndTransaction(d))
}

// Close disconnects; reset resets the card, so no verified PIN outlives the connection.
// Closing twice is harmless.
func (c *Card) Close(reset bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == nil {
		return nil
	}
	d := scard.LeaveCard
	if reset {
		d = scard.ResetCard
	}
	err := c.h.Disconnect(d)
	c.dead = ErrClosed
	c.h = nil
	return wrap("disconnect", c.reader, err)
}
