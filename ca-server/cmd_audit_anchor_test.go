package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/ceremony"
	"madoguchi/ca-server/store"
	"madoguchi/internal/testenv"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
)

// serveRefuses runs `ca-server serve` and returns its output when it exits
// with an error before listening; a serve that starts listening fails the
// test (and is stopped).
func serveRefuses(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	old := serveContext
	serveContext = func() context.Context { return ctx }
	defer func() { serveContext = old }()
	stdout := &lineWriter{lines: make(chan string, 64)}
	var stderr bytes.Buffer
	var mu sync.Mutex
	done := make(chan int, 1)
	go func() {
		mu.Lock()
		defer mu.Unlock()
		done <- run(append([]string{"serve"}, args...), stdout, &stderr)
	}()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case line := <-stdout.lines:
			if strings.Contains(line, "listening on ") {
				cancel()
				<-done
				t.Fatalf("serve started on a rewritten audit log:\n%s", stderr.String())
			}
		case code := <-done:
			mu.Lock()
			defer mu.Unlock()
			if code == 0 {
				t.Fatalf("serve exited 0:\n%s", stderr.String())
			}
			return stderr.String()
		case <-timeout:
			t.Fatal("serve neither started nor refused")
		}
	}
}

// rewriteAuditSQL is the attack with write access to the database: drop
// the append-only triggers (the file's owner can), delete every
// checkpoint, make record seq say operator "mallory", and recompute every
// later hash so the record chain is intact again.
func rewriteAuditSQL(t *testing.T, db *sql.DB, rebind func(string) string, seq int64) {
	t.Helper()
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, `SELECT seq, at, terminal, operator, action, target, result, detail, prev_hash, hash FROM audit_records ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var recs []store.AuditRecord
	for rows.Next() {
		var r store.AuditRecord
		var at int64
		if err := rows.Scan(&r.Seq, &at, &r.Terminal, &r.Operator, &r.Action, &r.Target, &r.Result, &r.Detail, &r.PrevHash, &r.Hash); err != nil {
			t.Fatal(err)
		}
		r.At = time.Unix(0, at).UTC()
		recs = append(recs, r)
	}
	rows.Close()
	if _, err := db.ExecContext(ctx, `DELETE FROM audit_checkpoints`); err != nil {
		t.Fatal(err)
	}
	prev := make([]byte, 32)
	for _, r := range recs {
		if r.Seq == seq {
			r.Operator = "mallory"
		}
		r.PrevHash = prev
		r.Hash = audit.RecordHash(r)
		prev = r.Hash
		if _, err := db.ExecContext(ctx, rebind(`UPDATE audit_records SET operator = ?, prev_hash = ?, hash = ? WHERE seq = ?`), r.Operator, r.PrevHash, r.Hash, r.Seq); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAttackRewrittenAuditSQLite: Attack (issue 13, threat 1): with write
// access to ca.db, delete every audit checkpoint, edit a record and
// recompute the hash chain. On the code before this change the attack
// succeeded: `audit verify` passed (it checked only the checkpoints that
// were present) and the next `serve` signed the forged chain head with the
// HSM audit key at start. Now verify fails (no checkpoint; the newest
// daily backup holds the genuine chain) and serve refuses to start, naming
// the witness and the record that differs.
func TestAttackRewrittenAuditSQLite(t *testing.T) {
	testenv.SoftHSM(t)
	data := t.TempDir()
	runCmd(t, "ceremony-init", "--data", data, "--dev")
	runCmd(t, "terminal-token", "--data-dir", data, "--municipality", "131016")
	_, stop := serveFor(t, "--data-dir", data, "--dev", "--listen", "127.0.0.1:0", "--verifier-listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0")
	stop() // checkpoints signed in the HSM; the day's backup in DATA/audit-backup
	runCmd(t, "terminal-token", "--data-dir", data, "--municipality", "131016")
	bdir := defaultAuditBackupDir(data)
	if out := runCmd(t, "audit", "verify", "--data-dir", data, "--backup-dir", bdir); !strings.Contains(out, "extends the backup before it") {
		t.Fatalf("audit verify --backup-dir: %s", out)
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dropAuditTriggers(t, db)
	rewriteAuditSQL(t, db, func(q string) string { return q }, 1)

	if code, out := runExit("audit", "verify", "--data-dir", data); code == 0 || !strings.Contains(out, "no-checkpoint") {
		t.Errorf("audit verify of the rewritten log: exit %d\n%s", code, out)
	}
	if code, out := runExit("audit", "verify", "--data-dir", data, "--backup-dir", bdir); code == 0 || !strings.Contains(out, "witness-mismatch") {
		t.Errorf("audit verify of the rewritten log against the backups: exit %d\n%s", code, out)
	}
	out := serveRefuses(t, "--data-dir", data, "--dev", "--listen", "127.0.0.1:0", "--verifier-listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0")
	if !strings.Contains(out, "refusing to start") || !strings.Contains(out, "witness-mismatch") || !strings.Contains(out, filepath.Join(data, "audit-backup")) {
		t.Errorf("serve's refusal does not say which witness differs:\n%s", out)
	}
}

// dropAuditTriggers drops the SQLite append-only triggers of the audit
// tables (0005_audit_anchor.sql), as an attacker with write access to the
// file can.
func dropAuditTriggers(t *testing.T, db *sql.DB) {
	t.Helper()
	for _, tr := range []string{"audit_records_append_only_u", "audit_records_append_only_d", "audit_checkpoints_append_only_u", "audit_checkpoints_append_only_d"} {
		if _, err := db.Exec(`DROP TRIGGER IF EXISTS ` + tr); err != nil {
			t.Fatal(err)
		}
	}
}

// v1CheckpointDigest is the digest of an unchained (v1) checkpoint, which
// an attacker can still insert without number and previous hash.
func v1CheckpointDigest(seq int64, at time.Time, hash []byte, keyID string) []byte {
	h := sha256.New()
	h.Write([]byte("madoguchi audit checkpoint v1\x00"))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(seq))
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], uint64(at.UnixNano()))
	h.Write(b[:])
	h.Write(hash)
	h.Write([]byte(keyID))
	return h.Sum(nil)
}

// TestAttackPlantedAuditKeyIgnored: Attack (issue 13, threat 1): with write
// access to the data dir and ca.db, plant audit-checkpoint-file.pub.pem
// (the file older versions kept for a migrated file key) holding the
// attacker's key, delete the genuine checkpoints, rewrite a record,
// recompute the chain and sign a checkpoint over the forged head with the
// planted key. On the code before this change the attack succeeded: the
// planted file was read as a verification key and `audit verify` passed.
// Now verification keys come from the ceremony record only: the forged
// checkpoint is "unknown-key".
func TestAttackPlantedAuditKeyIgnored(t *testing.T) {
	testenv.SoftHSM(t)
	data := t.TempDir()
	runCmd(t, "ceremony-init", "--data", data, "--dev")
	runCmd(t, "terminal-token", "--data-dir", data, "--municipality", "131016")
	_, stop := serveFor(t, "--data-dir", data, "--dev", "--listen", "127.0.0.1:0", "--verifier-listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0")
	stop()

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	if err := os.WriteFile(filepath.Join(data, legacyAuditPubFile), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dropAuditTriggers(t, db)
	rewriteAuditSQL(t, db, func(q string) string { return q }, 1)
	var seq, at int64
	var hash []byte
	if err := db.QueryRow(`SELECT seq, at, hash FROM audit_records ORDER BY seq DESC LIMIT 1`).Scan(&seq, &at, &hash); err != nil {
		t.Fatal(err)
	}
	sig, err := key.Sign(rand.Reader, v1CheckpointDigest(seq, time.Unix(0, at), hash, legacyAuditKeyID), crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO audit_checkpoints (seq, at, hash, key_id, signature) VALUES (?, ?, ?, ?, ?)`, seq, at, hash, legacyAuditKeyID, sig); err != nil {
		t.Fatal(err)
	}
	code, out := runExit("audit", "verify", "--data-dir", data)
	if code == 0 || !strings.Contains(out, "unknown-key") {
		t.Fatalf("checkpoint signed by a planted key file: exit %d\n%s", code, out)
	}
}

