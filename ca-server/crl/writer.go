package crl

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math/big"
	"time"
)

// Errors. Callers branch on them with errors.Is.
var (
	ErrParams        = errors.New("crl: invalid parameters")
	ErrIssuer        = errors.New("crl: issuer certificate cannot sign CRLs")
	ErrKeyMismatch   = errors.New("crl: signer's public key does not match the issuer certificate")
	ErrEntry         = errors.New("crl: invalid entry")
	ErrOrder         = errors.New("crl: entries not in strictly ascending serial order")
	ErrSource        = errors.New("crl: entry source failed")
	ErrSourceChanged = errors.New("crl: entry source yielded different entries on the second pass")
	ErrSign          = errors.New("crl: signing failed")
	ErrWrite         = errors.New("crl: writing failed")
)

const (
	// DefaultValidity is nextUpdate − thisUpdate: each CRL/ARL is valid 72
	// hours (CPS §4.9.7, §7.2: 有効期間の終了日 = 3 days after).
	DefaultValidity = 72 * time.Hour
	// DefaultIssueInterval is how often the scheduler issues a new CRL/ARL:
	// every 24 hours (CPS §2.3, §4.9.7), and at once on CA key compromise.
	// X.509 has no field for it; nextUpdate carries the validity end.
	DefaultIssueInterval = 24 * time.Hour

	// maxSerialOctets: RFC 5280 §4.1.2.2, §5.2.3: serials and CRL numbers
	// are at most 20 octets.
	maxSerialOctets = 20
	// checkEvery: how many entries between context checks.
	checkEvery = 1 << 14
	// bufferSize of the output buffer in front of the caller's writer.
	bufferSize = 256 << 10
)

// Reason is an RFC 5280 CRLReason code as JPKI uses it (CPS §4.9.9).
type Reason int

// The reason codes JPKI uses (CPS §4.9.9); the JPKI meaning in comments.
const (
	ReasonUnspecified          Reason = 0 // 交付前に破棄: destroyed before delivery
	ReasonKeyCompromise        Reason = 1 // holder key leaked, lost or damaged
	ReasonCACompromise         Reason = 2 // CA key compromised
	ReasonAffiliationChanged   Reason = 3 // certificate contents changed
	ReasonSuperseded           Reason = 4 // renewed
	ReasonCessationOfOperation Reason = 5 // no longer needed (request, death)
	ReasonCertificateHold      Reason = 6 // temporarily held (card reported lost)
)

// Valid reports whether r is one of the codes 0–6 of CPS §4.9.9.
func (r Reason) Valid() bool { return r >= ReasonUnspecified && r <= ReasonCertificateHold }

// Entry is one revoked certificate.
type Entry struct {
	// Serial is the certificate serial number as an unsigned big-endian
	// magnitude (leading zero octets allowed): non-zero, at most 20 octets
	// as a DER INTEGER (so a 20-octet magnitude must have its top bit clear)
	// once leading zeros are dropped. Write does not keep the slice after
	// yield returns, so a source may reuse its buffer.
	Serial []byte
	// RevokedAt is the revocation (or hold) instant; it is written in UTC
	// with whole seconds.
	RevokedAt time.Time
	// Reason is the CPS §4.9.9 code; 0 is written without a reasonCode
	// extension (see the package doc).
	Reason Reason
}

// Entries yields revoked entries in strictly ascending serial order and
// returns the source's error, if any. Write calls it twice (sizing, then
// encoding); both calls must yield the same entries, so iterate a consistent
// snapshot (one read transaction). When yield returns false the source must
// stop and return.
type Entries func(yield func(Entry) bool) error

// SliceEntries adapts an in-memory, already sorted slice (tests, small ARLs).
func SliceEntries(es []Entry) Entries {
	return func(yield func(Entry) bool) error {
		for _, e := range es {
			if !yield(e) {
				return nil
			}
		}
		return nil
	}
}

// IssuingDistributionPoint is the RFC 5280 §5.2.5 extension, written
// critical. It scopes a partitioned CRL or marks the ARL.
type IssuingDistributionPoint struct {
	// URIs name the distribution point (fullName, uniformResourceIdentifier).
	URIs []string
	// OnlyContainsUserCerts: the CRL lists only end-entity certificates.
	OnlyContainsUserCerts bool
	// OnlyContainsCACerts: the ARL (CPS §7.2(2)(3): self-signed and link
	// certificates).
	OnlyContainsCACerts bool
}

