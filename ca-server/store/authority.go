package store

import (
	"context"
	"crypto/hmac"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Authority per municipality (issue 13, threat 3): a terminal acts only for
// the residents of its own municipality. The CA holds no resident register;
// what it knows of where a person lives comes from two facts it recorded
// itself, both tied to an authenticated terminal and so to its municipality:
//
//   - a certificate delivered through a municipality's terminal: a person
//     applies at the municipality of residence (CPS §4.1, §3.2);
//   - a move-in report a municipality made and the CA accepted: the 転入届 is
//     recorded by the new municipality, which reports it as a resident
//     change (R02 II-3-1(2); DOMAIN §5). The request carries no municipality:
//     the reporting terminal's own municipality is the new one.
//
// The later of the two is the residence. A move-in reported by another
// municipality is accepted only while the person is between municipalities:
// the residence municipality reported a move-out after the residence began
// (転出届 before 転入届). Every other report for a person resident elsewhere is
// refused, so a copied terminal key can neither report changes for, nor move
// in, a person settled in another municipality.

// Errors of the authority checks (errors.Is).
var (
	// ErrOtherMunicipality: the holder is resident in another municipality
	// (or, for a resident change, the person is settled elsewhere).
	ErrOtherMunicipality = errors.New("store: the person is not a resident of the requesting municipality")
	// ErrPersonMismatch: the person hash of the request is not the
	// certificate holder's.
	ErrPersonMismatch = errors.New("store: the resident-record code does not match the certificate holder")
)

// Events of the revocation rules (ca-server/revocation/rules.json) the
// residence rule reads.
const (
	EventMoveIn  = "move-in"
	EventMoveOut = "move-out"
)

// Residence is where the CA knows a person to live.
type Residence struct {
	Municipality string    // "" when the CA knows none (no valid certificate, no move-in)
	Since        time.Time // when that became known
	Basis        string    // "issued" (a valid certificate delivered there) or "moved-in"
	// MovedOut: the residence municipality reported a move-out at or after
	// Since, so another municipality's move-in may follow.
	MovedOut bool
}

// residenceOf reads a person's residence. Only valid (delivered or held)
// certificates count as "issued": a revoked certificate protects nothing,
// and the one-per-person index serves this look-up.
func residenceOf(ctx context.Context, q queryer, person []byte) (Residence, error) {
	var r Residence
	var muni string
	var at int64
	err := q.QueryRowContext(ctx, `SELECT t.municipality, i.delivered_at FROM issuances i JOIN terminals t ON t.id = i.terminal_id
		WHERE i.person_hash = ? AND i.state IN ('delivered', 'held') ORDER BY i.delivered_at DESC LIMIT 1`, person).Scan(&muni, &at)
	switch {
	case err == nil:
		r = Residence{Municipality: muni, Since: time.Unix(0, at).UTC(), Basis: "issued"}
	case !errors.Is(err, sql.ErrNoRows):
		return Residence{}, fmt.Errorf("store: residence by certificate: %w", err)
	}
	err = q.QueryRowContext(ctx, `SELECT t.municipality, c.received_at FROM resident_changes c JOIN terminals t ON t.id = c.terminal
		WHERE c.person_hash = ? AND c.event = ? ORDER BY c.received_at DESC, c.id DESC LIMIT 1`, person, EventMoveIn).Scan(&muni, &at)
	switch {
	case err == nil:
		if r.Municipality == "" || at > r.Since.UnixNano() {
			r = Residence{Municipality: muni, Since: time.Unix(0, at).UTC(), Basis: "moved-in"}
		}
	case !errors.Is(err, sql.ErrNoRows):
		return Residence{}, fmt.Errorf("store: residence by move-in: %w", err)
	}
	if r.Municipality == "" {
		return r, nil
	}
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM resident_changes c JOIN terminals t ON t.id = c.terminal
		WHERE c.person_hash = ? AND c.event = ? AND t.municipality = ? AND c.received_at >= ?`,
		person, EventMoveOut, r.Municipality, r.Since.UnixNano()).Scan(&n); err != nil {
		return Residence{}, fmt.Errorf("store: move-out: %w", err)
	}
	r.MovedOut = n > 0
	return r, nil
}

// Residence returns where the CA knows the person to live.
func (s *sqlStore) Residence(ctx context.Context, person []byte) (Residence, error) {
	return residenceOf(ctx, s.r, person)
}

// holderMunicipality is the municipality that acts for a certificate's
// holder: the holder's residence, or, when the CA knows none (the
// certificate is not valid and no move-in was reported), the municipality
// of the terminal that issued it.
func holderMunicipality(ctx context.Context, q queryer, c Certificate) (string, error) {
	r, err := residenceOf(ctx, q, c.PersonHash)
	if err != nil || r.Municipality != "" {
		return r.Municipality, err
	}
	var muni string
	if err := q.QueryRowContext(ctx, `SELECT municipality FROM terminals WHERE id = ?`, c.TerminalID).Scan(&muni); err != nil {
		return "", notFound(err, fmt.Sprintf("terminal %q", c.TerminalID))
	}
	return muni, nil
}

// HolderMunicipality returns the municipality that acts for the holder of
// c (see holderMunicipality).
func (s *sqlStore) HolderMunicipality(ctx context.Context, c Certificate) (string, error) {
	return holderMunicipality(ctx, s.r, c)
}

// checkAuthority applies the request's authority to the certificate, inside
// the transaction that changes it (so a concurrent move-in cannot slip in
// between the service's check and the change). Local requests (no
// municipality, no person) are not checked.
func checkAuthority(ctx context.Context, q queryer, r StatusRequest, cur Certificate) error {
	if r.Municipality != "" {
		muni, err := holderMunicipality(ctx, q, cur)
		if err != nil {
			return err
		}
		if muni != r.Municipality {
			return fmt.Errorf("%w: certificate %s", ErrOtherMunicipality, r.Serial)
		}
	}
	if r.PersonHash != nil && !hmac.Equal(r.PersonHash, cur.PersonHash) {
		return fmt.Errorf("%w: certificate %s", ErrPersonMismatch, r.Serial)
	}
	return nil
}

// checkChangeAuthority decides whether municipality may report ch: the
// person is its resident, or unknown to the CA, or a move-in follows the
// residence municipality's move-out.
func checkChangeAuthority(ctx context.Context, q queryer, ch ResidentChange) error {
	r, err := residenceOf(ctx, q, ch.PersonHash)
	if err != nil {
		return err
	}
	switch {
	case r.Municipality == "" || r.Municipality == ch.Municipality:
		return nil
	case ch.Event == EventMoveIn && r.MovedOut:
		return nil
	}
	return fmt.Errorf("%w: %s reported by another municipality", ErrOtherMunicipality, ch.Event)
}
