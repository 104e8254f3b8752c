package ceremony

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Fuzz targets for the ceremony's files, which are outside input: a share file is carried
// on a custodian's own medium, the staff register is a file in the data dir.

// FuzzReadShareFile: a share file ReadShareFile accepts has every field that later costs
// memory or time inside its bounds (checked before anything is spent), re-encodes to a file
// that parses and re-encodes to the same bytes, and (unsealed) combined with a genuine share never
// reconstructs any secret but the genuine one (the check value refuses everything else).
func FuzzReadShareFile(f *testing.F) {
	UseTestCosts(f)
	dir := f.TempDir()
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		f.Fatal(err)
	}
	shares, err := splitSecret(rand.Reader, PurposeToken, "c-1", secret,
		[]Custodian{{Name: "a"}, {Name: "b"}, {Name: "c", Passphrase: "correct horse battery staple"}}, 2)
	if err != nil {
		f.Fatal(err)
	}
	var files [][]byte
	for _, s := range shares {
		b, err := json.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, b)
		f.Add(b)
	}
	other := filepath.Join(dir, "b.share")
	if err := os.WriteFile(other, files[1], 0o600); err != nil {
		f.Fatal(err)
	}
	f.Add(bytes.Replace(files[2], []byte(`"mem_kib":8192`), []byte(`"mem_kib":67108864`), 1))
	f.Add(bytes.Replace(files[0], []byte(`"threshold":2`), []byte(`"threshold":0`), 1))
	f.Add(bytes.Replace(files[0], []byte(`"custodian":"a"`), []byte(`"custodian":"b"`), 1))
	f.Add([]byte(`{"version":1,"threshold":1,"total":1,"check":"` + string(bytes.Repeat([]byte("A"), 43)) + `="}`))
	f.Add([]byte(`null`))
	path := filepath.Join(dir, "fuzz.share")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		sf, err := ReadShareFile(path)
		if err != nil {
			if !errors.Is(err, ErrBadShare) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if sf.Version != 1 || sf.Threshold < 1 || sf.Total < sf.Threshold || sf.Total > 255 || len(sf.Check) != 32 ||
			len(sf.Share) > maxShareLen || len(sf.Ciphertext) > maxShareLen {
			t.Fatalf("accepted header out of bounds: %v", sf)
		}
		if p := sf.Sealed; p != nil && (p.MemKiB > argonMaxMemKiB || p.Time > argonMaxTime || p.Threads > argonMaxThreads ||
			p.MemKiB < argonMinMemKiB || p.Time < argonMinTime || p.Threads < 1 || len(p.Salt) < argonMinSalt || len(p.Nonce) != gcmNonceSize) {
			t.Fatalf("accepted argon2 parameters out of bounds: %+v", *p)
		}
		re, err := json.Marshal(sf)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, re, 0o600); err != nil {
			t.Fatal(err)
		}
		back, err := ReadShareFile(path)
		if err != nil {
			t.Fatalf("re-encoded share refused: %v", err)
		}
		// Compared in their encoded form: "share":"" and an absent share both mean none.
		if again, _ := json.Marshal(back); !bytes.Equal(again, re) {
			t.Fatalf("re-encoded share does not re-encode to itself:\n%s\n%s", re, again)
		}
		// Opening a sealed share runs argon2id (8 MiB at least): not inside a fuzz loop.
		if sf.Sealed != nil {
			return
		}
		got, _, _, err := combineShares(PurposeToken, []PresentedShare{{Path: path, Passphrase: "correct horse battery staple"}, {Path: other}})
		if err == nil && !bytes.Equal(got, secret) {
			t.Fatalf("reconstructed a secret other than the genuine one")
		}
		if err != nil && !errors.Is(err, ErrBadShare) && !errors.Is(err, ErrNotEnoughShares) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}

// FuzzLoadStaff: a staff register LoadStaff accepts re-encodes to a file that loads and
// re-encodes to the same bytes, Holds agrees with the holder list, and a credential whose argon2id
// parameters are out of bounds is refused with ErrBadInput before any derivation (a crafted
// register must not be a memory or CPU bomb).
func FuzzLoadStaff(f *testing.F) {
	UseTestCosts(f)
	dir := f.TempDir()
	if err := os.MkdirAll(CeremonyDir(dir), 0o700); err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	reg := &StaffRegister{Version: 1, Holders: []StaffHolder{
		{Person: "mgr", Role: StaffCAManager, Since: now, ApprovedBy: []string{"mgr", "aud"}},
		{Person: "aud", Role: StaffInternalAuditor, Since: now, ApprovedBy: []string{"mgr", "aud"}},
	}}
	c, err := newCredential("mgr", "Kasumigaseki-2-1-2-Tokyo", now)
	if err != nil {
		f.Fatal(err)
	}
	reg.setCredential("mgr", c)
	genuine, err := json.Marshal(reg)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(genuine)
	f.Add(bytes.Replace(genuine, []byte(`"mem_kib":8192`), []byte(`"mem_kib":4294967295`), 1))
	f.Add(bytes.Replace(genuine, []byte(`"time":1`), []byte(`"time":100000`), 1))
	f.Add([]byte(`{"version":1,"holders":[{"person":"x","role":"nobody"}],"credentials":{"x":null}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	path := staffPath(dir)
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := LoadStaff(dir)
		if err != nil {
			return
		}
		if r == nil {
			t.Fatal("a register file that exists loaded as none")
		}
		re, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, re, 0o600); err != nil {
			t.Fatal(err)
		}
		back, err := LoadStaff(dir)
		if err != nil {
			t.Fatalf("re-encoded register refused: %v", err)
		}
		// Compared in their encoded form: "credentials":{} and none both mean none.
		if again, _ := json.Marshal(back); !bytes.Equal(again, re) {
			t.Fatalf("re-encoded register does not re-encode to itself:\n%s\n%s", re, again)
		}
		for _, h := range r.Holders {
			if !r.Holds(h.Person, h.Role) {
				t.Fatalf("Holds(%q, %q) false for a listed holder", h.Person, h.Role)
			}
		}
		for person, c := range r.Credentials {
			if c == nil {
				continue
			}
			if (argonParams{c.KDF, c.Salt, c.Time, c.MemKiB, c.Threads}).check() == nil && len(c.Hash) == 32 {
				continue // a real derivation (8 MiB at least): not inside a fuzz loop
			}
			if err := c.verify(person, "not the passphrase"); !errors.Is(err, ErrBadInput) {
				t.Fatalf("credential out of bounds: %v", err)
			}
		}
	})
}
