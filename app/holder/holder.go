// Package holder is the holder's own command, run on the holder's computer with a card
// reader, not at the counter: `madoguchi holder revoke` asks the CA to revoke the holder's
// signature certificate online, signed with the card's signature key (CPS §4.9.3.1(1);
// jpki/wire/holder.go for the format and why it is a signed JSON object).
//
// The signature PIN is read from a file descriptor (-pin-fd) or standard input, never from the
// command line; it goes to the card once and is zeroed. Messages to the holder are Japanese;
// the CA's error codes are printed too.
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
		fmt.Fprintf(env.Stderr, "エラー: %s\n", err)
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

// Error is a refusal by the CA: its code and message, with a Japanese explanation.
type Error struct {
	Code    wire.Code
	Message string
	Status  int
}

func (e *Error) Error() string {
	ja := map[wire.Code]string{
		wire.CodeHolderSignatureInvalid: "署名を検証できませんでした(このカードの署名用電子証明書ではありません)",
		wire.CodeOnlineSignatureOnly:    "オンラインで失効できるのは署名用電子証明書だけです。利用者証明用電子証明書は市区町村の窓口で失効を申請してください",
		wire.CodeRequestStale:           "申請の署名時刻がずれています。パソコンの時計を合わせてからやり直してください",
		wire.CodeRequestReplayed:        "この申請は既に受け付けられています",
		wire.CodeAlreadyRevoked:         "この電子証明書は既に失効しています",
		wire.CodeCertificateExpired:     "この電子証明書は有効期間が過ぎています",
		wire.CodeRateLimited:            "混み合っています。しばらくしてからやり直してください",
	}[e.Code]
	if ja == "" {
		ja = "認証局が申請を受け付けませんでした"
	}
	return fmt.Sprintf("%s(%s: %s)", ja, e.Code, e.Message)
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
			return fmt.Errorf("申請の控えを保存できません: %w", err)
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
		return fmt.Errorf("認証局の受付通知の署名を検証できません: %w", err)
	}
	if signed.Ack.Serial != strings.ToLower(cert.SerialNumber.Text(16)) {
		return fmt.Errorf("受付通知のシリアル番号 %s が申請と異なります", signed.Ack.Serial)
	}
	if r.out != "" {
		b, _ := json.MarshalIndent(signed, "", "  ")
		if err := os.WriteFile(r.out, b, 0o600); err != nil {
			return fmt.Errorf("受付通知を保存できません: %w", err)
		}
	}
	a := signed.Ack
	fmt.Fprintf(r.env.Stdout, "署名用電子証明書を失効しました / signature certificate revoked\n")
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
			return nil, fmt.Errorf("-pin-fd %d は開いていません", r.pinFD)
		}
		defer f.Close()
		in = f
	} else {
		fmt.Fprint(r.env.Stderr, "署名用電子証明書の暗証番号: ")
	}
	line, err := bufio.NewReader(in).ReadSlice('\n')
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		return nil, errors.New("暗証番号を読み取れません")
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
		return wire.HolderRevocation{}, nil, fmt.Errorf("カードリーダーを使えません: %w", err)
	}
	defer cl.Close()
	name := r.reader
	if name == "" {
		readers, err := cl.Readers()
		if err != nil || len(readers) == 0 {
			return wire.HolderRevocation{}, nil, errors.New("カードリーダーが見つかりません")
		}
		name = readers[0]
	}
	pc, err := cl.Connect(name, pcsc.Exclusive)
	if err != nil {
		return wire.HolderRevocation{}, nil, fmt.Errorf("カードに接続できません: %w", err)
	}
	defer pc.Close(true) // reset: the verified PIN does not outlive this command
	card := cardio.New(pc)
	if err := card.VerifyPIN(ctx, cardio.Signature, pin); err != nil {
		var pe *cardio.PINError
		switch {
		case errors.As(err, &pe) && errors.Is(err, cardio.ErrWrongPIN):
			return wire.HolderRevocation{}, nil, fmt.Errorf("暗証番号が違います(残り %d 回)", pe.TriesLeft)
		case errors.Is(err, cardio.ErrPINBlocked):
			return wire.HolderRevocation{}, nil, errors.New("署名用電子証明書の暗証番号がロックされています。市区町村の窓口で失効を申請してください")
		}
		return wire.HolderRevocation{}, nil, fmt.Errorf("暗証番号を照合できません: %w", err)
	}
	certs, err := card.ReadCertificates(ctx)
	if err != nil || certs.Signature == nil {
		return wire.HolderRevocation{}, nil, fmt.Errorf("署名用電子証明書を読み取れません: %v", err)
	}
	cert, err := x509.ParseCertificate(certs.Signature)
	if err != nil {
		return wire.HolderRevocation{}, nil, fmt.Errorf("署名用電子証明書を読み取れません: %w", err)
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
		return wire.HolderRevocation{}, nil, fmt.Errorf("カードで署名できません: %w", err)
	}
	// The card signed with the key of the certificate it holds: check before sending.
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
		return wire.HolderRevocation{}, nil, errors.New("カードの署名が署名用電子証明書と一致しません")
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
			return nil, fmt.Errorf("%s に証明書がありません", r.caRoot)
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
		return wire.SignedRevocationAck{}, fmt.Errorf("認証局に接続できません: %w", err)
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
		return wire.SignedRevocationAck{}, fmt.Errorf("認証局の応答を読み取れません: %w", err)
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
		return nil, false, fmt.Errorf("認証局の監査鍵の証明書を読み取れません: %w", err)
	}
	return c.PublicKey, r.ackKey != "", nil
}
