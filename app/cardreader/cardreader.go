// Package cardreader is the terminal's card reader over PC/SC (cardio/pcsc): the status bar's
// presence watcher, the exclusive connection a procedure runs on (the CA's personalisation or
// maintenance script must not interleave with anything), and the list of readers.
package cardreader

import (
	"context"
	"errors"
	"sync"

	"madoguchi/app/issue"
	"madoguchi/cardio"
	"madoguchi/cardio/pcsc"
)

// Status is what the status bar shows about the reader.
type Status int

// The card reader states, in the order a counter session meets them.
const (
	NoReader Status = iota // no reader connected (or the PC/SC service is down)
	Absent                 // reader present, no card
	Present                // a card is in the reader
	Removed                // the card was taken out (shown until the next insert)
)

// Choice is the reader chosen in the settings (app/calink.Link): Reader "" means the first
// reader pcscd lists; Changed is closed at the next settings change.
type Choice interface {
	Reader() string
	Changed() <-chan struct{}
}

// Watcher adapts cardio/pcsc's presence watcher to the status bar. An empty reader name means
// the first reader pcscd lists, looked up on every (re)start so a reader plugged in later is
// found.
type Watcher struct {
	Reader string
	// Settings, when set, supplies the reader chosen in the settings (it overrides Reader) and
	// restarts the watch when the choice changes.
	Settings Choice
}

// WatchCard calls report once with the current state, then on every change, until ctx is
// done. It returns the pcsc error when pcscd or the reader is missing; the status bar then
// shows "no reader" and restarts it.
func (p Watcher) WatchCard(ctx context.Context, report func(Status)) (err error) {
	reader := p.Reader
	var changed <-chan struct{}
	if p.Settings != nil {
		changed = p.Settings.Changed()
		if r := p.Settings.Reader(); r != "" {
			reader = r
		}
	}
	if changed != nil {
		// A new reader choice ends this watch; the status bar restarts it with the new one.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-changed:
				cancel()
			case <-ctx.Done():
			}
		}()
		defer func() {
			select {
			case <-changed:
				err = ErrReaderChanged // not context.Canceled: the status bar must restart the watch
			default:
			}
		}()
	}
	if reader == "" {
		c, err := pcsc.Open()
		if err != nil {
			return err
		}
		readers, err := c.Readers()
		c.Close()
		if err != nil {
			return err
		}
		reader = readers[0]
	}
	w, err := pcsc.NewWatcher(reader)
	if err != nil {
		return err
	}
	defer w.Close()
	seen := false
	for {
		events, err := w.Next(ctx)
		if err != nil {
			return err
		}
		for _, ev := range events {
			switch {
			case ev.Present:
				report(Present)
			case seen:
				report(Removed)
			default:
				report(Absent)
			}
			seen = true
		}
	}
}

// ErrReaderChanged ends a card watch when the supervisor chose another reader.
var ErrReaderChanged = errors.New("terminal: card reader changed in the settings")

// Names lists the readers pcscd knows.
func Names() ([]string, error) {
	c, err := pcsc.Open()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Readers()
}

// Open connects exclusively to the card in reader ("" = the first reader): nothing else may
// interleave commands with the CA's personalisation script. close releases it (once).
func Open(reader string) (card issue.Card, close func(), err error) {
	c, err := pcsc.Open()
	if err != nil {
		return nil, nil, err
	}
	if reader == "" {
		readers, err := c.Readers()
		if err != nil {
			c.Close()
			return nil, nil, err
		}
		reader = readers[0]
	}
	pc, err := c.Connect(reader, pcsc.Exclusive)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	var once sync.Once
	return cardio.New(pc), func() {
		once.Do(func() {
			pc.Close(true)
			c.Close()
		})
	}, nil
}
