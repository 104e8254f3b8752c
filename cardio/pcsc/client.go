package pcsc

import (
	"sync"

	"github.com/ebfe/scard"
)

// Client is one PC/SC context: it lists readers and connects to cards.
type Client struct {
	mu  sync.Mutex
	ctx *scard.Context
}

// Open establishes a PC/SC context. It fails with ErrNoService when pcscd is not running.
func Open() (*Client, error) {
	ctx, err := scard.EstablishContext()
	if err != nil {
		return nil, wrap("establish context", "", err)
	}
	return &Client{ctx: ctx}, nil
}

// Close releases the context. Cards connected through it must be closed first.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		return nil
	}
	err := c.ctx.Release()
	c.ctx = nil
	return wrap("release context", "", err)
}

func (c *Client) context() (*scard.Context, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		return nil, ErrClosed
	}
	return c.ctx, nil
}

// Readers lists the reader names. No reader at all is ErrNoReader.
func (c *Client) Readers() ([]string, error) {
	ctx, err := c.context()
	if err != nil {
		return nil, err
	}
	names, err := ctx.ListReaders()
	if err != nil {
		return nil, wrap("list readers", "", err)
	}
	if len(names) == 0 {
		return nil, &Error{Op: "list readers", Kind: ErrNoReader, Code: scard.ErrNoReadersAvailable}
	}
	return names, nil
}

// ShareMode says whether other applications may use the card while it is connected.
type ShareMode int

const (
	// Exclusive: no other application may talk to the card. The counter terminal uses it during
	// personalisation, so nothing can interleave commands with the CA's script.
	Exclusive ShareMode = iota
	// Shared: other applications may connect too; use transactions to group commands.
	Shared
)

// Connect connects to the card in reader with protocol T=1 (the JPKI card's protocol).
// Errors: ErrNoReader, ErrNoCard, ErrSharingViolation, ErrNoService.
func (c *Client) Connect(reader string, mode ShareMode) (*Card, error) {
	ctx, err := c.context()
	if err != nil {
		return nil, err
	}
	sm := scard.ShareExclusive
	if mode == Shared {
		sm = scard.ShareShared
	}
	h, err := ctx.Connect(reader, sm, scard.ProtocolT1)
	if err != nil {
		return nil, wrap("connect", reader, err)
	}
	card := &Card{h: h, reader: reader}
	if st, err := h.Status(); err == nil {
		card.atr = st.Atr
	}
	return card, nil
}
