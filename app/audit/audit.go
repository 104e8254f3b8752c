// Package audit keeps the terminal's operation history as a hash chain in the terminal database:
// who asked, what, on what, when, and the result (TS Art. 20(2)(i)), the history of one chosen
// operator on its own (TS Art. 20(2)(ii)), verification that detects edited, deleted and
// reordered records, and export for the auditor.
//
// Each record's hash is SHA-256 over the previous record's hash and a length-prefixed encoding of
// its own fields, sequence number included; a head row holds the last sequence number and hash
// so that cutting records off the end is detected too. Details must not contain secrets
// (DOMAIN §9: never log PINs or passwords); callers pass only identifiers and reasons.
//
// Concurrency: Append must run inside the caller's write transaction (store.DB.Tx), which
// serialises appenders; the other functions only read.
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"madoguchi/app/apperr"
)

// Result of an audited attempt.
const (
	ResultOK      = "ok"      // performed
	ResultRefused = "refused" // refused by a rule (permission, validation, state)
	ResultError   = "error"   // failed for an internal reason
)

// Entry is one record to append.
type Entry struct {
	At       time.Time
	Operator string            // operator id, or "-" before log-in
	Action   string            // e.g. "operator.create"
	Target   string            // e.g. operator id, resident record code, case id
	Result   string            // ResultOK, ResultRefused or ResultError
	Detail   map[string]string // no secrets
}

// Record is a stored entry.
type Record struct {
	Seq      int64             `json:"seq"`
	At       time.Time         `json:"at"`
	Operator string            `json:"operator"`
	Action   string            `json:"action"`
	Target   string            `json:"target"`
	Result   string            `json:"result"`
	Detail   map[string]string `json:"detail,omitempty"`
	Hash     string            `json:"hash"`
}

// Querier is what the read functions need (*sql.DB, *sql.Tx, store.DB).
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const timeLayout = time.RFC3339Nano

var genesis = make([]byte, sha256.Size)

// Append adds e to the chain inside tx.
func Append(ctx context.Context, tx *sql.Tx, e Entry) error {
	if e.Operator == "" || e.Action == "" || e.Result == "" {
		return apperr.New(apperr.InvalidInput, "audit: entry needs operator, action and result")
	}
	detail, err := encodeDetail(e.Detail)
	if err != nil {
		return err
	}
	var seq int64
	prev := genesis
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return apperr.Wrap(apperr.Internal, err, "audit: read head")
	}
	seq++
	at := e.At.UTC().Format(timeLayout)
	h := recordHash(prev, seq, at, e.Operator, e.Action, e.Target, e.Result, detail)
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log(seq, at, operator, action, target, result, detail, prev_hash, hash)
		VALUES (?,?,?,?,?,?,?,?,?)`, seq, at, e.Operator, e.Action, e.Target, e.Result, detail, prev, h); err != nil {
		return apperr.Wrap(apperr.Internal, err, "audit: append")
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_head(id, seq, hash) VALUES (1, ?, ?)
		ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`, seq, h); err != nil {
		return apperr.Wrap(apperr.Internal, err, "audit: update head")
	}
	return nil
}

func encodeDetail(d map[string]string) (string, error) {
	if len(d) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(d) // map keys are sorted: canonical
	if err != nil {
		return "", apperr.Wrap(apperr.Internal, err, "audit: encode detail")
	}
	return string(b), nil
}

