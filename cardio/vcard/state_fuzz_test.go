package vcard

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"testing"
)

// FuzzStateFile: the virtual card's state file (its EEPROM on disk, read back at start-up).
// Loading is deterministic (the same file always gives the same card), and an accepted
// file re-encodes to a file that loads and re-encodes to itself.
func FuzzStateFile(f *testing.F) {
	serial := bytes.Repeat([]byte{0x42}, 16)
	keys := StaticKeys{ENC: bytes.Repeat([]byte{1}, 16), MAC: bytes.Repeat([]byte{2}, 16), DEK: bytes.Repeat([]byte{3}, 16)}
	blank := newModel(serial, keys)
	b, err := blank.marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	// A personalised card: certificates, a key, a set PIN (1024 bits keeps the seed cheap;
	// the state file takes any RSA key).
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		f.Fatal(err)
	}
	full := newModel(serial, keys)
	full.lifecycle = LifecyclePersonalised
	full.files[EFUserAuthCert] = []byte{0x30, 0x03, 0x02, 0x01, 0x01}
	full.privateKeys[EFUserAuthKey] = k
	full.pins[EFUserAuthPIN] = &pinRecord{State: PINSet, Salt: []byte{1, 2}, Hash: []byte{3, 4}, TriesLeft: 3}
	full.extra = map[string][]byte{"perso": {9}}
	b, err = full.marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	var s map[string]any
	_ = json.Unmarshal(b, &s)
	// The same certificate file named twice, in two spellings of its id.
	s["files"] = map[string]any{"000A": []byte{1}, "000a": []byte{2}}
	dup, _ := json.Marshal(s)
	f.Add(dup)
	f.Add([]byte(`{"version":1,"serial":"00","static_keys":{}}`))
	f.Add([]byte(`{"version":1,"serial":"42424242424242424242424242424242","static_keys":{"enc":"01010101010101010101010101010101","mac":"01010101010101010101010101010101","dek":"01010101010101010101010101010101"},"lifecycle":"blank","pins":{"0018":{"state":"set","tries_left":99}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := unmarshalModel(data)
		if err != nil {
			return
		}
		enc, err := m.marshal()
		if err != nil {
			t.Fatalf("accepted state does not re-encode: %v", err)
		}
		for range 8 { // map order is random: a load that depends on it differs soon
			m2, err := unmarshalModel(data)
			if err != nil {
				t.Fatalf("second load refused: %v", err)
			}
			enc2, err := m2.marshal()
			if err != nil || !bytes.Equal(enc, enc2) {
				t.Fatalf("the same state file loads to different cards:\n%s\n%s", enc, enc2)
			}
		}
		m3, err := unmarshalModel(enc)
		if err != nil {
			t.Fatalf("re-encoded state refused: %v", err)
		}
		enc3, err := m3.marshal()
		if err != nil || !bytes.Equal(enc, enc3) {
			t.Fatalf("re-encoded state does not re-encode to itself: %v", err)
		}
	})
}
