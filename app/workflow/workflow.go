// Package workflow holds the reception procedures of the counter as explicit state machines that
// refuse invalid transitions (kind InvalidTransition) and record what the rules require: the
// identity evidence (CPS §3.2, §4.1.2.1; R02 II-2-2), a proxy's documents (R02 II-2-6), the
// explanations given and acknowledged (TS Art. 9), 外字 substitutions with their positions
// (R02 II-2-5(4)(5)), the decision and any refusal reason (R02 II-8-1(3): kept ~10 years).
//
// Every case goes Opened → IdentityChecked → (Explained, for issuance kinds) → Approved →
// Completed; Refused and Stopped end it from any open state. A doubt about identity stops the
// case: no certificate (CPS §4.1.2.1(3)).
//
// Concurrency: a Case is a value owned by one goroutine; persistence runs in the caller's
// transaction.
package workflow

import (
	"strings"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/app/resident"
)

// Kind of procedure.
type Kind string

// The procedures at the counter.
const (
	NewIssuance     Kind = "new_issuance"     // 新規発行 (with or without a new card: NewCard)
	Renewal         Kind = "renewal"          // 更新 (< 3 months left, CPS §6.3.2.2)
	Revocation      Kind = "revocation"       // 失効申請 at the holder's request (reason 5)
	LossReport      Kind = "loss_report"      // 紛失・危殆化の届出 (reason 1), counter only in writing
	HoldRelease     Kind = "hold_release"     // 一時保留の解除, only at the counter (CPS §4.9.13–16)
	PINReset        Kind = "pin_reset"        // 暗証番号の初期化・ロック解除
	KeyDestruction  Kind = "key_destruction"  // 鍵の廃棄
	CertificateCopy Kind = "certificate_copy" // 電子証明書の写しの交付 (CPS §4.4.1.1)
)

// Kinds lists all kinds.
var Kinds = []Kind{NewIssuance, Renewal, Revocation, LossReport, HoldRelease, PINReset, KeyDestruction, CertificateCopy}

