package audit

// Published checkpoints and the copies witnesses keep (issue 13, threat 1).
//
// The public listener serves the newest chained checkpoint, and on request
// the chain of checkpoints since a given number (CheckpointHandler):
//
//	GET /v1/audit/checkpoint            {"format":…, "checkpoints":[newest], "certificates":[…]}
//	GET /v1/audit/checkpoint?since=N    checkpoints N, N+1, … (at most MaxPublished; "more" when cut)
//
// An auditor's `ca-server audit witness` fetches it, checks every
// signature under the audit checkpoint key the auditor trusts (not one the
// server names), checks that the chain extends what it kept before, and
// keeps the new segment in its directory: checkpoints-NNNNNNNNNNNN.json,
// named by the newest checkpoint, never replaced. Each kept file starts
// with the checkpoint the file before it ended with, so the directory
// verifies on its own (LoadKept) and a fork between two kept copies, or
// a server that serves a chain that does not extend the kept one, is
// reported (ErrFork). Only chained (v2) checkpoints are published.

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"madoguchi/ca-server/store"
	"madoguchi/jpki/wire"
)

// ErrFork: the checkpoint chain a witness holds and the one it was shown
// (or two kept copies) differ: one of them was rewritten.
var ErrFork = errors.New("audit: the checkpoint chain forked")

// PublishedFormat names the JSON of Published.
const PublishedFormat = "madoguchi audit checkpoints v1"

// MaxPublished bounds the checkpoints of one answer; a witness further
// behind asks again since the last one.
const MaxPublished = 1000

// PublishedCheckpoint is a chained checkpoint as published and kept.
type PublishedCheckpoint struct {
	Number    int64     `json:"number"`
	Seq       int64     `json:"seq"`
	At        time.Time `json:"at"`
	Hash      []byte    `json:"hash"`
	PrevHash  []byte    `json:"prev_hash"`
	KeyID     string    `json:"key_id"`
	Signature []byte    `json:"signature"`
}

// Checkpoint is p as a store checkpoint.
func (p PublishedCheckpoint) Checkpoint() store.AuditCheckpoint {
	return store.AuditCheckpoint{Seq: p.Seq, At: p.At.UTC(), Hash: p.Hash, KeyID: p.KeyID, Signature: p.Signature, Number: p.Number, PrevHash: p.PrevHash}
}

// Link is p's link hash (CheckpointLink of a chained checkpoint).
func (p PublishedCheckpoint) Link() []byte { return checkpointDigest(p.Checkpoint()) }

func publish(c store.AuditCheckpoint) PublishedCheckpoint {
	return PublishedCheckpoint{Number: c.Number, Seq: c.Seq, At: c.At.UTC(), Hash: c.Hash, PrevHash: c.PrevHash, KeyID: c.KeyID, Signature: c.Signature}
}

// Published is what the endpoint answers and what a witness keeps.
type Published struct {
	Format      string                `json:"format"`
	Checkpoints []PublishedCheckpoint `json:"checkpoints"` // consecutive numbers, oldest first
	More        bool                  `json:"more,omitempty"`
	// Certificates are the audit checkpoint keys' certificates (DER) of
	// the ceremony record; a witness trusts one only by its own copy or
	// published fingerprint.
	Certificates [][]byte `json:"certificates,omitempty"`
}

// Anchor is what the newest kept checkpoint holds of the log.
func (p Published) Anchor(source string) Anchor {
	c := p.Checkpoints[len(p.Checkpoints)-1]
	return Anchor{Source: source, Checkpoint: c.Number, Link: c.Link(), Seq: c.Seq, RecordHash: c.Hash}
}

// CheckpointSource reads the chained checkpoints (store.SQLite,
// store.Postgres: AuditCheckpointsFrom).
type CheckpointSource interface {
	AuditCheckpointsFrom(ctx context.Context, from int64, limit int) ([]store.AuditCheckpoint, error)
}

// CheckpointHandler serves GET /v1/audit/checkpoint[?since=N] from src
// (see the top of this file). certs are the audit keys' certificates.
func CheckpointHandler(src CheckpointSource, certs [][]byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		var since int64
		if s := req.URL.Query().Get("since"); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 1 {
				http.Error(w, "since: a checkpoint number from 1", http.StatusBadRequest)
				return
			}
			since = n
		}
		p, err := PublishedSince(req.Context(), src, since)
		if err != nil {
			http.Error(w, "audit checkpoints unavailable", http.StatusServiceUnavailable)
			return
		}
		if len(p.Checkpoints) == 0 {
			http.Error(w, "no chained audit checkpoint yet", http.StatusNotFound)
			return
		}
		p.Certificates = certs
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(p)
	})
}

// PublishedSince returns the chained checkpoints from number since (0: the
// newest only; a number past the newest: the newest only, so a witness
// that kept a later one sees the chain was cut back), at most
// MaxPublished.
func PublishedSince(ctx context.Context, src CheckpointSource, since int64) (Published, error) {
	p := Published{Format: PublishedFormat}
	newest, err := src.AuditCheckpointsFrom(ctx, 0, 1)
	if err != nil || len(newest) == 0 {
		return p, err
	}
	if since <= 0 || since > newest[0].Number {
		p.Checkpoints = []PublishedCheckpoint{publish(newest[0])}
		return p, nil
	}
	cps, err := src.AuditCheckpointsFrom(ctx, since, MaxPublished+1)
	if err != nil {
		return p, err
	}
	if len(cps) > MaxPublished {
		cps, p.More = cps[:MaxPublished], true
	}
	for _, c := range cps {
		p.Checkpoints = append(p.Checkpoints, publish(c))
	}
	return p, nil
}

