package ocsp

import (
	"crypto"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	xocsp "golang.org/x/crypto/ocsp"
)

// hashAlgorithmOIDs are the DER contents of the CertID hash algorithm OIDs
// supportedHashes lists (RFC 6960 §4.1.1, RFC 5019 §2.1.1).
var hashAlgorithmOIDs = []struct {
	hash crypto.Hash
	oid  string
}{
	{crypto.SHA1, "\x2b\x0e\x03\x02\x1a"},                   // 1.3.14.3.2.26
	{crypto.SHA256, "\x60\x86\x48\x01\x65\x03\x04\x02\x01"}, // 2.16.840.1.101.3.4.2.1
	{crypto.SHA384, "\x60\x86\x48\x01\x65\x03\x04\x02\x02"}, // 2.16.840.1.101.3.4.2.2
	{crypto.SHA512, "\x60\x86\x48\x01\x65\x03\x04\x02\x03"}, // 2.16.840.1.101.3.4.2.3
}

// parseRequest returns the first CertID of a DER OCSPRequest, as
// xocsp.ParseRequest does. Requests of the RFC 5019 §2.1 shape (one
// unsigned Request with a bare CertID, no version, requestor name or
// extensions, a positive serial) are read directly, which costs a tenth of
// the reflective encoding/asn1 parse that dominated the responder's CPU time
// under load; every other input, malformed or not, goes to
// xocsp.ParseRequest, so the fast path accepts a subset of what
// xocsp.ParseRequest accepts and returns the same fields for it
// (TestParseRequestMatchesXOCSP, FuzzParseRequest).
func parseRequest(raw []byte) (*xocsp.Request, error) {
	if req, ok := parseSimpleRequest(raw); ok {
		return req, nil
	}
	return xocsp.ParseRequest(raw)
}

// parseSimpleRequest is the fast path; ok is false for anything outside the
// shape it reads.
func parseSimpleRequest(raw []byte) (*xocsp.Request, bool) {
	var ocspReq, tbs, list, single, certID, alg, oid cryptobyte.String
	input := cryptobyte.String(raw)
	if !input.ReadASN1(&ocspReq, cbasn1.SEQUENCE) || !input.Empty() || // OCSPRequest, no trailing data
		!ocspReq.ReadASN1(&tbs, cbasn1.SEQUENCE) || !ocspReq.Empty() || // tbsRequest; no optionalSignature
		!tbs.ReadASN1(&list, cbasn1.SEQUENCE) || !tbs.Empty() || // requestList first: no version, no requestorName; no requestExtensions
		!list.ReadASN1(&single, cbasn1.SEQUENCE) || !list.Empty() || // exactly one Request
		!single.ReadASN1(&certID, cbasn1.SEQUENCE) || !single.Empty() || // reqCert; no singleRequestExtensions
		!certID.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!alg.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) {
		return nil, false
	}
	if !alg.Empty() { // parameters: absent or NULL
		var null cryptobyte.String
		if !alg.ReadASN1(&null, cbasn1.NULL) || !null.Empty() || !alg.Empty() {
			return nil, false
		}
	}
	hash := crypto.Hash(0)
	for _, h := range hashAlgorithmOIDs {
		if string(oid) == h.oid {
			hash = h.hash
		}
	}
	var nameHash, keyHash []byte
	serial := new(big.Int)
	if hash == 0 ||
		!certID.ReadASN1Bytes(&nameHash, cbasn1.OCTET_STRING) ||
		!certID.ReadASN1Bytes(&keyHash, cbasn1.OCTET_STRING) ||
		!certID.ReadASN1Integer(serial) || !certID.Empty() ||
		serial.Sign() <= 0 {
		return nil, false
	}
	return &xocsp.Request{HashAlgorithm: hash, IssuerNameHash: nameHash, IssuerKeyHash: keyHash, SerialNumber: serial}, true
}
