package issuer

import "fmt"

// Format prints only the CA certificate's subject and the key usage end, so
// that formatting a Config with any verb (%v, %+v, %#v) can never print the
// signer, which may be a private key in tests.
func (c Config) Format(f fmt.State, _ rune) {
	subject := "<none>"
	if c.Certificate != nil {
		subject = c.Certificate.Subject.String()
	}
	fmt.Fprintf(f, "issuer.Config{CA: %q, KeyUsableUntil: %s}", subject, c.KeyUsableUntil.UTC().Format("2006-01-02T15:04:05Z"))
}

// Format prints only the CA certificate's subject; see Config.Format.
func (i *Issuer) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "issuer.Issuer{CA: %q}", i.cert.Subject.String())
}
