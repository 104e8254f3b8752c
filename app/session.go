package app

import (
	"context"
	"database/sql"
	"io"
	"sync"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/auth"
	"madoguchi/app/operator"
)

// Session is one logged-in operator. Safe for concurrent use.
type Session struct {
	t          *Terminal
	operatorID string

	mu         sync.Mutex
	lastActive time.Time
	ended      bool
}

// OperatorID returns who is logged in.
func (s *Session) OperatorID() string { return s.operatorID }

// Operator returns the current profile of the logged-in operator (re-read from the database).
func (s *Session) Operator(ctx context.Context) (OperatorInfo, error) {
	return operator.Get(ctx, s.t.db, s.operatorID)
}

// Allowed reports whether the operator currently holds p. It does not touch the idle timer.
func (s *Session) Allowed(ctx context.Context, p operator.Permission) bool {
	o, err := operator.Get(ctx, s.t.db, s.operatorID)
	return err == nil && o.Active && o.Has(p)
}

// Expired reports whether the session has ended (logged out or idle too long), so the UI can
// return to the log-in screen without waiting for the next call.
func (s *Session) Expired() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended || s.t.now().Sub(s.lastActive) > s.t.cfg.IdleTimeout
}

// touch checks the session is alive and restarts the idle timer. An idle session is ended and
// the automatic log-out is audited.
func (s *Session) touch(ctx context.Context) error {
	now := s.t.now()
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return apperr.New(apperr.NotLoggedIn, "app: session has ended")
	}
	if idle := now.Sub(s.lastActive); idle > s.t.cfg.IdleTimeout {
		s.ended = true
		s.mu.Unlock()
		s.t.record(ctx, audit.Entry{At: now, Operator: s.operatorID, Action: "logout.idle", Target: s.operatorID, Result: audit.ResultOK,
			Detail: map[string]string{"idle": idle.Truncate(time.Second).String()}})
		s.t.witnessInBackground(s.operatorID)
		return apperr.New(apperr.SessionExpired, "app: logged out after %s without activity", s.t.cfg.IdleTimeout)
	}
	s.lastActive = now
	s.mu.Unlock()
	return nil
}

// Logout ends the session.
func (s *Session) Logout(ctx context.Context) error {
	s.mu.Lock()
	was := s.ended
	s.ended = true
	s.mu.Unlock()
	if was {
		return apperr.New(apperr.NotLoggedIn, "app: session has ended")
	}
	err := s.t.record(ctx, audit.Entry{Operator: s.operatorID, Action: "logout", Target: s.operatorID, Result: audit.ResultOK})
	s.t.witnessInBackground(s.operatorID) // witness.go: the CA witnesses the head at every log-out
	return err
}

// call is the gate every action goes through: session alive, operator active and holding perm
// (none when perm == ""), then fn and its audit record in one transaction. On refusal the
// transaction is rolled back and the refusal is audited on its own. fn may add to detail
// (never secrets).
func (s *Session) call(ctx context.Context, action, target string, perm operator.Permission, detail map[string]string,
	fn func(tx *sql.Tx, op operator.Operator) error) error {
	if detail == nil {
		detail = map[string]string{}
	}
	err := s.touch(ctx)
	if err == nil {
		now := s.t.now()
		err = s.t.db.Tx(ctx, func(tx *sql.Tx) error {
			op, err := s.authorize(ctx, tx, action, perm)
			if err != nil {
				return err
			}
			if fn != nil {
				if err := fn(tx, op); err != nil {
					return err
				}
			}
			return audit.Append(ctx, tx, audit.Entry{At: now, Operator: s.operatorID, Action: action, Target: target, Result: audit.ResultOK, Detail: detail})
		})
	}
	if err != nil {
		s.t.record(ctx, audit.Entry{Operator: s.operatorID, Action: action, Target: target, Result: resultOf(err), Detail: refusalDetail(detail, err)})
	}
	return err
}

func (s *Session) authorize(ctx context.Context, q operator.Querier, action string, perm operator.Permission) (operator.Operator, error) {
	op, err := operator.Get(ctx, q, s.operatorID)
	if err != nil {
		return op, err
	}
	if !op.Active {
		s.mu.Lock()
		s.ended = true
		s.mu.Unlock()
		return op, apperr.New(apperr.OperatorDisabled, "app: operator %q is disabled", s.operatorID)
	}
	if perm != "" && !op.Has(perm) {
		return op, apperr.New(apperr.PermissionDenied, "app: %s needs the %s permission", action, perm)
	}
	return op, nil
}

// precheck runs the gate without a change (for actions with a long wait outside the
// transaction, such as enrolment); refusals are audited.
func (s *Session) precheck(ctx context.Context, action, target string, perm operator.Permission, detail map[string]string) error {
	err := s.touch(ctx)
	if err == nil {
		_, err = s.authorize(ctx, s.t.db, action, perm)
	}
	if err != nil {
		s.t.record(ctx, audit.Entry{Operator: s.operatorID, Action: action, Target: target, Result: resultOf(err), Detail: refusalDetail(detail, err)})
	}
	return err
}

// ---- Supervisor functions (TS Art. 3(3)(4), CPS §5.1.2.2) ----

// ListOperators returns all operators (Supervisor).
func (s *Session) ListOperators(ctx context.Context) ([]OperatorInfo, error) {
	var out []OperatorInfo
	err := s.call(ctx, "operator.list", "", operator.Supervisor, nil, func(tx *sql.Tx, _ operator.Operator) error {
		var err error
		out, err = operator.List(ctx, tx)
		return err
	})
	return out, err
}

