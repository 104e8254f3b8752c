// Package crl writes X.509 v2 certificate revocation lists (CRLs and ARLs)
// as a stream, with flat memory at millions of entries, and keeps every CRL
// issued in an append-only archive.
//
// # Why streaming
//
// A JPKI CA has millions of revoked certificates (every card renewal
// supersedes two). crypto/x509.CreateRevocationList holds the whole list
// three times over (template, ASN.1 structures, output): about 1.5 GB peak for
// a million entries (docs PLATFORM.md). Write instead iterates an entry
// source twice — a sizing pass, then an encoding pass that writes DER to an
// io.Writer while hashing the TBSCertList — and asks the signer for one
// signature over the digest. Memory does not grow with the number of entries.
//
// # Profile (CPS §7.2, RFC 5280 §5)
//
// version v2; signature sha256WithRSAEncryption (TS Art. 2); issuer = the
// issuing certificate's subject, byte for byte; thisUpdate; nextUpdate
// (CPS §4.9.7: issued every 24 h, each valid 72 h: DefaultValidity, with
// DefaultIssueInterval for the scheduler); entries (serial, revocation date,
// reasonCode); extensions authorityKeyIdentifier, cRLNumber and, when given,
// a critical issuingDistributionPoint (partitioned CRLs; the ARL sets
// onlyContainsCACerts). The encoding is the same as crypto/x509's, byte for
// byte, for the parts both produce.
//
// # Reason codes
//
// JPKI uses codes 0–6 (CPS §4.9.9); Write refuses any other. Code 0
// (unspecified) means "destroyed before delivery" (交付前に破棄) in JPKI, but
// its entry carries NO reasonCode extension: RFC 5280 §5.3.1 says the
// extension "SHOULD be absent instead of using the unspecified (0)
// reasonCode value", and an absent reasonCode means unspecified, which is
// code 0 in the CPS §4.9.9 table, so no meaning is lost. The CA/Browser Forum
// Baseline Requirements §7.2.2 go further and forbid an explicit
// unspecified; crypto/x509 (ParseRevocationList reports ReasonCode 0) and
// golang.org/x/crypto/ocsp treat absence the same way, so CRL and OCSP agree.
//
// Certificate hold (code 6) follows RFC 5280: a held certificate is listed
// with reason certificateHold; when the hold is released (only at the
// counter, CPS §4.9.13–16) the entry source stops yielding it and it is
// absent from every later CRL. removeFromCRL (8) belongs to delta CRLs, which
// JPKI does not issue.
//
// # Concurrency
//
// Write has no shared state: concurrent calls are safe if their signers
// are. FSArchive is safe for concurrent use by the goroutines of one
// process; one process at a time may add CRLs to a series (the scheduler).
package crl