func recordHash(prev []byte, seq int64, fields ...string) []byte {
	h := sha256.New()
	h.Write(prev)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	h.Write(n[:])
	for _, f := range fields {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return h.Sum(nil)
}

// Problem describes the first bad record found by Verify.
type Problem struct {
	Seq int64 // first bad sequence number
	// Reason is one of "edited", "missing or reordered", "sequence gap", "truncated",
	// "head missing", and against a witness (VerifyWitnessed) "rewritten before a witnessed
	// head" or "truncated before a witnessed head".
	Reason string
	Detail string // which witness disagrees, in English (may be empty)
}

// Report is the outcome of Verify.
type Report struct {
	Records int64
	Problem *Problem // nil when the chain is intact
	// Witnessed is the newest record a witness outside this database vouches for (the CA's
	// last witnessed head, or a CA receipt kept here) and the chain matches: records up to it
	// cannot be rewritten unnoticed. Unwitnessed = Records - Witnessed: the records an
	// attacker with this file could still rewrite until the next witnessed head.
	Witnessed   int64
	Unwitnessed int64
}

// Anchor is a chain head vouched for outside this database: the record Seq must have hash
// Hash. Source names the witness for the report ("CA", "receipt").
type Anchor struct {
	Seq    int64
	Hash   []byte
	Source string
}

// Verify walks the whole chain and reports the first bad record. It returns an *apperr.Error of
// kind AuditBroken along with the report when the chain is not intact.
func Verify(ctx context.Context, q Querier) (Report, error) {
	return VerifyWitnessed(ctx, q, nil)
}

// VerifyWitnessed is Verify that also checks the chain against anchors: heads a witness
// outside this database recorded (issue 13 threat 2: whoever holds the file can recompute
// every hash, but not the hash the CA witnessed). A record hash that differs from an anchor
// means records up to it were rewritten; a chain shorter than an anchor was cut. Either is
// kind AuditBroken, reported at the anchor's record (the rewrite is at or before it).
func VerifyWitnessed(ctx context.Context, q Querier, anchors []Anchor) (Report, error) {
	rows, err := q.QueryContext(ctx, `SELECT seq, at, operator, action, target, result, detail, prev_hash, hash FROM audit_log ORDER BY seq`)
	if err != nil {
		return Report{}, apperr.Wrap(apperr.Internal, err, "audit: read log")
	}
	defer rows.Close()
	want := map[int64][]byte{} // anchor seq -> the chain's hash there
	for _, a := range anchors {
		want[a.Seq] = nil
	}
	var rep Report
	prev := genesis
	var expect int64 = 1
	fail := func(p Problem) (Report, error) {
		rep.Problem = &p
		rep.Witnessed, rep.Unwitnessed = 0, rep.Records
		if p.Detail != "" {
			return rep, apperr.New(apperr.AuditBroken, "audit: chain broken at record %d: %s: %s", p.Seq, p.Reason, p.Detail)
		}
		return rep, apperr.New(apperr.AuditBroken, "audit: chain broken at record %d: %s", p.Seq, p.Reason)
	}
	for rows.Next() {
		var seq int64
		var at, op, action, target, result, detail string
		var prevHash, hash []byte
		if err := rows.Scan(&seq, &at, &op, &action, &target, &result, &detail, &prevHash, &hash); err != nil {
			return rep, apperr.Wrap(apperr.Internal, err, "audit: scan")
		}
		if seq != expect {
			return fail(Problem{Seq: expect, Reason: "sequence gap"})
		}
		if !bytes.Equal(prevHash, prev) {
			return fail(Problem{Seq: seq, Reason: "missing or reordered"})
		}
		if !bytes.Equal(recordHash(prevHash, seq, at, op, action, target, result, detail), hash) {
			return fail(Problem{Seq: seq, Reason: "edited"})
		}
		if _, ok := want[seq]; ok {
			want[seq] = hash
		}
		prev = hash
		expect++
		rep.Records++
	}
	if err := rows.Err(); err != nil {
		return rep, apperr.Wrap(apperr.Internal, err, "audit: read log")
	}
	rows.Close()
	var headSeq int64
	var headHash []byte
	err = q.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&headSeq, &headHash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if rep.Records != 0 {
			return fail(Problem{Seq: rep.Records, Reason: "head missing"})
		}
	case err != nil:
		return rep, apperr.Wrap(apperr.Internal, err, "audit: read head")
	case headSeq != rep.Records || !bytes.Equal(headHash, prev):
		return fail(Problem{Seq: rep.Records + 1, Reason: "truncated"})
	}
	sorted := append([]Anchor(nil), anchors...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Seq < sorted[j].Seq })
	for _, a := range sorted {
		switch {
		case a.Seq < 1:
		case a.Seq > rep.Records:
			return fail(Problem{Seq: rep.Records + 1, Reason: "truncated before a witnessed head",
				Detail: fmt.Sprintf("the log ends at record %d, but the %s witnessed record %d", rep.Records, a.Source, a.Seq)})
		case !bytes.Equal(want[a.Seq], a.Hash):
			return fail(Problem{Seq: a.Seq, Reason: "rewritten before a witnessed head",
				Detail: fmt.Sprintf("the chain hash at record %d differs from the head the %s witnessed: records up to it were rewritten", a.Seq, a.Source)})
		default:
			rep.Witnessed = max(rep.Witnessed, a.Seq)
		}
	}
	rep.Unwitnessed = rep.Records - rep.Witnessed
	return rep, nil
}

