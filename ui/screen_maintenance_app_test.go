package ui

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"fyne.io/fyne/v2/test"

	"madoguchi/app"
	"madoguchi/app/issue"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// unknownCardCA is a CA that refuses every card as one it delivered no certificate to, in
// raclient's error shape (the CA's maintenance itself is tested end to end in app and ca-server).
type unknownCardCA struct {
	app.CA   // the counter procedures besides card maintenance: not reached here
	mu       sync.Mutex
	channels int
}

var _ app.CardMaintenanceCA = (*unknownCardCA)(nil)

func (c *unknownCardCA) OpenChannel(context.Context, string) (wire.ChannelResponse, error) {
	c.mu.Lock()
	c.channels++
	c.mu.Unlock()
	return wire.ChannelResponse{}, fmt.Errorf("%w: %w", raclient.ErrCardUnknown, &raclient.Error{Status: 409, Code: wire.CodeCardUnknown, Message: "card unknown"})
}

func (c *unknownCardCA) PrepareMaintenance(context.Context, string, wire.MaintenanceRequest) (wire.MaintenanceResponse, error) {
	return wire.MaintenanceResponse{}, fmt.Errorf("ui test: not reached")
}

func (c *unknownCardCA) ConfirmMaintenance(context.Context, string, string, wire.ConfirmRequest) (wire.MaintenanceStatus, error) {
	return wire.MaintenanceStatus{}, fmt.Errorf("ui test: not reached")
}

// TestMaintenanceWithAppDomain runs both card-maintenance screens against the real counter
// domain (SQLite, workflow, audit chain) through AppBackend, the CA client and card of the terminal: the
// case is opened, identified and approved by the domain, and the domain's refusals reach the
// clerk as the specific message: a card the CA does not know, and no CA link at all.
func TestMaintenanceWithAppDomain(t *testing.T) {
	f := newAppDeskFixture(t)
	ca := &unknownCardCA{}
	opened := 0
	// The terminal's CA client and the card in its reader.
	f.caNow = ca
	f.cards = func(context.Context) (issue.Card, func(), error) {
		opened++
		return serialOnlyCard{}, func() {}, nil
	}
	s, _ := newTestShell(t, AppBackend{Terminal: f.term}, Screens(), false)
	f.fp.Present("finger-R001")
	loginAs(t, s, "R001")
	if s.Session() == nil {
		t.Fatalf("log-in failed: %q", s.login.message.Text)
	}

	if err := s.Show(PINResetScreenID); err != nil {
		t.Fatal(err)
	}
	v := s.body.Objects[0].(*maintenanceView)
	openAndIdentify(t, v.frame, "90000000011")
	v.which.SetSelected(tr("maintenance.pin.signature"))
	test.Tap(v.frame.proceed)
	if want := tr("maintenance.error.card_unknown"); v.frame.message.Text != want {
		t.Errorf("unknown card: message %q, want %q", v.frame.message.Text, want)
	}
	if ca.channels != 1 || opened != 1 {
		t.Errorf("CA channels %d, cards opened %d", ca.channels, opened)
	}
	if v.frame.c.State != "approved" {
		t.Errorf("case %s after the refusal", v.frame.c.State)
	}
	if !f.audited(t, "R001", "case.approve", "ok") || !f.audited(t, "R001", "card.pin_reset", "refused") {
		t.Error("the decision and the refused reset are not in the audit trail")
	}

	// Without a CA link the domain refuses the destruction after its own checks.
	f.caNow = nil
	if err := s.Show(KeyDestructionScreenID); err != nil {
		t.Fatal(err)
	}
	k := s.body.Objects[0].(*maintenanceView)
	openAndIdentify(t, k.frame, "90000000011")
	test.Tap(k.confirm)
	test.Tap(k.frame.proceed)
	if want := tr("procedure.error.ca_unavailable"); k.frame.message.Text != want {
		t.Errorf("no CA: message %q, want %q", k.frame.message.Text, want)
	}
}
