package app

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/operator"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// The CA witness of the terminal's audit chain (issue 13 threat 2; TS Art. 20(2), CPS §5.4).
//
// The chain in terminal.db is an unkeyed hash chain: whoever holds the file can rewrite all of
// it, recompute every hash and the head row, and it verifies on its own. So the terminal sends
// its chain head to the CA at least every 10 minutes (the root package's periodic loop) and at
// every log-out (in the background: a CA that cannot be reached never holds up the counter; the
// next tick sends again). The CA records each head in its own checkpointed audit log and returns
// a receipt signed by its audit checkpoint key, which the terminal keeps (audit_receipts).
//
// VerifyAudit then checks the chain against what lives outside the file: with the CA reachable,
// the last head the CA witnessed for this terminal (the CA holds the truth: deleting every
// receipt here changes nothing); without it, the receipts kept here, each verified under an
// audit key pinned in Config.WitnessKeyFile, and the report says the CA was not consulted.
//
// Trust in the audit key: the terminal learns the key's certificate only over the mutually
// authenticated TLS channel to the CA (pinned at enrolment), and keeps it beside that pin, not
// in terminal.db: rewriting terminal.db alone cannot forge a receipt.

// AuditWitness is the CA's witness of the terminal's audit chain (raclient.Client).
type AuditWitness interface {
	WitnessAuditHead(ctx context.Context, operator string, req wire.AuditHeadRequest) (wire.AuditReceipt, error)
	LatestAuditHead(ctx context.Context, operator string) (wire.WitnessedHead, error)
}

var _ AuditWitness = (*raclient.Client)(nil)

// witnessTimeout bounds one witness exchange, so a log-out's background send or a verify never
// waits long for an unreachable CA.
const witnessTimeout = 20 * time.Second

// defaultWitnessKeyFile is where the audit keys learned from the CA are kept: the CA link's
// directory beside terminal.db ("ca/", where the root package keeps the pinned TLS CA).
func defaultWitnessKeyFile(dbPath string) string {
	return filepath.Join(filepath.Dir(dbPath), "ca", "audit-witness-keys.pem")
}

// auditWitness is Config.Witness, else the CA client in effect now when it is a witness (a
// *raclient.Client is); nil without either.
func (t *Terminal) auditWitness() AuditWitness {
	if t.cfg.Witness != nil {
		return t.cfg.Witness
	}
	c, _ := t.ca()
	w, _ := c.(AuditWitness)
	return w
}

// WitnessResult is what one witness exchange did.
type WitnessResult struct {
	Seq  int64 // the head the CA has witnessed (0: the chain is empty, nothing sent)
	Sent bool  // false when the newest receipt already covers the head
}

// WitnessAudit sends the chain head to the CA and keeps its receipt (see above). operator is
// the operator on whose behalf the terminal calls ("-" for the periodic send). Nothing is sent
// when the newest receipt kept (and verified) already covers the head. A head the CA refuses because it
// contradicts what it witnessed (raclient.ErrAuditHeadRefused: the file was rewritten or
// replaced) is recorded in the terminal's audit trail as audit.witness_refused and returned with
// kind AuditBroken; the CA has recorded it too. Without a witness: kind CAUnavailable.
func (t *Terminal) WitnessAudit(ctx context.Context, operatorID string) (WitnessResult, error) {
	w := t.auditWitness()
	if w == nil {
		return WitnessResult{}, apperr.New(apperr.CAUnavailable, "app: no CA to witness the audit chain")
	}
	t.witnessMu.Lock()
	defer t.witnessMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, witnessTimeout)
	defer cancel()
	// First anchored at the newest receipt kept here (one request); when the CA says that is
	// not its last witnessed head (receipts lost, a send whose answer was lost), anchored at
	// the head the CA names.
	res, err := t.witnessOnce(ctx, w, operatorID, true)
	if errors.Is(err, raclient.ErrAuditAnchorStale) {
		res, err = t.witnessOnce(ctx, w, operatorID, false)
	}
	if errors.Is(err, raclient.ErrAuditHeadRefused) {
		t.record(ctx, audit.Entry{Operator: operatorID, Action: "audit.witness_refused", Result: audit.ResultError,
			Detail: map[string]string{"error": err.Error()}})
		return res, apperr.Wrap(apperr.AuditBroken, err, "app: the CA refused the audit chain head: it contradicts a head the CA witnessed")
	}
	return res, err
}