// Valid reports whether k is known.
func (k Kind) Valid() bool {
	for _, x := range Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// issues reports whether the kind puts new certificates on a card (explanations, 外字, file).
func (k Kind) issues() bool { return k == NewIssuance || k == Renewal }

// NeedsResidentFile reports whether opening the case needs an imported resident-record file
// (TS Art. 3(1): the reception app takes the applicant's items from the CS file).
func (k Kind) NeedsResidentFile() bool { return k.issues() }

// State of a case.
type State string

// States.
const (
	Opened          State = "opened"
	IdentityChecked State = "identity_checked"
	Explained       State = "explained"
	Approved        State = "approved"
	Completed       State = "completed"
	Refused         State = "refused"
	Stopped         State = "stopped"
)

// Final reports whether no event is accepted any more.
func (s State) Final() bool { return s == Completed || s == Refused || s == Stopped }

// CertType is which certificate.
type CertType string

// Certificate types.
const (
	SignatureCert CertType = "signature"
	UserAuthCert  CertType = "user_auth"
)

// Document is an identity document shown at the counter.
type Document string

// Photo identity documents issued by public offices (R02 II-2-2(2)ア, CPS §3.2.3).
const (
	MyNumberCard    Document = "my_number_card"
	DriversLicence  Document = "drivers_licence"
	Passport        Document = "passport"
	ResidenceCard   Document = "residence_card"
	SpecialPRCert   Document = "special_permanent_resident_certificate"
	DisabilityCard  Document = "disability_certificate_with_photo"
	OtherOfficialID Document = "other_official_photo_id"
)

// PhotoIDs are the accepted documents.
var PhotoIDs = []Document{MyNumberCard, DriversLicence, Passport, ResidenceCard, SpecialPRCert, DisabilityCard, OtherOfficialID}

func (d Document) accepted() bool {
	for _, x := range PhotoIDs {
		if x == d {
			return true
		}
	}
	return false
}

// Evidence is the identity check of one case.
type Evidence struct {
	Document    Document `json:"document"`     // the applicant's (or proxy's) photo ID
	DocumentRef string   `json:"document_ref"` // e.g. last 4 characters of the document number
	Proxy       bool     `json:"proxy"`        // 代理人 applies
	// Proxy branch (R02 II-2-6, CPS §4.1.2.1): all required.
	PowerOfAttorney bool     `json:"power_of_attorney,omitempty"` // 委任状
	InquiryReply    bool     `json:"inquiry_reply,omitempty"`     // 照会書回答書
	ProxyName       string   `json:"proxy_name,omitempty"`
	ProxyDocument   Document `json:"proxy_document,omitempty"` // the proxy's own photo ID
	// Doubt, when not empty, stops the case (CPS §4.1.2.1(3)).
	Doubt string `json:"doubt,omitempty"`
}

// Item is one explanation the applicant must be given (TS Art. 9).
type Item string

// Explanation items.
const (
	LegalEffect      Item = "legal_effect"      // Art. 9(1)(i): e-signature has effect like a seal
	ProtectKey       Item = "protect_key"       // Art. 9(1)(i), (2)(i): protect the key from leak, loss, damage
	ReportLoss       Item = "report_loss"       // Art. 9(1)(ii), (2)(ii): report loss or leak promptly
	FalseApplication Item = "false_application" // Art. 9(1)(iii): false application is punished (Act Art. 73)
)

// RequiredItems returns the explanations due for the certificate types issued.
func RequiredItems(types []CertType) []Item {
	for _, t := range types {
		if t == SignatureCert {
			return []Item{LegalEffect, ProtectKey, ReportLoss, FalseApplication}
		}
	}
	return []Item{ProtectKey, ReportLoss}
}

// Case is one application at the counter.
type Case struct {
	ID            int64                   `json:"id"`
	Kind          Kind                    `json:"kind"`
	State         State                   `json:"state"`
	Applicant     resident.Resident       `json:"applicant"`
	ResidentFile  string                  `json:"resident_file,omitempty"` // id of the imported file
	CertTypes     []CertType              `json:"cert_types,omitempty"`
	NewCard       bool                    `json:"new_card,omitempty"`
	CurrentExpiry time.Time               `json:"current_expiry,omitzero"` // renewal
	Identity      *Evidence               `json:"identity,omitempty"`
	Explained     []Item                  `json:"explained,omitempty"`
	Substitutions []resident.Substitution `json:"substitutions,omitempty"`
	DecidedBy     string                  `json:"decided_by,omitempty"`
	RefusalReason string                  `json:"refusal_reason,omitempty"`
	StopReason    string                  `json:"stop_reason,omitempty"`
	OpenedBy      string                  `json:"opened_by"`
	OpenedAt      time.Time               `json:"opened_at"`
}

// Open starts a case. Renewal is refused unless the current certificate has less than 3 months
// left (kind RenewalTooEarly); issuance kinds need certificate types; the applicant must be on
// the register (resident or abroad: TS Art. 3(1) covers 国外転出者).
func Open(kind Kind, applicant resident.Resident, certTypes []CertType, newCard bool, currentExpiry time.Time, by string, now time.Time) (*Case, error) {
	if !kind.Valid() {
		return nil, apperr.New(apperr.InvalidInput, "workflow: unknown procedure %q", kind)
	}
	if applicant.Status == resident.StatusDeceased || applicant.Status == resident.StatusMovedOut {
		return nil, apperr.New(apperr.ResidentNotEligible, "workflow: applicant %s is %s", applicant.RecordCode, applicant.Status)
	}
	if kind.issues() {
		if len(certTypes) == 0 {
			return nil, apperr.New(apperr.InvalidInput, "workflow: choose at least one certificate type")
		}
		for _, t := range certTypes {
			if t != SignatureCert && t != UserAuthCert {
				return nil, apperr.New(apperr.InvalidInput, "workflow: unknown certificate type %q", t)
			}
		}
	}
	if kind == Renewal {
		if currentExpiry.IsZero() {
			return nil, apperr.New(apperr.InvalidInput, "workflow: renewal needs the current certificate's expiry")
		}
		if !RenewalWindowOpen(currentExpiry, now) {
			return nil, apperr.New(apperr.RenewalTooEarly, "workflow: current certificate expires %s, more than 3 months ahead", currentExpiry.Format("2006-01-02"))
		}
	}
	return &Case{Kind: kind, State: Opened, Applicant: applicant, CertTypes: certTypes, NewCard: newCard,
		CurrentExpiry: currentExpiry, OpenedBy: by, OpenedAt: now.UTC()}, nil
}

// RenewalWindowOpen reports whether expiry is less than 3 months after now (CPS §6.3.2.2: the
// renewal window, in which the new certificate runs to the 6th birthday).
func RenewalWindowOpen(expiry, now time.Time) bool {
	return expiry.Before(now.AddDate(0, 3, 0))
}

func (c *Case) from(event string, allowed ...State) error {
	for _, s := range allowed {
		if c.State == s {
			return nil
		}
	}
	return apperr.New(apperr.InvalidTransition, "workflow: %s is not allowed in state %s", event, c.State)
}

// RecordIdentity records the identity check. A doubt moves the case to Stopped and returns an
// error of kind IdentityDoubt; the caller still saves the case (the stop is a decision).
func (c *Case) RecordIdentity(e Evidence) error {
	if err := c.from("record identity", Opened); err != nil {
		return err
	}
	if strings.TrimSpace(e.Doubt) != "" {
		c.Identity = &e
		c.State, c.StopReason = Stopped, "identity doubt: "+e.Doubt
		return apperr.New(apperr.IdentityDoubt, "workflow: identity in doubt, case stopped")
	}
	if !e.Document.accepted() {
		return apperr.New(apperr.InvalidInput, "workflow: %q is not an accepted photo identity document", e.Document)
	}
	if e.Proxy {
		switch {
		case !e.PowerOfAttorney:
			return apperr.New(apperr.InvalidInput, "workflow: a proxy needs the power of attorney")
		case !e.InquiryReply:
			return apperr.New(apperr.InvalidInput, "workflow: a proxy needs the reply to the inquiry")
		case strings.TrimSpace(e.ProxyName) == "" || !e.ProxyDocument.accepted():
			return apperr.New(apperr.InvalidInput, "workflow: a proxy needs their name and own photo identity document")
		}
	}
	c.Identity = &e
	c.State = IdentityChecked
	return nil
}

// RecordExplanation records the explanations given and acknowledged (TS Art. 9); all required
// items must be present. Only for issuance kinds.
func (c *Case) RecordExplanation(items []Item) error {
	if !c.Kind.issues() {
		return apperr.New(apperr.InvalidTransition, "workflow: %s has no explanation step", c.Kind)
	}
	if err := c.from("record explanation", IdentityChecked); err != nil {
		return err
	}
	have := map[Item]bool{}
	for _, i := range items {
		have[i] = true
	}
	for _, need := range RequiredItems(c.CertTypes) {
		if !have[need] {
			return apperr.New(apperr.InvalidInput, "workflow: explanation %q not acknowledged (TS Art. 9)", need)
		}
	}
	c.Explained = RequiredItems(c.CertTypes)
	c.State = Explained
	return nil
}

// SetSubstitutions records the 外字 substitutions: names by the applicant's choice, addresses by
// the fixed substitute (R02 II-2-5(4)(5)). Allowed before approval of issuance kinds.
func (c *Case) SetSubstitutions(subs []resident.Substitution) error {
	if !c.Kind.issues() {
		return apperr.New(apperr.InvalidTransition, "workflow: %s has no certificate contents", c.Kind)
	}
	if err := c.from("set substitutions", Opened, IdentityChecked, Explained); err != nil {
		return err
	}
	for _, s := range subs {
		if s.Field == "address" {
			fixed, err := resident.FixedSubstitute([]rune(s.Original)[0])
			if err != nil {
				return err
			}
			if s.Substitute != fixed {
				return apperr.New(apperr.InvalidInput, "workflow: address character %s has the fixed substitute %s", s.Original, fixed)
			}
		}
	}
	for field, value := range c.fields() {
		if _, err := resident.Apply(value, field, subs); err != nil {
			return err
		}
	}
	c.Substitutions = subs
	return nil
}

// fields are the personal items that go into the signature certificate (TS Art. 11).
func (c *Case) fields() map[string]string {
	a := c.Applicant
	addr := a.Address
	if a.Status == resident.StatusAbroad {
		addr = a.FuhyoAddress
	}
	return map[string]string{"name": a.Name, "former_surname": a.FormerSurname, "alias_name": a.AliasName, "address": addr}
}

// Approve decides to proceed. Issuance kinds need the explanations and, for a signature
// certificate, every 外字 substituted.
func (c *Case) Approve(by string) error {
	allowed := []State{IdentityChecked}
	if c.Kind.issues() {
		allowed = []State{Explained}
	}
	if err := c.from("approve", allowed...); err != nil {
		return err
	}
	if c.Kind.issues() && c.hasCert(SignatureCert) {
		for field, value := range c.fields() {
			if _, err := resident.Apply(value, field, c.Substitutions); err != nil {
				return err
			}
		}
	}
	c.DecidedBy, c.State = by, Approved
	return nil
}

func (c *Case) hasCert(t CertType) bool {
	for _, x := range c.CertTypes {
		if x == t {
			return true
		}
	}
	return false
}

// Refuse ends the case with a recorded reason (R02 II-8-1(3)).
func (c *Case) Refuse(by, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return apperr.New(apperr.ReasonRequired, "workflow: a refusal needs a recorded reason")
	}
	if err := c.from("refuse", Opened, IdentityChecked, Explained, Approved); err != nil {
		return err
	}
	c.DecidedBy, c.RefusalReason, c.State = by, reason, Refused
	return nil
}

// Stop ends the case because of a doubt or the applicant withdrawing.
func (c *Case) Stop(reason string) error {
	if strings.TrimSpace(reason) == "" {
		return apperr.New(apperr.ReasonRequired, "workflow: stopping a case needs a reason")
	}
	if err := c.from("stop", Opened, IdentityChecked, Explained, Approved); err != nil {
		return err
	}
	c.StopReason, c.State = reason, Stopped
	return nil
}

// Complete marks the procedure done (for issuance: the certificate was delivered).
func (c *Case) Complete() error {
	if err := c.from("complete", Approved); err != nil {
		return err
	}
	c.State = Completed
	return nil
}
