package services

import (
	"fmt"
	"slices"
	"sync"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
)

// Polkit is an in-process stand-in for polkitd on a private bus: it owns
// org.freedesktop.PolicyKit1 and answers CheckAuthorization, by default with "authorized".
// fprintd asks it before every Claim, enroll and verify. Safe for concurrent use.
type Polkit struct {
	conn *dbus.Conn

	mu           sync.Mutex
	deny         bool
	actionsAsked []string
}

const (
	polkitName  = "org.freedesktop.PolicyKit1"
	polkitPath  = dbus.ObjectPath("/org/freedesktop/PolicyKit1/Authority")
	polkitIface = "org.freedesktop.PolicyKit1.Authority"
)

// polkitSubject is polkit's Subject, D-Bus type (sa{sv}): a kind such as "system-bus-name" and
// its details.
type polkitSubject struct {
	Kind    string
	Details map[string]dbus.Variant
}

// polkitResult is polkit's AuthorizationResult, D-Bus type (bba{ss}): is_authorized,
// is_challenge, details.
type polkitResult struct {
	IsAuthorized bool
	IsChallenge  bool
	Details      map[string]string
}

// polkitAuthority is the exported object; its methods are the D-Bus methods.
type polkitAuthority struct{ p *Polkit }

// CheckAuthorization implements org.freedesktop.PolicyKit1.Authority.CheckAuthorization:
// in (sa{sv}) subject, s action_id, a{ss} details, u flags, s cancellation_id;
// out (bba{ss}) result.
func (a polkitAuthority) CheckAuthorization(subject polkitSubject, actionID string, details map[string]string, flags uint32, cancellationID string) (polkitResult, *dbus.Error) {
	a.p.mu.Lock()
	defer a.p.mu.Unlock()
	a.p.actionsAsked = append(a.p.actionsAsked, actionID)
	return polkitResult{IsAuthorized: !a.p.deny, Details: map[string]string{}}, nil
}

// CancelCheckAuthorization implements the method of the same name (s cancellation_id).
func (a polkitAuthority) CancelCheckAuthorization(cancellationID string) *dbus.Error { return nil }

// startPolkit connects to the bus at address, exports the authority and takes its name.
func startPolkit(address string) (*Polkit, error) {
	conn, err := dbus.Connect(address)
	if err != nil {
		return nil, fmt.Errorf("services: polkit stand-in: connect %s: %w", address, err)
	}
	p := &Polkit{conn: conn}
	if err := conn.Export(polkitAuthority{p}, polkitPath, polkitIface); err != nil {
		conn.Close()
		return nil, fmt.Errorf("services: polkit stand-in: %w", err)
	}
	// GDBusProxy, which libpolkit uses, reads the properties when it connects.
	if _, err := prop.Export(conn, polkitPath, prop.Map{polkitIface: {
		"BackendName":     {Value: "madoguchi-services"},
		"BackendVersion":  {Value: "0"},
		"BackendFeatures": {Value: uint32(0)},
	}}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("services: polkit stand-in: %w", err)
	}
	reply, err := conn.RequestName(polkitName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		conn.Close()
		return nil, fmt.Errorf("services: polkit stand-in: own %s: reply %v, %v", polkitName, reply, err)
	}
	return p, nil
}

// SetAuthorized makes later checks answer authorized (the default) or not authorized, for tests
// of a refused fingerprint operation.
func (p *Polkit) SetAuthorized(authorized bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deny = !authorized
}

// ActionsAsked returns the polkit action ids checked so far, oldest first.
func (p *Polkit) ActionsAsked() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.actionsAsked)
}

// Close disconnects the stand-in from the bus.
func (p *Polkit) Close() { p.conn.Close() }
