package e2e

import (
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"testing"

	_ "modernc.org/sqlite" // driver "sqlite"
)

// RewriteAuditChain is the attacker's tool of issue 13 threat 2: it edits the target of the first record with action
// from old to new, recomputes the hash chain from there on and the head row exactly as
// app/audit does (the algorithm is public), and, with deleteReceipts, deletes the terminal's
// CA receipts.
func RewriteAuditChain(t testing.TB, dbPath, action, old, new string, deleteReceipts bool) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(`UPDATE audit_log SET target = ? WHERE seq = (SELECT min(seq) FROM audit_log WHERE action = ? AND target = ?)`, new, action, old)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("no %s record on %s to edit", action, old)
	}
	if deleteReceipts {
		db.Exec(`DELETE FROM audit_receipts`) // absent before the witness existed
	}
	rows, err := db.Query(`SELECT seq, at, operator, action, target, result, detail FROM audit_log ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		seq                                    int64
		at, op, action, target, result, detail string
	}
	var recs []rec
	for rows.Next() {
		var r rec
		if err := rows.Scan(&r.seq, &r.at, &r.op, &r.action, &r.target, &r.result, &r.detail); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	rows.Close()
	prev := make([]byte, sha256.Size)
	for _, r := range recs {
		h := sha256.New()
		h.Write(prev)
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(r.seq))
		h.Write(n[:])
		for _, f := range []string{r.at, r.op, r.action, r.target, r.result, r.detail} {
			binary.BigEndian.PutUint64(n[:], uint64(len(f)))
			h.Write(n[:])
			h.Write([]byte(f))
		}
		sum := h.Sum(nil)
		if _, err := db.Exec(`UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?`, prev, sum, r.seq); err != nil {
			t.Fatal(err)
		}
		prev = sum
	}
	if _, err := db.Exec(`UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, recs[len(recs)-1].seq, prev); err != nil {
		t.Fatal(err)
	}
}