// Filter selects records. Zero fields match everything.
type Filter struct {
	Operator string // TS Art. 20(2)(ii): one chosen operator's history on its own
	From, To time.Time
	Limit    int
}

// List returns the records matching f in sequence order.
func List(ctx context.Context, q Querier, f Filter) ([]Record, error) {
	query := `SELECT seq, at, operator, action, target, result, detail, hash FROM audit_log WHERE 1=1`
	var args []any
	if f.Operator != "" {
		query += ` AND operator = ?`
		args = append(args, f.Operator)
	}
	if !f.From.IsZero() {
		query += ` AND at >= ?`
		args = append(args, f.From.UTC().Format(timeLayout))
	}
	if !f.To.IsZero() {
		query += ` AND at < ?`
		args = append(args, f.To.UTC().Format(timeLayout))
	}
	query += ` ORDER BY seq`
	if f.Limit > 0 {
		query += ` LIMIT ` + strconv.Itoa(f.Limit)
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "audit: list")
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		var at, detail string
		var hash []byte
		if err := rows.Scan(&r.Seq, &at, &r.Operator, &r.Action, &r.Target, &r.Result, &detail, &hash); err != nil {
			return nil, apperr.Wrap(apperr.Internal, err, "audit: scan")
		}
		r.At, _ = time.Parse(timeLayout, at)
		r.Hash = fmt.Sprintf("%x", hash)
		if detail != "{}" && detail != "" {
			_ = json.Unmarshal([]byte(detail), &r.Detail)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Format of an export.
type Format string

// Export formats.
const (
	JSONLines Format = "jsonl"
	CSV       Format = "csv"
)

// Export writes the records matching f to w as JSON lines or CSV (with a header row).
func Export(ctx context.Context, q Querier, f Filter, format Format, w io.Writer) error {
	recs, err := List(ctx, q, f)
	if err != nil {
		return err
	}
	switch format {
	case JSONLines:
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, r := range recs {
			if err := enc.Encode(r); err != nil {
				return apperr.Wrap(apperr.Internal, err, "audit: export")
			}
		}
		return nil
	case CSV:
		cw := csv.NewWriter(w)
		cw.Write([]string{"seq", "at", "operator", "action", "target", "result", "detail", "hash"})
		for _, r := range recs {
			d, _ := encodeDetail(r.Detail)
			cw.Write([]string{strconv.FormatInt(r.Seq, 10), r.At.Format(timeLayout), r.Operator, r.Action, r.Target, r.Result, d, r.Hash})
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return apperr.Wrap(apperr.Internal, err, "audit: export")
		}
		return nil
	}
	return apperr.New(apperr.InvalidInput, "audit: unknown export format %q", format)
}

// ListFor returns the successful records (ResultOK) of the given actions whose target is one
// of targets, in sequence order: e.g. what was done on a person's cases (R02 II-8: holders may
// see their own issuance and revocation records). Empty actions or targets match nothing.
func ListFor(ctx context.Context, q Querier, actions, targets []string) ([]Record, error) {
	if len(actions) == 0 || len(targets) == 0 {
		return nil, nil
	}
	query := `SELECT seq, at, operator, action, target, result, detail, hash FROM audit_log WHERE result = ? AND action IN (?` +
		strings.Repeat(",?", len(actions)-1) + `) AND target IN (?` + strings.Repeat(",?", len(targets)-1) + `) ORDER BY seq`
	args := []any{ResultOK}
	for _, a := range actions {
		args = append(args, a)
	}
	for _, t := range targets {
		args = append(args, t)
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "audit: list")
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		var at, detail string
		var hash []byte
		if err := rows.Scan(&r.Seq, &at, &r.Operator, &r.Action, &r.Target, &r.Result, &detail, &hash); err != nil {
			return nil, apperr.Wrap(apperr.Internal, err, "audit: scan")
		}
		r.At, _ = time.Parse(timeLayout, at)
		r.Hash = fmt.Sprintf("%x", hash)
		if detail != "{}" && detail != "" {
			_ = json.Unmarshal([]byte(detail), &r.Detail)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
