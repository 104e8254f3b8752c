package vcard_test

import (
	"bytes"
	"context"
	"testing"

	"madoguchi/cardio/vcard"
	"madoguchi/cardio/vcard/vcardtest"
	"madoguchi/internal/testenv"
)

func TestRealStackSmoke(t *testing.T) {
	env := testenv.PCSCD(t)
	l := vcardtest.Personalised(t, "", 0x11)
	vcardtest.PlugIn(t, l.Card, env.Ports[0], env.Readers[0])
	card := vcardtest.Connect(t, env.Readers[0])
	if !bytes.Equal(card.ATR(), vcard.ATR) {
		t.Fatalf("ATR % X, want % X", card.ATR(), vcard.ATR)
	}
	rsp, err := card.Transmit(context.Background(), []byte{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01})
	if err != nil || !bytes.Equal(rsp, []byte{0x90, 0x00}) {
		t.Fatalf("select AP: % X %v", rsp, err)
	}
}
