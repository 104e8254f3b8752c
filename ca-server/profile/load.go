package profile

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"madoguchi/ca-server/crl"

	"madoguchi/ca-server/profiles"
	"madoguchi/jpki"
)

// Errors returned by Parse and Load. They are wrapped with the source file
// and the JSON field, so errors.Is finds the kind and the text says where.
var (
	ErrSyntax                 = errors.New("profile: invalid JSON")
	ErrUnknownField           = errors.New("profile: unknown field")
	ErrDuplicateField         = errors.New("profile: duplicate field")
	ErrWrongType              = errors.New("profile: field has the wrong JSON type")
	ErrMissingField           = errors.New("profile: required field missing or empty")
	ErrBadName                = errors.New("profile: name must be lowercase letters, digits and hyphens")
	ErrUnknownKind            = errors.New("profile: unknown certificate kind")
	ErrInvalidOID             = errors.New("profile: invalid object identifier")
	ErrDuplicateOID           = errors.New("profile: object identifier used twice")
	ErrUnsupportedAlgorithm   = errors.New("profile: unsupported signature algorithm")
	ErrUnknownKeyUsage        = errors.New("profile: unknown key usage")
	ErrKeyUsageNotAllowed     = errors.New("profile: key usage not allowed in an end-entity profile")
	ErrDuplicateKeyUsage      = errors.New("profile: key usage listed twice")
	ErrUnknownValidityRule    = errors.New("profile: unknown validity rule")
	ErrBadURL                 = errors.New("profile: invalid URL template")
	ErrUnknownPlaceholder     = errors.New("profile: unknown placeholder")
	ErrBadCRLShards           = errors.New("profile: invalid CRL partition")
	ErrBadSubject             = errors.New("profile: invalid subject template")
	ErrSubjectNotUnique       = errors.New("profile: subject template lacks {serial}")
	ErrPersonalDataNotAllowed = errors.New("profile: user-authentication profile must carry no personal data")
	ErrMissingAttribute       = errors.New("profile: signature profile lacks a required personal attribute")
	ErrAttributeOutsideArc    = errors.New("profile: personal attribute OID outside 1.2.392.200149.8.5.5")
	ErrNameMismatch           = errors.New("profile: file name does not match the profile name")
	ErrNotFound               = errors.New("profile: no such profile")
)

// fileJSON is the on-disk shape. Pointers tell "absent" from "empty".
type fileJSON struct {
	Name                 string          `json:"name"`
	Kind                 string          `json:"kind"`
	Notes                []string        `json:"notes"`
	SignatureAlgorithm   string          `json:"signatureAlgorithm"`
	CertificatePolicies  []string        `json:"certificatePolicies"`
	KeyUsage             []string        `json:"keyUsage"`
	ExtendedKeyUsage     []string        `json:"extendedKeyUsage"`
	CRLDistributionPoint string          `json:"crlDistributionPoint"`
	CRLShards            *int            `json:"crlShards"`
	OCSPServer           string          `json:"ocspServer"`
	Validity             string          `json:"validity"`
	Subject              []subjectJSON   `json:"subject"`
	IssuerAltName        []subjectJSON   `json:"issuerAltName"`
	PersonalAttributes   *attributesJSON `json:"personalAttributes"`
}

type subjectJSON struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type textAttrJSON struct {
	OID            string `json:"oid"`
	SubstitutesOID string `json:"substitutesOid"`
}

type plainAttrJSON struct {
	OID string `json:"oid"`
}

// attributesJSON fixes the set of attribute names: an unknown attribute is
// an unknown field. Only text attributes may name a substitutes OID.
type attributesJSON struct {
	Name          *textAttrJSON  `json:"name"`
	Sex           *plainAttrJSON `json:"sex"`
	DateOfBirth   *plainAttrJSON `json:"dateOfBirth"`
	Address       *textAttrJSON  `json:"address"`
	FormerSurname *textAttrJSON  `json:"formerSurname"`
	Alias         *textAttrJSON  `json:"alias"`
}

