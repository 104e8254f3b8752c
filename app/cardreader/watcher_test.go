package cardreader

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"madoguchi/cardio/pcsc"
	"madoguchi/cardio/vcard"
	"madoguchi/internal/testenv"
)

// TestPCSCCardWatcher drives the status bar's card watcher with the real stack: pcscd, vpcd's
// "Virtual PCD 00 00" and a virtual card that is inserted, removed and inserted again.
func TestPCSCCardWatcher(t *testing.T) {
	pc := testenv.PCSCD(t)
	card, err := vcard.New(vcard.Config{Serial: bytes.Repeat([]byte{0x42}, vcard.SerialLen),
		Keys: vcard.StaticKeys{ENC: randomKey(t), MAC: randomKey(t), DEK: randomKey(t)}})
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
	states := make(chan Status, 16)
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- Watcher{Reader: pc.Readers[0]}.WatchCard(ctx, func(c Status) { states <- c })
	}()
	t.Cleanup(func() {
		cancel()
		<-linkDone
		if err := <-watchDone; !errors.Is(err, context.Canceled) {
			t.Errorf("watcher ended with %v, want context.Canceled", err)
		}
	})

	expect := func(want Status) {
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
	expect(Absent)
	faults.Insert()
	expect(Present)
	faults.Remove()
	expect(Removed)
	faults.Insert()
	expect(Present)
}

// TestPCSCCardWatcherUnknownReader: a reader name pcscd does not have is an error the status
// bar shows as "no reader" (and retries), not a silent hang.
func TestPCSCCardWatcherUnknownReader(t *testing.T) {
	testenv.PCSCD(t)
	err := Watcher{Reader: "no such reader"}.WatchCard(context.Background(), func(Status) {
		t.Error("status reported for a reader that does not exist")
	})
	if !errors.Is(err, pcsc.ErrNoReader) {
		t.Fatalf("err = %v, want pcsc.ErrNoReader", err)
	}
}

// randomKey is a card static key made at test time (test keys are never committed).
func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 16)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}
