// Package holder is the holder's own command, run on the holder's computer with a card
// reader, not at the counter: `madoguchi holder revoke` asks the CA to revoke the holder's
// signature certificate online, signed with the card's signature key (CPS §4.9.3.1(1);
// jpki/wire/holder.go for the format and why it is a signed JSON object).
//
// The signature PIN is read from a file descriptor (-pin-fd) or standard input, never from the
// command line; it goes to the card once and is zeroed. Messages to the holder are Japanese,
// from the terminal's translation files (assets/translations: every failure is an apperr kind
// with a detail code, "holder.…" or the CA's wire code), followed by the English error.
package holder

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/assets/translations"
	"madoguchi/cardio"
	"madoguchi/cardio/pcsc"
	"madoguchi/jpki/wire"
)

// Env is what a run needs from its process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Clock          func() time.Time // nil: time.Now
}

const usage = `usage: madoguchi holder revoke -ca-url URL [-ca-root PEM] [-ack-key PEM] [-reader NAME] [-pin-fd N] [-save-request FILE] [-o ACK.json]
  revoke   revoke your signature certificate online, signed with the card's signature key
           (the signature PIN is read from -pin-fd, or standard input; never from the command line)`

// Run runs `madoguchi holder ARGS` and returns the exit code: 0 done, 1 refused or failed,
// 2 usage.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Clock == nil {
		env.Clock = time.Now
	}
	if len(args) == 0 || args[0] != "revoke" {
		fmt.Fprintln(env.Stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("holder revoke", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	caURL := fs.String("ca-url", "", "https URL of the CA's public listener")
	caRoot := fs.String("ca-root", "", "PEM file of the certificate that signs the CA server's TLS certificate (default: the system roots)")
	ackKey := fs.String("ack-key", "", "PEM file of the CA's published audit key certificate, which signs acknowledgements (default: the one the answer carries; compare its fingerprint with the published one)")
	reader := fs.String("reader", "", "PC/SC reader (default: the first)")
	pinFD := fs.Int("pin-fd", 0, "file descriptor the signature PIN is read from (0: standard input)")
	save := fs.String("save-request", "", "keep a copy of the signed request in FILE")
	out := fs.String("o", "", "write the CA's signed acknowledgement (JSON) to FILE")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 || *caURL == "" {
		fmt.Fprintln(env.Stderr, usage)
		return 2
	}
	r := revoker{env: env, caURL: strings.TrimSuffix(*caURL, "/"), caRoot: *caRoot, ackKey: *ackKey, reader: *reader, pinFD: *pinFD, save: *save, out: *out}
	if err := r.run(ctx); err != nil {
		fmt.Fprintf(env.Stderr, "%s\n%v\n", say("holder.failed", map[string]any{"Text": translations.ErrorText(lang, err)}), err)
		return 1
	}
	return 0
}

type revoker struct {
	env                                 Env
	caURL, caRoot, ackKey, reader, save string
	out                                 string
	pinFD                               int
}

// lang is the language of the holder's messages.
const lang = "ja"

// say returns the translation of key filled from args.
func say(key string, args map[string]any) string { return translations.Text(lang, key, args) }

// fail is a failure of this command: kind, detail code (worded by assets/translations), the
// English message and the cause.
func fail(kind apperr.Kind, detail string, err error, msg string) *apperr.Error {
	return apperr.WithDetail(kind, detail, err, "holder: "+msg)
}

// Error is a refusal by the CA: its code and message. Its detail code is the CA's code where
// the holder is told something particular about it, else "holder.ca_refused".
type Error struct {
	Code    wire.Code
	Message string
	Status  int
}

func (e *Error) Error() string {
	return fmt.Sprintf("holder: the CA refused the revocation (HTTP %d, %s: %s)", e.Status, e.Code, e.Message)
}

// ErrorKind implements apperr.Kinded.
func (e *Error) ErrorKind() apperr.Kind {
	if e.Code == wire.CodeRateLimited {
		return apperr.CAUnavailable
	}
	return apperr.InvalidInput
}

// ErrorDetail implements apperr.Detailed.
func (e *Error) ErrorDetail() string {
	switch e.Code {
	case wire.CodeHolderSignatureInvalid, wire.CodeOnlineSignatureOnly, wire.CodeRequestStale, wire.CodeRequestReplayed,
		wire.CodeAlreadyRevoked, wire.CodeCertificateExpired, wire.CodeRateLimited:
		return string(e.Code)
	}
	return "holder.ca_refused"
}

func (r *revoker) run(ctx context.Context) error {
	pin, err := r.readPIN()
	if err != nil {
		return err
	}
	defer clear(pin)
	req, cert, err := r.sign(ctx, pin)
	if err != nil {
		return err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if r.save != "" {
		if err := os.WriteFile(r.save, body, 0o600); err != nil {
			return fail(apperr.Internal, "holder.save_request", err, "save the request")
		}
	}
	signed, err := r.post(ctx, body)
	if err != nil {
		return err
	}
	pub, pinned, err := r.ackPublicKey(signed)
	if err != nil {
		return err
	}
	if err := wire.VerifyRevocationAck(pub, signed); err != nil {
		return fail(apperr.Internal, "holder.ack_signature", err, "verify the acknowledgement's signature")
	}
	if signed.Ack.Serial != strings.ToLower(cert.SerialNumber.Text(16)) {
		e := fail(apperr.Internal, "holder.ack_serial", nil, "the acknowledgement names serial "+signed.Ack.Serial+", not the one requested")
		e.Args = map[string]string{"Serial": signed.Ack.Serial}
		return e
	}
	if r.out != "" {
		b, _ := json.MarshalIndent(signed, "", "  ")
		if err := os.WriteFile(r.out, b, 0o600); err != nil {
			return fail(apperr.Internal, "holder.save_ack", err, "save the acknowledgement")
		}
	}
	a := signed.Ack
	fmt.Fprintf(r.env.Stdout, "%s / signature certificate revoked\n", say("holder.revoked", nil))
	fmt.Fprintf(r.env.Stdout, "serial %s, reason %d (%s, %s), revoked at %s\n", a.Serial, a.Reason, a.ReasonName, a.ReasonJa, a.RevokedAt.Local().Format(time.RFC3339))
	fp := sha256.Sum256(signed.KeyCertificate)
	how := "checked with the key certificate in the answer: compare its fingerprint with the CA's published one"
	if pinned {
		how = "checked with the CA's published audit key"
	}
	fmt.Fprintf(r.env.Stdout, "acknowledgement signed by %s (certificate sha256 %s); %s\n", signed.KeyID, hex.EncodeToString(fp[:]), how)
	return nil
}

// readPIN reads one line from -pin-fd or standard input.
func (r *revoker) readPIN() ([]byte, error) {
	in := r.env.Stdin
	if r.pinFD > 0 {
		f := os.NewFile(uintptr(r.pinFD), "pin-fd")
		if f == nil {
			e := fail(apperr.InvalidInput, "holder.pin_fd", nil, fmt.Sprintf("-pin-fd %d is not open", r.pinFD))
			e.Args = map[string]string{"FD": fmt.Sprint(r.pinFD)}
			return nil, e
		}
		defer f.Close()
		in = f
	} else {
		fmt.Fprint(r.env.Stderr, say("holder.pin_prompt", nil))
	}
	line, err := bufio.NewReader(in).ReadSlice('\n')
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		return nil, fail(apperr.InvalidInput, "holder.read_pin", nil, "no PIN on the input")
	}
	pin := bytes.Clone(bytes.TrimRight(line, "\r\n"))
	clear(line)
	return pin, nil
}

// sign verifies the signature PIN on the card, reads the signature certificate (the card
// guards it with that PIN), and has the card sign a new request for it.
func (r *revoker) sign(ctx context.Context, pin []byte) (wire.HolderRevocation, *x509.Certificate, error) {
	cl, err := pcsc.Open()
	if err != nil {
		return wire.HolderRevocation{}, nil, fail(apperr.Internal, "holder.reader", err, "open PC/SC")
	}
	defer cl.Close()
	name := r.reader
	if name == "" {
		readers, err := cl.Readers()
		if err != nil || len(readers) == 0 {
			return wire.HolderRevocation{}, nil, fail(apperr.Internal, "holder.no_reader", err, "no card reader")
		}
		name = readers[0]
	}
	pc, err := cl.Connect(name, pcsc.Exclusive)
	if err != nil {
		return wire.HolderRevocation{}, nil, fail(apperr.Internal, "holder.connect", err, "connect to the card")
	}
	defer pc.Close(true) // reset: the verified PIN does not outlive this command
	card := cardio.New(pc)
	if err := card.VerifyPIN(ctx, cardio.Signature, pin); err != nil {
		var pe *cardio.PINError
		switch {
		case errors.As(err, &pe) && errors.Is(err, cardio.ErrWrongPIN):
			e := fail(apperr.BadCredentials, "holder.wrong_pin", err, fmt.Sprintf("wrong signature PIN, %d tries left", pe.TriesLeft))
			e.Args = map[string]string{"Tries": fmt.Sprint(pe.TriesLeft)}
			return wire.HolderRevocation{}, nil, e
		case errors.Is(err, cardio.ErrPINBlocked):
			return wire.HolderRevocation{}, nil, fail(apperr.LockedOut, "holder.pin_blocked", err, "the signature PIN is blocked")
		}
		return wire.HolderRevocation{}, nil, fail(apperr.Internal, "holder.verify_pin", err, "verify the signature PIN")
	}
	certs, err := card.ReadCertificates(ctx)
	if err != nil || certs.Signature == nil {
		return wire.HolderRevocation{}, nil, fail(apperr.Internal, "holder.read_certificate", err, "read the signature certificate")
	}
	cert, err := x509.ParseCertificate(certs.Signature)
	if err != nil {
		return wire.HolderRevocation{}, nil, fail(apperr.Internal, "holder.read_certificate", err, "parse the signature certificate")
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return wire.HolderRevocation{}, nil, err
	}
	payload, err := wire.NewHolderRevocationPayload(cert.SerialNumber.Text(16), hex.EncodeToString(id), r.env.Clock())
	if err != nil {
		return wire.HolderRevocation{}, nil, err
	}
	sum := sha256.Sum256(payload)
	sig, err := card.Sign(ctx, cardio.Signature, DigestInfoSHA256(sum[:]))
	if err != nil {
		return wire.HolderRevocation{}, nil, fail(apperr.Internal, "holder.card_sign", err, "sign on the card")
	}
	// The card signed with the key of the certificate it holds: check before sending.
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
		return wire.HolderRevocation{}, nil, fail(apperr.Internal, "holder.signature_mismatch", nil, "the card's signature does not verify under the signature certificate")
	}
	return wire.HolderRevocation{Payload: payload, Signature: sig}, cert, nil
}

// DigestInfoSHA256 is the DER DigestInfo of a SHA-256 digest (RFC 8017 §9.2 note 1), what the
// card's COMPUTE DIGITAL SIGNATURE pads and signs.
func DigestInfoSHA256(sum []byte) []byte {
	prefix := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	return append(prefix, sum...)
}

func (r *revoker) client() (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if r.caRoot != "" {
		b, err := os.ReadFile(r.caRoot)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			e := fail(apperr.InvalidInput, "holder.ca_root", nil, r.caRoot+" holds no PEM certificate")
			e.Args = map[string]string{"File": r.caRoot}
			return nil, e
		}
		tc.RootCAs = pool
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}, nil
}