var (
	nameRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

	// TS Art. 2 and Art. 8(2): sha256WithRSAEncryption with RSA 2048 for
	// user and CA keys alike; nothing else is accepted.
	algorithms = map[string]x509.SignatureAlgorithm{
		"sha256WithRSAEncryption": x509.SHA256WithRSA,
	}

	keyUsages = map[string]x509.KeyUsage{
		"digitalSignature":  x509.KeyUsageDigitalSignature,
		"nonRepudiation":    x509.KeyUsageContentCommitment,
		"contentCommitment": x509.KeyUsageContentCommitment,
		"keyEncipherment":   x509.KeyUsageKeyEncipherment,
		"dataEncipherment":  x509.KeyUsageDataEncipherment,
		"keyAgreement":      x509.KeyUsageKeyAgreement,
	}
	// An end-entity certificate must never be able to sign certificates or
	// CRLs; encipherOnly/decipherOnly only make sense with keyAgreement,
	// which RSA keys do not do.
	forbiddenKeyUsages = map[string]bool{
		"keyCertSign": true, "cRLSign": true, "encipherOnly": true, "decipherOnly": true,
	}

	subjectTypes = map[string]asn1.ObjectIdentifier{
		"C":  {2, 5, 4, 6},
		"O":  {2, 5, 4, 10},
		"OU": {2, 5, 4, 11},
		"CN": {2, 5, 4, 3},
	}
)

