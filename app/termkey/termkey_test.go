package termkey

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/pkcs11"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/internal/e2e"
	"madoguchi/app/resident"
	"madoguchi/app/store"
	"madoguchi/internal/testenv"
	"madoguchi/raclient"
)

func TestMain(m *testing.M) {
	code := m.Run()
	e2e.Cleanup()
	os.Exit(code)
}

// tokenURI names h's token the way a terminal's settings do: module, token label, and the PIN
// in a file of its own (mode 0600).
func tokenURI(t *testing.T, h *testenv.HSM) string {
	t.Helper()
	pin := filepath.Join(t.TempDir(), "token.pin")
	if err := os.WriteFile(pin, []byte(h.UserPIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return "pkcs11:token=" + h.TokenLabel + "?module-path=" + h.Module + "&pin-source=file:" + pin
}

// terminal is one enrolled terminal's data directory, laid out as the terminal's app/calink
// keeps it (<data-dir>/ca/terminal-key.pem, terminal-cert.pem, tls-ca.pem).
type terminal struct {
	dir  string
	keys *Keys
}

func (tm terminal) keyFile() string  { return filepath.Join(tm.dir, "ca", "terminal-key.pem") }
func (tm terminal) certFile() string { return filepath.Join(tm.dir, "ca", "terminal-cert.pem") }
func (tm terminal) rootFile() string { return filepath.Join(tm.dir, "ca", "tls-ca.pem") }

// enrol does what calink.Link.Enrol does: a new key (Generate), a CSR with a one-time token
// (raclient.Enroll), then key (Save), certificate, pinned TLS CA, and the old keys retired.
func enrol(t *testing.T, ca *e2e.CA, dir, uri string) terminal {
	t.Helper()
	tm := terminal{dir: dir}
	var err error
	if tm.keys, err = Open(tm.keyFile(), uri); err != nil {
		t.Fatalf("open keys: %v", err)
	}
	t.Cleanup(func() { tm.keys.Close() })
	token := strings.TrimSpace(e2e.CACmd(t, ca.Bin, "terminal-token", "--data-dir", ca.Data, "--municipality", "131016"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.RootPEM)
	key, err := tm.keys.Generate()
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := raclient.Enroll(ctx, raclient.EnrollConfig{BaseURL: ca.Base, RootCAs: pool, Token: token, Key: key, Operator: "terminal-installer"})
	if err != nil {
		tm.keys.Discard(key)
		t.Fatalf("enrol: %v", err)
	}
	if err := tm.keys.Save(key); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "ca"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tm.certFile(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: resp.Certificate}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tm.rootFile(), ca.RootPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := tm.keys.Retire(key); err != nil {
		t.Fatal(err)
	}
	return tm
}

// dial builds the mTLS client as calink.Link.Client does.
func (tm terminal) dial(t *testing.T, ca *e2e.CA) (*raclient.Client, error) {
	t.Helper()
	pair, err := tm.keys.Certificate(tm.certFile())
	if err != nil {
		return nil, err
	}
	return app.DialCA(app.CAFiles{URL: ca.Base, RootFile: tm.rootFile(), Certificate: &pair})
}

// openChannel is an authenticated call: the CA answers it only to an enrolled terminal.
func openChannel(c *raclient.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.OpenChannel(ctx, "op-1")
	return err
}

// noKeyMaterial fails the test when any file under dir holds a private key.
func noKeyMaterial(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte("PRIVATE KEY")) {
			t.Errorf("%s holds a private key", p)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(dir, "ca", "terminal-key.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("terminal-key.pem exists with the key in the token: %v", err)
	}
}

// A terminal enrolled with its TLS key in a SoftHSM token makes mutual-TLS calls to a real
// ca-server; the key's value cannot be read out of the token and no key file exists.
func TestTokenKeyEnrolAndMTLS(t *testing.T) {
	ca := e2e.StartCA(t)
	h := testenv.SoftHSM(t) // the terminal's own token (SOFTHSM2_CONF now points at it)
	tm := enrol(t, ca, t.TempDir(), tokenURI(t, h))
	c, err := tm.dial(t, ca)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if err := openChannel(c); err != nil {
		t.Fatalf("mTLS call with the token key: %v", err)
	}
	noKeyMaterial(t, tm.dir)

	// The private key is sensitive and not extractable: C_GetAttributeValue(CKA_VALUE) is
	// refused.
	pair, err := tm.keys.Certificate(tm.certFile())
	if err != nil {
		t.Fatal(err)
	}
	k := pair.PrivateKey.(*ecSigner)
	tok := tm.keys.tok
	err = tok.do(func(s pkcs11.SessionHandle) error {
		attrs, err := tok.ctx.GetAttributeValue(s, k.priv, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil), pkcs11.NewAttribute(pkcs11.CKA_NEVER_EXTRACTABLE, nil)})
		if err != nil {
			return err
		}
		for _, a := range attrs {
			want := byte(1)
			if a.Type == pkcs11.CKA_EXTRACTABLE {
				want = 0
			}
			if len(a.Value) != 1 || a.Value[0] != want {
				t.Errorf("attribute %#x = %v, want %d", a.Type, a.Value, want)
			}
		}
		v, err := tok.ctx.GetAttributeValue(s, k.priv, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if !isCode(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
			t.Errorf("CKA_VALUE of the TLS key: %v, %v; want CKR_ATTRIBUTE_SENSITIVE", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Enrolling again replaces the key: the old one is destroyed, the new one works.
	tm.keys.Close()
	again := enrol(t, ca, tm.dir, tokenURI(t, h))
	c2, err := again.dial(t, ca)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := openChannel(c2); err != nil {
		t.Fatalf("mTLS call after re-enrolment: %v", err)
	}
	if err := again.keys.tok.do(func(s pkcs11.SessionHandle) error {
		keys, err := again.keys.tok.tlsKeys(s)
		if len(keys) != 1 {
			t.Errorf("%d TLS keys in the token after re-enrolment, want 1", len(keys))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// residentDB opens a terminal database and loads the fictional residents into it.
func residentDB(t *testing.T, path string) *store.DB {
	t.Helper()
	db := openDB(t, path)
	if err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := resident.ImportCSV(context.Background(), tx, bytes.NewReader(resident.Fixtures), time.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return db
}

// openDB opens an existing terminal database.
func openDB(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func export(t *testing.T, db *store.DB, key resident.FileKey) []byte {
	t.Helper()
	var out []byte
	if err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		var err error
		out, _, err = resident.ExportFile(context.Background(), tx, key, rand.Reader, "90000000011", "cs-1", time.Now(), 30*time.Minute)
		return err
	}); err != nil {
		t.Fatalf("export: %v", err)
	}
	return out
}

func importFile(db *store.DB, key resident.FileKey, data []byte) error {
	return db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := resident.ImportFile(context.Background(), tx, key, data, "rec-1", time.Now())
		return err
	})
}

// forge rewrites the file's name and signs it again with a key the forger holds (nil: none).
func forge(t *testing.T, data []byte, key []byte) []byte {
	t.Helper()
	var env struct {
		Format  string          `json:"format"`
		Payload json.RawMessage `json:"payload"`
		MAC     string          `json:"mac"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatal(err)
	}
	env.Payload = bytes.Replace(env.Payload, []byte("髙橋 一郎"), []byte("偽造 太郎"), 1)
	if key != nil {
		env.MAC = hex.EncodeToString(mac(t, key, append([]byte(resident.FileFormat), env.Payload...)))
	}
	out, _ := json.Marshal(env)
	return out
}

// The resident-file MAC is made and checked with the token's HMAC key; the key value cannot be
// read out, and terminal.db holds no file key.
func TestTokenResidentFileHMAC(t *testing.T) {
	h := testenv.SoftHSM(t)
	keys, err := Open(filepath.Join(t.TempDir(), "unused.pem"), tokenURI(t, h))
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	fk, err := keys.ResidentFileKey()
	if err != nil {
		t.Fatal(err)
	}
	db := residentDB(t, filepath.Join(t.TempDir(), "terminal.db"))
	data := export(t, db, fk)
	if err := importFile(db, fk, data); err != nil {
		t.Fatalf("import with the token key: %v", err)
	}
	// A second import is still refused (single use), and an edited file is refused.
	if err := importFile(db, fk, data); !errors.Is(err, apperr.FileUsed) {
		t.Fatalf("second import: %v", err)
	}
	if err := importFile(db, fk, forge(t, export(t, db, fk), nil)); !errors.Is(err, apperr.FileTampered) {
		t.Fatalf("edited file: %v", err)
	}
	var n int
	if err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		return tx.QueryRow(`SELECT COUNT(*) FROM terminal_secrets`).Scan(&n)
	}); err != nil || n != 0 {
		t.Fatalf("terminal_secrets rows = %d, %v; want no file key in the database", n, err)
	}
	// The same key answers the same MAC after the token is opened again (a restart).
	m1, _ := fk.MAC([]byte("x"))
	keys.Close()
	keys2, err := Open("", tokenURI(t, h))
	if err != nil {
		t.Fatal(err)
	}
	defer keys2.Close()
	fk2, _ := keys2.ResidentFileKey()
	if m2, err := fk2.MAC([]byte("x")); err != nil || !bytes.Equal(m1, m2) {
		t.Fatalf("MAC after reopening: %x, %v; want %x", m2, err, m1)
	}
	hk := fk2.(*HMACKey)
	if err := keys2.tok.do(func(s pkcs11.SessionHandle) error {
		_, err := keys2.tok.ctx.GetAttributeValue(s, hk.h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if !isCode(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
			t.Errorf("CKA_VALUE of the HMAC key: %v; want CKR_ATTRIBUTE_SENSITIVE", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// Attack (stolen terminal): copy the terminal's data directory to another machine and act as
// the terminal there: call the CA with its TLS identity, and forge a resident-record file that
// the terminal accepts.
//
// With the file default (the only option on the code before this change) the attack succeeds:
// the copy holds terminal-key.pem and terminal.db's resident_file_hmac, which is all it takes.
// This half of the test documents that residual risk of the default (mitigated only by
// revoking the terminal's certificate, ca-server terminal revoke, and by the 0700 data
// directory). With the keys in a PKCS#11 token (--key-uri) the copied directory holds no key:
// without the token the copy cannot authenticate, and a forged file is refused.
func TestAttackCopiedDataDir(t *testing.T) {
	ca := e2e.StartCA(t)

	t.Run("file default: the copy acts as the terminal", func(t *testing.T) {
		tm := enrol(t, ca, t.TempDir(), "")
		db := residentDB(t, filepath.Join(tm.dir, "terminal.db"))
		export(t, db, nil) // the terminal's first export creates its file key
		db.Close()

		stolen := t.TempDir()
		copyDir(t, tm.dir, stolen)
		c, err := app.DialCA(app.CAFiles{URL: ca.Base, CertFile: filepath.Join(stolen, "ca", "terminal-cert.pem"),
			KeyFile: filepath.Join(stolen, "ca", "terminal-key.pem"), RootFile: filepath.Join(stolen, "ca", "tls-ca.pem")})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := openChannel(c); err != nil {
			t.Fatalf("the copied key file no longer authenticates: %v", err)
		}
		// The copy's terminal.db holds the HMAC key: the thief forges a file the terminal takes.
		sdb := openDB(t, filepath.Join(stolen, "terminal.db"))
		var key []byte
		if err := sdb.Tx(context.Background(), func(tx *sql.Tx) error {
			return tx.QueryRow(`SELECT value FROM terminal_secrets WHERE name = 'resident_file_hmac'`).Scan(&key)
		}); err != nil {
			t.Fatal(err)
		}
		real := openDB(t, filepath.Join(tm.dir, "terminal.db"))
		if err := importFile(real, nil, forge(t, export(t, real, nil), key)); err != nil {
			t.Fatalf("forged file refused: %v", err)
		}
	})

	t.Run("token: the copy cannot act as the terminal", func(t *testing.T) {
		h := testenv.SoftHSM(t)
		uri := tokenURI(t, h)
		tm := enrol(t, ca, t.TempDir(), uri)
		fk, err := tm.keys.ResidentFileKey()
		if err != nil {
			t.Fatal(err)
		}
		real := residentDB(t, filepath.Join(tm.dir, "terminal.db"))
		data := export(t, real, fk)
		noKeyMaterial(t, tm.dir)

		stolen := t.TempDir()
		copyDir(t, tm.dir, stolen)
		// 1. The copy has no key file to load.
		if c, err := app.DialCA(app.CAFiles{URL: ca.Base, CertFile: filepath.Join(stolen, "ca", "terminal-cert.pem"),
			KeyFile: filepath.Join(stolen, "ca", "terminal-key.pem"), RootFile: filepath.Join(stolen, "ca", "tls-ca.pem")}); err == nil {
			c.Close()
			t.Fatal("a client was built from the copied data directory")
		}
		// 2. The copied certificate with a key of the thief's own is refused by the CA.
		leafPEM, _ := os.ReadFile(filepath.Join(stolen, "ca", "terminal-cert.pem"))
		blk, _ := pem.Decode(leafPEM)
		own, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		c, err := app.DialCA(app.CAFiles{URL: ca.Base, RootFile: filepath.Join(stolen, "ca", "tls-ca.pem"),
			Certificate: &tls.Certificate{Certificate: [][]byte{blk.Bytes}, PrivateKey: own}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := openChannel(c); err == nil {
			t.Fatal("the CA accepted the copied certificate with another key")
		}
		// 3. The thief's machine has a PKCS#11 module but not the terminal's token.
		tm.keys.Close()
		testenv.SoftHSM(t) // another token, another SOFTHSM2_CONF: the thief's machine
		if _, err := Open(filepath.Join(stolen, "ca", "terminal-key.pem"), uri); !errors.Is(err, ErrTokenNotFound) {
			t.Fatalf("opening the terminal's key URI without its token: %v; want ErrTokenNotFound", err)
		}
		// 4. The copied terminal.db holds no file key; a file forged with any key is refused by
		// the terminal (which still has its token).
		sdb := openDB(t, filepath.Join(stolen, "terminal.db"))
		var n int
		if err := sdb.Tx(context.Background(), func(tx *sql.Tx) error {
			return tx.QueryRow(`SELECT COUNT(*) FROM terminal_secrets`).Scan(&n)
		}); err != nil || n != 0 {
			t.Fatalf("terminal_secrets in the copy: %d rows, %v", n, err)
		}
		guess := make([]byte, 32)
		rand.Read(guess)
		t.Setenv("SOFTHSM2_CONF", h.ConfPath) // back on the terminal
		keys, err := Open("", uri)
		if err != nil {
			t.Fatal(err)
		}
		defer keys.Close()
		fk, _ = keys.ResidentFileKey()
		if err := importFile(real, fk, forge(t, data, guess)); !errors.Is(err, apperr.FileTampered) {
			t.Fatalf("forged file: %v; want FileTampered", err)
		}
	})
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mac(t *testing.T, key, msg []byte) []byte {
	t.Helper()
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// A key URI the terminal cannot use safely is refused with a reason, and no error carries the
// PIN.
func TestOpenTokenRefuses(t *testing.T) {
	h := testenv.SoftHSM(t)
	dir := t.TempDir()
	pin := filepath.Join(dir, "token.pin")
	os.WriteFile(pin, []byte(h.UserPIN+"\n"), 0o600)
	loose := filepath.Join(dir, "loose.pin")
	os.WriteFile(loose, []byte(h.UserPIN+"\n"), 0o644)
	wrong := filepath.Join(dir, "wrong.pin")
	os.WriteFile(wrong, []byte("not-the-pin\n"), 0o600)
	mod := "&module-path=" + h.Module
	for _, tc := range []struct{ uri, want string }{
		{"pkcs11:token=" + h.TokenLabel + "?pin-value=" + h.UserPIN + mod, "pin-value"},
		{"pkcs11:token=" + h.TokenLabel + ";vendor-x=1?pin-source=file:" + pin + mod, "does not define"},
		{"pkcs11:token=" + h.TokenLabel + ";type=private?pin-source=file:" + pin + mod, "not type or id"},
		{"pkcs11:token=" + h.TokenLabel + "?pin-source=file:" + pin, "names no module"},
		{"pkcs11:token=" + h.TokenLabel + "?pin-source=file:" + pin + "&module-path=lib.so", "absolute"},
		{"pkcs11:token=" + h.TokenLabel + "?pin-source=|/bin/echo" + mod, "pin-source"},
		{"pkcs11:token=" + h.TokenLabel + "?pin-source=file:" + loose + mod, "readable by others"},
		{"pkcs11:token=" + h.TokenLabel + "?pin-source=file:" + wrong + mod, "CKR_PIN_INCORRECT"},
		{"pkcs11:token=no-such-token?pin-source=file:" + pin + mod, "no token matches"},
		{"pkcs11:token=" + h.TokenLabel + ";serial=0000?pin-source=file:" + pin + mod, "no token matches"},
		{"pkcs11:library-manufacturer=Snake%20Oil?pin-source=file:" + pin + mod, "no token matches"},
		{"pkcs11:token=" + h.TokenLabel + "?pin-source=file:" + pin + "&module-name=no-such-module", "not found"},
		{"pkcs11:token=a%zz", "invalid"},
	} {
		k, err := Open("", tc.uri)
		if err == nil {
			k.Close()
			t.Errorf("Open(%q) accepted", tc.uri)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v; want %q", tc.uri, err, tc.want)
		}
		if strings.Contains(err.Error(), h.UserPIN) {
			t.Errorf("Open(%q): the PIN is in the error %q", tc.uri, err)
		}
	}
	// The same token found by its library and token attributes works.
	k, err := Open("", "pkcs11:library-manufacturer=SoftHSM;token="+h.TokenLabel+"?module-path="+h.Module+"&pin-source="+pin+"&x-unknown=ignored")
	if err != nil {
		t.Fatalf("open with library attributes and an unknown query attribute: %v", err)
	}
	k.Close()
}
