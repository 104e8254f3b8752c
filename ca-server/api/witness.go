package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/store"
	"madoguchi/jpki/wire"
)

// The terminal audit witness (issue 13 threat 2; wire/witness.go). A terminal's audit chain
// lives in a file its holder can rewrite; the CA keeps the truth about it: each head a terminal
// sends is one record of the CA's own hash-chained, checkpointed audit log (action
// ActionAuditHead, target the terminal id, detail "seq=N hash=HEX newest_at=T"), and the
// terminal gets a receipt signed by the audit checkpoint key. A head that goes backwards or
// forks from what the CA already witnessed for that terminal is refused with 409, recorded
// with its code, and logged as an error: it means the terminal's file was rewritten or
// replaced (TS Art. 20(2); CPS §5.4).
//
//	POST /v1/terminal-audit/heads          wire.AuditHeadRequest → wire.AuditReceipt
//	GET  /v1/terminal-audit/heads/latest   → wire.WitnessedHead

// Audit actions of the witness.
const (
	ActionAuditHead       = "terminal.audit.head"
	ActionAuditHeadLatest = "terminal.audit.head.latest"
)

// WitnessHeads finds the CA's last witnessed head of a terminal in its audit log (store).
type WitnessHeads interface {
	LastAuditRecordOf(ctx context.Context, terminal, action string) (store.AuditRecord, error)
}

// Witness is Config.Witness: where heads are read from and who signs receipts.
type Witness struct {
	Heads WitnessHeads
	// Receipts signs with the audit checkpoint key; nil while the CA is not activated: heads
	// are then refused with CodeUnavailable (the terminal retries on its next tick), and the
	// latest head is still served.
	Receipts *audit.ReceiptSigner

	// mu makes check-then-record one step within this process: two heads of one terminal
	// (a log-out and the periodic send) cannot both pass the check against the same last
	// head. Several ca-server processes on one database do not share it; a fork that slips
	// between them still shows in the CA log as two accepted heads with one seq.
	mu sync.Mutex
}

func (s *Server) mountWitness() {
	w := s.cfg.Witness
	s.handle("POST /v1/terminal-audit/heads", ActionAuditHead, true, func(c *call) (int, any, error) {
		c.target = c.caller.TerminalID
		var req wire.AuditHeadRequest
		if err := s.decode(c, &req); err != nil {
			return 0, nil, err
		}
		if req.Seq < 1 || len(req.Hash) != sha256.Size || req.AnchorSeq < 0 || req.AnchorSeq > req.Seq ||
			(req.AnchorSeq == 0) != (len(req.AnchorHash) == 0) || (req.AnchorSeq > 0 && len(req.AnchorHash) != sha256.Size) {
			return 0, nil, wire.Errorf(wire.CodeInvalidRequest, "an audit head needs seq ≥ 1, a 32-byte hash, and an anchor (seq and 32-byte hash of the last witnessed head, or none) not after it")
		}
		c.detail = formatHead(req.Seq, req.Hash, req.NewestAt)
		if w == nil || w.Receipts == nil {
			return 0, nil, wire.Errorf(wire.CodeUnavailable, "the audit witness is not active on this CA (not activated)")
		}
		w.mu.Lock()
		c.release = w.mu.Unlock
		last, found, err := w.latest(c.r.Context(), c.caller.TerminalID)
		if err != nil {
			return 0, nil, err
		}
		if err := checkHead(req, last, found); err != nil {
			if wire.CodeOf(err) == wire.CodeAuditAnchorStale {
				// Not a rewrite: the terminal anchored at an older receipt than the CA's last
				// witnessed head (it lost a receipt: killed or its disk failed between the send
				// and keeping the answer), and re-anchors at the head the CA names. An error
				// here would be a false tamper alarm in the data centre.
				s.cfg.Logger.Info("api: terminal audit head anchored at an older witnessed head; the terminal re-anchors",
					"terminal", c.caller.TerminalID, "code", wire.CodeOf(err), "err", err)
			} else {
				s.cfg.Logger.Error("api: terminal audit head refused: the terminal's audit file was rewritten or replaced",
					"terminal", c.caller.TerminalID, "code", wire.CodeOf(err), "err", err)
			}
			return 0, nil, err
		}
		rc, err := w.Receipts.Sign(c.caller.TerminalID, req.Seq, req.Hash)
		if err != nil {
			return 0, nil, wire.Wrap(wire.CodeUnavailable, err, "could not sign the receipt")
		}
		return http.StatusOK, rc, nil
	})
	s.handle("GET /v1/terminal-audit/heads/latest", ActionAuditHeadLatest, true, func(c *call) (int, any, error) {
		c.target = c.caller.TerminalID
		if w == nil {
			return 0, nil, wire.Errorf(wire.CodeUnavailable, "the audit witness is not active on this CA")
		}
		last, found, err := w.latest(c.r.Context(), c.caller.TerminalID)
		if err != nil {
			return 0, nil, err
		}
		out := wire.WitnessedHead{Found: found, TerminalID: c.caller.TerminalID}
		if found {
			out.Seq, out.Hash, out.WitnessedAt = last.seq, last.hash, last.at
			c.detail = formatHead(last.seq, last.hash, time.Time{})
		}
		if w.Receipts != nil {
			out.KeyCertificate = w.Receipts.KeyCertificate()
		}
		return http.StatusOK, out, nil
	})
}

