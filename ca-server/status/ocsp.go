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
// revoked → revoked with its reason and time (CPS §4.9.9); a serial of
// another CA, or one not yet delivered, is "not issued" (unknown).
func (s *Service) OCSPSource(t store.CertType) ocsp.StatusSource {
	return ocsp.StatusFunc(func(ctx context.Context, serial *big.Int) (ocsp.CertStatus, error) {
		if serial == nil || serial.Sign() <= 0 {
			return ocsp.CertStatus{}, ocsp.ErrNotIssued
		}
		c, err := s.cfg.Store.CertificateBySerial(ctx, serial.Text(16))
		if errors.Is(err, store.ErrNotFound) {
			return ocsp.CertStatus{}, fmt.Errorf("%w: %w", ocsp.ErrNotIssued, err)
		}
		if err != nil {
			return ocsp.CertStatus{}, err
		}
		if c.CertType != t {
			return ocsp.CertStatus{}, fmt.Errorf("%w: serial of the %s CA", ocsp.ErrNotIssued, c.CertType)
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