// Params describes one CRL. Issuer, Signer, Number and ThisUpdate are
// required.
type Params struct {
	// Issuer is the CA certificate whose key signs: a CA with cRLSign.
	Issuer *x509.Certificate
	// Signer holds the CA key (an HSM signer in production): RSA, with the
	// same public key as Issuer. It signs a SHA-256 digest with PKCS #1 v1.5
	// (sha256WithRSAEncryption, TS Art. 2). If it has a method
	// SignContext(ctx, digest, opts), Write calls that.
	Signer crypto.Signer
	// Number is the cRLNumber: ≥ 0, at most 20 octets, increasing within
	// the series (RFC 5280 §5.2.3).
	Number *big.Int
	// ThisUpdate is the issue instant (whole seconds are written).
	ThisUpdate time.Time
	// NextUpdate defaults to ThisUpdate + DefaultValidity (CPS §4.9.7).
	NextUpdate time.Time
	// AuthorityKeyID defaults to Issuer.SubjectKeyId; one of them is
	// required (RFC 5280 §5.2.1: conforming CAs MUST include it).
	AuthorityKeyID []byte
	// IssuingDistributionPoint is nil for a full CRL.
	IssuingDistributionPoint *IssuingDistributionPoint
}

// Result describes a written CRL.
type Result struct {
	Entries    int
	Bytes      int64
	ThisUpdate time.Time
	NextUpdate time.Time
	// TBSHash is the SHA-256 of the TBSCertList that was signed.
	TBSHash []byte
}

type contextSigner interface {
	SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error)
}

// Write encodes the CRL described by p with the entries of src, signs it and
// writes its DER to w. It checks, in this order: parameters (ErrParams), the
// issuer certificate (ErrIssuer: a CA with cRLSign), the signer's key
// (ErrKeyMismatch: a wrong HSM object must never sign), then every entry in
// the sizing pass (ErrEntry, ErrOrder, ErrSource) before writing anything.
// Errors after writing began (ErrSourceChanged, ErrSign, ErrWrite, ctx) leave
// a partial, unusable output: write to a temporary file (Archive does).
// The signature is verified with the issuer's key before it is written, so a
// faulty signer cannot produce a CRL that fails to verify.
func Write(ctx context.Context, w io.Writer, p Params, src Entries) (Result, error) {
	h, err := prepare(p)
	if err != nil {
		return Result{}, err
	}
	if src == nil {
		return Result{}, fmt.Errorf("%w: no entry source", ErrParams)
	}

	// Pass 1: validate, count and size the entries; fingerprint them to
	// detect a source that changes between the passes.
	sizing, err := walk(ctx, src, nil)
	if err != nil {
		return Result{}, err
	}

	var revokedHeader []byte
	if sizing.count > 0 { // RFC 5280 §5.1.2.6: absent when empty
		revokedHeader = appendHeader(nil, tagSequence, sizing.bytes)
	}
	tbsLen := int64(len(h.beforeEntries)) + int64(len(revokedHeader)) + sizing.bytes + int64(len(h.afterEntries))
	tbsHeader := appendHeader(nil, tagSequence, tbsLen)
	sigBits := appendHeader(nil, tagBitString, int64(1+h.sigLen))
	sigBits = append(sigBits, 0) // no unused bits
	outerLen := int64(len(tbsHeader)) + tbsLen + int64(len(sigAlgSHA256RSA)) + int64(len(sigBits)) + int64(h.sigLen)
	outerHeader := appendHeader(nil, tagSequence, outerLen)

	// Pass 2: write and hash.
	bw := bufio.NewWriterSize(w, bufferSize)
	digest := sha256.New()
	out := &hashingWriter{w: bw, h: digest}
	out.hashing = false
	out.write(outerHeader)
	out.hashing = true
	out.write(tbsHeader)
	out.write(h.beforeEntries)
	out.write(revokedHeader)
	encoding, err := walk(ctx, src, func(der []byte) bool {
		out.write(der)
		return out.err == nil
	})
	if out.err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrWrite, out.err)
	}
	if err != nil {
		return Result{}, err
	}
	if encoding != sizing {
		return Result{}, fmt.Errorf("%w: %d entries (%d bytes) then %d (%d bytes)",
			ErrSourceChanged, sizing.count, sizing.bytes, encoding.count, encoding.bytes)
	}
	out.write(h.afterEntries)
	out.hashing = false
	sum := digest.Sum(nil)

	sig, err := h.sign(ctx, sum)
	if err != nil {
		return Result{}, err
	}
	out.write(sigAlgSHA256RSA)
	out.write(sigBits)
	out.write(sig)
	if out.err == nil {
		out.err = bw.Flush()
	}
	if out.err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrWrite, out.err)
	}
	if want := int64(len(outerHeader)) + outerLen; out.n != want {
		// Unreachable unless the length arithmetic is wrong.
		return Result{}, fmt.Errorf("%w: wrote %d bytes, computed %d", ErrWrite, out.n, want)
	}
	return Result{
		Entries:    sizing.count,
		Bytes:      out.n,
		ThisUpdate: h.thisUpdate,
		NextUpdate: h.nextUpdate,
		TBSHash:    sum,
	}, nil
}

