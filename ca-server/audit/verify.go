package audit

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"time"

	"madoguchi/jpki/wire"
)

// ErrTampered is returned by Verify when the log does not verify.
var ErrTampered = errors.New("audit: log does not verify")

// Problem is one finding of Verify, at the record or checkpoint Seq.
type Problem struct {
	Seq  int64
	Kind string // "edited", "chain-broken", "missing", "truncated", "checkpoint-mismatch", "bad-signature", "unknown-key",
	// "checkpoint-missing", "checkpoint-chain-broken", "no-checkpoint", "stale", "witness-mismatch"
	Message string
}

func (p Problem) String() string { return fmt.Sprintf("seq %d: %s: %s", p.Seq, p.Kind, p.Message) }

// Report is the result of Verify.
type Report struct {
	Records        int64 // records read
	LastSeq        int64
	LastHash       []byte // chain hash of record LastSeq
	Checkpoints    int
	LastCheckpoint int64 // seq covered by the newest checkpoint
	// TipNumber and TipLink name the newest checkpoint in the checkpoint
	// chain (CheckpointLink); zero and nil without checkpoints.
	TipNumber int64
	TipLink   []byte
	// Unprotected counts records after the last checkpoint: an attacker
	// could delete those without detection until the next checkpoint.
	Unprotected int64
	Problems    []Problem
}

// Anchor is what a witness outside the database holds of the log: a
// checkpoint (number and link hash) and a record (seq and chain hash). The
// log must hold the same, or it was rewritten or cut back since the
// witness saw it.
type Anchor struct {
	Source     string // names the witness in findings, e.g. "backup audit-2026-12-07.db"
	Checkpoint int64  // checkpoint number; 0: none
	Link       []byte
	Seq        int64 // record seq; 0: none
	RecordHash []byte
}

// Anchor returns what this report's log holds, as a witness of it.
func (r Report) Anchor(source string) Anchor {
	return Anchor{Source: source, Checkpoint: r.TipNumber, Link: r.TipLink, Seq: r.LastSeq, RecordHash: r.LastHash}
}

// Key is a public key that may have signed checkpoints, with the KeyID the
// checkpoints carry (KeyIDOf, or a name given in Options.KeyID).
type Key struct {
	ID     string
	Public crypto.PublicKey
}

// VerifyOptions says what Verify demands beyond an intact chain.
type VerifyOptions struct {
	// Keys may have signed checkpoints (VerifyKeys).
	Keys []Key
	// RequireCheckpoint: a log without any signed checkpoint fails
	// ("no-checkpoint"): deleting every checkpoint must not leave a log
	// that verifies. The live log needs it; a backup's own check not.
	RequireCheckpoint bool
	// MaxUnprotectedAge > 0: records after the last checkpoint older than
	// this at Now fail ("stale"). A running server checkpoints every few
	// minutes, so old unprotected records mean deleted checkpoints (or a
	// server that has not run since local commands wrote them).
	MaxUnprotectedAge time.Duration
	Now               time.Time
	// Anchors are what outside witnesses hold; each must be in the log
	// ("witness-mismatch", "truncated").
	Anchors []Anchor
}

// Verify is VerifyKeys with one key that is accepted under any KeyID.
func Verify(ctx context.Context, r Reader, pub crypto.PublicKey) (Report, error) {
	return verify(ctx, r, VerifyOptions{}, func(string) (crypto.PublicKey, bool) { return pub, true })
}

// VerifyKeys reads the whole log and reports every edit, deletion,
// reordering and truncation it finds, with the exact sequence number. Each
// checkpoint must verify under the key of keys with its KeyID: the current
// HSM key and any earlier keys of the ceremony record; a checkpoint naming
// another key is reported "unknown-key". Checkpoints must form one chain
// (numbers 1..n, each naming the previous one's link). It returns
// ErrTampered (wrapped, naming the first problem) when the report has
// problems.
func VerifyKeys(ctx context.Context, r Reader, keys []Key) (Report, error) {
	return VerifyWith(ctx, r, VerifyOptions{Keys: keys})
}