// witnessed is a head the CA recorded.
type witnessed struct {
	seq  int64
	hash []byte
	at   time.Time // CA time of the record
}

func (w *Witness) latest(ctx context.Context, terminal string) (witnessed, bool, error) {
	r, err := w.Heads.LastAuditRecordOf(ctx, terminal, ActionAuditHead)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return witnessed{}, false, nil
	case err != nil:
		return witnessed{}, false, wire.Wrap(wire.CodeUnavailable, err, "could not read the witnessed audit heads")
	}
	seq, hash, err := parseHead(r.Detail)
	if err != nil {
		return witnessed{}, false, wire.Wrap(wire.CodeInternal, err, "witnessed audit head record %d is unreadable", r.Seq)
	}
	return witnessed{seq: seq, hash: hash, at: r.At}, true, nil
}

// checkHead refuses a head that does not extend the last witnessed one exactly.
func checkHead(req wire.AuditHeadRequest, last witnessed, found bool) error {
	if !found {
		if req.AnchorSeq != 0 {
			return wire.Errorf(wire.CodeAuditAnchorStale, "the CA witnessed no audit head of this terminal, but the head names record %d as witnessed", req.AnchorSeq)
		}
		return nil
	}
	switch {
	case req.Seq < last.seq:
		return wire.Errorf(wire.CodeAuditHeadBackwards, "audit head at record %d is behind record %d the CA witnessed at %s: records were removed or the audit file replaced",
			req.Seq, last.seq, last.at.Format(time.RFC3339))
	case req.Seq == last.seq && !bytes.Equal(req.Hash, last.hash):
		return wire.Errorf(wire.CodeAuditHeadForked, "audit head at record %d differs from the hash the CA witnessed for it at %s: witnessed records were rewritten",
			req.Seq, last.at.Format(time.RFC3339))
	case req.AnchorSeq != last.seq:
		return wire.Errorf(wire.CodeAuditAnchorStale, "the head is anchored at record %d, but the CA last witnessed record %d: read the latest witnessed head and send again",
			req.AnchorSeq, last.seq)
	case !bytes.Equal(req.AnchorHash, last.hash):
		return wire.Errorf(wire.CodeAuditHeadForked, "the terminal's record %d differs from the hash the CA witnessed for it at %s: witnessed records were rewritten",
			last.seq, last.at.Format(time.RFC3339))
	}
	return nil
}

// formatHead is the detail of a head record; parseHead reads it back.
func formatHead(seq int64, hash []byte, newest time.Time) string {
	s := fmt.Sprintf("seq=%d hash=%x", seq, hash)
	if !newest.IsZero() {
		s += " newest_at=" + newest.UTC().Format(time.RFC3339Nano)
	}
	return s
}

func parseHead(detail string) (int64, []byte, error) {
	var seq int64 = -1
	var hash []byte
	for _, f := range strings.Fields(detail) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "seq":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, nil, fmt.Errorf("api: head detail %q: %w", detail, err)
			}
			seq = n
		case "hash":
			if _, err := fmt.Sscanf(v, "%x", &hash); err != nil {
				return 0, nil, fmt.Errorf("api: head detail %q: %w", detail, err)
			}
		}
	}
	if seq < 1 || len(hash) != sha256.Size {
		return 0, nil, fmt.Errorf("api: head detail %q lacks seq or hash", detail)
	}
	return seq, hash, nil
}

// statusOfWitness maps the witness codes; ok is false for other codes.
func statusOfWitness(code wire.Code) (status int, ok bool) {
	switch code {
	case wire.CodeAuditHeadBackwards, wire.CodeAuditHeadForked, wire.CodeAuditAnchorStale:
		return http.StatusConflict, true
	}
	return 0, false
}
