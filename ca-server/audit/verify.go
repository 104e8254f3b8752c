package audit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
)

// ErrTampered is returned by Verify when the log does not verify.
var ErrTampered = errors.New("audit: log does not verify")

// Problem is one finding of Verify, at the record or checkpoint Seq.
type Problem struct {
	Seq     int64
	Kind    string // "edited", "chain-broken", "missing", "truncated", "checkpoint-mismatch", "bad-signature", "unknown-key"
	Message string
}

func (p Problem) String() string { return fmt.Sprintf("seq %d: %s: %s", p.Seq, p.Kind, p.Message) }

// Report is the result of Verify.
type Report struct {
	Records        int64 // records read
	LastSeq        int64
	Checkpoints    int
	LastCheckpoint int64 // seq covered by the newest checkpoint
	// Unprotected counts records after the last checkpoint: an attacker
	// could delete those without detection until the next checkpoint.
	Unprotected int64
	Problems    []Problem
}

// Key is a public key that may have signed checkpoints, with the KeyID the
// checkpoints carry (KeyIDOf, or a name given in Options.KeyID).
type Key struct {
	ID     string
	Public crypto.PublicKey
}

// Verify is VerifyKeys with one key that is accepted under any KeyID.
func Verify(ctx context.Context, r Reader, pub crypto.PublicKey) (Report, error) {
	return verify(ctx, r, func(string) (crypto.PublicKey, bool) { return pub, true })
}

// VerifyKeys reads the whole log and reports every edit, deletion,
// reordering and truncation it finds, with the exact sequence number. Each
// checkpoint must verify under the key of keys with its KeyID: the current
// HSM key and any earlier keys (a rolled key, the file key of a data dir
// made before the key moved into the HSM); a checkpoint naming another key
// is reported "unknown-key". It returns ErrTampered (wrapped, naming the
// first problem) when the report has problems.
func VerifyKeys(ctx context.Context, r Reader, keys []Key) (Report, error) {
	byID := map[string]crypto.PublicKey{}
	for _, k := range keys {
		byID[k.ID] = k.Public
	}
	return verify(ctx, r, func(id string) (crypto.PublicKey, bool) {
		pub, ok := byID[id]
		return pub, ok
	})
}

func verify(ctx context.Context, r Reader, keyFor func(keyID string) (crypto.PublicKey, bool)) (Report, error) {
	cps, err := r.AuditCheckpoints(ctx)
	if err != nil {
		return Report{}, err
	}
	want := map[int64][]byte{} // checkpoint seq -> record hash found there
	for _, c := range cps {
		want[c.Seq] = nil
	}
	var rep Report
	add := func(seq int64, kind, format string, a ...any) {
		rep.Problems = append(rep.Problems, Problem{Seq: seq, Kind: kind, Message: fmt.Sprintf(format, a...)})
	}
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
			prev = rec.Hash
			expect = rec.Seq + 1
			rep.LastSeq = rec.Seq
			rep.Records++
		}
	}
	for _, c := range cps {
		rep.Checkpoints++
		pub, known := keyFor(c.KeyID)
		if !known {
			add(c.Seq, "unknown-key", "checkpoint signed by key %q, which is not a known audit checkpoint key", c.KeyID)
			continue
		}
		if !verifySig(pub, checkpointDigest(c), c.Signature) {
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
	if rep.LastSeq > rep.LastCheckpoint {
		rep.Unprotected = rep.LastSeq - rep.LastCheckpoint
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

func verifySig(pub crypto.PublicKey, digest, sig []byte) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig) == nil
	case ed25519.PublicKey:
		return false // checkpoints sign a SHA-256 digest; Ed25519 signers are not supported
	default:
		return false
	}
}