func (r *revoker) post(ctx context.Context, body []byte) (wire.SignedRevocationAck, error) {
	hc, err := r.client()
	if err != nil {
		return wire.SignedRevocationAck{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.caURL+"/v1/holder/revoke", bytes.NewReader(body))
	if err != nil {
		return wire.SignedRevocationAck{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return wire.SignedRevocationAck{}, fail(apperr.CAUnavailable, "holder.ca_connect", err, "reach the CA")
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return wire.SignedRevocationAck{}, err
	}
	if resp.StatusCode != http.StatusOK {
		var p wire.Problem
		json.Unmarshal(b, &p)
		return wire.SignedRevocationAck{}, &Error{Code: p.Code, Message: p.Message, Status: resp.StatusCode}
	}
	var signed wire.SignedRevocationAck
	if err := json.Unmarshal(b, &signed); err != nil {
		return wire.SignedRevocationAck{}, fail(apperr.Internal, "holder.ca_answer", err, "read the CA's answer")
	}
	return signed, nil
}

// ackPublicKey is the key the acknowledgement is checked with: the published audit key
// certificate given with -ack-key (pinned), else the one in the answer.
func (r *revoker) ackPublicKey(s wire.SignedRevocationAck) (crypto.PublicKey, bool, error) {
	der := s.KeyCertificate
	if r.ackKey != "" {
		b, err := os.ReadFile(r.ackKey)
		if err != nil {
			return nil, false, err
		}
		if blk, _ := pem.Decode(b); blk != nil {
			b = blk.Bytes
		}
		der = b
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, false, fail(apperr.Internal, "holder.ack_key", err, "parse the CA's audit key certificate")
	}
	return c.PublicKey, r.ackKey != "", nil
}
