package ui

import (
	"context"

	"madoguchi/app/auth"
	"madoguchi/app/operator"
)

var _ OperatorAdmin = (*appSession)(nil)

// Grant implements OperatorAdmin.
func (a *appSession) Grant(ctx context.Context, id string, p Permission) error {
	return a.Session.Grant(ctx, id, operator.Permission(p))
}

// Withdraw implements OperatorAdmin.
func (a *appSession) Withdraw(ctx context.Context, id string, p Permission) error {
	return a.Session.Withdraw(ctx, id, operator.Permission(p))
}

// EnrollFinger implements OperatorAdmin.
func (a *appSession) EnrollFinger(ctx context.Context, id, finger string, progress func(EnrollProgress)) error {
	return a.Session.EnrollFinger(ctx, id, finger, func(p auth.EnrollProgress) {
		progress(EnrollProgress{Stage: p.Stage, Total: p.Total, Retry: p.Retry})
	})
}