// pgRebind numbers the "?" placeholders of q for PostgreSQL.
func pgRebind(q string) string {
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// TestAttackRewrittenAuditPostgres: Attack (issue 13, threat 1) on a CA
// whose store is PostgreSQL: with database credentials, delete every audit
// checkpoint, edit a record and recompute the hash chain. On the code
// before this change the attack succeeded: serve's single role could run
// every statement, `audit verify` passed and the next serve signed the
// forged head. Now serve connects as the serving role, which is refused
// each statement; the owner role (which can switch the triggers off) does
// it, and then `audit verify` fails and serve refuses to start.
func TestAttackRewrittenAuditPostgres(t *testing.T) {
	testenv.SoftHSM(t)
	pg := testenv.Postgres(t)
	roles := pg.Roles(t)
	data := t.TempDir()
	runCmd(t, "ceremony-init", "--data", data, "--dev")
	runCmd(t, "db", "migrate", "--database", roles.OwnerDSN, "--serving-role", roles.Serving)
	db := []string{"--database", roles.ServingDSN}
	runCmd(t, append([]string{"terminal-token", "--data-dir", data, "--municipality", "131016"}, db...)...)
	_, stop := serveFor(t, append([]string{"--data-dir", data, "--dev", "--listen", "127.0.0.1:0", "--verifier-listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0"}, db...)...)
	stop()
	runCmd(t, append([]string{"terminal-token", "--data-dir", data, "--municipality", "131016"}, db...)...)
	runCmd(t, append([]string{"audit", "verify", "--data-dir", data}, db...)...)

	serving, err := sql.Open("pgx", roles.ServingDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer serving.Close()
	for _, q := range []string{`DELETE FROM audit_checkpoints`, `UPDATE audit_records SET operator = 'mallory'`, `TRUNCATE audit_records`,
		`ALTER TABLE audit_records DISABLE TRIGGER USER`} {
		if _, err := serving.Exec(q); err == nil || !strings.Contains(err.Error(), "42501") {
			t.Errorf("serving role: %s: %v, want permission denied", q, err)
		}
	}
	owner, err := sql.Open("pgx", roles.OwnerDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	for _, q := range []string{`ALTER TABLE audit_records DISABLE TRIGGER USER`, `ALTER TABLE audit_checkpoints DISABLE TRIGGER USER`} {
		if _, err := owner.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	rewriteAuditSQL(t, owner, pgRebind, 1)

	if code, out := runExit(append([]string{"audit", "verify", "--data-dir", data}, db...)...); code == 0 || !strings.Contains(out, "no-checkpoint") {
		t.Errorf("audit verify of the rewritten log: exit %d\n%s", code, out)
	}
	out := serveRefuses(t, append([]string{"--data-dir", data, "--dev", "--listen", "127.0.0.1:0", "--verifier-listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0"}, db...)...)
	if !strings.Contains(out, "refusing to start") || !strings.Contains(out, "witness-mismatch") {
		t.Errorf("serve's refusal does not say what differs:\n%s", out)
	}
}

// TestAttackTruncatedAuditForkWitnessed: Attack (issue 13, threat 1):
// with write access to the data dir, cut the audit log back to its first
// checkpoint (records and checkpoints after it deleted, the backups in the
// data dir too) and let the server carry on: it signs new checkpoints on
// the shortened history, a fork of the chain auditors saw. On the code
// before this change the attack succeeded unnoticed: nothing outside the
// database held a checkpoint (and `audit verify` cannot tell a consistent
// shorter chain from the real one). Now the checkpoints published on the
// public listener are kept by `audit witness`, which reports the fork, as
// it does between two kept copies that disagree; serve given the kept
// copies (--audit-witness-dir) refuses to start.
func TestAttackTruncatedAuditForkWitnessed(t *testing.T) {
	testenv.SoftHSM(t)
	data := t.TempDir()
	runCmd(t, "ceremony-init", "--data", data, "--dev")
	runCmd(t, "terminal-token", "--data-dir", data, "--municipality", "131016")
	st, err := ceremony.LoadState(data)
	if err != nil {
		t.Fatal(err)
	}
	auditCert := st.ServiceKeyRecords(ceremony.RoleAuditCheckpoint)[0].Certificate
	keep := filepath.Join(t.TempDir(), "witness")
	serveArgs := []string{"--data-dir", data, "--dev", "--listen", "127.0.0.1:0", "--verifier-listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0"}
	witness := func(keep, public string, args ...string) (int, string) {
		return runExit(append([]string{"audit", "witness", "--url", "https://" + public, "--keep", keep, "--tls-ca", filepath.Join(data, "tls-ca.crt")}, args...)...)
	}

	_, public, stop := serveForPublic(t, serveArgs...)
	if code, out := witness(keep, public, "--audit-cert", auditCert); code != 0 || !strings.Contains(out, "kept checkpoint 1 ") {
		t.Fatalf("first witness: %d\n%s", code, out)
	}
	runCmd(t, "terminal-token", "--data-dir", data, "--municipality", "131016")
	stop()
	_, public, stop = serveForPublic(t, serveArgs...)
	// The auditor trusts the key by the fingerprint published at the
	// ceremony; the certificate comes with the answer.
	fp := st.ServiceKeyRecords(ceremony.RoleAuditCheckpoint)[0].Fingerprints.SHA256
	code, out := witness(keep, public, "--audit-cert-sha256", fp)
	if code != 0 || !strings.Contains(out, "kept checkpoint 3 ") {
		t.Fatalf("second witness: %d\n%s", code, out)
	}
	// A key the auditor does not trust is not taken from the server.
	if code, out := witness(t.TempDir(), public, "--audit-cert-sha256", strings.Repeat("ab", 32)); code == 0 {
		t.Fatalf("witness without a trusted key: %d\n%s", code, out)
	}
	stop()

	// The attack: cut back to checkpoint 1, backups gone.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	dropAuditTriggers(t, db)
	var cut int64
	if err := db.QueryRow(`SELECT seq FROM audit_checkpoints WHERE number = 1`).Scan(&cut); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DELETE FROM audit_checkpoints WHERE number > 1`, `DELETE FROM audit_records WHERE seq > ?`} {
		if _, err := db.Exec(q, cut); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	os.RemoveAll(defaultAuditBackupDir(data))
	if code, out := runExit("audit", "verify", "--data-dir", data); code != 0 {
		t.Logf("audit verify of the cut log (no witness): %d\n%s", code, out)
	}

	// The server carries on over the shortened log and signs a fork.
	_, public, stop = serveForPublic(t, serveArgs...)
	code, out = witness(keep, public, "--audit-cert", auditCert)
	if code == 0 || !strings.Contains(out, "FORK") {
		t.Fatalf("witness of the forked chain: %d\n%s", code, out)
	}
	// A second auditor who starts now keeps the forked chain; put side
	// by side, the two kept copies disagree.
	other := filepath.Join(t.TempDir(), "witness-2")
	if code, out := witness(other, public, "--audit-cert", auditCert); code != 0 {
		t.Fatalf("fresh witness: %d\n%s", code, out)
	}
	stop()
	forked, _ := filepath.Glob(filepath.Join(other, "checkpoints-*.json"))
	for _, f := range forked {
		b, _ := os.ReadFile(f)
		os.WriteFile(filepath.Join(keep, "checkpoints-999999999999.json"), b, 0o600)
	}
	if code, out := runExit("audit", "verify", "--data-dir", data, "--witness-dir", keep); code == 0 || !strings.Contains(out, "fork") {
		t.Fatalf("two kept copies that disagree: %d\n%s", code, out)
	}
	os.Remove(filepath.Join(keep, "checkpoints-999999999999.json"))

	out = serveRefuses(t, append(serveArgs, "--audit-witness-dir", keep)...)
	if !strings.Contains(out, "refusing to start") || !strings.Contains(out, "witness copy") {
		t.Fatalf("serve over a forked log with the kept copies:\n%s", out)
	}
}
