package revocation

import (
	"bytes"
	"fmt"
	"slices"
	"time"
)

// Event is one change-driven revocation signal (異動等失効情報) recorded by a
// municipality: this person's record changed in this way at this time
// (R02 II-3-1(2)). For "move-out", At is the planned move-out date
// (転出予定日, CPS §4.9.3.1(3)).
type Event struct {
	PersonHash []byte // keyed hash of the resident-record code
	Kind       string // an event of the rules table, e.g. "death", "move-out"
	At         time.Time
}

// Decision is what to do to one person's certificate of one type.
type Decision struct {
	PersonHash []byte
	Cert       CertType
	Action     Action // ActionRevoke or ActionContinue
	Reason     Reason // for ActionRevoke
	At         time.Time
	Event      string // the event that caused it
	Path       string // for ActionContinue, e.g. "koseki-fuhyo"
	Basis      string
}

// jst is Japan Standard Time (UTC+9, no daylight saving): day counts of the
// resident-register rules are calendar days in Japan.
var jst = time.FixedZone("JST", 9*60*60)

// deadline returns the instant a period of days counted from the date of at
// has elapsed: Civil Code Art. 140 does not count the first day and Art. 141
// ends the period at the end of its last day, so a move-out on 1 April with a
// 30-day period ends at the end of 1 May; the revocation is due at 00:00 JST
// on 2 May.
func deadline(at time.Time, days int) time.Time {
	y, m, d := at.In(jst).Date()
	return time.Date(y, m, d+days+1, 0, 0, 0, 0, jst)
}

// KnownEvent reports whether kind appears in the change table.
func (r *Rules) KnownEvent(kind string) bool {
	return slices.ContainsFunc(r.Changes, func(c ChangeRule) bool { return c.Event == kind })
}

// Evaluate returns the decisions due by now for one person's events (any
// order; events of other persons are refused). Immediate rules decide at the
// event time; a revoke-after rule (move-out without move-in) decides at its
// deadline if no cancelling event came at or before it and the deadline is
// not after now, so calling Evaluate daily is the scheduled check. Decisions
// come in time order; the caller applies each to the certificate of that type
// valid at that time, and a certificate already revoked stays revoked.
func (r *Rules) Evaluate(events []Event, now time.Time) ([]Decision, error) {
	if len(events) == 0 {
		return nil, nil
	}
	evs := slices.Clone(events)
	slices.SortStableFunc(evs, func(a, b Event) int { return a.At.Compare(b.At) })
	person := evs[0].PersonHash
	for _, e := range evs {
		if !bytes.Equal(e.PersonHash, person) {
			return nil, fmt.Errorf("%w: events of more than one person", ErrUnknownEvent)
		}
		if !r.KnownEvent(e.Kind) {
			return nil, fmt.Errorf("%w: %q", ErrUnknownEvent, e.Kind)
		}
	}
	var out []Decision
	for i, e := range evs {
		if e.At.After(now) {
			break
		}
		for _, c := range r.Changes {
			if c.Event != e.Kind {
				continue
			}
			d := Decision{PersonHash: person, Cert: c.Cert, Event: e.Kind, Basis: c.Basis}
			switch c.Action {
			case ActionRevoke:
				d.Action, d.Reason, d.At = ActionRevoke, c.Reason, e.At
			case ActionContinue:
				d.Action, d.Path, d.At = ActionContinue, c.Path, e.At
			case ActionRevokeAfter:
				due := deadline(e.At, c.Days)
				if due.After(now) || r.cancelled(evs[i+1:], c, due) {
					continue
				}
				d.Action, d.Reason, d.At = ActionRevoke, c.Reason, due
			default: // ActionCancel: consulted by cancelled
				continue
			}
			out = append(out, d)
		}
	}
	slices.SortStableFunc(out, func(a, b Decision) int { return a.At.Compare(b.At) })
	return out, nil
}

// cancelled reports whether an event of later (sorted by time) strictly
// before due cancels rule c; at the deadline itself the period has elapsed.
func (r *Rules) cancelled(later []Event, c ChangeRule, due time.Time) bool {
	for _, e := range later {
		if !e.At.Before(due) {
			return false
		}
		if e.Kind != c.Unless {
			continue
		}
		for _, cr := range r.Changes {
			if cr.Event == e.Kind && cr.Action == ActionCancel && cr.Cancels == c.Event && cr.Cert == c.Cert {
				return true
			}
		}
	}
	return false
}

// NextCheck returns when Evaluate may next produce a new decision for these
// events after now (a pending revoke-after deadline), or false if none is
// pending. The scheduler uses it to wake up.
func (r *Rules) NextCheck(events []Event, now time.Time) (time.Time, bool) {
	evs := slices.Clone(events)
	slices.SortStableFunc(evs, func(a, b Event) int { return a.At.Compare(b.At) })
	var next time.Time
	for i, e := range evs {
		for _, c := range r.Changes {
			if c.Event != e.Kind || c.Action != ActionRevokeAfter {
				continue
			}
			due := deadline(e.At, c.Days)
			if !due.After(now) || r.cancelled(evs[i+1:], c, due) {
				continue
			}
			if next.IsZero() || due.Before(next) {
				next = due
			}
		}
	}
	return next, !next.IsZero()
}