func (t *Terminal) witnessOnce(ctx context.Context, w AuditWitness, operatorID string, fromReceipt bool) (WitnessResult, error) {
	seq, hash, at, err := audit.Head(ctx, t.db)
	if err != nil || seq == 0 {
		return WitnessResult{}, err
	}
	req := wire.AuditHeadRequest{Seq: seq, Hash: hash, NewestAt: at}
	var anchorSeq int64 // the CA's last witnessed head, as this terminal knows it
	if fromReceipt {
		rc, ok, err := audit.LastReceipt(ctx, t.db)
		if err != nil {
			return WitnessResult{}, err
		}
		if ok && rc.Seq == seq && bytes.Equal(rc.Hash, hash) {
			// Already witnessed, if the receipt is the CA's: a receipt row edited to match
			// a rewritten head does not verify, and the head goes to the CA, which refuses it.
			keys, err := t.witnessKeys()
			if err != nil {
				return WitnessResult{}, err
			}
			if verifyReceipt(keys, rc) == nil {
				return WitnessResult{Seq: seq}, nil
			}
		}
		if ok {
			anchorSeq = rc.Seq
		}
	} else {
		latest, err := w.LatestAuditHead(ctx, operatorID)
		if err != nil {
			return WitnessResult{}, caError("audit-witness", err)
		}
		if err := t.pinWitnessKey(latest.KeyCertificate); err != nil {
			return WitnessResult{}, err
		}
		if latest.Found {
			anchorSeq = latest.Seq
		}
	}
	if anchorSeq > 0 && anchorSeq <= seq {
		// The anchor sent is this chain's own hash at the witnessed record: the CA refuses the
		// head when it differs from what it witnessed, so a rewrite is never laundered by a
		// newer head. A chain shorter than the witnessed head goes without anchor and is
		// refused as backwards.
		h, ok, err := audit.HashAt(ctx, t.db, anchorSeq)
		if err != nil {
			return WitnessResult{}, err
		}
		if ok {
			req.AnchorSeq, req.AnchorHash = anchorSeq, h
		}
	}
	rc, err := w.WitnessAuditHead(ctx, operatorID, req)
	if err != nil {
		return WitnessResult{}, caError("audit-witness", err)
	}
	if rc.Seq != seq || !bytes.Equal(rc.Hash, hash) {
		return WitnessResult{}, apperr.New(apperr.Internal, "app: the CA's audit receipt is for record %d, not the head %d sent", rc.Seq, seq)
	}
	if err := t.pinWitnessKey(rc.KeyCertificate); err != nil {
		return WitnessResult{}, err
	}
	keys, err := t.witnessKeys()
	if err != nil {
		return WitnessResult{}, err
	}
	if err := verifyReceipt(keys, rc); err != nil {
		return WitnessResult{}, apperr.Wrap(apperr.Internal, err, "app: the CA's audit receipt does not verify")
	}
	err = t.db.Tx(ctx, func(tx *sql.Tx) error { return audit.KeepReceipt(ctx, tx, rc, t.now()) })
	return WitnessResult{Seq: seq, Sent: true}, err
}

// witnessInBackground sends the head after a log-out without holding it up; Close waits.
func (t *Terminal) witnessInBackground(operatorID string) {
	if t.auditWitness() == nil {
		return
	}
	t.witnessWG.Add(1)
	go func() {
		defer t.witnessWG.Done()
		t.WitnessAudit(context.Background(), operatorID) // failures: the next periodic send retries
	}()
}

