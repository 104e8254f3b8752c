package ui

import (
	"context"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/auth"
	"madoguchi/app/operator"
	"madoguchi/app/pinrule"
	"madoguchi/app/resident"
)

// AppBackend adapts the counter domain facade (*app.Terminal) to Backend: the terminal's main
// package wires it; screen tests use an in-process fake instead. The procedures take their CA
// client, card and document printer from the terminal (app.Config), not from the screens.
// Safe for concurrent use.
type AppBackend struct {
	Terminal *app.Terminal
}

var _ Backend = AppBackend{}

// LookupOperator implements Backend.
func (b AppBackend) LookupOperator(ctx context.Context, id string) (Operator, error) {
	o, err := b.Terminal.LookupOperator(ctx, id)
	if err != nil {
		return Operator{}, err
	}
	return operatorOf(o), nil
}

// LoginFingerprint implements Backend.
func (b AppBackend) LoginFingerprint(ctx context.Context, id string, progress func(ScanEvent)) (Session, error) {
	s, err := b.Terminal.LoginFingerprint(ctx, id, func(ev auth.ScanEvent) {
		switch ev {
		case auth.ScanWaiting:
			progress(ScanWaiting)
		case auth.ScanRetry:
			progress(ScanRetry)
		}
	})
	if err != nil {
		return nil, err
	}
	return b.session(ctx, s)
}

// LoginPassword implements Backend.
func (b AppBackend) LoginPassword(ctx context.Context, id, password string) (Session, error) {
	s, err := b.Terminal.LoginPassword(ctx, id, password)
	if err != nil {
		return nil, err
	}
	return b.session(ctx, s)
}

func operatorOf(o app.OperatorInfo) Operator {
	return Operator{ID: o.ID, Name: o.Name, PasswordExempt: o.PasswordExempt}
}

// appSession adapts *app.Session. The operator's profile is read once at log-in for the header;
// permissions are asked of the domain each time, so a withdrawn permission hides its screens at
// the next menu (TS Art. 3(4)).
//
// It embeds the domain session: where a screen's interface names a method with app's own
// signature (Logout, Expired, RecordPrinted, Unlock, CreateOperator, RecordIdentity, ...), the
// screen calls app.Session directly; the methods below convert only where the types differ.
type appSession struct {
	*app.Session
	t  *app.Terminal // the document printer and the municipality of the documents
	op Operator
}

var _ Session = (*appSession)(nil)

func newAppSession(ctx context.Context, s *app.Session) (*appSession, error) {
	o, err := s.Operator(ctx)
	if err != nil {
		s.Logout(context.WithoutCancel(ctx))
		return nil, apperr.Wrap(apperr.KindOf(err), err, "ui: read logged-in operator")
	}
	return &appSession{Session: s, op: operatorOf(o)}, nil
}

// session wraps a fresh domain session with the backend's links.
func (b AppBackend) session(ctx context.Context, s *app.Session) (Session, error) {
	as, err := newAppSession(ctx, s)
	if err != nil {
		return nil, err
	}
	as.t = b.Terminal
	return as, nil
}

func (a *appSession) Operator() Operator { return a.op }

func (a *appSession) Allowed(p Permission) bool {
	if p == PermissionNone {
		return !a.Expired()
	}
	return a.Session.Allowed(context.Background(), operator.Permission(p))
}

// App returns the domain session (tests reach the domain through it).
func (a *appSession) App() *app.Session { return a.Session }

var (
	_ ResidentRegister  = (*appSession)(nil)
	_ PINJudge          = (*appSession)(nil)
	_ OperatorDirectory = (*appSession)(nil)
)

// ListOperators implements OperatorDirectory.
func (a *appSession) ListOperators(ctx context.Context) ([]OperatorSummary, error) {
	ops, err := a.Session.ListOperators(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]OperatorSummary, 0, len(ops))
	for _, o := range ops {
		perms := make([]Permission, 0, len(o.Permissions))
		for _, p := range o.Permissions {
			perms = append(perms, Permission(p))
		}
		out = append(out, OperatorSummary{ID: o.ID, Name: o.Name, Permissions: perms, Active: o.Active,
			Locked: o.Locked, FingerEnrolled: o.Finger != "", PasswordExempt: o.PasswordExempt})
	}
	return out, nil
}

// CheckApplicantPIN implements PINJudge. The PIN screen has already checked that both entries
// are equal, so the domain gets the same value as PIN and confirmation.
func (a *appSession) CheckApplicantPIN(ctx context.Context, caseID int64, kind PINKind, pin []byte) error {
	k := pinrule.Signature
	if kind == PINUserAuth {
		k = pinrule.UserAuth
	}
	p := pinrule.New(string(pin))
	return a.Session.CheckApplicantPIN(ctx, caseID, k, p, p)
}

// SearchResidents implements ResidentRegister.
func (a *appSession) SearchResidents(ctx context.Context, q ResidentQuery) ([]ResidentSummary, error) {
	rs, err := a.Session.SearchResidents(ctx, resident.Query{NameKana: q.NameKana, Name: q.Name, BirthDate: q.BirthDate, RecordCode: q.RecordCode})
	if err != nil {
		return nil, err
	}
	out := make([]ResidentSummary, 0, len(rs))
	for _, r := range rs {
		out = append(out, ResidentSummary{RecordCode: r.RecordCode, Name: r.Name, NameKana: r.NameKana, BirthDate: r.BirthDate, Status: string(r.Status)})
	}
	return out, nil
}
