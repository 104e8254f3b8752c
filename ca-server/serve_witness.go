package main

import (
	"errors"

	"madoguchi/ca-server/api"
	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/ceremony"
	"madoguchi/ca-server/status"
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

// holderRevocation is the online revocation of the public listener (api holder.go, CPS
// §4.9.3.1): the status service checks and revokes, the audit checkpoint key signs the
// acknowledgement. Not activated (active nil): not served.
func holderRevocation(svc *status.Service, active *ceremony.Active) (api.HolderRevoker, api.AckSigner, error) {
	if active == nil {
		return nil, nil, nil
	}
	if active.AuditCheckpoint == nil {
		return nil, nil, errors.New("ca-server: the activated CA has no audit checkpoint key to sign revocation acknowledgements")
	}
	s, err := active.AuditCheckpoint.Signer()
	if err != nil {
		return nil, nil, err
	}
	acks, err := audit.NewReceiptSigner(s, active.AuditCheckpoint.Certificate, nil)
	if err != nil {
		return nil, nil, err
	}
	return svc, acks, nil
}