// prepared holds the checked parameters and the fixed parts of the TBS.
type prepared struct {
	signer        crypto.Signer
	pub           *rsa.PublicKey
	sigLen        int
	thisUpdate    time.Time
	nextUpdate    time.Time
	beforeEntries []byte // version … nextUpdate
	afterEntries  []byte // [0] extensions
}

func prepare(p Params) (*prepared, error) {
	switch {
	case p.Issuer == nil:
		return nil, fmt.Errorf("%w: no issuer certificate", ErrParams)
	case p.Signer == nil:
		return nil, fmt.Errorf("%w: no signer", ErrParams)
	case p.Number == nil:
		return nil, fmt.Errorf("%w: no CRL number", ErrParams)
	case p.Number.Sign() < 0:
		return nil, fmt.Errorf("%w: negative CRL number", ErrParams)
	case len(p.Number.Bytes()) > maxSerialOctets ||
		len(p.Number.Bytes()) == maxSerialOctets && p.Number.Bytes()[0]&0x80 != 0:
		return nil, fmt.Errorf("%w: CRL number longer than 20 octets (RFC 5280 §5.2.3)", ErrParams)
	case p.ThisUpdate.IsZero():
		return nil, fmt.Errorf("%w: no thisUpdate", ErrParams)
	}
	this := p.ThisUpdate.UTC().Truncate(time.Second)
	next := p.NextUpdate
	if next.IsZero() {
		next = this.Add(DefaultValidity)
	}
	next = next.UTC().Truncate(time.Second)
	if !next.After(this) {
		return nil, fmt.Errorf("%w: nextUpdate %v not after thisUpdate %v", ErrParams,
			next.Format(time.RFC3339), this.Format(time.RFC3339))
	}
	if !timeEncodable(this) || !timeEncodable(next) {
		return nil, fmt.Errorf("%w: time outside 1950–9999", ErrParams)
	}
	aki := p.AuthorityKeyID
	if len(aki) == 0 {
		aki = p.Issuer.SubjectKeyId
	}
	if len(aki) == 0 {
		return nil, fmt.Errorf("%w: no authority key identifier and the issuer has no subject key identifier", ErrParams)
	}
	if idp := p.IssuingDistributionPoint; idp != nil {
		if idp.OnlyContainsCACerts && idp.OnlyContainsUserCerts {
			return nil, fmt.Errorf("%w: distribution point for both CA and user certificates only", ErrParams)
		}
		for _, u := range idp.URIs {
			if u == "" || !isIA5(u) {
				return nil, fmt.Errorf("%w: distribution point URI %q is not IA5", ErrParams, u)
			}
		}
		if len(idp.URIs) == 0 && !idp.OnlyContainsCACerts && !idp.OnlyContainsUserCerts {
			return nil, fmt.Errorf("%w: empty issuing distribution point (RFC 5280 §5.2.5)", ErrParams)
		}
	}

	c := p.Issuer
	if !c.BasicConstraintsValid || !c.IsCA {
		return nil, fmt.Errorf("%w: not a CA certificate", ErrIssuer)
	}
	if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return nil, fmt.Errorf("%w: no cRLSign key usage", ErrIssuer)
	}
	caPub, ok := c.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: key is not RSA (TS Art. 2)", ErrIssuer)
	}
	if !caPub.Equal(p.Signer.Public()) {
		return nil, ErrKeyMismatch
	}

	before := []byte{tagInteger, 1, 1} // version v2
	before = append(before, sigAlgSHA256RSA...)
	before = append(before, c.RawSubject...)
	before = appendTime(before, this)
	before = appendTime(before, next)

	var exts []byte
	exts = appendExtension(exts, oidAuthorityKeyID, false, appendOctetStringInSequence(aki))
	exts = appendExtension(exts, oidCRLNumber, false, appendInteger(nil, p.Number.Bytes()))
	if p.IssuingDistributionPoint != nil {
		exts = appendExtension(exts, oidIssuingDistributionPoint, true, encodeIDP(p.IssuingDistributionPoint))
	}
	seq := appendHeader(nil, tagSequence, int64(len(exts)))
	seq = append(seq, exts...)
	after := appendHeader(nil, tagContext0Constructed, int64(len(seq)))
	after = append(after, seq...)

	return &prepared{
		signer:        p.Signer,
		pub:           caPub,
		sigLen:        caPub.Size(),
		thisUpdate:    this,
		nextUpdate:    next,
		beforeEntries: before,
		afterEntries:  after,
	}, nil
}

