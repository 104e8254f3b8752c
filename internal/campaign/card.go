package campaign

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"madoguchi/cardio/pcsc"

	"madoguchi/cardio/vcard"
)

// slot is the campaign's vpcd reader with one virtual card in it at a time, run in this
// process so the driver can pull it, swap it and arm its faults (vcard.Faults) mid-case.
type slot struct {
	s      *Stack
	mu     sync.Mutex
	card   *vcard.Card
	path   string
	faults *vcard.Faults
	cancel context.CancelFunc
	done   chan struct{}
	logger *log.Logger
	// dirty: the card had a fault armed or was pulled; pcscd must see it gone (it polls
	// vpcd every 400 ms) before the next card, or the reader stays in the dropped card's
	// state.
	dirty bool
}

func newSlot(s *Stack) *slot {
	f, err := os.OpenFile(filepath.Join(s.logs, "vcard.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { f.Close() })
	return &slot{s: s, logger: log.New(f, "", log.LstdFlags|log.Lmicroseconds)}
}

// insert puts card (state at path) into the reader with the fault spec armed ("" for none).
func (sl *slot) insert(card *vcard.Card, path, spec string, seed uint64) error {
	sl.eject()
	f := vcard.NewFaults()
	if spec != "" {
		if err := f.Apply(spec); err != nil {
			return err
		}
	}
	if seed != 0 {
		f.SetSeed(seed)
	}
	return sl.start(card, path, spec, f, 0)
}

func (sl *slot) start(card *vcard.Card, path, spec string, f *vcard.Faults, attempt int) error {
	ctx, cancel := context.WithCancel(context.Background())
	link := &vcard.Link{Card: card, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(sl.s.Port)), Faults: f, Logf: sl.logger.Printf}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := link.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			sl.logger.Printf("vcard link: %v", err)
		}
	}()
	sl.mu.Lock()
	sl.card, sl.path, sl.faults, sl.cancel, sl.done = card, path, f, cancel, done
	sl.dirty = spec != ""
	sl.mu.Unlock()
	sl.logger.Printf("inserted card %X (%s) with fault %q", card.Serial(), filepath.Base(path), spec)
	if err := sl.waitPresent(); err != nil && attempt < 3 {
		// Once more after a pause long enough for pcscd to see the reader empty.
		sl.logger.Printf("%v; inserting again", err)
		sl.mu.Lock()
		sl.dirty = true
		sl.mu.Unlock()
		sl.eject()
		return sl.start(card, path, spec, f, attempt+1)
	} else if err != nil {
		return err
	}
	return nil
}

// waitPresent waits until pcscd reports the card in the reader (it polls vpcd every 400 ms),
// so the operation starts with the card there, as at the counter.
func (sl *slot) waitPresent() error {
	cl, err := pcsc.Open()
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := cl.Connect(sl.s.Reader, pcsc.Shared)
		if err == nil {
			return c.Close(false)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the card did not appear in %q: %w", sl.s.Reader, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// reinsert puts the case's card (state at path) back in without faults: what the operator
// does after the fault, also after a swap (the applicant's card, not the one swapped in).
func (sl *slot) reinsert(path string) error {
	sl.mu.Lock()
	same := sl.path == path && !sl.dirty && sl.cancel != nil
	sl.mu.Unlock()
	if same {
		return nil // the card never left and had no fault: nothing to do
	}
	sl.eject()
	card, err := vcard.Open(path, nil)
	if err != nil {
		return err
	}
	return sl.insert(card, path, "", 0)
}

// pull takes the card out (it stays out until the next insert).
func (sl *slot) pull() {
	sl.mu.Lock()
	f := sl.faults
	sl.mu.Unlock()
	if f != nil {
		f.Remove()
	}
	sl.mu.Lock()
	sl.dirty = true
	sl.mu.Unlock()
}

// eject stops the current card's link.
func (sl *slot) eject() {
	sl.mu.Lock()
	cancel, done, dirty := sl.cancel, sl.done, sl.dirty
	sl.cancel, sl.done, sl.dirty = nil, nil, false
	sl.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
		if dirty {
			time.Sleep(1200 * time.Millisecond)
		}
		sl.waitAbsent()
	}
}

// waitAbsent waits (at most 3 s) until pcscd has seen the card go, so the next card is a new
// insertion and not a connection to the old card's stale slot.
func (sl *slot) waitAbsent() {
	cl, err := pcsc.Open()
	if err != nil {
		return
	}
	defer cl.Close()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		c, err := cl.Connect(sl.s.Reader, pcsc.Shared)
		if err != nil {
			return
		}
		c.Close(false)
		time.Sleep(50 * time.Millisecond)
	}
}
