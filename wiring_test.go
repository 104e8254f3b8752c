package main

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"madoguchi/cardio/pcsc"
	"madoguchi/cardio/vcard"
	"madoguchi/internal/testenv"
	"madoguchi/ui"
)

// TestPCSCCardWatcher drives the status bar's card watcher with the real stack: pcscd, vpcd's
// "Virtual PCD 00 00" and a virtual card that is inserted, removed and inserted again.
func TestPCSCCardWatcher(t *testing.T) {
	pc := testenv.PCSCD(t)
	card, err := vcard.New(vcard.Config{Serial: bytes.Repeat([]byte{0x42}, vcard.SerialLen),
		Keys: vcard.StaticKeys{ENC: make([]byte, 16), MAC: make([]byte, 16), DEK: make([]byte, 16)}})
	if err != nil {
		t.Fatal(err)
	}
	faults := vcard.NewFaults()
	faults.Remove() // start with an empty reader

	ctx, cancel := context.WithCancel(context.Background())
	linkDone := make(chan error, 1)
	go func() {
		linkDone <- (&vcard.Link{Card: card, Faults: faults, Addr: "127.0.0.1:35963"}).Run(ctx)
	}()
	states := make(chan ui.CardStatus, 16)
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- pcscCardWatcher{reader: pc.Readers[0]}.WatchCard(ctx, func(c ui.CardStatus) { states <- c })
	}()
	t.Cleanup(func() {
		cancel()
		<-linkDone
		if err := <-watchDone; !errors.Is(err, context.Canceled) {
			t.Errorf("watcher ended with %v, want context.Canceled", err)
		}
	})

	expect := func(want ui.CardStatus) {
		t.Helper()
		select {
		case got := <-states:
			if got != want {
				t.Fatalf("card status = %v, want %v", got, want)
			}
		case <-time.After(30 * time.Second): // bounds a hang only
			t.Fatalf("no card status %v reported", want)
		}
	}
	expect(ui.CardAbsent)
	faults.Insert()
	expect(ui.CardPresent)
	faults.Remove()
	expect(ui.CardRemoved)
	faults.Insert()
	expect(ui.CardPresent)
}

// TestPCSCCardWatcherUnknownReader: a reader name pcscd does not have is an error the status
// bar shows as "no reader" (and retries), not a silent hang.
func TestPCSCCardWatcherUnknownReader(t *testing.T) {
	testenv.PCSCD(t)
	err := pcscCardWatcher{reader: "no such reader"}.WatchCard(context.Background(), func(ui.CardStatus) {
		t.Error("status reported for a reader that does not exist")
	})
	if !errors.Is(err, pcsc.ErrNoReader) {
		t.Fatalf("err = %v, want pcsc.ErrNoReader", err)
	}
}
