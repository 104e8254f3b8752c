package pcsc

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ebfe/scard"
)

// Event is a change of card presence in one reader.
type Event struct {
	Reader  string
	Present bool   // a card is in the reader
	ATR     []byte // the card's ATR when present
}

// Watcher reports card insertion and removal in a set of readers. It owns its own PC/SC
// context (see the package comment).
type Watcher struct {
	ctx     *scard.Context
	readers []string
	states  []scard.ReaderState

	mu       sync.Mutex
	closed   bool
	released bool
	inWait   bool
}

// NewWatcher watches the named readers. Errors: ErrNoService, ErrNoReader (a name not present).
func NewWatcher(readers ...string) (*Watcher, error) {
	if len(readers) == 0 {
		return nil, errors.New("pcsc: watcher needs at least one reader")
	}
	ctx, err := scard.EstablishContext()
	if err != nil {
		return nil, wrap("establish context", "", err)
	}
	all, err := ctx.ListReaders()
	if err != nil {
		ctx.Release()
		return nil, wrap("list readers", "", err)
	}
	for _, r := range readers {
		found := false
		for _, a := range all {
			found = found || a == r
		}
		if !found {
			ctx.Release()
			return nil, &Error{Op: "watch", Reader: r, Kind: ErrNoReader, Code: scard.ErrUnknownReader}
		}
	}
	w := &Watcher{ctx: ctx, readers: append([]string(nil), readers...)}
	for _, r := range readers {
		w.states = append(w.states, scard.ReaderState{Reader: r, CurrentState: scard.StateUnaware})
	}
	return w, nil
}

// Close releases the watcher's context, interrupting a Next in progress.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	if w.inWait {
		// Next owns the context; it releases it when the cancelled wait returns.
		w.mu.Unlock()
		return wrap("cancel", "", w.ctx.Cancel())
	}
	w.released = true
	w.mu.Unlock()
	return wrap("release context", "", w.ctx.Release())
}

// pollInterval bounds each wait so a cancelled ctx is noticed even if SCardCancel races.
const pollInterval = 500 * time.Millisecond

// Next blocks until the presence of a card changes in one of the readers and returns the
// events; the first call reports the current presence of every reader. It returns ctx.Err()
// when ctx is done and ErrClosed after Close.
func (w *Watcher) Next(ctx context.Context) ([]Event, error) {
	stop := context.AfterFunc(ctx, func() { w.ctx.Cancel() })
	defer stop()
	for {
		w.mu.Lock()
		if w.closed {
			w.release()
			w.mu.Unlock()
			return nil, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			w.mu.Unlock()
			return nil, err
		}
		w.inWait = true
		w.mu.Unlock()
		err := w.ctx.GetStatusChange(w.states, pollInterval)
		w.mu.Lock()
		w.inWait = false
		w.mu.Unlock()
		var code scard.Error
		switch {
		case err == nil:
		case errors.As(err, &code) && (code == scard.ErrTimeout || code == scard.ErrCancelled):
			continue
		default:
			return nil, wrap("get status change", "", err)
		}
		var events []Event
		for i := range w.states {
			s := &w.states[i]
			if s.EventState&scard.StateChanged == 0 {
				continue
			}
			if s.EventState&(scard.StateUnknown|scard.StateUnavailable) != 0 {
				return nil, &Error{Op: "watch", Reader: s.Reader, Kind: ErrNoReader, Code: scard.ErrReaderUnavailable}
			}
			wasPresent := s.CurrentState&scard.StatePresent != 0
			present := s.EventState&scard.StatePresent != 0
			first := s.CurrentState == scard.StateUnaware
			s.CurrentState = s.EventState &^ scard.StateChanged
			if first || present != wasPresent {
				ev := Event{Reader: s.Reader, Present: present}
				if present {
					ev.ATR = bytes.Clone(s.Atr)
				}
				events = append(events, ev)
			}
		}
		if len(events) > 0 {
			return events, nil
		}
	}
}

func (w *Watcher) release() {
	if !w.released {
		w.released = true
		w.ctx.Release()
	}
}

// WaitForCard blocks until reader holds a card (at once if it already does).
func WaitForCard(ctx context.Context, reader string) error { return waitFor(ctx, reader, true) }

// WaitForRemoval blocks until reader is empty (at once if it already is).
func WaitForRemoval(ctx context.Context, reader string) error { return waitFor(ctx, reader, false) }

func waitFor(ctx context.Context, reader string, present bool) error {
	w, err := NewWatcher(reader)
	if err != nil {
		return err
	}
	defer w.Close()
	for {
		events, err := w.Next(ctx)
		if err != nil {
			return err
		}
		for _, ev := range events {
			if ev.Present == present {
				return nil
			}
		}
	}
}