// Parse parses and checks one profile. source names the data in errors
// (usually the file name).
func Parse(source string, data []byte) (*Profile, error) {
	wrap := func(field string, kind error, detail string) error {
		if detail != "" {
			return fmt.Errorf("%w: %s: %s: %s", kind, source, field, detail)
		}
		return fmt.Errorf("%w: %s: %s", kind, source, field)
	}
	if err := checkDuplicateKeys(data); err != nil {
		return nil, wrap("", err, "")
	}
	var f fileJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
			return nil, wrap("", ErrSyntax, err.Error())
		case errors.As(err, &typ):
			return nil, wrap(typ.Field, ErrWrongType, typ.Value)
		default:
			// encoding/json has no typed error for DisallowUnknownFields;
			// with syntax and type errors handled above it is the only
			// error left.
			return nil, wrap("", ErrUnknownField, err.Error())
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, wrap("", ErrSyntax, "data after the profile object")
	}

	p := &Profile{Name: f.Name}
	if f.Name == "" {
		return nil, wrap("name", ErrMissingField, "")
	}
	if !nameRE.MatchString(f.Name) {
		return nil, wrap("name", ErrBadName, strconv.Quote(f.Name))
	}
	switch Kind(f.Kind) {
	case KindSignature, KindUserAuthentication:
		p.Kind = Kind(f.Kind)
	case "":
		return nil, wrap("kind", ErrMissingField, "")
	default:
		return nil, wrap("kind", ErrUnknownKind, strconv.Quote(f.Kind))
	}

	alg, ok := algorithms[f.SignatureAlgorithm]
	switch {
	case f.SignatureAlgorithm == "":
		return nil, wrap("signatureAlgorithm", ErrMissingField, "")
	case !ok:
		return nil, wrap("signatureAlgorithm", ErrUnsupportedAlgorithm, strconv.Quote(f.SignatureAlgorithm))
	}
	p.SignatureAlgorithm = alg

	seen := map[string]string{} // every OID in the profile → field, for ErrDuplicateOID
	claim := func(field string, oid asn1.ObjectIdentifier) error {
		if prev, dup := seen[oid.String()]; dup {
			return wrap(field, ErrDuplicateOID, oid.String()+" also in "+prev)
		}
		seen[oid.String()] = field
		return nil
	}

	if len(f.CertificatePolicies) == 0 {
		return nil, wrap("certificatePolicies", ErrMissingField, "")
	}
	for i, s := range f.CertificatePolicies {
		field := fmt.Sprintf("certificatePolicies[%d]", i)
		oid, err := ParseOID(s)
		if err != nil {
			return nil, wrap(field, ErrInvalidOID, err.Error())
		}
		if err := claim(field, oid); err != nil {
			return nil, err
		}
		p.Policies = append(p.Policies, oid)
	}

	if len(f.KeyUsage) == 0 {
		return nil, wrap("keyUsage", ErrMissingField, "")
	}
	for i, s := range f.KeyUsage {
		field := fmt.Sprintf("keyUsage[%d]", i)
		ku, ok := keyUsages[s]
		switch {
		case forbiddenKeyUsages[s]:
			return nil, wrap(field, ErrKeyUsageNotAllowed, s)
		case !ok:
			return nil, wrap(field, ErrUnknownKeyUsage, strconv.Quote(s))
		case p.KeyUsage&ku != 0:
			return nil, wrap(field, ErrDuplicateKeyUsage, s)
		}
		p.KeyUsage |= ku
	}

	for i, s := range f.ExtendedKeyUsage {
		field := fmt.Sprintf("extendedKeyUsage[%d]", i)
		oid, err := ParseOID(s)
		if err != nil {
			return nil, wrap(field, ErrInvalidOID, err.Error())
		}
		if err := claim(field, oid); err != nil {
			return nil, err
		}
		p.ExtKeyUsage = append(p.ExtKeyUsage, oid)
	}

	for _, u := range []struct {
		field, value string
		dst          *string
	}{
		{"crlDistributionPoint", f.CRLDistributionPoint, &p.CRLDistributionPoint},
		{"ocspServer", f.OCSPServer, &p.OCSPServer},
	} {
		if u.value == "" {
			return nil, wrap(u.field, ErrMissingField, "")
		}
		allowed := []string{placeholderIssuerKeyID}
		if u.field == "crlDistributionPoint" {
			allowed = append(allowed, placeholderShard)
		}
		if err := checkURLTemplate(u.value, allowed...); err != nil {
			return nil, wrap(u.field, err, strconv.Quote(u.value))
		}
		*u.dst = u.value
	}
	// RFC 5280 §5.2.5: a partitioned CRL's shards each have their own
	// distribution point, so the URL must name the shard exactly when
	// there is more than one.
	p.CRLShards = 1
	if f.CRLShards != nil {
		p.CRLShards = *f.CRLShards
	}
	hasShard := strings.Contains(p.CRLDistributionPoint, placeholderShard)
	if err := (crl.Partition{Shards: p.CRLShards, URL: p.CRLDistributionPoint}).Check(); err != nil || p.CRLShards < 1 || hasShard != (p.CRLShards > 1) {
		return nil, wrap("crlShards", ErrBadCRLShards, fmt.Sprintf("%d shards, crlDistributionPoint %q (%s required exactly when crlShards > 1)",
			p.CRLShards, p.CRLDistributionPoint, placeholderShard))
	}

	switch ValidityRule(f.Validity) {
	case ValidityHolderBirthdayOrCardExpiry:
		p.Validity = ValidityRule(f.Validity)
	case "":
		return nil, wrap("validity", ErrMissingField, "")
	default:
		return nil, wrap("validity", ErrUnknownValidityRule, strconv.Quote(f.Validity))
	}

	if len(f.Subject) == 0 {
		return nil, wrap("subject", ErrMissingField, "")
	}
	serials := 0
	for i, s := range f.Subject {
		field := fmt.Sprintf("subject[%d]", i)
		oid, ok := subjectTypes[s.Type]
		if !ok {
			return nil, wrap(field, ErrBadSubject, "type must be C, O, OU or CN, got "+strconv.Quote(s.Type))
		}
		n, err := checkSubjectValue(s.Type, s.Value)
		if err != nil {
			return nil, wrap(field, err, strconv.Quote(s.Value))
		}
		serials += n
		p.Subject = append(p.Subject, SubjectAttribute{Type: s.Type, OID: oid, Value: s.Value})
	}
	// CPS §3.1: the subject of every certificate is unique; the serial makes
	// it so.
	if serials == 0 {
		return nil, wrap("subject", ErrSubjectNotUnique, "")
	}

	// issuerAltName: a directoryName, fixed text (no placeholders). Real
	// JPKI certificates of both kinds carry DirName C=JP, O=公的個人認証サービス.
	for i, s := range f.IssuerAltName {
		field := fmt.Sprintf("issuerAltName[%d]", i)
		oid, ok := subjectTypes[s.Type]
		if !ok {
			return nil, wrap(field, ErrBadSubject, "type must be C, O, OU or CN, got "+strconv.Quote(s.Type))
		}
		n, err := checkSubjectValue(s.Type, s.Value)
		if err != nil {
			return nil, wrap(field, err, strconv.Quote(s.Value))
		}
		if n != 0 {
			return nil, wrap(field, ErrUnknownPlaceholder, strconv.Quote(s.Value))
		}
		p.IssuerAltName = append(p.IssuerAltName, SubjectAttribute{Type: s.Type, OID: oid, Value: s.Value})
	}

	if f.PersonalAttributes == nil {
		return nil, wrap("personalAttributes", ErrMissingField, "use {} for none")
	}
	p.Attributes = map[Attribute]AttributeOIDs{}
	pa := f.PersonalAttributes
	type entry struct {
		attr             Attribute
		present          bool
		oid, substitutes string
	}
	entries := []entry{
		{AttrName, pa.Name != nil, textOID(pa.Name), textSubs(pa.Name)},
		{AttrSex, pa.Sex != nil, plainOID(pa.Sex), ""},
		{AttrDateOfBirth, pa.DateOfBirth != nil, plainOID(pa.DateOfBirth), ""},
		{AttrAddress, pa.Address != nil, textOID(pa.Address), textSubs(pa.Address)},
		{AttrFormerSurname, pa.FormerSurname != nil, textOID(pa.FormerSurname), textSubs(pa.FormerSurname)},
		{AttrAlias, pa.Alias != nil, textOID(pa.Alias), textSubs(pa.Alias)},
	}
	for _, e := range entries {
		if !e.present {
			continue
		}
		field := "personalAttributes." + string(e.attr)
		if p.Kind == KindUserAuthentication {
			return nil, wrap(field, ErrPersonalDataNotAllowed, "CPS §3.1, §7.1")
		}
		var oids AttributeOIDs
		var err error
		if oids.OID, err = attributeOID(field+".oid", e.oid, wrap); err != nil {
			return nil, err
		}
		if err := claim(field+".oid", oids.OID); err != nil {
			return nil, err
		}
		if e.substitutes != "" {
			if oids.Substitutes, err = attributeOID(field+".substitutesOid", e.substitutes, wrap); err != nil {
				return nil, err
			}
			if err := claim(field+".substitutesOid", oids.Substitutes); err != nil {
				return nil, err
			}
		}
		p.Attributes[e.attr] = oids
	}
	if p.Kind == KindSignature {
		// TS Art. 11: the four items of the resident record go into the
		// signature certificate's extension area.
		for _, a := range []Attribute{AttrName, AttrSex, AttrDateOfBirth, AttrAddress} {
			if _, ok := p.Attributes[a]; !ok {
				return nil, wrap("personalAttributes."+string(a), ErrMissingAttribute, "TS Art. 11")
			}
		}
		// R02 II-2-5(4)(5): every signature certificate carries the
		// position strings of name and address (all '0' when none).
		for _, a := range []Attribute{AttrName, AttrAddress} {
			if p.Attributes[a].Substitutes == nil {
				return nil, wrap("personalAttributes."+string(a)+".substitutesOid", ErrMissingAttribute, "R02 II-2-5(4)(5)")
			}
		}
	}
	return p, nil
}

