package ocsp

import (
	"bytes"
	_ "embed"
	"encoding/asn1"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

//go:embed policies.json
var defaultPolicies []byte

// ResponderPolicies maps a CA name to the certificate policy of its OCSP
// responder certificate. The OIDs are data, not code (DOMAIN §2: keep OIDs
// in a profile file): the embedded policies.json, or a file of the same
// format.
type ResponderPolicies map[string]asn1.ObjectIdentifier

// DefaultResponderPolicies returns the embedded policies.json (CPS §1.2:
// 1.2.392.200149.8.5.1.3.330 for the user-auth CA).
func DefaultResponderPolicies() (ResponderPolicies, error) {
	return parsePolicies(defaultPolicies, "embedded policies.json")
}

// LoadResponderPolicies reads a policies file; unknown fields are refused.
func LoadResponderPolicies(path string) (ResponderPolicies, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ocsp: %w", err)
	}
	return parsePolicies(b, path)
}

func parsePolicies(b []byte, name string) (ResponderPolicies, error) {
	var f struct {
		Notes             []string          `json:"notes"`
		ResponderPolicies map[string]string `json:"responderPolicies"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, name, err)
	}
	if len(f.ResponderPolicies) == 0 {
		return nil, fmt.Errorf("%w: %s: no responderPolicies", ErrConfig, name)
	}
	out := ResponderPolicies{}
	for ca, s := range f.ResponderPolicies {
		o, err := ParseOID(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %q: %v", ErrConfig, name, ca, err)
		}
		out[ca] = o
	}
	return out, nil
}

// For returns the policy of the CA named ca (ErrConfig if none is listed).
func (p ResponderPolicies) For(ca string) (asn1.ObjectIdentifier, error) {
	o, ok := p[ca]
	if !ok {
		return nil, fmt.Errorf("%w: no OCSP responder policy for CA %q", ErrConfig, ca)
	}
	return o, nil
}

// ParseOID parses dotted decimal text ("1.2.392...") into an OID of at
// least two arcs.
func ParseOID(s string) (asn1.ObjectIdentifier, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("bad OID %q", s)
	}
	o := make(asn1.ObjectIdentifier, 0, len(parts))
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p == "" || (len(p) > 1 && p[0] == '0') || p[0] == '+' {
			return nil, fmt.Errorf("bad OID %q", s)
		}
		o = append(o, n)
	}
	return o, nil
}
