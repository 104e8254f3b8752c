package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// NextCRLNumber takes the next cRLNumber of series (1 for a new series) in a
// write transaction, so numbers increase strictly within a series even
// across processes (RFC 5280 §5.2.3). A number taken for a CRL that then
// failed is not reused: gaps are allowed, repeats are not.
func (s *sqlStore) NextCRLNumber(ctx context.Context, series string) (int64, error) {
	if series == "" {
		return 0, errors.New("store: empty CRL series")
	}
	var n int64
	err := s.tx(ctx, func(tx *dbTx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO crl_series (series, last_number) VALUES (?, 1)
			ON CONFLICT (series) DO UPDATE SET last_number = crl_series.last_number + 1 RETURNING last_number`, series).Scan(&n)
		if err != nil {
			return fmt.Errorf("store: next CRL number: %w", err)
		}
		return nil
	})
	return n, err
}

// PublishedCRL records one CRL or ARL that was published (its DER is in the
// archive).
type PublishedCRL struct {
	Series     string
	Number     int64
	ThisUpdate time.Time
	NextUpdate time.Time
	Entries    int
	SHA256     []byte
	Trigger    string // schedule, on-demand, ca-compromise
}

// RecordPublishedCRL stores the record of a published CRL.
func (s *sqlStore) RecordPublishedCRL(ctx context.Context, p PublishedCRL) error {
	if p.Series == "" || len(p.SHA256) != 32 || p.Trigger == "" {
		return errors.New("store: published CRL lacks series, hash or trigger")
	}
	return s.tx(ctx, func(tx *dbTx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO crls_published (series, number, this_update, next_update, entries, sha256, trigger_kind)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, p.Series, p.Number, p.ThisUpdate.UnixNano(), p.NextUpdate.UnixNano(), p.Entries, p.SHA256, p.Trigger)
		if isUnique(err, "") {
			return fmt.Errorf("%w: CRL %s #%d already recorded", ErrConflict, p.Series, p.Number)
		}
		if err != nil {
			return fmt.Errorf("store: record CRL: %w", err)
		}
		return nil
	})
}

// LastPublishedCRL returns the newest CRL of series, or ErrNotFound.
func (s *sqlStore) LastPublishedCRL(ctx context.Context, series string) (PublishedCRL, error) {
	var p PublishedCRL
	var tu, nu int64
	err := s.r.QueryRowContext(ctx, `SELECT series, number, this_update, next_update, entries, sha256, trigger_kind
		FROM crls_published WHERE series = ? ORDER BY number DESC LIMIT 1`, series).
		Scan(&p.Series, &p.Number, &tu, &nu, &p.Entries, &p.SHA256, &p.Trigger)
	if err != nil {
		return PublishedCRL{}, notFound(err, fmt.Sprintf("published CRL of %q", series))
	}
	p.ThisUpdate, p.NextUpdate = time.Unix(0, tu).UTC(), time.Unix(0, nu).UTC()
	return p, nil
}