func textOID(a *textAttrJSON) string {
	if a == nil {
		return ""
	}
	return a.OID
}

func textSubs(a *textAttrJSON) string {
	if a == nil {
		return ""
	}
	return a.SubstitutesOID
}

func plainOID(a *plainAttrJSON) string {
	if a == nil {
		return ""
	}
	return a.OID
}

func attributeOID(field, s string, wrap func(string, error, string) error) (asn1.ObjectIdentifier, error) {
	if s == "" {
		return nil, wrap(field, ErrMissingField, "")
	}
	oid, err := ParseOID(s)
	if err != nil {
		return nil, wrap(field, ErrInvalidOID, err.Error())
	}
	if !jpki.UnderPersonalDataArc(oid) {
		return nil, wrap(field, ErrAttributeOutsideArc, s)
	}
	return oid, nil
}

// checkURLTemplate accepts an absolute http URL whose only placeholder is
// the allowed placeholders ({issuerKeyID}; {shard} too for the CRL). CRLs and OCSP are fetched over plain http, since an https
// fetch would need the very revocation data being fetched (RFC 5280
// §4.2.1.13, RFC 6960 Appendix A); the responses are signed.
func checkURLTemplate(tmpl string, allowed ...string) error {
	if err := checkPlaceholders(tmpl, allowed...); err != nil {
		return err
	}
	// Checked with expansions shaped like real ones: a key identifier is hex with letters
	// (SHA-1, 20 octets), so "00" alone let {issuerKeyID} stand as a port
	// ("http://crl.example:{issuerKeyID}/"), which no real expansion parses as.
	for _, keyID := range []string{"00", strings.Repeat("ab", 20)} {
		u, err := url.Parse(strings.NewReplacer(placeholderIssuerKeyID, keyID, placeholderShard, "0").Replace(tmpl))
		if err != nil {
			return ErrBadURL
		}
		if u.Scheme != "http" || u.Host == "" || u.User != nil || u.Fragment != "" || u.RawQuery != "" {
			return ErrBadURL
		}
	}
	return nil
}

