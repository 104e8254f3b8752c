package vcard

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultVPCDAddr is where pcscd's first vpcd reader ("Virtual PCD 00 00") listens for its
// card; the second reader ("Virtual PCD 00 01") listens on port 35964.
const DefaultVPCDAddr = "127.0.0.1:35963"

// vpcd control codes: a 1-byte frame from vpcd is one of these, not an APDU.
const (
	vpcdPowerOff = 0x00
	vpcdPowerOn  = 0x01
	vpcdReset    = 0x02
	vpcdGetATR   = 0x04
)

// Link plugs a Card into a vpcd reader: it connects to vpcd's TCP port, answers its frames
// (2-byte big-endian length + payload) and reconnects until stopped. A Link is "the card in
// the reader": while it is connected pcscd sees a card; when it drops the link the card is gone.
//
// Concurrency: Run must be called once; Faults may be changed while Run runs.
type Link struct {
	Card   *Card
	Addr   string  // vpcd address; DefaultVPCDAddr when empty
	Faults *Faults // nil: no faults (a fresh set is made)
	// RetryInterval is the pause between connection attempts; 50 ms when zero.
	RetryInterval time.Duration
	// ReinsertAfter is how long the card stays away after a dropped link (fault injection)
	// before it reconnects; 1 s when zero, so pcscd (which polls every 400 ms) surely sees
	// the card gone and reports the removal, as with a card pulled and pushed back by hand.
	ReinsertAfter time.Duration
	// Logf, if set, receives connection events (never APDU contents: they can carry PINs).
	Logf func(format string, args ...any)

	mu   sync.Mutex
	conn net.Conn
	// connects counts established connections (observable by tests via Connects).
	connects int
	connCh   chan struct{}
}

// errDropped ends a connection on purpose (fault injection).
var errDropped = errors.New("vcard: link dropped by fault injection")

// Connects returns how many times the link has connected to vpcd, and a channel closed at
// the next connection.
func (l *Link) Connects() (int, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.connCh == nil {
		l.connCh = make(chan struct{})
	}
	return l.connects, l.connCh
}

func (l *Link) logf(format string, args ...any) {
	if l.Logf != nil {
		l.Logf(format, args...)
	}
}

// Run keeps the card connected to vpcd until ctx is done, and returns ctx.Err() then. A
// dropped connection powers the card off (its security state is lost, as when a card is
// pulled) and is retried; a removed card (Faults.Remove) stays away until Faults.Insert.
func (l *Link) Run(ctx context.Context) error {
	if l.Card == nil {
		return errors.New("vcard: link without a card")
	}
	addr := l.Addr
	if addr == "" {
		addr = DefaultVPCDAddr
	}
	retry := l.RetryInterval
	if retry <= 0 {
		retry = 50 * time.Millisecond
	}
	l.mu.Lock()
	if l.Faults == nil {
		l.Faults = NewFaults()
	}
	faults := l.Faults
	if l.connCh == nil {
		l.connCh = make(chan struct{})
	}
	l.mu.Unlock()
	faults.mu.Lock()
	faults.onRemove = l.closeConn
	faults.mu.Unlock()

	stop := context.AfterFunc(ctx, l.closeConn)
	defer stop()
	var d net.Dialer
	for {
		if removed, changed := faults.Removed(); removed {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-changed:
				continue
			}
		}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(retry):
			}
			continue
		}
		l.mu.Lock()
		l.conn = conn
		l.connects++
		close(l.connCh)
		l.connCh = make(chan struct{})
		l.mu.Unlock()
		// A removal or stop between dialling and publishing conn would be missed: check again.
		if removed, _ := faults.Removed(); removed || ctx.Err() != nil {
			l.closeConn()
		}
		l.logf("vcard: connected to vpcd at %s", addr)
		err = l.serve(ctx, conn, faults)
		l.closeConn()
		l.Card.PowerOff()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.logf("vcard: link to %s ended: %v", addr, err)
		if errors.Is(err, errDropped) {
			wait := l.ReinsertAfter
			if wait <= 0 {
				wait = time.Second
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
	}
}

func (l *Link) closeConn() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		l.conn.Close()
		l.conn = nil
	}
}

// quickAck re-enables TCP_QUICKACK: vpcd writes the length and the payload in two sends
// without TCP_NODELAY, and delayed ACKs would stall every APDU about 40 ms (PLATFORM.md). The
// kernel clears the flag again by itself, so it is set before each read.
func quickAck(rc syscall.RawConn) {
	if rc == nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
	})
}

// serve answers vpcd's frames on conn until the connection ends.
func (l *Link) serve(ctx context.Context, conn net.Conn, faults *Faults) error {
	var rc syscall.RawConn
	if tc, ok := conn.(*net.TCPConn); ok {
		rc, _ = tc.SyscallConn()
		_ = tc.SetNoDelay(true)
	}
	var header [2]byte
	out := make([]byte, 0, 2+258)
	var pending []byte // response data still waiting for GET RESPONSE (chunking fault)
	for {
		quickAck(rc)
		if _, err := io.ReadFull(conn, header[:]); err != nil {
			return err
		}
		quickAck(rc)
		n := int(binary.BigEndian.Uint16(header[:]))
		payload := make([]byte, n)
		if _, err := io.ReadFull(conn, payload); err != nil {
			return err
		}
		var rsp []byte
		switch n {
		case 0:
			continue
		case 1:
			switch payload[0] {
			case vpcdPowerOff:
				l.Card.PowerOff()
			case vpcdPowerOn:
				l.Card.PowerOn()
			case vpcdReset:
				l.Card.Reset()
			case vpcdGetATR:
				rsp = l.Card.ATR()
			default:
				return fmt.Errorf("vcard: unknown vpcd control code %02X", payload[0])
			}
			if rsp == nil {
				continue
			}
		default:
			act := faults.next()
			if act.drop {
				return errDropped
			}
			if act.delay > 0 {
				t := time.NewTimer(act.delay)
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
			}
			switch {
			case act.hasSW:
				rsp = status(act.sw)
			case pending != nil && len(payload) == 5 && payload[1] == 0xC0:
				rsp, pending = nextChunk(pending, int(payload[4]), act.chunk)
			default:
				pending = nil
				rsp = l.Card.Process(payload)
				if act.chunk > 0 && len(rsp)-2 > act.chunk && rsp[len(rsp)-2] == 0x90 {
					pending = rsp[:len(rsp)-2]
					rsp, pending = nextChunk(pending, act.chunk, act.chunk)
				}
			}
			if act.garbage || act.truncate {
				rsp = faults.corrupt(act, rsp)
			}
		}
		out = binary.BigEndian.AppendUint16(out[:0], uint16(len(rsp)))
		out = append(out, rsp...)
		if _, err := conn.Write(out); err != nil {
			return err
		}
	}
}

// nextChunk answers up to le (0 = 256) bytes of pending, capped at chunk, with 61xx while
// more is waiting and 9000 with the last piece (the chunking fault, T=0 style).
func nextChunk(pending []byte, le, chunk int) (rsp, rest []byte) {
	if le == 0 {
		le = 256
	}
	n := min(le, chunk, len(pending))
	rest = pending[n:]
	if len(rest) == 0 {
		return withStatus(pending[:n], swOK), nil
	}
	return withStatus(pending[:n], 0x6100|uint16(min(len(rest), 256)&0xFF)), rest
}
