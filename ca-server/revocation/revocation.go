// Package revocation holds the JPKI revocation rules as data: the reason
// codes and their meanings, which revocation requests are allowed through
// which channel, change-driven revocation (異動等失効情報) and the hold rules,
// all read from an embedded JSON table (rules.json) so that a change of law
// is a change of data (DOMAIN §5).
//
// Scope: pure decisions. It does not store, sign or notify: the caller reads
// a person's events and certificate states from the store, asks this package
// what to do, and applies the answer.
//
// Concurrency: a *Rules is immutable after Load and safe for concurrent use.
package revocation

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Errors. Callers branch on them with errors.Is.
var (
	ErrRules          = errors.New("revocation: invalid rules table")
	ErrUnknownRequest = errors.New("revocation: unknown revocation request kind")
	ErrChannel        = errors.New("revocation: request not accepted through this channel")
	ErrUnknownEvent   = errors.New("revocation: unknown change event")
	ErrFinal          = errors.New("revocation: certificate is revoked; revocation is never undone")
	ErrTransition     = errors.New("revocation: transition not allowed")
	ErrExpired        = errors.New("revocation: certificate has expired")
)

//go:embed rules.json
var embedded []byte

// Reason is a CRLReason code (RFC 5280 §5.3.1) with its JPKI meaning.
type Reason int

// The codes of CPS §4.9.9.
const (
	Unspecified          Reason = 0
	KeyCompromise        Reason = 1
	CACompromise         Reason = 2
	AffiliationChanged   Reason = 3
	Superseded           Reason = 4
	CessationOfOperation Reason = 5
	CertificateHold      Reason = 6
)

// CertType is the kind of JPKI certificate; the values are the store's.
type CertType string

const (
	CertSign CertType = "sign" // 署名用電子証明書
	CertAuth CertType = "auth" // 利用者証明用電子証明書
)

// Channel is how a request reaches the CA.
type Channel string

const (
	ChannelCounter      Channel = "counter"       // municipal counter, in writing, identity checked
	ChannelOnlineSigned Channel = "online-signed" // online, signed with the signature certificate
	ChannelPhone        Channel = "phone"         // J-LIS call centre (lost card)
	ChannelSystem       Channel = "system"        // the CA itself
)

// ReasonInfo is one row of the CPS §4.9.9 table.
type ReasonInfo struct {
	Code  Reason `json:"code"`
	Name  string `json:"name"` // RFC 5280 name
	Ja    string `json:"ja"`
	En    string `json:"en"`
	Basis string `json:"basis"`
}

// RequestRule says which reason a kind of request revokes with and through
// which channels it may come.
type RequestRule struct {
	Kind     string    `json:"kind"`
	Reason   Reason    `json:"reason"`
	Channels []Channel `json:"channels"`
	// WrittenAck: the holder receives a written acknowledgement after the
	// CA has revoked (CPS §4.9.3.1).
	WrittenAck bool   `json:"written_acknowledgement"`
	Basis      string `json:"basis"`
}

// CounterOnly reports whether the request is accepted only at the counter.
func (r RequestRule) CounterOnly() bool {
	return len(r.Channels) == 1 && r.Channels[0] == ChannelCounter
}

// Action of a change rule.
type Action string

const (
	ActionRevoke      Action = "revoke"       // revoke at the event time
	ActionRevokeAfter Action = "revoke-after" // revoke Days later unless the Unless event came first
	ActionCancel      Action = "cancel"       // cancels a pending revoke-after of event Cancels
	ActionContinue    Action = "continue"     // the certificate continues (on Path)
)

// ChangeRule is one row of the change-driven revocation table.
type ChangeRule struct {
	Event   string   `json:"event"`
	Cert    CertType `json:"cert"`
	Action  Action   `json:"action"`
	Reason  Reason   `json:"reason"`
	Days    int      `json:"days"`
	Unless  string   `json:"unless"`
	Cancels string   `json:"cancels"`
	Path    string   `json:"path"`
	Basis   string   `json:"basis"`
}

// HoldRule describes certificate hold.
type HoldRule struct {
	SetChannels         []Channel `json:"set_channels"`
	ReleaseChannels     []Channel `json:"release_channels"`
	Reason              Reason    `json:"reason"`
	EndsWithCertificate bool      `json:"ends_with_certificate"`
	Basis               string    `json:"basis"`
}

// Status of a certificate as far as revocation is concerned.
type Status string

const (
	StatusGood    Status = "good"
	StatusHeld    Status = "held"
	StatusRevoked Status = "revoked"
)

// StatusAction changes a Status.
type StatusAction string

const (
	Hold    StatusAction = "hold"
	Release StatusAction = "release"
	Revoke  StatusAction = "revoke"
)

type transition struct {
	From   Status       `json:"from"`
	Action StatusAction `json:"action"`
	To     Status       `json:"to"`
}

// Rules is a loaded, checked rules table.
type Rules struct {
	Version     string        `json:"version"`
	Reasons     []ReasonInfo  `json:"reasons"`
	Requests    []RequestRule `json:"requests"`
	Changes     []ChangeRule  `json:"changes"`
	Hold        HoldRule      `json:"hold"`
	Transitions []transition  `json:"transitions"`
}

// Default returns the embedded rules. It panics only if the embedded table
// is invalid, which TestEmbeddedRulesLoad rules out.
func Default() *Rules {
	r, err := Load(embedded)
	if err != nil {
		panic(err)
	}
	return r
}