// checkPlaceholders rejects any {…} other than allowed, and stray braces.
func checkPlaceholders(s string, allowed ...string) error {
	rest := s
	for _, a := range allowed {
		rest = strings.ReplaceAll(rest, a, "")
	}
	if strings.ContainsAny(rest, "{}") {
		return ErrUnknownPlaceholder
	}
	return nil
}

// checkSubjectValue returns how many {serial} placeholders v holds.
func checkSubjectValue(typ, v string) (int, error) {
	if v == "" {
		return 0, ErrBadSubject
	}
	if err := checkPlaceholders(v, placeholderSerial); err != nil {
		return 0, err
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return 0, ErrBadSubject
		}
	}
	if typ == "C" {
		// RFC 5280 §4.1.2.4 / X.520: a two-letter ISO 3166 code.
		if len(v) != 2 || v[0] < 'A' || v[0] > 'Z' || v[1] < 'A' || v[1] > 'Z' {
			return 0, ErrBadSubject
		}
	}
	// X.520 upper bound for O, OU and CN: 64 characters (RFC 5280 Appendix A,
	// ub-organization-name, ub-common-name), counted with every {serial}
	// expanded to the longest serial a certificate may carry: 20 octets, 40
	// hex digits (RFC 5280 §4.1.2.2). Counting the template alone let
	// "{serial}{serial}" or a long prefix produce subjects over the bound.
	n := strings.Count(v, placeholderSerial)
	if utf8.RuneCountInString(v)+n*(maxSerialHexDigits-len(placeholderSerial)) > 64 {
		return 0, ErrBadSubject
	}
	return n, nil
}

