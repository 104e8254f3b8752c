package ui

import (
	"context"

	"madoguchi/app/auth"
	"madoguchi/app/operator"
)

var _ OperatorAdmin = (*appSession)(nil)

// CreateOperator implements OperatorAdmin.
func (a *appSession) CreateOperator(ctx context.Context, id, name string) error {
	return a.s.CreateOperator(ctx, id, name)
}

// SetOperatorActive implements OperatorAdmin.
func (a *appSession) SetOperatorActive(ctx context.Context, id string, active bool) error {
	return a.s.SetOperatorActive(ctx, id, active)
}

// Grant implements OperatorAdmin.
func (a *appSession) Grant(ctx context.Context, id string, p Permission) error {
	return a.s.Grant(ctx, id, operator.Permission(p))
}

// Withdraw implements OperatorAdmin.
func (a *appSession) Withdraw(ctx context.Context, id string, p Permission) error {
	return a.s.Withdraw(ctx, id, operator.Permission(p))
}

// EnrollFinger implements OperatorAdmin.
func (a *appSession) EnrollFinger(ctx context.Context, id, finger string, progress func(EnrollProgress)) error {
	return a.s.EnrollFinger(ctx, id, finger, func(p auth.EnrollProgress) {
		progress(EnrollProgress{Stage: p.Stage, Total: p.Total, Retry: p.Retry})
	})
}

// GrantPasswordExemption implements OperatorAdmin.
func (a *appSession) GrantPasswordExemption(ctx context.Context, id, reason, password string) error {
	return a.s.GrantPasswordExemption(ctx, id, reason, password)
}

// WithdrawPasswordExemption implements OperatorAdmin.
func (a *appSession) WithdrawPasswordExemption(ctx context.Context, id string) error {
	return a.s.WithdrawPasswordExemption(ctx, id)
}
