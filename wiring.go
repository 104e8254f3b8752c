package main

import (
	"context"
	"log"
	"os"

	"madoguchi/cardio/pcsc"
	"madoguchi/internal/services"
	"madoguchi/ui"
)

// pcscCardWatcher adapts cardio/pcsc's presence watcher to the status bar (ui.CardWatcher).
// An empty reader name means the first reader pcscd lists, looked up on every (re)start so a
// reader plugged in later is found.
type pcscCardWatcher struct{ reader string }

var _ ui.CardWatcher = pcscCardWatcher{}

// WatchCard implements ui.CardWatcher. It returns the pcsc error when pcscd or the reader is
// missing; the status bar then shows "no reader" and restarts it.
func (p pcscCardWatcher) WatchCard(ctx context.Context, report func(ui.CardStatus)) error {
	reader := p.reader
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
				report(ui.CardPresent)
			case seen:
				report(ui.CardRemoved)
			default:
				report(ui.CardAbsent)
			}
			seen = true
		}
	}
}

// caWatcher returns the CA link watcher for url. The terminal's mTLS client (raclient) does not
// exist yet, so there is nothing that could prove the link: the status bar says "not
// configured" rather than guess.
func caWatcher(url string) ui.CAWatcher {
	if url != "" {
		log.Printf("--ca-url %s: the CA client is not available in this build; CA status not monitored", url)
	}
	return nil
}

// The demo's virtual fingerprint device (see the package comment); both set by internal/cmd/demo.
const (
	virtualFingerEnv      = "MADOGUCHI_VIRTUAL_FINGER"
	virtualFingerPrintEnv = "MADOGUCHI_VIRTUAL_FINGER_PRINT"
)

// demoFinger returns the demo's "press the virtual finger" action, or nil on a real terminal.
func demoFinger() func() error {
	socket, print := os.Getenv(virtualFingerEnv), os.Getenv(virtualFingerPrintEnv)
	if socket == "" || print == "" {
		return nil
	}
	log.Printf("demo: the fingerprint step offers a virtual finger (%s on %s)", print, socket)
	return func() error { return services.ScanVirtualFinger(socket, print, 0) }
}
