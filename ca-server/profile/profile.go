// Package profile loads certificate profiles — what goes into a signature or
// user-authentication certificate besides the holder's data — from JSON data
// files, so that OIDs, key usages, URLs and the subject layout are data, not
// code (DOMAIN §2: "keep OIDs in a profile file").
//
// Defaults are embedded from ca-server/profiles; Load can replace or add
// profiles from a directory. The loader is strict: unknown or duplicated
// JSON fields, malformed OIDs, unknown names and rule-breaking combinations
// (e.g. personal data in a user-authentication profile, CPS §3.1, §7.1) are
// refused with a specific error.
//
// Concurrency: a *Profile and a *Set are immutable after loading and safe for
// concurrent use; callers must not modify the slices and maps they expose.
package profile

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"

	"madoguchi/ca-server/crl"
	"madoguchi/jpki"
)

// The JPKI certificate vocabulary is the shared contract's (madoguchi/jpki), which the terminal
// reads certificates with; the names below keep this package's callers as they were.

// Kind is the type of certificate a profile describes.
type Kind = jpki.Kind

// Kinds of end-entity certificate.
const (
	KindSignature          = jpki.KindSignature
	KindUserAuthentication = jpki.KindUserAuthentication
)

// ValidityRule names how the issuer computes notAfter.
type ValidityRule string

// ValidityHolderBirthdayOrCardExpiry is CPS §6.3.2.2: the earlier of the
// holder's 5th birthday after issuance (6th on early renewal) and the card's
// expiry date.
const ValidityHolderBirthdayOrCardExpiry ValidityRule = "holder-birthday-or-card-expiry"

// Attribute names one personal attribute carried by a signature certificate.
type Attribute = jpki.Attribute

// Personal attributes, in the order their extensions appear in a certificate.
const (
	AttrName          = jpki.AttrName
	AttrSex           = jpki.AttrSex
	AttrDateOfBirth   = jpki.AttrDateOfBirth
	AttrAddress       = jpki.AttrAddress
	AttrFormerSurname = jpki.AttrFormerSurname
	AttrAlias         = jpki.AttrAlias
)

// AttributeOrder lists every attribute in extension order.
var AttributeOrder = jpki.AttributeOrder

// PersonalDataArc is J-LIS's arc for personal-attribute extensions (DOMAIN §2).
// Every attribute OID in a profile must lie strictly under it.
var PersonalDataArc = jpki.PersonalDataArc

// AttributeOIDs are the extension OIDs of one personal attribute.
type AttributeOIDs = jpki.AttributeOIDs

// SubjectAttribute is one attribute of the subject DN template. Value may
// contain the placeholder {serial}.
type SubjectAttribute struct {
	Type  string // "C", "O", "OU" or "CN"
	OID   asn1.ObjectIdentifier
	Value string
}

// Profile is one parsed, checked certificate profile.
type Profile struct {
	Name               string
	Kind               Kind
	SignatureAlgorithm x509.SignatureAlgorithm
	Policies           []asn1.ObjectIdentifier
	KeyUsage           x509.KeyUsage
	ExtKeyUsage        []asn1.ObjectIdentifier // may be empty
	// CRLDistributionPoint and OCSPServer are URL templates; see CRLURL and
	// OCSPURL.
	CRLDistributionPoint string
	OCSPServer           string
	// CRLShards is the number of CRLs each CA key's revocations are
	// partitioned into by serial range (crl.Partition; RFC 5280 §5.2.5);
	// 1 is one unpartitioned CRL. With more, CRLDistributionPoint holds
	// {shard}.
	CRLShards int
	Validity  ValidityRule
	Subject   []SubjectAttribute
	// IssuerAltName is the directoryName of the issuerAltName extension;
	// empty means no issuerAltName.
	IssuerAltName []SubjectAttribute
	// Attributes maps each personal attribute the profile certifies to its
	// OIDs; empty for user-authentication profiles.
	Attributes jpki.Attributes
}

// Placeholders in templates.
const (
	placeholderSerial      = "{serial}"
	placeholderIssuerKeyID = "{issuerKeyID}"
	placeholderShard       = crl.PlaceholderShard
)

// SubjectFor returns the subject DN for a certificate with this serial, with
// {serial} replaced by the serial in uppercase hex. The attributes appear in
// profile order, each in its own RDN.
func (p *Profile) SubjectFor(serial *big.Int) pkix.RDNSequence {
	hexSerial := strings.ToUpper(serial.Text(16))
	seq := make(pkix.RDNSequence, 0, len(p.Subject))
	for _, a := range p.Subject {
		v := strings.ReplaceAll(a.Value, placeholderSerial, hexSerial)
		seq = append(seq, pkix.RelativeDistinguishedNameSET{{Type: a.OID, Value: v}})
	}
	return seq
}

// CRLURL returns the CRL distribution point for a CA whose certificate has
// subject key identifier issuerKeyID.
func (p *Profile) CRLURL(issuerKeyID []byte) string {
	return expandURL(p.CRLDistributionPoint, issuerKeyID)
}

// CRLPartition returns the partition of the CRLs of the CA key with
// subject key identifier issuerKeyID: its shard count and its shards' URL
// template ({shard} left for crl.Partition.URLFor).
func (p *Profile) CRLPartition(issuerKeyID []byte) crl.Partition {
	return crl.Partition{Shards: max(p.CRLShards, 1), URL: p.CRLURL(issuerKeyID)}
}

// CRLURLFor returns the distribution point of the certificate with this
// serial: its shard's URL (RFC 5280 §4.2.1.13), or the one CRL's.
func (p *Profile) CRLURLFor(issuerKeyID []byte, serial *big.Int) string {
	part := p.CRLPartition(issuerKeyID)
	if part.Shards <= 1 {
		return part.URL
	}
	return part.URLFor(part.ShardOf(serial))
}

// OCSPURL returns the OCSP responder URL for a CA whose certificate has
// subject key identifier issuerKeyID.
func (p *Profile) OCSPURL(issuerKeyID []byte) string {
	return expandURL(p.OCSPServer, issuerKeyID)
}

func expandURL(tmpl string, issuerKeyID []byte) string {
	return strings.ReplaceAll(tmpl, placeholderIssuerKeyID, hex.EncodeToString(issuerKeyID))
}

// IssuerAltNameRDNs returns the issuerAltName directoryName, one attribute
// per RDN in profile order, or nil when the profile has none.
func (p *Profile) IssuerAltNameRDNs() pkix.RDNSequence {
	if len(p.IssuerAltName) == 0 {
		return nil
	}
	seq := make(pkix.RDNSequence, 0, len(p.IssuerAltName))
	for _, a := range p.IssuerAltName {
		seq = append(seq, pkix.RelativeDistinguishedNameSET{{Type: a.OID, Value: a.Value}})
	}
	return seq
}

// Layout returns the subjectAltName layout of the basic four items and
// their substitute positions (jpki), from this profile's OIDs. ok is false
// for a profile without personal data.
func (p *Profile) Layout() (l jpki.Layout, ok bool) { return p.Attributes.Layout() }

// CarriesPersonalData reports whether certificates of this profile carry
// personal attributes.
func (p *Profile) CarriesPersonalData() bool { return len(p.Attributes) > 0 }

// String returns the profile name; a profile holds no secrets.
func (p *Profile) String() string { return fmt.Sprintf("profile %q (%s)", p.Name, p.Kind) }
