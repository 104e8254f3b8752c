package vcard

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"madoguchi/cardio/perso"
)

// fakeVPCD plays vpcd's side of the link: it accepts the card's connection and sends it
// frames, so the link's fault handling is tested without pcscd (the real-stack test is
// cardio's TestCorruptAnswersAreCardErrors).
type fakeVPCD struct {
	t    *testing.T
	conn net.Conn
}

func plugIntoFake(t *testing.T, f *Faults) *fakeVPCD {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := New(Config{Serial: bytes.Repeat([]byte{0x51}, SerialLen), Keys: stockKeys(t, bytes.Repeat([]byte{0x51}, SerialLen))})
	if err != nil {
		t.Fatal(err)
	}
	l := &Link{Card: c, Addr: ln.Addr().String(), Faults: f}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	v := &fakeVPCD{t: t, conn: conn}
	v.exchange([]byte{vpcdPowerOn})
	return v
}

// exchange sends one frame and returns the card's answer (nil for control frames other than
// GET ATR, which are not answered).
func (v *fakeVPCD) exchange(frame []byte) []byte {
	v.t.Helper()
	_ = v.conn.SetDeadline(time.Now().Add(10 * time.Second))
	out := binary.BigEndian.AppendUint16(nil, uint16(len(frame)))
	if _, err := v.conn.Write(append(out, frame...)); err != nil {
		v.t.Fatal(err)
	}
	if len(frame) == 1 && frame[0] != vpcdGetATR {
		return nil
	}
	var hdr [2]byte
	if _, err := io.ReadFull(v.conn, hdr[:]); err != nil {
		v.t.Fatal(err)
	}
	rsp := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(v.conn, rsp); err != nil {
		v.t.Fatal(err)
	}
	return rsp
}

// selJPKI is SELECT of the JPKI AP, answered 90 00 by a good card.
var selJPKI = []byte{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01}

// selMgmt selects the management application; initUpdate then answers 28 bytes + 90 00, a
// response long enough to cut anywhere.
var (
	selMgmt    = append(append([]byte{0x00, 0xA4, 0x04, 0x00, byte(len(perso.AID))}, perso.AID...), 0x00)
	initUpdate = []byte{0x80, 0x50, 0x00, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x00}
)

func TestGarbageAndTruncateFaults(t *testing.T) {
	f := NewFaults()
	for _, spec := range []string{"seed=7", "garbage@2", "truncate@3", "truncate@4"} {
		if err := f.Apply(spec); err != nil {
			t.Fatalf("Apply(%q): %v", spec, err)
		}
	}
	v := plugIntoFake(t, f)
	if rsp := v.exchange(selJPKI); !bytes.Equal(rsp, []byte{0x90, 0x00}) {
		t.Fatalf("apdu 1 (no fault): % X", rsp)
	}
	garbage := v.exchange(selJPKI)
	if len(garbage) < 1 || len(garbage) > 260 {
		t.Fatalf("garbage of %d bytes, want 1..260", len(garbage))
	}
	cut := v.exchange(selJPKI)
	if len(cut) != 1 || cut[0] != 0x90 {
		t.Fatalf("truncated 90 00: % X, want the single byte 90", cut)
	}
	if rsp := v.exchange(selJPKI); len(rsp) >= 2 {
		t.Fatalf("apdu 4 (truncate): % X, want a single byte", rsp)
	}
	full := v.exchange(selJPKI)
	if !bytes.Equal(full, []byte{0x90, 0x00}) {
		t.Fatalf("apdu after the faults: % X", full)
	}

	// The same seed draws the same garbage: a campaign case replays exactly.
	again := NewFaults()
	for _, spec := range []string{"seed=7", "garbage@2"} {
		if err := again.Apply(spec); err != nil {
			t.Fatal(err)
		}
	}
	w := plugIntoFake(t, again)
	w.exchange(selJPKI)
	if g := w.exchange(selJPKI); !bytes.Equal(g, garbage) {
		t.Fatalf("seed 7 drew % X then % X", garbage, g)
	}
}

// A truncated long answer keeps a prefix of the real one and loses at least the last byte.
func TestTruncateKeepsAPrefix(t *testing.T) {
	for seed := range 20 {
		f := NewFaults()
		f.SetSeed(uint64(seed))
		v := plugIntoFake(t, f)
		if rsp := v.exchange(selMgmt); rsp[len(rsp)-2] != 0x90 {
			t.Fatalf("select management: % X", rsp)
		}
		whole := v.exchange(initUpdate)
		if len(whole) < 30 {
			t.Fatalf("initialize update: % X", whole)
		}
		f.TruncateAt(1)
		cut := v.exchange(initUpdate)
		// The serial and key information (first 18 bytes) repeat; the card challenge does not.
		same := min(len(cut), 18)
		if len(cut) < 1 || len(cut) >= len(whole) || !bytes.Equal(cut[:same], whole[:same]) {
			t.Fatalf("seed %d: cut % X of whole % X", seed, cut, whole)
		}
	}
}