// checkSegment verifies that cps are consecutive chained checkpoints, each
// naming the one before it and each signed by a key of keys.
func checkSegment(cps []PublishedCheckpoint, keys []Key, what string) error {
	if len(cps) == 0 {
		return fmt.Errorf("audit: %s holds no checkpoint", what)
	}
	byID := map[string]crypto.PublicKey{}
	for _, k := range keys {
		byID[k.ID] = k.Public
	}
	for i, p := range cps {
		c := p.Checkpoint()
		if !Chained(c) || c.Number < 1 {
			return fmt.Errorf("%w: %s: checkpoint %d is not chained", ErrTampered, what, c.Number)
		}
		if i > 0 && (c.Number != cps[i-1].Number+1 || !bytes.Equal(c.PrevHash, cps[i-1].Link())) {
			return fmt.Errorf("%w: %s: checkpoint %d does not follow checkpoint %d", ErrFork, what, c.Number, cps[i-1].Number)
		}
		pub, ok := byID[c.KeyID]
		if !ok {
			return fmt.Errorf("%w: %s: checkpoint %d signed by key %q, not a trusted audit checkpoint key", ErrTampered, what, c.Number, c.KeyID)
		}
		if !wire.VerifyDigestSignature(pub, checkpointDigest(c), c.Signature) {
			return fmt.Errorf("%w: %s: checkpoint %d: bad signature", ErrTampered, what, c.Number)
		}
	}
	return nil
}

// Extends checks that got extends the kept checkpoint tip (nil: nothing
// kept yet): got starts at tip's number with the same checkpoint, and is
// one signed chain. A server whose newest checkpoint is older than the
// kept one, or whose checkpoint at that number differs, forked (ErrFork).
func Extends(tip *PublishedCheckpoint, tipSource string, got Published, keys []Key) error {
	if err := checkSegment(got.Checkpoints, keys, "the published chain"); err != nil {
		return err
	}
	if tip == nil {
		return nil
	}
	first := got.Checkpoints[0]
	switch {
	case first.Number > tip.Number:
		return fmt.Errorf("%w: asked for the chain since checkpoint %d (%s), got one starting at %d", ErrFork, tip.Number, tipSource, first.Number)
	case first.Number < tip.Number:
		return fmt.Errorf("%w: the server's newest checkpoint is %d, older than checkpoint %d kept in %s: the log was cut back", ErrFork, first.Number, tip.Number, tipSource)
	case !bytes.Equal(first.Link(), tip.Link()):
		return fmt.Errorf("%w: the server's checkpoint %d (record %d) differs from the one kept in %s (record %d): the log was rewritten", ErrFork, tip.Number, first.Seq, tipSource, tip.Seq)
	}
	return nil
}

// Kept is one file of a witness directory.
type Kept struct {
	Path string
	Published
}

// Tip is the newest checkpoint of the file.
func (k Kept) Tip() PublishedCheckpoint { return k.Checkpoints[len(k.Checkpoints)-1] }

// LoadKept reads and checks a witness directory (nil for an empty or
// missing one), oldest first: every file a signed chain under keys, each
// starting with a checkpoint of the one before it (ErrFork when two kept
// copies disagree).
func LoadKept(dir string, keys []Key) ([]Kept, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: witness directory: %w", err)
	}
	var out []Kept
	for _, e := range ents {
		if e.IsDir() || !strings.HasPrefix(e.Name(), "checkpoints-") || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("audit: witness copy: %w", err)
		}
		var p Published
		if err := json.Unmarshal(b, &p); err != nil || p.Format != PublishedFormat {
			return nil, fmt.Errorf("%w: witness copy %s is not a kept checkpoint file", ErrTampered, path)
		}
		if err := checkSegment(p.Checkpoints, keys, "witness copy "+e.Name()); err != nil {
			return nil, err
		}
		out = append(out, Kept{Path: path, Published: p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tip().Number < out[j].Tip().Number })
	for i := 1; i < len(out); i++ {
		prev, cur := out[i-1], out[i]
		pt := prev.Tip()
		found := false
		for _, c := range cur.Checkpoints {
			if c.Number == pt.Number {
				found = true
				if !bytes.Equal(c.Link(), pt.Link()) {
					return nil, fmt.Errorf("%w: kept copies %s and %s differ at checkpoint %d (records %d and %d)",
						ErrFork, filepath.Base(prev.Path), filepath.Base(cur.Path), pt.Number, pt.Seq, c.Seq)
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: kept copy %s does not continue %s (its chain starts at checkpoint %d, after %d)",
				ErrFork, filepath.Base(cur.Path), filepath.Base(prev.Path), cur.Checkpoints[0].Number, pt.Number)
		}
	}
	return out, nil
}

// Keep writes p into dir as checkpoints-NNNNNNNNNNNN.json (0600), named by
// its newest checkpoint, never replacing a file: an existing file of that
// name must hold the same newest checkpoint. It returns the path.
func Keep(dir string, p Published) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("audit: witness directory: %w", err)
	}
	tip := p.Checkpoints[len(p.Checkpoints)-1]
	path := filepath.Join(dir, fmt.Sprintf("checkpoints-%012d.json", tip.Number))
	p.Certificates = nil
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		old, rerr := os.ReadFile(path)
		var q Published
		if rerr != nil || json.Unmarshal(old, &q) != nil || len(q.Checkpoints) == 0 || !bytes.Equal(q.Checkpoints[len(q.Checkpoints)-1].Link(), tip.Link()) {
			return "", fmt.Errorf("%w: %s already holds another checkpoint %d", ErrFork, path, tip.Number)
		}
		return path, nil
	}
	if err != nil {
		return "", fmt.Errorf("audit: witness copy: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("audit: witness copy: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("audit: witness copy: %w", err)
	}
	return path, f.Close()
}