func (h *prepared) sign(ctx context.Context, digest []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("crl: %w", err)
	}
	var sig []byte
	var err error
	if cs, ok := h.signer.(contextSigner); ok {
		sig, err = cs.SignContext(ctx, digest, crypto.SHA256)
	} else {
		sig, err = h.signer.Sign(rand.Reader, digest, crypto.SHA256)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSign, err)
	}
	if len(sig) != h.sigLen {
		return nil, fmt.Errorf("%w: signature of %d bytes, want %d", ErrSign, len(sig), h.sigLen)
	}
	if err := rsa.VerifyPKCS1v15(h.pub, crypto.SHA256, digest, sig); err != nil {
		return nil, fmt.Errorf("%w: signature does not verify with the issuer key: %w", ErrSign, err)
	}
	return sig, nil
}

// passSummary identifies the entries a pass saw.
type passSummary struct {
	count int
	bytes int64
	crc   uint32
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// walk iterates src once, validating and encoding each entry; emit (nil in
// the sizing pass) receives each encoded entry and returns false to stop.
func walk(ctx context.Context, src Entries, emit func([]byte) bool) (passSummary, error) {
	var (
		sum     passSummary
		scratch [80]byte
		prev    [maxSerialOctets]byte
		prevLen = -1
		failure error
	)
	srcErr := src(func(e Entry) bool {
		serial := trimLeadingZeros(e.Serial)
		switch {
		case len(serial) == 0:
			failure = fmt.Errorf("%w: entry %d: serial is zero or empty", ErrEntry, sum.count)
		case len(serial) > maxSerialOctets || len(serial) == maxSerialOctets && serial[0]&0x80 != 0:
			// The DER INTEGER of a 20-octet magnitude with its top bit set needs a
			// leading zero octet: 21 octets, which no conforming CA uses (RFC 5280
			// §4.1.2.2), the same bound as the CRL number's above.
			failure = fmt.Errorf("%w: entry %d: serial of %d octets with top bit %d (RFC 5280 §4.1.2.2: at most 20 in DER)", ErrEntry, sum.count, len(serial), serial[0]>>7)
		case !e.Reason.Valid():
			failure = fmt.Errorf("%w: entry %d: reason code %d is not one of 0–6 (CPS §4.9.9)", ErrEntry, sum.count, e.Reason)
		case e.RevokedAt.IsZero() || !timeEncodable(e.RevokedAt.UTC()):
			failure = fmt.Errorf("%w: entry %d: revocation time %v", ErrEntry, sum.count, e.RevokedAt)
		case prevLen >= 0 && compareSerial(prev[:prevLen], serial) >= 0:
			failure = fmt.Errorf("%w: serial %x after %x", ErrOrder, serial, prev[:prevLen])
		}
		if failure != nil {
			return false
		}
		prevLen = copy(prev[:], serial)
		der := appendEntry(scratch[:0], serial, e.RevokedAt, e.Reason)
		sum.count++
		sum.bytes += int64(len(der))
		sum.crc = crc32.Update(sum.crc, castagnoli, der)
		if sum.count%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				failure = fmt.Errorf("crl: %w", err)
				return false
			}
		}
		if emit != nil && !emit(der) {
			failure = errStopped
			return false
		}
		return true
	})
	if failure == errStopped {
		return sum, nil // the caller reports its own error
	}
	if failure != nil {
		return sum, failure
	}
	if srcErr != nil {
		return sum, fmt.Errorf("%w: %w", ErrSource, srcErr)
	}
	if err := ctx.Err(); err != nil {
		return sum, fmt.Errorf("crl: %w", err)
	}
	return sum, nil
}

var errStopped = errors.New("crl: stopped")

func trimLeadingZeros(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// compareSerial compares two unsigned magnitudes without leading zeros.
func compareSerial(a, b []byte) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return bytes.Compare(a, b)
}

// hashingWriter counts, optionally hashes, and remembers the first error.
type hashingWriter struct {
	w       io.Writer
	h       hash.Hash
	hashing bool
	n       int64
	err     error
}

func (o *hashingWriter) write(b []byte) {
	if o.err != nil || len(b) == 0 {
		return
	}
	if o.hashing {
		o.h.Write(b)
	}
	n, err := o.w.Write(b)
	o.n += int64(n)
	o.err = err
}
