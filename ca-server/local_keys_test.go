package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/ceremony"
	"madoguchi/ca-server/store"
	"madoguchi/ca-server/tlsca"
	"madoguchi/internal/testenv"
	"madoguchi/raclient"
)

// serveFor runs `ca-server serve` in this process until the returned stop
// is called (or cleanup), and returns its address.
func serveFor(t *testing.T, args ...string) (string, func()) {
	t.Helper()
	addr, _, stop := serveForPublic(t, args...)
	return addr, stop
}

// serveForPublic is serveFor that also returns the public listener's
// address ("" when it is off).
func serveForPublic(t *testing.T, args ...string) (string, string, func()) {
	t.Helper()
	// Free ports for the status listeners, as startServe does: their
	// defaults are fixed and other test binaries run at once.
	if !slices.Contains(args, "--metrics-listen") { // the default is a fixed port
		args = append(args, "--metrics-listen", "127.0.0.1:0")
	}
	for _, f := range []string{"--verifier-listen", "--public-listen"} {
		if !slices.Contains(args, f) {
			args = append(args, f, "127.0.0.1:0")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	old := serveContext
	serveContext = func() context.Context { return ctx }
	stdout := &lineWriter{lines: make(chan string, 64)}
	var stderr bytes.Buffer
	var mu sync.Mutex
	done := make(chan int, 1)
	go func() {
		mu.Lock()
		defer mu.Unlock()
		done <- run(append([]string{"serve"}, args...), stdout, &stderr)
	}()
	var once sync.Once
	exited := false
	stop := func() {
		once.Do(func() {
			cancel()
			if exited {
				serveContext = old
				return
			}
			if code := <-done; code != 0 {
				mu.Lock()
				t.Errorf("serve exit %d:\n%s", code, stderr.String())
				mu.Unlock()
			}
			serveContext = old
		})
	}
	t.Cleanup(stop)
	timeout := time.After(2 * time.Minute)
	public := ""
	for {
		select {
		case line := <-stdout.lines:
			if _, rest, ok := strings.Cut(line, "public ARL and CA certificates on "); ok {
				public = strings.TrimPrefix(strings.Fields(rest)[0], "https://")
			}
			if _, rest, ok := strings.Cut(line, "listening on "); ok {
				return strings.TrimPrefix(strings.Fields(rest)[0], "https://"), public, stop
			}
		case code := <-done:
			exited = true
			mu.Lock()
			msg := stderr.String()
			mu.Unlock()
			t.Fatalf("serve exited with %d before listening:\n%s", code, msg)
		case <-timeout:
			t.Fatal("serve did not start listening")
		}
	}
}

// runExit runs a command and returns its exit code and output.
func runExit(args ...string) (int, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String() + errb.String()
}

func enrolAt(t *testing.T, addr string, pool *x509.CertPool, tok string) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	enr, err := raclient.Enroll(context.Background(), raclient.EnrollConfig{BaseURL: "https://" + addr, RootCAs: pool, Token: tok, Key: key, Operator: "installer"})
	if err != nil {
		t.Fatalf("enrol: %v", err)
	}
	c, err := x509.ParseCertificate(enr.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A ceremony-initialised data dir keeps the TLS CA key and the audit
// checkpoint key in the HSM: local commands leave no key file and append
// unsigned chained records; serve signs enrolments with the HSM TLS CA key
// and checkpoints covering the local records with the HSM audit key;
// `audit verify` checks them with the public key from the ceremony state and
// detects a tampered checkpoint. ca.db is 0600.
func TestHSMKeysForAuditAndTLSCA(t *testing.T) {
	testenv.SoftHSM(t)
	data := t.TempDir()
	runCmd(t, "ceremony-init", "--data", data, "--dev")
	tok1 := strings.TrimSpace(runCmd(t, "terminal-token", "--data-dir", data, "--municipality", "131016"))
	for _, f := range []string{"tls-ca.key", legacyAuditKeyFile} {
		if _, err := os.Stat(filepath.Join(data, f)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s in the data dir: %v", f, err)
		}
	}
	st, err := ceremony.LoadState(data)
	if err != nil {
		t.Fatal(err)
	}
	tlsRec := st.ServiceKeyRecords(ceremony.RoleTLSCA)[0]
	hsmCA := readPEMCert(t, tlsRec.Certificate)
	if !readPEMCert(t, filepath.Join(data, "tls-ca.crt")).Equal(hsmCA) {
		t.Fatal("tls-ca.crt is not the ceremony's TLS CA certificate")
	}
	if fi, err := os.Stat(filepath.Join(data, "ca.db")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ca.db mode %v %v", fi.Mode(), err)
	}
	// Nothing vouches for the log before the server's first checkpoint.
	if code, out := runExit("audit", "verify", "--data-dir", data); code == 0 || !strings.Contains(out, "1 records, 0 checkpoints") || !strings.Contains(out, "no-checkpoint") {
		t.Fatalf("audit verify before serve: %d\n%s", code, out)
	}
	// verifier-add that issues a certificate needs the TLS CA key: a
	// production CA's custodians must present shares.
	if _, err := runCeremonyCmd(t, "verifier-add", "--data-dir", data, "--name", "rp", "--out-dir", t.TempDir(), "--share", filepath.Join(t.TempDir(), "none.share")); err == nil {
		t.Fatal("verifier-add issued a certificate without a valid share")
	}

	addr, stop := serveFor(t, "--data-dir", data, "--dev", "--listen", "127.0.0.1:0")
	pool := x509.NewCertPool()
	pool.AddCert(hsmCA) // the client verifies the server certificate against the HSM CA
	leaf := enrolAt(t, addr, pool, tok1)
	if err := leaf.CheckSignatureFrom(hsmCA); err != nil {
		t.Fatalf("terminal certificate not signed by the HSM TLS CA key: %v", err)
	}
	// A local command while the server runs: its record joins the chain.
	runCmd(t, "terminal-token", "--data-dir", data, "--municipality", "131016")
	stop()

	code, out := runExit("audit", "verify", "--data-dir", data)
	if code != 0 || !strings.Contains(out, "0 records after the last checkpoint") {
		s, _ := store.OpenSQLite(context.Background(), filepath.Join(data, "ca.db"))
		recs, _ := s.AuditRecords(context.Background(), 0, 100)
		s.Close()
		for _, r := range recs {
			t.Logf("%d %s %s %s %s", r.Seq, r.At.Format(time.RFC3339Nano), r.Terminal, r.Action, r.Result)
		}
		t.Fatalf("audit verify after serve: %d\n%s", code, out)
	}
	s, err := store.OpenSQLite(context.Background(), filepath.Join(data, "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	cps, err := s.AuditCheckpoints(context.Background())
	s.Close()
	auditCert := readPEMCert(t, st.ServiceKeyRecords(ceremony.RoleAuditCheckpoint)[0].Certificate)
	id, _ := audit.KeyIDOf(auditCert.PublicKey)
	if err != nil || len(cps) == 0 || cps[len(cps)-1].KeyID != id {
		t.Fatalf("checkpoints %+v %v, want the HSM key %s", cps, err, id)
	}

	// Tamper with the newest checkpoint's signature: verify fails.
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(data, "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	dropAuditTriggers(t, raw) // an attacker with the file
	last := cps[len(cps)-1]
	sig := append([]byte(nil), last.Signature...)
	sig[10] ^= 1
	if _, err := raw.Exec(`UPDATE audit_checkpoints SET signature = ? WHERE seq = ?`, sig, last.Seq); err != nil {
		t.Fatal(err)
	}
	if code, out := runExit("audit", "verify", "--data-dir", data); code == 0 || !strings.Contains(out, "bad-signature") {
		t.Fatalf("tampered checkpoint: exit %d\n%s", code, out)
	}
}

// A data dir made before the keys moved into the HSM: its file TLS CA keeps
// signing (terminals enrolled under it stay trusted), and its file audit
// key's checkpoints keep verifying after serve signs with the HSM key and
// records the file key's public half in the ceremony state (no loose file).
// A data dir with both an HSM TLS CA
// and a file key is refused with a clear error.
func TestLegacyDataDirKeys(t *testing.T) {
	testenv.SoftHSM(t)
	ctx := context.Background()
	data := t.TempDir()
	runCmd(t, "ceremony-init", "--data", data, "--dev")
	// Older state: no TLS CA key in the inventory; file TLS CA and file
	// audit key with checkpoints of their own.
	statePath := filepath.Join(ceremony.CeremonyDir(data), "state.json")
	b, _ := os.ReadFile(statePath)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	full := append([]byte(nil), b...)
	var keep []any
	for _, k := range m["keys"].([]any) {
		if k.(map[string]any)["role"] != ceremony.RoleTLSCA {
			keep = append(keep, k)
		}
	}
	m["keys"] = keep
	b, _ = json.Marshal(m)
	if err := os.WriteFile(statePath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	fileCA, _, err := tlsca.LoadOrCreate(data, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fileKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(fileKey)
	if err := os.WriteFile(filepath.Join(data, legacyAuditKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := store.OpenSQLite(ctx, filepath.Join(data, "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	old, err := audit.Open(ctx, s, audit.Options{Signer: fileKey, KeyID: legacyAuditKeyID, Every: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if err := old.Record(ctx, audit.Entry{Terminal: "local", Operator: "old", Action: "terminal.token", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	tok := strings.TrimSpace(runCmd(t, "terminal-token", "--data-dir", data, "--municipality", "131016"))
	addr, stop := serveFor(t, "--data-dir", data, "--dev", "--listen", "127.0.0.1:0")
	pool := x509.NewCertPool()
	pool.AddCert(fileCA)
	if leaf := enrolAt(t, addr, pool, tok); leaf.CheckSignatureFrom(fileCA) != nil {
		t.Fatal("legacy data dir: terminal certificate not from the file TLS CA")
	}
	stop()
	if _, err := os.Stat(filepath.Join(data, legacyAuditKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file audit key still on disk after migration: %v", err)
	}
	code, out := runExit("audit", "verify", "--data-dir", data)
	if code != 0 || !strings.Contains(out, "0 records after the last checkpoint") {
		t.Fatalf("audit verify after migration: %d\n%s", code, out)
	}
	// The file key's public half is in the ceremony state, not in a loose
	// file; without that record its checkpoints are unknown.
	if _, err := os.Stat(filepath.Join(data, legacyAuditPubFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a loose public key file was written: %v", err)
	}
	migrated, _ := os.ReadFile(statePath)
	var ms ceremony.State
	if err := json.Unmarshal(migrated, &ms); err != nil || len(ms.AuditFileKeys) != 1 || ms.AuditFileKeys[0].KeyID != legacyAuditKeyID {
		t.Fatalf("file key not recorded in the ceremony state: %+v %v", ms.AuditFileKeys, err)
	}
	ms.AuditFileKeys = nil
	b, _ = json.Marshal(ms)
	os.WriteFile(statePath, b, 0o600)
	if code, out := runExit("audit", "verify", "--data-dir", data); code == 0 || !strings.Contains(out, "unknown-key") {
		t.Fatalf("verify without the recorded file key: %d\n%s", code, out)
	}
	// A data dir migrated by an older version kept only the public half in
	// audit-checkpoint-file.pub.pem; HSM checkpoints follow the file key's.
	// serve (custodians present) records it once in the ceremony state.
	pubDER, _ := x509.MarshalPKIXPublicKey(fileKey.Public())
	if err := os.WriteFile(filepath.Join(data, legacyAuditPubFile), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stop = serveFor(t, "--data-dir", data, "--dev", "--listen", "127.0.0.1:0")
	stop()
	if code, out := runExit("audit", "verify", "--data-dir", data); code != 0 {
		t.Fatalf("audit verify after the older migration was recorded: %d\n%s", code, out)
	}
	again, _ := ceremony.LoadState(data)
	if len(again.AuditFileKeys) != 1 {
		t.Fatalf("recorded file keys %+v", again.AuditFileKeys)
	}
	os.WriteFile(statePath, migrated, 0o600)

	// Both an HSM TLS CA and a file key: refused, nothing changed.
	if err := os.WriteFile(statePath, full, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := runExit("terminal-token", "--data-dir", data, "--municipality", "131016"); code == 0 || !strings.Contains(out, "move tls-ca.key and tls-ca.crt") {
		t.Fatalf("hsm and file TLS CA together: %d\n%s", code, out)
	}
}
