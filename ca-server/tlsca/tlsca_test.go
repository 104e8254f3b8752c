package tlsca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"madoguchi/ca-server/store"
)

func TestLoadOrCreateKeepsKeyPrivateAndStable(t *testing.T) {
	dir := t.TempDir()
	c1, k1, err := LoadOrCreate(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, caKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v %v, want 0600", fi.Mode().Perm(), err)
	}
	c2, k2, err := LoadOrCreate(dir, time.Now())
	if err != nil || !c1.Equal(c2) || !k1.Public().(*ecdsa.PublicKey).Equal(k2.Public()) {
		t.Fatalf("second load differs: %v", err)
	}
	if c1.NotAfter.Sub(c1.NotBefore) > MaxCAValidity+time.Hour || !hasPolicy(c1) {
		t.Fatalf("CA validity %v, policy %v", c1.NotAfter.Sub(c1.NotBefore), c1.Policies)
	}
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := New(c1, other, st, nil); err == nil {
		t.Fatal("signer not matching the certificate accepted")
	}
	ca, err := New(c1, k1, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ca.ServerCertificate([]string{"127.0.0.1", "ca.example"})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Leaf.NotAfter.After(c1.NotAfter) || len(sc.Leaf.IPAddresses) != 1 || sc.Leaf.DNSNames[0] != "ca.example" {
		t.Fatalf("server certificate %v %v %v", sc.Leaf.NotAfter, sc.Leaf.IPAddresses, sc.Leaf.DNSNames)
	}
	// only one of the two files present: refuse rather than overwrite
	os.Remove(filepath.Join(dir, caCertFile))
	if _, _, err := LoadOrCreate(dir, time.Now()); err == nil {
		t.Fatal("half-present CA accepted")
	}
}

func TestValidMunicipality(t *testing.T) {
	for code, ok := range map[string]bool{"131016": true, "011002": true, "271004": true, "141003": true,
		"131017": false, "13101": false, "13101a": false, "": false} {
		if err := ValidMunicipality(code); (err == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", code, err, ok)
		}
	}
}