// CreateOperator adds an operator without permissions (Supervisor).
func (s *Session) CreateOperator(ctx context.Context, id, name string) error {
	return s.call(ctx, "operator.create", id, operator.Supervisor, map[string]string{"name": name}, func(tx *sql.Tx, _ operator.Operator) error {
		return operator.Create(ctx, tx, s.operatorID, s.t.now(), id, name)
	})
}

// SetOperatorActive enables or disables an operator (Supervisor). Disabling the last active
// supervisor is refused (kind LastSupervisor).
func (s *Session) SetOperatorActive(ctx context.Context, id string, active bool) error {
	action := "operator.disable"
	if active {
		action = "operator.enable"
	}
	return s.call(ctx, action, id, operator.Supervisor, nil, func(tx *sql.Tx, _ operator.Operator) error {
		return operator.SetActive(ctx, tx, id, active)
	})
}

// Grant gives a permission (Supervisor).
func (s *Session) Grant(ctx context.Context, id string, p operator.Permission) error {
	return s.call(ctx, "operator.grant", id, operator.Supervisor, map[string]string{"permission": string(p)}, func(tx *sql.Tx, _ operator.Operator) error {
		return operator.Grant(ctx, tx, s.operatorID, s.t.now(), id, p)
	})
}

// Withdraw takes a permission away (Supervisor). Withdrawing Supervisor from the last active
// supervisor is refused (kind LastSupervisor).
func (s *Session) Withdraw(ctx context.Context, id string, p operator.Permission) error {
	return s.call(ctx, "operator.withdraw", id, operator.Supervisor, map[string]string{"permission": string(p)}, func(tx *sql.Tx, _ operator.Operator) error {
		return operator.Withdraw(ctx, tx, id, p)
	})
}

// Unlock lifts a lockout (Supervisor).
func (s *Session) Unlock(ctx context.Context, id string) error {
	return s.call(ctx, "operator.unlock", id, operator.Supervisor, nil, func(tx *sql.Tx, _ operator.Operator) error {
		return operator.Unlock(ctx, tx, id)
	})
}

// EnrollFinger enrols finger for operator id on the reader (Supervisor); the operator presses
// the finger while it runs and progress reports each stage.
func (s *Session) EnrollFinger(ctx context.Context, id, finger string, progress func(auth.EnrollProgress)) error {
	const action = "operator.enroll_finger"
	detail := map[string]string{"finger": finger}
	if err := s.precheck(ctx, action, id, operator.Supervisor, detail); err != nil {
		return err
	}
	err := func() error {
		if !auth.ValidFinger(finger) {
			return apperr.New(apperr.InvalidInput, "app: unknown finger name %q", finger)
		}
		if _, err := operator.Get(ctx, s.t.db, id); err != nil {
			return err
		}
		fctx, cancel := context.WithTimeout(ctx, s.t.cfg.FingerTimeout)
		defer cancel()
		return s.t.cfg.Fingerprint.Enroll(fctx, id, finger, progress)
	}()
	if err != nil {
		s.t.record(ctx, audit.Entry{Operator: s.operatorID, Action: action, Target: id, Result: resultOf(err), Detail: refusalDetail(detail, err)})
		return err
	}
	return s.call(ctx, action, id, operator.Supervisor, detail, func(tx *sql.Tx, _ operator.Operator) error {
		return operator.SetFinger(ctx, tx, id, finger)
	})
}

// GrantPasswordExemption lets operator id log in with ID + password because biometrics is
// impracticable for them (TS Art. 3(3), CPS §5.1.2.2). The reason is required and recorded;
// the password is hashed with argon2id and never recorded.
func (s *Session) GrantPasswordExemption(ctx context.Context, id, reason, password string) error {
	detail := map[string]string{"reason": reason}
	var hash, salt []byte
	return s.call(ctx, "operator.grant_exemption", id, operator.Supervisor, detail, func(tx *sql.Tx, _ operator.Operator) error {
		if reason == "" {
			return apperr.New(apperr.ReasonRequired, "app: an exemption from biometric log-in needs a recorded reason")
		}
		if _, err := operator.Get(ctx, tx, id); err != nil {
			return err
		}
		var err error
		if hash, salt, err = auth.HashPassword(password, s.t.cfg.Argon2, s.t.cfg.Random); err != nil {
			return err
		}
		return operator.SetExemption(ctx, tx, s.operatorID, id, reason, hash, salt)
	})
}

// WithdrawPasswordExemption removes the exemption and the password verifier (Supervisor).
func (s *Session) WithdrawPasswordExemption(ctx context.Context, id string) error {
	return s.call(ctx, "operator.withdraw_exemption", id, operator.Supervisor, nil, func(tx *sql.Tx, _ operator.Operator) error {
		return operator.ClearExemption(ctx, tx, id)
	})
}

// ---- Audit functions (TS Art. 20(2)) ----

// VerifyAudit is in witness.go: the chain is checked against the CA witness.

// History returns the records of one chosen operator on their own (Audit; TS Art. 20(2)(ii)).
func (s *Session) History(ctx context.Context, operatorID string) ([]audit.Record, error) {
	var out []audit.Record
	err := s.call(ctx, "audit.history", operatorID, operator.Audit, nil, func(tx *sql.Tx, _ operator.Operator) error {
		var err error
		out, err = audit.List(ctx, tx, audit.Filter{Operator: operatorID})
		return err
	})
	return out, err
}

// ExportAudit writes the records matching f to w for the auditor (Audit). The export itself is
// audited with the filter used.
func (s *Session) ExportAudit(ctx context.Context, f audit.Filter, format audit.Format, w io.Writer) error {
	detail := map[string]string{"format": string(format), "operator": f.Operator}
	return s.call(ctx, "audit.export", f.Operator, operator.Audit, detail, func(tx *sql.Tx, _ operator.Operator) error {
		return audit.Export(ctx, tx, f, format, w)
	})
}