// VerifyWith is VerifyKeys with the demands of opts.
func VerifyWith(ctx context.Context, r Reader, opts VerifyOptions) (Report, error) {
	byID := map[string]crypto.PublicKey{}
	for _, k := range opts.Keys {
		byID[k.ID] = k.Public
	}
	return verify(ctx, r, opts, func(id string) (crypto.PublicKey, bool) {
		pub, ok := byID[id]
		return pub, ok
	})
}

func verify(ctx context.Context, r Reader, opts VerifyOptions, keyFor func(keyID string) (crypto.PublicKey, bool)) (Report, error) {
	cps, err := r.AuditCheckpoints(ctx)
	if err != nil {
		return Report{}, err
	}
	want := map[int64][]byte{} // checkpoint seq -> record hash found there
	var maxCPSeq int64
	for _, c := range cps {
		want[c.Seq] = nil
		maxCPSeq = max(maxCPSeq, c.Seq)
	}
	var rep Report
	add := func(seq int64, kind, format string, a ...any) {
		rep.Problems = append(rep.Problems, Problem{Seq: seq, Kind: kind, Message: fmt.Sprintf(format, a...)})
	}
	anchorRecord := map[int64][]Anchor{}
	for _, a := range opts.Anchors {
		if a.Seq > 0 {
			anchorRecord[a.Seq] = append(anchorRecord[a.Seq], a)
		}
	}
	var firstUnprotected time.Time
	prev := make([]byte, 32)
	expect := int64(1)
	for {
		recs, err := r.AuditRecords(ctx, rep.LastSeq, 1000)
		if err != nil {
			return rep, err
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			if rec.Seq != expect {
				add(expect, "missing", "records %d to %d are missing (deleted)", expect, rec.Seq-1)
			}
			if !bytes.Equal(rec.PrevHash, prev) {
				add(rec.Seq, "chain-broken", "previous-hash does not match the record before it (deleted, inserted or reordered records)")
			}
			if !bytes.Equal(RecordHash(rec), rec.Hash) {
				add(rec.Seq, "edited", "record content does not match its hash (edited)")
			}
			if _, ok := want[rec.Seq]; ok {
				want[rec.Seq] = rec.Hash
			}
			for _, a := range anchorRecord[rec.Seq] {
				if !bytes.Equal(a.RecordHash, rec.Hash) {
					add(rec.Seq, "witness-mismatch", "record %d differs from the one %s holds: the log was rewritten", rec.Seq, a.Source)
				}
			}
			if rec.Seq == maxCPSeq+1 {
				firstUnprotected = rec.At
			}
			prev = rec.Hash
			expect = rec.Seq + 1
			rep.LastSeq = rec.Seq
			rep.LastHash = rec.Hash
			rep.Records++
		}
	}
	for _, a := range opts.Anchors {
		if a.Seq > rep.LastSeq {
			add(rep.LastSeq+1, "truncated", "%s holds records up to %d but the log ends at %d: records were removed", a.Source, a.Seq, rep.LastSeq)
		}
	}
	link := make([]byte, 32)
	var number, lastSeq int64
	chained := false
	for _, c := range cps {
		rep.Checkpoints++
		number++
		switch {
		case c.Number > number:
			add(c.Seq, "checkpoint-missing", "checkpoint %d follows checkpoint %d: checkpoints %d to %d were deleted", c.Number, number-1, number, c.Number-1)
		case c.Number > 0 && c.Number < number: // 0: unchained, numbered by position
			add(c.Seq, "checkpoint-chain-broken", "checkpoint number %d repeats or goes back (expected %d)", c.Number, number)
		}
		if c.Number > 0 {
			number = c.Number
		}
		if c.Seq <= lastSeq && rep.Checkpoints > 1 {
			add(c.Seq, "checkpoint-chain-broken", "checkpoint %d covers record %d, not after the previous checkpoint's %d", number, c.Seq, lastSeq)
		}
		lastSeq = c.Seq
		if Chained(c) {
			if !bytes.Equal(c.PrevHash, link) {
				add(c.Seq, "checkpoint-chain-broken", "checkpoint %d does not name checkpoint %d before it: checkpoints were deleted, replaced or reordered", number, number-1)
			}
			chained = true
		} else if chained {
			add(c.Seq, "checkpoint-chain-broken", "checkpoint %d is unchained (v1) after a chained one", number)
		}
		link = CheckpointLink(link, c)
		for _, a := range opts.Anchors {
			if a.Checkpoint == number && !bytes.Equal(a.Link, link) {
				add(c.Seq, "witness-mismatch", "checkpoint %d differs from the one %s holds: the checkpoints were rewritten (a fork)", number, a.Source)
			}
		}
		pub, known := keyFor(c.KeyID)
		if !known {
			add(c.Seq, "unknown-key", "checkpoint signed by key %q, which is not an audit checkpoint key of the ceremony record", c.KeyID)
			continue
		}
		if !wire.VerifyDigestSignature(pub, checkpointDigest(c), c.Signature) {
			add(c.Seq, "bad-signature", "checkpoint signature does not verify (key %q)", c.KeyID)
			continue
		}
		if c.Seq > rep.LastSeq {
			add(rep.LastSeq+1, "truncated", "log ends at record %d but a signed checkpoint covers record %d: records %d to %d were removed", rep.LastSeq, c.Seq, rep.LastSeq+1, c.Seq)
		} else if h := want[c.Seq]; h == nil {
			add(c.Seq, "missing", "record %d covered by a checkpoint is missing", c.Seq)
		} else if !bytes.Equal(h, c.Hash) {
			add(c.Seq, "checkpoint-mismatch", "chain hash differs from the signed checkpoint: records up to %d were rewritten", c.Seq)
		}
		if c.Seq > rep.LastCheckpoint {
			rep.LastCheckpoint = c.Seq
		}
	}
	if len(cps) > 0 {
		rep.TipNumber, rep.TipLink = number, link
	}
	for _, a := range opts.Anchors {
		if a.Checkpoint > rep.TipNumber {
			add(rep.LastSeq, "truncated", "%s holds checkpoint %d but the log's last checkpoint is %d: checkpoints were removed", a.Source, a.Checkpoint, rep.TipNumber)
		}
	}
	if rep.LastSeq > rep.LastCheckpoint {
		rep.Unprotected = rep.LastSeq - rep.LastCheckpoint
	}
	if opts.RequireCheckpoint && len(cps) == 0 {
		add(rep.LastSeq, "no-checkpoint", "the log holds no signed checkpoint: nothing outside the database vouches for its %d records (checkpoints deleted, or the server never ran)", rep.Records)
	}
	if opts.MaxUnprotectedAge > 0 && rep.Unprotected > 0 && !firstUnprotected.IsZero() {
		if age := opts.Now.Sub(firstUnprotected); age > opts.MaxUnprotectedAge {
			add(maxCPSeq+1, "stale", "records %d to %d follow the last checkpoint and the oldest is %s old (allowed %s): checkpoints were deleted, or the server has not run since", maxCPSeq+1, rep.LastSeq, age.Round(time.Second), opts.MaxUnprotectedAge)
		}
	}
	if len(rep.Problems) > 0 {
		var b strings.Builder
		b.WriteString(rep.Problems[0].String())
		if n := len(rep.Problems); n > 1 {
			fmt.Fprintf(&b, " (and %d more)", n-1)
		}
		return rep, fmt.Errorf("%w: %s", ErrTampered, b.String())
	}
	return rep, nil
}
