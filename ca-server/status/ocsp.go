package status

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"madoguchi/ca-server/ocsp"
	"madoguchi/ca-server/store"
)

// OCSPSource returns the status source of the OCSP responder for the CA of
// certificate type t: delivered → good, held → revoked with reason 6,
// revoked → revoked with its reason and time (CPS §4.9.9); a certificate
// of this CA not (yet) delivered is "not issued" (a signed "unknown"); a
// serial the store has no record of, or one of another CA, has "no record"
// (the unsigned "unauthorized": it costs no signature, ca-server/ocsp).
func (s *Service) OCSPSource(t store.CertType) ocsp.StatusSource {
	return ocsp.StatusFunc(func(ctx context.Context, serial *big.Int) (ocsp.CertStatus, error) {
		if serial == nil || serial.Sign() <= 0 {
			return ocsp.CertStatus{}, ocsp.ErrNoRecord
		}
		c, err := s.cfg.Store.CertificateBySerial(ctx, serial.Text(16))
		if errors.Is(err, store.ErrNotFound) {
			return ocsp.CertStatus{}, fmt.Errorf("%w: %w", ocsp.ErrNoRecord, err)
		}
		if err != nil {
			return ocsp.CertStatus{}, err
		}
		if c.CertType != t {
			return ocsp.CertStatus{}, fmt.Errorf("%w: serial of the %s CA", ocsp.ErrNoRecord, c.CertType)
		}
		switch c.State {
		case store.StateDelivered:
			return ocsp.CertStatus{State: ocsp.Good}, nil
		case store.StateHeld:
			return ocsp.CertStatus{State: ocsp.Held, RevokedAt: c.HeldAt, Reason: store.ReasonCertificateHold}, nil
		case store.StateRevoked:
			return ocsp.CertStatus{State: ocsp.Revoked, RevokedAt: c.RevokedAt, Reason: c.RevocationReason}, nil
		}
		return ocsp.CertStatus{}, fmt.Errorf("%w: certificate not delivered", ocsp.ErrNotIssued)
	})
}