// pinWitnessKey adds an audit key certificate received over the CA's mutual-TLS channel to
// Config.WitnessKeyFile (nothing when der is empty or already kept).
func (t *Terminal) pinWitnessKey(der []byte) error {
	if len(der) == 0 {
		return nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "app: the CA's audit key certificate")
	}
	id, err := wire.AuditKeyID(cert.PublicKey)
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "app: the CA's audit key certificate")
	}
	t.witnessKeyMu.Lock()
	defer t.witnessKeyMu.Unlock()
	keys, err := readWitnessKeys(t.cfg.WitnessKeyFile)
	if err != nil {
		return err
	}
	if _, ok := keys[id]; ok {
		return nil
	}
	old, err := os.ReadFile(t.cfg.WitnessKeyFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return apperr.Wrap(apperr.Internal, err, "app: audit witness keys")
	}
	data := append(old, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	if err := os.MkdirAll(filepath.Dir(t.cfg.WitnessKeyFile), 0o700); err != nil {
		return apperr.Wrap(apperr.Internal, err, "app: audit witness keys")
	}
	tmp := t.cfg.WitnessKeyFile + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return apperr.Wrap(apperr.Internal, err, "app: audit witness keys")
	}
	if err := os.Rename(tmp, t.cfg.WitnessKeyFile); err != nil {
		return apperr.Wrap(apperr.Internal, err, "app: audit witness keys")
	}
	return nil
}

func (t *Terminal) witnessKeys() (map[string]crypto.PublicKey, error) {
	t.witnessKeyMu.Lock()
	defer t.witnessKeyMu.Unlock()
	return readWitnessKeys(t.cfg.WitnessKeyFile)
}

// readWitnessKeys reads the pinned audit key certificates by key id (none: empty map).
func readWitnessKeys(path string) (map[string]crypto.PublicKey, error) {
	keys := map[string]crypto.PublicKey{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return keys, nil
	}
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "app: audit witness keys")
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return keys, nil
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, apperr.Wrap(apperr.Internal, err, "app: audit witness keys: "+path)
		}
		id, err := wire.AuditKeyID(cert.PublicKey)
		if err != nil {
			return nil, apperr.Wrap(apperr.Internal, err, "app: audit witness keys: "+path)
		}
		keys[id] = cert.PublicKey
	}
}

// errNoWitnessKey: a receipt names a key the terminal has not pinned (e.g. the key file was
// lost): the receipt cannot vouch for anything, but it is no evidence of tampering either.
var errNoWitnessKey = errors.New("app: receipt signed by an audit key this terminal has not pinned")

func verifyReceipt(keys map[string]crypto.PublicKey, rc wire.AuditReceipt) error {
	pub, ok := keys[rc.KeyID]
	if !ok {
		return fmt.Errorf("%w (%s)", errNoWitnessKey, rc.KeyID)
	}
	return wire.VerifyAuditReceipt(pub, rc)
}

// VerifyReport is the outcome of VerifyAudit: the chain check (audit.Report: Records, Problem,
// Witnessed, Unwitnessed) and what it was checked against. The audit screen shows Records,
// Witnessed/Unwitnessed and, when CAConsulted is false, that the CA was not asked (CAError
// says why) and the result rests on the receipts kept on this terminal.
type VerifyReport struct {
	audit.Report
	CAConsulted bool   // the CA's last witnessed head for this terminal was read and checked
	CAError     string // why the CA was not consulted (no CA configured, unreachable)
	Receipts    int    // receipts kept here whose signature verified and were checked
	Unverified  int    // receipts under a key not pinned here (not used)
}

