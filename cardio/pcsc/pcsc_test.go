package pcsc_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"madoguchi/cardio"
	"madoguchi/cardio/apdu"
	"madoguchi/cardio/pcsc"
	"madoguchi/cardio/vcard"
	"madoguchi/cardio/vcard/vcardtest"
	"madoguchi/internal/testenv"
)

var _ cardio.Transport = (*pcsc.Card)(nil)

var (
	selectJPKI = []byte{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01}
	selectAuth = []byte{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x0A}
	read256    = []byte{0x00, 0xB0, 0x00, 0x00, 0x00}
)

func mustOK(t testing.TB, card *pcsc.Card, cmd []byte) []byte {
	t.Helper()
	rsp, err := card.Transmit(context.Background(), cmd)
	if err != nil {
		t.Fatalf("% X: %v", cmd, err)
	}
	if sw := rsp[len(rsp)-2:]; sw[0] != 0x90 || sw[1] != 0x00 {
		t.Fatalf("% X: status % X", cmd, sw)
	}
	return rsp[:len(rsp)-2]
}

func TestReadersAndTypedConnectErrors(t *testing.T) {
	env := testenv.PCSCD(t)
	cl, err := pcsc.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	readers, err := cl.Readers()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range env.Readers {
		found := false
		for _, r := range readers {
			found = found || r == want
		}
		if !found {
			t.Fatalf("reader %q not listed in %q", want, readers)
		}
	}
	if _, err := cl.Connect(env.Readers[1], pcsc.Exclusive); !errors.Is(err, pcsc.ErrNoCard) {
		t.Fatalf("connect to an empty reader: %v, want ErrNoCard", err)
	}
	if _, err := cl.Connect("No Such Reader 99", pcsc.Exclusive); !errors.Is(err, pcsc.ErrNoReader) {
		t.Fatalf("connect to an unknown reader: %v, want ErrNoReader", err)
	}
	if _, err := pcsc.NewWatcher("No Such Reader 99"); !errors.Is(err, pcsc.ErrNoReader) {
		t.Fatalf("watch an unknown reader: %v, want ErrNoReader", err)
	}
}

func TestMalformedCommandRefusedBeforePCSC(t *testing.T) {
	env := testenv.PCSCD(t)
	l := vcardtest.Personalised(t, "", 0x41)
	link, _ := vcardtest.PlugIn(t, l.Card, env.Ports[0], env.Readers[0])
	card := vcardtest.Connect(t, env.Readers[0])
	for _, cmd := range [][]byte{nil, {}, {0x00}, {0x00, 0xA4, 0x04}} {
		if _, err := card.Transmit(context.Background(), cmd); !errors.Is(err, pcsc.ErrBadCommand) {
			t.Fatalf("Transmit(% X): %v, want ErrBadCommand", cmd, err)
		}
	}
	// Nothing reached the card: the first APDU it sees is the next one.
	link.Faults.AnswerSWAt(1, 0x6F42)
	rsp, err := card.Transmit(context.Background(), selectJPKI)
	if err != nil || !bytes.Equal(rsp, []byte{0x6F, 0x42}) {
		t.Fatalf("first apdu after refusals: % X %v", rsp, err)
	}
}

