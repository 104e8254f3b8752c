package ceremony

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Fingerprints are the hashes of a certificate's DER encoding that the CA
// publishes so relying parties can check the CA certificate they hold
// (G Art. 10(ii): SHA-256, and SHA-1 as well). Lower-case hex, no colons.
type Fingerprints struct {
	SHA256 string `json:"sha256"`
	SHA1   string `json:"sha1"`
}

// FingerprintsOf hashes a certificate's DER.
func FingerprintsOf(der []byte) Fingerprints {
	s256 := sha256.Sum256(der)
	s1 := sha1.Sum(der) // G Art. 10(ii) asks for SHA-1 too; identification only, not security
	return Fingerprints{SHA256: hex.EncodeToString(s256[:]), SHA1: hex.EncodeToString(s1[:])}
}

// Colons formats a hex fingerprint as upper-case pairs joined by colons,
// as `openssl x509 -fingerprint` prints it (the usual published form).
func Colons(hexFP string) string {
	u := strings.ToUpper(hexFP)
	var b strings.Builder
	for i := 0; i+1 < len(u); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(u[i : i+2])
	}
	return b.String()
}

// PublishedCertificate is one certificate whose fingerprints the CA
// publishes: a CA certificate of one key generation, or a link certificate.
type PublishedCertificate struct {
	Role       string
	Generation int    // key generation (the new one for a link certificate)
	Kind       string // "ca", LinkOldWithNew or LinkNewWithOld
	Status     string // key status, for "ca"
	Path       string
	Subject    string
	NotBefore  string
	NotAfter   string
	Fingerprints
}

// PublishedFingerprints lists the fingerprints of every CA and link
// certificate in the key inventory, recomputed from the certificate files
// and checked against the recorded values: a certificate file that no
// longer matches what the ceremony recorded is an error (ErrKeyMismatch),
// never published. States written before fingerprints were recorded are
// computed from the files.
func PublishedFingerprints(st *State) ([]PublishedCertificate, error) {
	var out []PublishedCertificate
	add := func(role string, gen int, kind, status, path string, recorded *Fingerprints) error {
		cert, err := readCertFile(path)
		if err != nil {
			return err
		}
		fp := FingerprintsOf(cert.Raw)
		if recorded != nil && *recorded != fp {
			return fmt.Errorf("%w: %s no longer has the recorded fingerprint %s", ErrKeyMismatch, path, recorded.SHA256)
		}
		out = append(out, PublishedCertificate{Role: role, Generation: gen, Kind: kind, Status: status, Path: path,
			Subject: cert.Subject.String(), NotBefore: cert.NotBefore.UTC().Format("2006-01-02T15:04:05Z"),
			NotAfter: cert.NotAfter.UTC().Format("2006-01-02T15:04:05Z"), Fingerprints: fp})
		return nil
	}
	for _, k := range st.Keys {
		if !k.IsCA() || k.Certificate == "" {
			continue
		}
		if err := add(k.Role, k.Gen(), "ca", k.KeyStatus(), k.Certificate, k.Fingerprints); err != nil {
			return nil, err
		}
	}
	for _, l := range st.Links {
		if err := add(l.Role, l.NewGeneration, l.Kind, "", l.Certificate, &l.Fingerprints); err != nil {
			return nil, err
		}
	}
	return out, nil
}
