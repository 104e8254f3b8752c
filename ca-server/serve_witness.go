package main

import (
	"errors"

	"madoguchi/ca-server/api"
	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/ceremony"
)

// newWitness returns the terminal audit witness of serve (ca-server/api witness.go): heads are
// read from the store's audit log; receipts are signed by the audit checkpoint key of the
// activated CA (active nil: not activated, the witness serves the latest head but signs
// nothing). Call it after startHSMAudit, which makes sure the key exists.
func newWitness(l *local, active *ceremony.Active) (*api.Witness, error) {
	w := &api.Witness{Heads: l.st}
	if active == nil {
		return w, nil
	}
	if active.AuditCheckpoint == nil {
		return nil, errors.New("ca-server: the activated CA has no audit checkpoint key for terminal audit receipts")
	}
	s, err := active.AuditCheckpoint.Signer()
	if err != nil {
		return nil, err
	}
	if w.Receipts, err = audit.NewReceiptSigner(s, active.AuditCheckpoint.Certificate, nil); err != nil {
		return nil, err
	}
	return w, nil
}