func TestLinkDroppedMidAPDU(t *testing.T) {
	env := testenv.PCSCD(t)
	l := vcardtest.Personalised(t, "", 0x42)
	link, _ := vcardtest.PlugIn(t, l.Card, env.Ports[0], env.Readers[0])
	card := vcardtest.Connect(t, env.Readers[0])
	mustOK(t, card, selectJPKI)
	link.Faults.DropLinkAt(1)
	_, err := card.Transmit(context.Background(), selectAuth)
	if !errors.Is(err, pcsc.ErrShortResponse) && !errors.Is(err, pcsc.ErrCardRemoved) {
		t.Fatalf("transmit across a dropped link: %v, want ErrShortResponse or ErrCardRemoved", err)
	}
	if !errors.Is(err, apdu.ErrShortResponse) && !errors.Is(err, pcsc.ErrCardRemoved) {
		t.Fatalf("error does not match the apdu sentinel: %v", err)
	}
	// The connection is dead from now on: the card came back as a new card.
	var last error
	for i := 0; i < 50; i++ {
		if _, last = card.Transmit(context.Background(), selectJPKI); last != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !errors.Is(last, pcsc.ErrCardRemoved) && !errors.Is(last, pcsc.ErrCardReset) {
		t.Fatalf("transmit on the old connection after the drop: %v, want ErrCardRemoved", last)
	}
	// pcscd notices the card gone; the link reconnects by itself; a new connection works.
	vcardtest.WaitPresent(t, env.Readers[0], false)
	vcardtest.WaitPresent(t, env.Readers[0], true)
	card2 := reconnect(t, env.Readers[0])
	mustOK(t, card2, selectJPKI)
}

// reconnect connects again, waiting out pcscd's re-detection of the card.
func reconnect(t *testing.T, reader string) *pcsc.Card {
	t.Helper()
	cl, err := pcsc.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	var lastErr error
	for i := 0; i < 100; i++ {
		card, err := cl.Connect(reader, pcsc.Exclusive)
		if err == nil {
			t.Cleanup(func() { card.Close(false) })
			return card
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("reconnect: %v", lastErr)
	return nil
}

func TestWatcherSeesRemovalAndInsertion(t *testing.T) {
	env := testenv.PCSCD(t)
	l := vcardtest.Personalised(t, "", 0x43)
	link, _ := vcardtest.PlugIn(t, l.Card, env.Ports[0], env.Readers[0])
	w, err := pcsc.NewWatcher(env.Readers[0], env.Readers[1])
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, err := w.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{env.Readers[0]: true, env.Readers[1]: false}
	if len(first) != 2 {
		t.Fatalf("first events %+v, want both readers", first)
	}
	for _, ev := range first {
		if ev.Present != want[ev.Reader] {
			t.Fatalf("initial %q present=%v", ev.Reader, ev.Present)
		}
		if ev.Present && !bytes.Equal(ev.ATR, vcard.ATR) {
			t.Fatalf("ATR % X", ev.ATR)
		}
	}
	card := vcardtest.Connect(t, env.Readers[0])
	mustOK(t, card, selectJPKI)

	link.Faults.Remove()
	expect := func(present bool) {
		t.Helper()
		for {
			evs, err := w.Next(ctx)
			if err != nil {
				t.Fatalf("waiting for present=%v: %v", present, err)
			}
			for _, ev := range evs {
				if ev.Reader == env.Readers[0] && ev.Present == present {
					return
				}
			}
		}
	}
	expect(false)
	if _, err := card.Transmit(context.Background(), selectJPKI); !errors.Is(err, pcsc.ErrCardRemoved) {
		t.Fatalf("transmit after removal: %v, want ErrCardRemoved", err)
	}
	link.Faults.Insert()
	expect(true)
	mustOK(t, reconnect(t, env.Readers[0]), selectJPKI)

	// Next returns promptly when its context ends.
	short, stop := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer stop()
	if _, err := w.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next after deadline: %v", err)
	}
}

func TestInjectedStatusWordAndWrongLe(t *testing.T) {
	env := testenv.PCSCD(t)
	l := vcardtest.Personalised(t, "", 0x44)
	link, _ := vcardtest.PlugIn(t, l.Card, env.Ports[0], env.Readers[0])
	card := vcardtest.Connect(t, env.Readers[0])
	mustOK(t, card, selectJPKI)
	mustOK(t, card, selectAuth)
	link.Faults.AnswerSWAt(1, 0x6A82)
	rsp, err := card.Transmit(context.Background(), read256)
	if err != nil || !bytes.Equal(rsp, []byte{0x6A, 0x82}) {
		t.Fatalf("injected 6A82: % X %v", rsp, err)
	}
	// 6Cxx: the transport re-sends with the Le the card asked for.
	link.Faults.AnswerSWAt(1, 0x6C04)
	rsp, err = card.Transmit(context.Background(), read256)
	if err != nil || len(rsp) != 6 || !bytes.Equal(rsp[:4], l.AuthCert[:4]) || !bytes.Equal(rsp[4:], []byte{0x90, 0x00}) {
		t.Fatalf("6C04 re-send: % X %v", rsp, err)
	}
}

func TestGetResponseChaining(t *testing.T) {
	env := testenv.PCSCD(t)
	l := vcardtest.Personalised(t, "", 0x45)
	link, _ := vcardtest.PlugIn(t, l.Card, env.Ports[0], env.Readers[0])
	card := vcardtest.Connect(t, env.Readers[0])
	mustOK(t, card, selectJPKI)
	mustOK(t, card, selectAuth)
	link.Faults.SetResponseChunking(50)
	data := mustOK(t, card, read256)
	if !bytes.Equal(data, l.AuthCert[:256]) {
		t.Fatalf("chained read returned %d bytes that differ", len(data))
	}
	// Extended Le: the whole certificate in one READ BINARY, in 50-byte GET RESPONSE pieces.
	link.Faults.SetResponseChunking(0)
	n := len(l.AuthCert)
	data = mustOK(t, card, []byte{0x00, 0xB0, 0x00, 0x00, 0x00, byte(n >> 8), byte(n)})
	if !bytes.Equal(data, l.AuthCert) {
		t.Fatalf("extended read returned %d bytes, want the %d-byte certificate", len(data), n)
	}
}

func TestTwoCardsAtOnce(t *testing.T) {
	env := testenv.PCSCD(t)
	a := vcardtest.Personalised(t, "", 0x46)
	b := vcardtest.Personalised(t, "", 0x47)
	vcardtest.PlugIn(t, a.Card, env.Ports[0], env.Readers[0])
	vcardtest.PlugIn(t, b.Card, env.Ports[1], env.Readers[1])
	cards := []*pcsc.Card{vcardtest.Connect(t, env.Readers[0]), vcardtest.Connect(t, env.Readers[1])}
	want := [][]byte{a.AuthCert, b.AuthCert}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range cards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			api := cardio.New(cards[i])
			for range 5 {
				got, err := api.ReadCertificate(context.Background(), cardio.FileUserAuthCert)
				if err != nil {
					errs[i] = err
					return
				}
				if !bytes.Equal(got, want[i]) {
					errs[i] = errors.New("certificate of the other card")
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("reader %d: %v", i, err)
		}
	}
}

func TestCardSwapDetected(t *testing.T) {
	env := testenv.PCSCD(t)
	a := vcardtest.Personalised(t, "", 0x48)
	b := vcardtest.Personalised(t, "", 0x49)
	linkA, stopA := vcardtest.PlugIn(t, a.Card, env.Ports[0], env.Readers[0])
	api := cardio.New(reconnect(t, env.Readers[0]))
	ctx := context.Background()
	serial, err := api.CardSerial(ctx)
	if err != nil || !bytes.Equal(serial, vcardtest.Serial(0x48)) {
		t.Fatalf("serial %X %v", serial, err)
	}
	// Swap: card A out, card B into the same reader.
	linkA.Faults.Remove()
	vcardtest.WaitPresent(t, env.Readers[0], false)
	stopA()
	vcardtest.PlugIn(t, b.Card, env.Ports[0], env.Readers[0])
	if err := api.CheckSerial(ctx, serial); !errors.Is(err, pcsc.ErrCardRemoved) {
		t.Fatalf("old connection after the swap: %v, want ErrCardRemoved", err)
	}
	api = cardio.New(reconnect(t, env.Readers[0]))
	if err := api.CheckSerial(ctx, serial); !errors.Is(err, cardio.ErrCardSwapped) {
		t.Fatalf("check serial of the swapped card: %v, want ErrCardSwapped", err)
	}
}

func TestSlowCardStillAnswers(t *testing.T) {
	env := testenv.PCSCD(t)
	l := vcardtest.Personalised(t, "", 0x4A)
	link, _ := vcardtest.PlugIn(t, l.Card, env.Ports[0], env.Readers[0])
	card := vcardtest.Connect(t, env.Readers[0])
	link.Faults.SetDelay(300 * time.Millisecond)
	mustOK(t, card, selectJPKI)
	link.Faults.SetDelay(0)
	mustOK(t, card, selectAuth)
}
