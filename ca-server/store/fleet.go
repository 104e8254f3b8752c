package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors of the fleet coordination (issue 14).
var (
	// ErrLeaseHeld: another holder has the lease and it has not expired.
	ErrLeaseHeld = errors.New("store: lease held by another process")
	// ErrFenced: a write under a lease this process no longer holds.
	ErrFenced = errors.New("store: lease lost (fencing token superseded); write refused")
)

// Lease is one holder's claim on a named job (job_leases). Fence grows by
// one each time the lease changes holder; writes made with WithFence check
// it in their own transaction.
type Lease struct {
	Name      string
	Holder    string
	Fence     int64
	ExpiresAt time.Time
}

type fenceKey struct{}

// WithFence returns a context whose store writes succeed only while l is
// still the current lease of its name with the same fence (ErrFenced
// otherwise): the fencing token of a CRL, an audit checkpoint, a responder
// key or a sweep (PostgreSQL is the coordinator; no home-made consensus).
func WithFence(ctx context.Context, l Lease) context.Context {
	return context.WithValue(ctx, fenceKey{}, l)
}

// withoutFence hides a fence from the lease methods themselves.
func withoutFence(ctx context.Context) context.Context {
	return context.WithValue(ctx, fenceKey{}, nil)
}

func checkFence(ctx context.Context, tx *dbTx, l Lease) error {
	var holder string
	var fence int64
	err := tx.QueryRowContext(ctx, `SELECT holder, fence FROM job_leases WHERE name = ?`, l.Name).Scan(&holder, &fence)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrFenced, l.Name, notFound(err, "lease"))
	}
	if holder != l.Holder || fence != l.Fence {
		return fmt.Errorf("%w: %s fence %d of %s, now %d of %s", ErrFenced, l.Name, l.Fence, l.Holder, fence, holder)
	}
	return nil
}

// AcquireLease takes or renews the lease name for holder until now+ttl: a
// free or expired lease changes holder (fence+1); the holder's own lease
// is extended (same fence); another holder's live lease is ErrLeaseHeld.
// Times are the callers' clocks, synchronised (CPS §6.8); the fence, not
// the clock, keeps writes apart.
func (s *sqlStore) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (Lease, error) {
	if name == "" || holder == "" || ttl <= 0 {
		return Lease{}, errors.New("store: lease needs a name, a holder and a duration")
	}
	ctx = withoutFence(ctx)
	var out Lease
	err := s.tx(ctx, func(tx *dbTx) error {
		var cur Lease
		var exp int64
		err := tx.QueryRowContext(ctx, `SELECT holder, fence, expires_at FROM job_leases WHERE name = ?`, name).Scan(&cur.Holder, &cur.Fence, &exp)
		until := now.Add(ttl)
		switch {
		case err != nil && !errors.Is(notFound(err, ""), ErrNotFound):
			return fmt.Errorf("store: read lease: %w", err)
		case err != nil:
			out = Lease{Name: name, Holder: holder, Fence: 1, ExpiresAt: until}
			_, err = tx.ExecContext(ctx, `INSERT INTO job_leases (name, holder, fence, expires_at) VALUES (?, ?, ?, ?)`, name, holder, 1, until.UnixNano())
		case cur.Holder == holder:
			out = Lease{Name: name, Holder: holder, Fence: cur.Fence, ExpiresAt: until}
			_, err = tx.ExecContext(ctx, `UPDATE job_leases SET expires_at = ? WHERE name = ?`, until.UnixNano(), name)
		case now.UnixNano() < exp:
			return fmt.Errorf("%w: %s until %s", ErrLeaseHeld, name, time.Unix(0, exp).UTC().Format(time.RFC3339Nano))
		default:
			out = Lease{Name: name, Holder: holder, Fence: cur.Fence + 1, ExpiresAt: until}
			_, err = tx.ExecContext(ctx, `UPDATE job_leases SET holder = ?, fence = ?, expires_at = ? WHERE name = ?`, holder, out.Fence, until.UnixNano(), name)
		}
		if err != nil {
			return fmt.Errorf("store: write lease: %w", err)
		}
		return nil
	})
	return out, err
}