// Load parses and checks a rules table (for instance an override file).
// Unknown fields, reason codes outside 0–6, unknown channels, cert types or
// actions, a revoke-after without days, and a reason-code table that is not
// exactly 0–6 are refused with ErrRules.
func Load(data []byte) (*Rules, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r Rules
	var raw struct {
		Rules
		Sources string `json:"sources"`
	}
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRules, err)
	}
	r = raw.Rules
	if err := r.check(); err != nil {
		return nil, err
	}
	return &r, nil
}

func validReason(c Reason) bool { return c >= Unspecified && c <= CertificateHold }

func validChannel(c Channel) bool {
	switch c {
	case ChannelCounter, ChannelOnlineSigned, ChannelPhone, ChannelSystem:
		return true
	}
	return false
}

func (r *Rules) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrRules}, args...)...)
	}
	if len(r.Reasons) != 7 {
		return bad("%d reason codes, want 0–6 (CPS §4.9.9)", len(r.Reasons))
	}
	for i, ri := range r.Reasons {
		if ri.Code != Reason(i) || ri.Name == "" || ri.Ja == "" {
			return bad("reason row %d", i)
		}
	}
	seen := map[string]bool{}
	for _, q := range r.Requests {
		if q.Kind == "" || seen[q.Kind] || !validReason(q.Reason) || q.Reason == CertificateHold || len(q.Channels) == 0 {
			return bad("request %q", q.Kind)
		}
		seen[q.Kind] = true
		for _, c := range q.Channels {
			if !validChannel(c) {
				return bad("request %q: channel %q", q.Kind, c)
			}
		}
	}
	for _, c := range r.Changes {
		if c.Event == "" || (c.Cert != CertSign && c.Cert != CertAuth) {
			return bad("change %q for %q", c.Event, c.Cert)
		}
		switch c.Action {
		case ActionRevoke:
			if !validReason(c.Reason) || c.Reason == CertificateHold {
				return bad("change %q: reason %d", c.Event, c.Reason)
			}
		case ActionRevokeAfter:
			if !validReason(c.Reason) || c.Days <= 0 || c.Unless == "" {
				return bad("change %q: revoke-after needs a reason, days and an unless event", c.Event)
			}
		case ActionCancel:
			if c.Cancels == "" {
				return bad("change %q: cancel needs the event it cancels", c.Event)
			}
		case ActionContinue:
		default:
			return bad("change %q: action %q", c.Event, c.Action)
		}
	}
	if r.Hold.Reason != CertificateHold || len(r.Hold.SetChannels) == 0 || len(r.Hold.ReleaseChannels) == 0 {
		return bad("hold rule")
	}
	for _, c := range append(slices.Clone(r.Hold.SetChannels), r.Hold.ReleaseChannels...) {
		if !validChannel(c) {
			return bad("hold channel %q", c)
		}
	}
	for _, t := range r.Transitions {
		if t.From == StatusRevoked {
			return bad("a transition out of revoked (CPS §4.9.5: revocation is never undone)")
		}
	}
	return nil
}

// Reason returns the CPS §4.9.9 row for code c.
func (r *Rules) Reason(c Reason) (ReasonInfo, bool) {
	if !validReason(c) {
		return ReasonInfo{}, false
	}
	return r.Reasons[c], true
}

// Request returns the reason a request of kind revokes with, if it may come
// through ch. TS/CPS §4.9.3.1: key compromise and an unusable card are
// accepted only at the counter, in writing (ErrChannel otherwise).
func (r *Rules) Request(kind string, ch Channel) (RequestRule, error) {
	for _, q := range r.Requests {
		if q.Kind != kind {
			continue
		}
		if !slices.Contains(q.Channels, ch) {
			return RequestRule{}, fmt.Errorf("%w: %q through %q (%s)", ErrChannel, kind, ch, q.Basis)
		}
		return q, nil
	}
	return RequestRule{}, fmt.Errorf("%w: %q", ErrUnknownRequest, kind)
}

// Transition applies action to a certificate in status from, requested
// through ch at now, for a certificate valid until notAfter. Rules (CPS
// §4.9.5, §4.9.13–16): nothing leaves revoked (ErrFinal); a hold is set by a
// phone report and released only at the counter (ErrChannel); nothing is
// held or released after the certificate expired (ErrExpired: a hold never
// outlives the certificate). A hold is written with r.Hold.Reason
// (certificateHold); a revocation with the reason from Request or Evaluate.
func (r *Rules) Transition(from Status, action StatusAction, ch Channel, now, notAfter time.Time) (Status, error) {
	if from == StatusRevoked {
		return from, ErrFinal
	}
	switch action {
	case Hold:
		if !slices.Contains(r.Hold.SetChannels, ch) {
			return from, fmt.Errorf("%w: hold through %q (%s)", ErrChannel, ch, r.Hold.Basis)
		}
	case Release:
		if !slices.Contains(r.Hold.ReleaseChannels, ch) {
			return from, fmt.Errorf("%w: release through %q (%s)", ErrChannel, ch, r.Hold.Basis)
		}
	}
	if (action == Hold || action == Release) && r.Hold.EndsWithCertificate && !now.Before(notAfter) {
		return from, fmt.Errorf("%w: at %s (CPS §4.9.16)", ErrExpired, notAfter.UTC().Format(time.RFC3339))
	}
	for _, t := range r.Transitions {
		if t.From == from && t.Action == action {
			return t.To, nil
		}
	}
	return from, fmt.Errorf("%w: %s from %s", ErrTransition, action, from)
}
