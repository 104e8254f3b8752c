package apdu

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func hx(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCommandEncodeCases(t *testing.T) {
	big := bytes.Repeat([]byte{0xAB}, 300)
	for _, tc := range []struct {
		name string
		cmd  Command
		want string
	}{
		{"case 1", Command{CLA: 0x00, INS: 0x20, P1: 0x00, P2: 0x80}, "00200080"},
		{"case 2S", Command{CLA: 0x00, INS: 0xB0, Ne: 4}, "00b0000004"},
		{"case 2S Le=00", Command{CLA: 0x00, INS: 0xB0, Ne: 256}, "00b0000000"},
		{"case 3S", Command{CLA: 0x00, INS: 0xA4, P1: 2, P2: 0x0C, Data: hx(t, "000a")}, "00a4020c02000a"},
		{"case 4S", Command{CLA: 0x80, INS: 0x2A, P1: 0, P2: 0x80, Data: []byte{1, 2}, Ne: 256}, "802a0080020102" + "00"},
		{"case 2E", Command{CLA: 0x00, INS: 0xB0, Ne: 65536}, "00b0000000" + "0000"},
		{"case 2E 257", Command{CLA: 0x00, INS: 0xB0, Ne: 257}, "00b00000000101"},
		{"case 4E Ne 256", Command{CLA: 0x84, INS: 0xD8, Data: big, Ne: 256}, "84d8000000012c" + hex.EncodeToString(big) + "0100"},
		{"case 3E forced", Command{CLA: 0x80, INS: 0xE2, Data: []byte{9}, Extended: true}, "80e200000000" + "0109"},
	} {
		got, err := tc.cmd.Encode()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if hex.EncodeToString(got) != tc.want {
			t.Errorf("%s: %x, want %s", tc.name, got, tc.want)
		}
		back, err := ParseCommand(got)
		if err != nil {
			t.Fatalf("%s: parse back: %v", tc.name, err)
		}
		if back.CLA != tc.cmd.CLA || back.INS != tc.cmd.INS || !bytes.Equal(back.Data, tc.cmd.Data) || back.Ne != tc.cmd.Ne {
			t.Errorf("%s: parsed back %+v", tc.name, back)
		}
	}
}

func TestCommandEncodeLimits(t *testing.T) {
	if _, err := (Command{Data: make([]byte, 65536)}).Encode(); !errors.Is(err, ErrTooLong) {
		t.Errorf("Nc 65536: %v", err)
	}
	if _, err := (Command{Ne: 65537}).Encode(); !errors.Is(err, ErrTooLong) {
		t.Errorf("Ne 65537: %v", err)
	}
	if _, err := (Command{Ne: -1}).Encode(); !errors.Is(err, ErrMalformed) {
		t.Errorf("Ne -1: %v", err)
	}
}

func TestParseCommandRejects(t *testing.T) {
	for _, s := range []string{
		"", "00", "00a404",
		"00a4040c05d392f0",        // short Lc 5, 3 data bytes
		"00a4040c02000a0000",      // Lc 2 + 2 extra bytes
		"00b0000000",              // valid 2S: Le 00 (checked below as ok)
		"00b000000000",            // 6 bytes: 00 then 1 byte
		"00e20000000000",          // extended Lc 0 with nothing — 2E actually (ok)
		"00e2000000000201",        // extended Lc 2 but 1 byte
		"00e20000000000" + "0000", // extended Lc 0 with Le
	} {
		_, err := ParseCommand(hx(t, s))
		ok := err == nil
		wantOK := s == "00b0000000" || s == "00e20000000000"
		if ok != wantOK {
			t.Errorf("ParseCommand(%s): err %v, want ok=%v", s, err, wantOK)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseCommand(%s): %v is not ErrMalformed", s, err)
		}
	}
}

func TestParseCommandCopies(t *testing.T) {
	raw := hx(t, "00a4020c02000a")
	c, _ := ParseCommand(raw)
	raw[5] = 0xFF
	if c.Data[0] != 0x00 {
		t.Fatal("parsed data aliases the input")
	}
}

func TestResponse(t *testing.T) {
	if _, err := ParseResponse([]byte{0x90}); !errors.Is(err, ErrShortResponse) {
		t.Fatalf("1-byte response: %v", err)
	}
	if _, err := ParseResponse(nil); !errors.Is(err, ErrShortResponse) {
		t.Fatalf("0-byte response (dropped link): %v", err)
	}
	r, err := ParseResponse(hx(t, "01029000"))
	if err != nil || !r.OK() || !bytes.Equal(r.Data, []byte{1, 2}) || r.Err() != nil {
		t.Fatalf("%+v %v", r, err)
	}
	if got := r.Encode(); hex.EncodeToString(got) != "01029000" {
		t.Fatalf("encode %x", got)
	}
	r, _ = ParseResponse(hx(t, "6982"))
	err = r.Err()
	var se *StatusError
	if !errors.As(err, &se) || se.SW != 0x6982 {
		t.Fatalf("Err() = %v", err)
	}
	if !errors.Is(err, &StatusError{SW: SWSecurityNotSatisfied}) || errors.Is(err, &StatusError{SW: 0x6983}) {
		t.Fatal("errors.Is on StatusError compares the status word")
	}
	if err.Error() != "apdu: card returned 6982 (security status not satisfied)" {
		t.Fatalf("message %q", err.Error())
	}
	if n, ok := TriesLeft(0x63C3); !ok || n != 3 {
		t.Fatal("TriesLeft(63C3)")
	}
	if _, ok := TriesLeft(0x6983); ok {
		t.Fatal("TriesLeft(6983)")
	}
	if Meaning(0x63C2) != "verification failed, 2 tries left" || Meaning(0x6A82) != "file or application not found" {
		t.Fatal("meanings")
	}
}

func TestHeaderAndLc(t *testing.T) {
	c := Command{CLA: 0x84, INS: 0xE2, Data: make([]byte, 300)}
	if got := hex.EncodeToString(c.HeaderAndLc()); got != "84e2000000012c" {
		t.Fatalf("extended: %s", got)
	}
	c = Command{CLA: 0x84, INS: 0xE2, Data: make([]byte, 8), Ne: 256}
	if got := hex.EncodeToString(c.HeaderAndLc()); got != "84e2000008" {
		t.Fatalf("short: %s", got)
	}
}

func TestTLV(t *testing.T) {
	var b []byte
	b = AppendTLV(b, 0x83, []byte{0x00, 0x17})
	b = AppendTLV(b, 0x5F20, bytes.Repeat([]byte{1}, 200))
	b = AppendTLV(b, 0x7F49, bytes.Repeat([]byte{2}, 300))
	tl, err := ParseTLVs(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(tl) != 3 || tl[0].Tag != 0x83 || tl[1].Tag != 0x5F20 || len(tl[1].Value) != 200 || tl[2].Tag != 0x7F49 || len(tl[2].Value) != 300 {
		t.Fatalf("%+v", tl)
	}
	if !tl[2].Constructed() || tl[0].Constructed() {
		t.Fatal("constructed bit")
	}
	if v, ok := FindTLV(tl, 0x83); !ok || !bytes.Equal(v, []byte{0, 0x17}) {
		t.Fatal("FindTLV")
	}
	for _, s := range []string{"5f", "83", "8302aa", "8380", "8384000000010000", "1fffffff0100"} {
		if _, err := ParseTLVs(hx(t, s)); !errors.Is(err, ErrTLV) {
			t.Errorf("ParseTLVs(%s): %v", s, err)
		}
	}
}

// FuzzParseCommand: the parser never panics, and whatever it accepts re-encodes to a command
// that parses to the same fields (extended-ness may normalise only when forced on input).
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"00a4040c0ad392f000260100000001", "00b0000004", "00200080", "84d800170000050102030405" + "0100", "0000000000", "00e20000000002aabb0000"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCommand(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		enc, err := c.Encode()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding %x gave %x", b, enc)
		}
		_, _ = ParseResponse(b)
		_, _ = ParseTLVs(b)
	})
}

// FuzzParseTLVs: never panics; accepted input re-encodes to a TLV sequence of the same values.
func FuzzParseTLVs(f *testing.F) {
	f.Add(hx(f, "830200175f200101"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tl, err := ParseTLVs(b)
		if err != nil {
			return
		}
		var out []byte
		for _, x := range tl {
			out = AppendTLV(out, x.Tag, x.Value)
		}
		back, err := ParseTLVs(out)
		if err != nil || len(back) != len(tl) {
			t.Fatalf("re-parse: %v", err)
		}
		for i := range tl {
			if back[i].Tag != tl[i].Tag || !bytes.Equal(back[i].Value, tl[i].Value) {
				t.Fatalf("object %d differs", i)
			}
		}
	})
}