// ReleaseLease ends l at once if it is still current (a clean shutdown:
// another replica takes over at its next try, not after the lease expires).
func (s *sqlStore) ReleaseLease(ctx context.Context, l Lease) error {
	ctx = withoutFence(ctx)
	return s.tx(ctx, func(tx *dbTx) error {
		_, err := tx.ExecContext(ctx, `UPDATE job_leases SET expires_at = 0 WHERE name = ? AND holder = ? AND fence = ?`, l.Name, l.Holder, l.Fence)
		if err != nil {
			return fmt.Errorf("store: release lease: %w", err)
		}
		return nil
	})
}

// CurrentLease returns the lease row of name (possibly expired), or
// ErrNotFound.
func (s *sqlStore) CurrentLease(ctx context.Context, name string) (Lease, error) {
	l := Lease{Name: name}
	var exp int64
	err := s.r.QueryRowContext(ctx, `SELECT holder, fence, expires_at FROM job_leases WHERE name = ?`, name).Scan(&l.Holder, &l.Fence, &exp)
	if err != nil {
		return Lease{}, notFound(err, "lease "+name)
	}
	l.ExpiresAt = time.Unix(0, exp).UTC()
	return l, nil
}

// StatusChange is one row of status_changes: a certificate's state or hold
// changed (written by trigger, whoever changed it).
type StatusChange struct {
	Seq      int64
	Serial   string
	CertType CertType
	State    State
}

