package ui

import (
	"context"
	"errors"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/data/binding"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/calink"
	"madoguchi/app/cardreader"
)

// CardStatus is what the status bar shows about the card reader.
type CardStatus = cardreader.Status

// The card reader states, in the order a counter session meets them (app/cardreader).
const (
	CardNoReader = cardreader.NoReader // no reader connected (or the PC/SC service is down)
	CardAbsent   = cardreader.Absent   // reader present, no card
	CardPresent  = cardreader.Present  // a card is in the reader
	CardRemoved  = cardreader.Removed  // the card was taken out (shown until the next insert)
)

// CardWatcher reports card reader changes. WatchCard calls report once with the current state,
// then on every change, from its own goroutine, until ctx is done; it returns ctx's error then,
// or another error if watching became impossible.
type CardWatcher interface {
	WatchCard(ctx context.Context, report func(CardStatus)) error
}

// CAStatus is what the status bar shows about the link to ca-server.
type CAStatus = calink.Status

// The CA link states (app/calink).
const (
	CAUnknown       = calink.Unknown       // not checked yet
	CAConnected     = calink.Connected     // the last mutual-TLS status request succeeded
	CAUnreachable   = calink.Unreachable   // the last status request failed
	CANotConfigured = calink.NotConfigured // the terminal has no CA address
)

// CAWatcher reports the CA link state like CardWatcher reports the reader.
type CAWatcher interface {
	WatchCA(ctx context.Context, report func(CAStatus)) error
}

// Status holds the state the persistent status bar shows: the card reader and the CA link. The
// state lives in bindings, so every widget bound to it follows (STYLE: state in bindings).
//
// Concurrency: the setters must run on the UI goroutine; Watch starts one goroutine per watcher
// and applies their reports with fyne.Do.
type Status struct {
	card binding.Int // a CardStatus
	ca   binding.Int // a CAStatus
	// RetryAfter is how long a watcher that failed waits before it is restarted.
	RetryAfter time.Duration
	// do hands a watcher's report to the UI goroutine: fyne.Do (replaced in tests).
	do func(func())
}

// NewStatus returns a status with no reader and an unchecked CA link.
func NewStatus() *Status {
	st := &Status{card: binding.NewInt(), ca: binding.NewInt(), RetryAfter: 2 * time.Second, do: fyne.Do}
	st.card.Set(int(CardNoReader))
	st.ca.Set(int(CAUnknown))
	return st
}

// Card returns the card reader state.
func (st *Status) Card() CardStatus { v, _ := st.card.Get(); return CardStatus(v) }

// CA returns the CA link state.
func (st *Status) CA() CAStatus { v, _ := st.ca.Get(); return CAStatus(v) }

// SetCard sets the card reader state. UI goroutine only.
func (st *Status) SetCard(c CardStatus) { st.card.Set(int(c)) }

// SetCA sets the CA link state. UI goroutine only.
func (st *Status) SetCA(c CAStatus) { st.ca.Set(int(c)) }

// Watch runs the watchers until ctx is done, each on its own goroutine, restarting a watcher
// that fails after RetryAfter (showing "no reader" / "unreachable" meanwhile). A nil card watcher
// means the terminal has no reader configured; a nil CA watcher, no CA address.
func (st *Status) Watch(ctx context.Context, card CardWatcher, ca CAWatcher) {
	if card == nil {
		st.SetCard(CardNoReader)
	} else {
		go st.run(ctx, func(ctx context.Context) error {
			return card.WatchCard(ctx, func(c CardStatus) { st.do(func() { st.SetCard(c) }) })
		}, func() { st.SetCard(CardNoReader) })
	}
	if ca == nil {
		st.SetCA(CANotConfigured)
	} else {
		go st.run(ctx, func(ctx context.Context) error {
			return ca.WatchCA(ctx, func(c CAStatus) { st.do(func() { st.SetCA(c) }) })
		}, func() { st.SetCA(CAUnreachable) })
	}
}

func (st *Status) run(ctx context.Context, watch func(context.Context) error, onFailure func()) {
	for {
		err := watch(ctx)
		if ctx.Err() != nil || errors.Is(err, context.Canceled) {
			return
		}
		st.do(onFailure)
		select {
		case <-ctx.Done():
			return
		case <-time.After(st.RetryAfter):
		}
	}
}

// statusBar is the strip at the bottom of the window.
type statusBar struct {
	cardIcon  *widget.Icon
	cardLabel *widget.Label
	caIcon    *widget.Icon
	caLabel   *widget.Label
	view      fyne.CanvasObject
}

// newStatusBar builds the status bar bound to st.
func newStatusBar(st *Status) *statusBar {
	b := &statusBar{
		cardIcon:  widget.NewIcon(nil),
		cardLabel: widget.NewLabel(""),
		caIcon:    widget.NewIcon(nil),
		caLabel:   widget.NewLabel(""),
	}
	st.card.AddListener(binding.NewDataListener(func() { b.showCard(st.Card()) }))
	st.ca.AddListener(binding.NewDataListener(func() { b.showCA(st.CA()) }))
	b.view = container.NewVBox(
		widget.NewSeparator(),
		container.NewHBox(b.cardIcon, b.cardLabel, widget.NewSeparator(), b.caIcon, b.caLabel),
	)
	return b
}

func (b *statusBar) showCard(c CardStatus) {
	key, icon, imp := "status.card.no_reader", theme.ErrorIcon(), widget.DangerImportance
	switch c {
	case CardAbsent:
		key, icon, imp = "status.card.absent", theme.InfoIcon(), widget.MediumImportance
	case CardPresent:
		key, icon, imp = "status.card.present", theme.ConfirmIcon(), widget.SuccessImportance
	case CardRemoved:
		key, icon, imp = "status.card.removed", theme.WarningIcon(), widget.WarningImportance
	}
	b.cardIcon.SetResource(icon)
	b.cardLabel.Importance = imp
	b.cardLabel.SetText(tr(key))
}

func (b *statusBar) showCA(c CAStatus) {
	key, icon, imp := "status.ca.unknown", theme.QuestionIcon(), widget.MediumImportance
	switch c {
	case CAConnected:
		key, icon, imp = "status.ca.connected", theme.ConfirmIcon(), widget.SuccessImportance
	case CAUnreachable:
		key, icon, imp = "status.ca.unreachable", theme.ErrorIcon(), widget.DangerImportance
	case CANotConfigured:
		key, icon, imp = "status.ca.not_configured", theme.WarningIcon(), widget.WarningImportance
	}
	b.caIcon.SetResource(icon)
	b.caLabel.Importance = imp
	b.caLabel.SetText(tr(key))
}