// maxSerialHexDigits is the length of the longest serial SubjectFor writes:
// a positive serial of at most 20 octets (RFC 5280 §4.1.2.2) in hex.
const maxSerialHexDigits = 40

// ParseOID parses a dotted-decimal object identifier strictly: at least two
// arcs, decimal digits without leading zeros, first arc 0–2, second arc at
// most 39 under 0 and 1 (X.660), every arc below 2^31.
func ParseOID(s string) (asn1.ObjectIdentifier, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("%q: fewer than two arcs", s)
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		if p == "" || (len(p) > 1 && p[0] == '0') || strings.TrimLeft(p, "0123456789") != "" {
			return nil, fmt.Errorf("%q: arc %d is not a canonical decimal number", s, i+1)
		}
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q: arc %d out of range", s, i+1)
		}
		oid[i] = int(n)
	}
	if oid[0] > 2 || (oid[0] < 2 && oid[1] > 39) {
		return nil, fmt.Errorf("%q: first arcs out of range", s)
	}
	return oid, nil
}

// checkDuplicateKeys rejects an object with the same key twice, which
// encoding/json would silently resolve to the last value.
func checkDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return nil // syntax errors are reported by the real decode
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				markValueDone(stack)
				continue
			}
			k, _ := tok.(string)
			if top.keys[k] {
				return fmt.Errorf("%w %q", ErrDuplicateField, k)
			}
			top.keys[k] = true
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'), json.Delim('}'):
			stack = stack[:len(stack)-1]
			markValueDone(stack)
		default:
			markValueDone(stack)
		}
	}
}

// frame is one open JSON object or array in checkDuplicateKeys.
type frame struct {
	object  bool
	keys    map[string]bool
	wantKey bool
}

func markValueDone(stack []*frame) {
	if len(stack) > 0 && stack[len(stack)-1].object {
		stack[len(stack)-1].wantKey = true
	}
}

// Set is a loaded collection of profiles, by name.
type Set struct {
	byName map[string]*Profile
}

// Get returns the named profile or an error wrapping ErrNotFound.
func (s *Set) Get(name string) (*Profile, error) {
	p, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return p, nil
}

// Names returns the profile names, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Default loads the embedded profiles only.
func Default() (*Set, error) { return Load("") }

// Load reads the embedded default profiles and then, when overrideDir is not
// empty, every *.json file in overrideDir: a file replaces the default of the
// same name or adds a profile. Each file's "name" must equal its file name
// without ".json" (ErrNameMismatch), so a misspelt file cannot leave a default
// silently in force. Files not ending in .json and subdirectories are
// ignored. A missing overrideDir is an error.
func Load(overrideDir string) (*Set, error) {
	s := &Set{byName: map[string]*Profile{}}
	if err := loadFS(s, profiles.FS, "embedded:"); err != nil {
		return nil, err
	}
	if overrideDir == "" {
		return s, nil
	}
	if _, err := os.Stat(overrideDir); err != nil {
		return nil, fmt.Errorf("profile: override directory: %w", err)
	}
	if err := loadFS(s, os.DirFS(overrideDir), overrideDir+"/"); err != nil {
		return nil, err
	}
	return s, nil
}

func loadFS(s *Set, fsys fs.FS, prefix string) error {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return fmt.Errorf("profile: %s: %w", prefix, err)
	}
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".json" {
			continue
		}
		data, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return fmt.Errorf("profile: %s%s: %w", prefix, e.Name(), err)
		}
		p, err := Parse(prefix+e.Name(), data)
		if err != nil {
			return err
		}
		if want := strings.TrimSuffix(e.Name(), ".json"); p.Name != want {
			return fmt.Errorf("%w: %s%s holds %q", ErrNameMismatch, prefix, e.Name(), p.Name)
		}
		s.byName[p.Name] = p
	}
	return nil
}