// StatusChangesAfter returns up to limit changes with seq > after, in seq
// order.
func (s *sqlStore) StatusChangesAfter(ctx context.Context, after int64, limit int) ([]StatusChange, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, serial, cert_type, state FROM status_changes WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: status changes: %w", err)
	}
	defer rows.Close()
	var out []StatusChange
	for rows.Next() {
		var c StatusChange
		if err := rows.Scan(&c.Seq, &c.Serial, &c.CertType, &c.State); err != nil {
			return nil, fmt.Errorf("store: status changes: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// LastStatusChange returns the greatest seq of status_changes (0: none).
func (s *sqlStore) LastStatusChange(ctx context.Context) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM status_changes`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: status changes: %w", err)
	}
	return n, nil
}

// PruneStatusChanges deletes the changes recorded before before (the
// job-lease holder keeps the table short; followers read only the last
// seconds' rows, and keep a hole open for 30 s).
func (s *sqlStore) PruneStatusChanges(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *dbTx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM status_changes WHERE at < ?`, before.UnixNano())
		if err != nil {
			return fmt.Errorf("store: prune status changes: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

// ArchivedCRL is one CRL or ARL in the database archive (crl_archive).
type ArchivedCRL struct {
	Series     string
	Number     int64
	ThisUpdate time.Time
	NextUpdate time.Time
	Size       int64
}

// ArchiveCRL stores a signed CRL's DER (TS Art. 17): refused with
// ErrConflict when its number is not greater than the series' newest.
func (s *sqlStore) ArchiveCRL(ctx context.Context, a ArchivedCRL, der []byte) error {
	if a.Series == "" || a.Number <= 0 || len(der) == 0 {
		return errors.New("store: archived CRL needs a series, a number and its DER")
	}
	return s.tx(ctx, func(tx *dbTx) error {
		var newest int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(number), 0) FROM crl_archive WHERE series = ?`, a.Series).Scan(&newest); err != nil {
			return fmt.Errorf("store: CRL archive: %w", err)
		}
		if a.Number <= newest {
			return fmt.Errorf("%w: CRL %s #%d not newer than #%d", ErrConflict, a.Series, a.Number, newest)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO crl_archive (series, number, this_update, next_update, der) VALUES (?, ?, ?, ?, ?)`,
			a.Series, a.Number, a.ThisUpdate.UnixNano(), a.NextUpdate.UnixNano(), der)
		if isUnique(err, "") {
			return fmt.Errorf("%w: CRL %s #%d archived", ErrConflict, a.Series, a.Number)
		}
		if err != nil {
			return fmt.Errorf("store: CRL archive: %w", err)
		}
		return nil
	})
}

// ArchivedCRLs lists series' archived CRLs in ascending number order.
func (s *sqlStore) ArchivedCRLs(ctx context.Context, series string) ([]ArchivedCRL, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT number, this_update, next_update, length(der) FROM crl_archive WHERE series = ? ORDER BY number`, series)
	if err != nil {
		return nil, fmt.Errorf("store: CRL archive: %w", err)
	}
	defer rows.Close()
	var out []ArchivedCRL
	for rows.Next() {
		a := ArchivedCRL{Series: series}
		var tu, nu int64
		if err := rows.Scan(&a.Number, &tu, &nu, &a.Size); err != nil {
			return nil, fmt.Errorf("store: CRL archive: %w", err)
		}
		a.ThisUpdate, a.NextUpdate = time.Unix(0, tu).UTC(), time.Unix(0, nu).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// ArchivedCRLDER returns the DER of CRL number of series, or ErrNotFound.
func (s *sqlStore) ArchivedCRLDER(ctx context.Context, series string, number int64) ([]byte, ArchivedCRL, error) {
	a := ArchivedCRL{Series: series, Number: number}
	var tu, nu int64
	var der []byte
	err := s.r.QueryRowContext(ctx, `SELECT this_update, next_update, der FROM crl_archive WHERE series = ? AND number = ?`, series, number).Scan(&tu, &nu, &der)
	if err != nil {
		return nil, ArchivedCRL{}, notFound(err, fmt.Sprintf("archived CRL %s #%d", series, number))
	}
	a.ThisUpdate, a.NextUpdate, a.Size = time.Unix(0, tu).UTC(), time.Unix(0, nu).UTC(), int64(len(der))
	return der, a, nil
}

// OCSPResponder is one OCSP responder key made in the shared token and its
// delegated certificate (CPS §6.3.2.1).
type OCSPResponder struct {
	Label       string // the key's label in the token
	CA          string
	Generation  int
	Certificate []byte // DER
	NotAfter    time.Time
	CreatedAt   time.Time
}

// AddOCSPResponder records a responder key every replica then uses.
func (s *sqlStore) AddOCSPResponder(ctx context.Context, r OCSPResponder) error {
	if r.Label == "" || r.CA == "" || len(r.Certificate) == 0 {
		return errors.New("store: OCSP responder needs a label, a CA and a certificate")
	}
	return s.tx(ctx, func(tx *dbTx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO ocsp_responders (label, ca, generation, certificate, not_after, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			r.Label, r.CA, r.Generation, r.Certificate, r.NotAfter.UnixNano(), r.CreatedAt.UnixNano())
		if isUnique(err, "") {
			return fmt.Errorf("%w: OCSP responder %s", ErrConflict, r.Label)
		}
		if err != nil {
			return fmt.Errorf("store: OCSP responder: %w", err)
		}
		return nil
	})
}

// OCSPResponders returns the responders of CA generation gen, newest first.
func (s *sqlStore) OCSPResponders(ctx context.Context, ca string, gen int) ([]OCSPResponder, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT label, certificate, not_after, created_at FROM ocsp_responders WHERE ca = ? AND generation = ?
		ORDER BY created_at DESC, label`, ca, gen)
	if err != nil {
		return nil, fmt.Errorf("store: OCSP responders: %w", err)
	}
	defer rows.Close()
	var out []OCSPResponder
	for rows.Next() {
		r := OCSPResponder{CA: ca, Generation: gen}
		var na, cr int64
		if err := rows.Scan(&r.Label, &r.Certificate, &na, &cr); err != nil {
			return nil, fmt.Errorf("store: OCSP responders: %w", err)
		}
		r.NotAfter, r.CreatedAt = time.Unix(0, na).UTC(), time.Unix(0, cr).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}