// consultWitness gathers the anchors for VerifyAudit, outside any transaction: the CA's last
// witnessed head when the CA answers, and every kept receipt whose signature verifies under a
// pinned key. A receipt under a pinned key with a bad signature was forged: kind AuditBroken.
func (t *Terminal) consultWitness(ctx context.Context, operatorID string) ([]audit.Anchor, VerifyReport, error) {
	var rep VerifyReport
	var anchors []audit.Anchor
	if w := t.auditWitness(); w == nil {
		rep.CAError = "no CA configured"
	} else {
		cctx, cancel := context.WithTimeout(ctx, witnessTimeout)
		latest, err := w.LatestAuditHead(cctx, operatorID)
		cancel()
		switch {
		case err != nil:
			rep.CAError = err.Error()
		default:
			rep.CAConsulted = true
			if err := t.pinWitnessKey(latest.KeyCertificate); err != nil {
				return nil, rep, err
			}
			if latest.Found {
				anchors = append(anchors, audit.Anchor{Seq: latest.Seq, Hash: latest.Hash, Source: "CA (last witnessed head, " + latest.WitnessedAt.UTC().Format(time.RFC3339) + ")"})
			}
		}
	}
	receipts, err := audit.Receipts(ctx, t.db)
	if err != nil {
		return nil, rep, err
	}
	keys, err := t.witnessKeys()
	if err != nil {
		return nil, rep, err
	}
	for _, rc := range receipts {
		err := verifyReceipt(keys, rc)
		switch {
		case errors.Is(err, errNoWitnessKey):
			rep.Unverified++
		case err != nil:
			rep.Problem = &audit.Problem{Seq: rc.Seq, Reason: "forged receipt", Detail: err.Error()}
			return nil, rep, apperr.Wrap(apperr.AuditBroken, err, fmt.Sprintf("app: the receipt kept for record %d is not the CA's", rc.Seq))
		default:
			rep.Receipts++
			anchors = append(anchors, audit.Anchor{Seq: rc.Seq, Hash: rc.Hash, Source: "CA receipt of " + rc.WitnessedAt.UTC().Format(time.RFC3339)})
		}
	}
	return anchors, rep, nil
}

// VerifyAudit checks the whole audit chain (Audit) against the CA witness (see above). A broken
// chain, a rewrite before a witnessed head or a forged receipt returns the report and an error
// of kind AuditBroken naming the record. A CA that cannot be reached is no error: the report
// says CAConsulted false.
func (s *Session) VerifyAudit(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	if err := s.touch(ctx); err != nil {
		return rep, err
	}
	if !s.Allowed(ctx, operator.Audit) {
		// refused and audited by the gate below, before anything is asked of the CA
		err := s.call(ctx, "audit.verify", "", operator.Audit, nil, nil)
		return rep, err
	}
	anchors, rep, werr := s.t.consultWitness(ctx, s.operatorID)
	var verr error
	detail := map[string]string{"ca_consulted": strconv.FormatBool(rep.CAConsulted)}
	err := s.call(ctx, "audit.verify", "", operator.Audit, detail, func(tx *sql.Tx, _ operator.Operator) error {
		if werr != nil { // a forged receipt: report the chain's own state with it
			p := rep.Problem
			rep.Report, _ = audit.Verify(ctx, tx)
			rep.Problem, rep.Witnessed, rep.Unwitnessed, verr = p, 0, rep.Records, werr
			return nil
		}
		rep.Report, verr = audit.VerifyWitnessed(ctx, tx, anchors)
		if verr != nil && apperr.KindOf(verr) == apperr.Internal {
			return verr
		}
		detail["records"] = strconv.FormatInt(rep.Records, 10)
		detail["witnessed"] = strconv.FormatInt(rep.Witnessed, 10)
		detail["unwitnessed"] = strconv.FormatInt(rep.Unwitnessed, 10)
		return nil
	})
	if err != nil {
		return rep, err
	}
	if verr != nil {
		s.t.record(ctx, audit.Entry{Operator: s.operatorID, Action: "audit.verify_failed", Result: audit.ResultError,
			Detail: map[string]string{"error": verr.Error()}})
	}
	return rep, verr
}
