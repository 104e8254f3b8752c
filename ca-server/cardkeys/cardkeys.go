// Package cardkeys is the host end of the card secure channel with the card
// issuer master keys held in the HSM: it implements scp.HostKeys and wraps a
// user's private key for one card session, so no card key and no user key
// ever exists outside the HSM on the CA side (TS Arts. 5(iv), 6(ii), 7(ii)).
//
// Card static keys are diversified per card, K = AES-ECB(MK, serial16)
// (docs/ARCHITECTURE.md "Secure channel"), by CKM_AES_ECB_ENCRYPT_DATA into
// session objects that live only for one call and are destroyed before it
// returns, whether it succeeds or fails.
//
// Concurrency: an *Issuer is safe for concurrent use; it holds only key
// handles and borrows HSM sessions per operation.
package cardkeys

import (
	"context"
	"errors"
	"fmt"

	"madoguchi/ca-server/hsm"
	"madoguchi/cardio/scp"
)

// Labels of the card issuer master keys in the token (created by the key
// ceremony, AES-128, derive-only, sensitive, and extractable only wrapped
// under the custodians' trusted backup KEK: CKA_WRAP_WITH_TRUSTED).
const (
	LabelMasterENC = "MK-ENC"
	LabelMasterMAC = "MK-MAC"
	LabelMasterDEK = "MK-DEK"
)

// ErrBadInput: wrong lengths or key kinds; nothing was done in the HSM.
var ErrBadInput = errors.New("cardkeys: bad input")

// Issuer derives card keys from the master keys in the HSM.
type Issuer struct {
	h             *hsm.HSM
	enc, mac, dek hsm.Key
}

var _ scp.HostKeys = (*Issuer)(nil)

// New finds the three master keys in the token by label.
func New(ctx context.Context, h *hsm.HSM) (*Issuer, error) {
	is := &Issuer{h: h}
	for _, m := range []struct {
		label string
		dst   *hsm.Key
	}{{LabelMasterENC, &is.enc}, {LabelMasterMAC, &is.mac}, {LabelMasterDEK, &is.dek}} {
		k, err := h.FindKey(ctx, hsm.KeyQuery{Kind: hsm.KindAES, Label: m.label})
		if err != nil {
			return nil, fmt.Errorf("cardkeys: master key %s: %w", m.label, err)
		}
		*m.dst = k
	}
	return is, nil
}

func (is *Issuer) master(kind scp.KeyKind) (hsm.Key, error) {
	switch kind {
	case scp.KeyENC:
		return is.enc, nil
	case scp.KeyMAC:
		return is.mac, nil
	case scp.KeyDEK:
		return is.dek, nil
	}
	return hsm.Key{}, fmt.Errorf("%w: key kind %v", ErrBadInput, kind)
}

func checkSerial(serial []byte) error {
	if len(serial) != scp.SerialLen {
		return fmt.Errorf("%w: card serial of %d bytes (want %d)", ErrBadInput, len(serial), scp.SerialLen)
	}
	return nil
}

// CardCMAC implements scp.HostKeys: AES-CMAC of data under the card's K-ENC
// or K-MAC. K-DEK is refused: it only ever wraps (through WrapForCard).
func (is *Issuer) CardCMAC(ctx context.Context, kind scp.KeyKind, serial []byte, data []byte) (out []byte, err error) {
	if kind != scp.KeyENC && kind != scp.KeyMAC {
		return nil, fmt.Errorf("%w: cmac under %v is not allowed", ErrBadInput, kind)
	}
	if err := checkSerial(serial); err != nil {
		return nil, err
	}
	mk, _ := is.master(kind)
	k, err := is.h.DeriveAESECB(ctx, mk, serial, kind.String(), hsm.KeyOptions{Usage: hsm.UseSign})
	if err != nil {
		return nil, fmt.Errorf("cardkeys: derive %v: %w", kind, err)
	}
	defer func() { err = errors.Join(err, destroy(is.h, k)) }()
	out, err = is.h.CMAC(ctx, k, data)
	if err != nil {
		return nil, fmt.Errorf("cardkeys: cmac under %v: %w", kind, err)
	}
	return out, nil
}

// WrapForCard wraps the user's private key for one card session and then
// destroys it in the HSM. S-DEK = AES-ECB(K-DEK, host challenge ‖ card
// challenge), K-DEK = AES-ECB(MK-DEK, serial); the key is wrapped with RFC
// 5649 as PKCS#8 (SoftHSM pads it with zeros to a multiple of 8 first).
//
// userKey must be a session key pair generated hsm.ExtractableForCard.
// Whatever the outcome, S-DEK, K-DEK and the user key pair are destroyed
// before WrapForCard returns: TS Art. 5(iv), CPS §6.2.3–6.2.6: the private
// key leaves the HSM only encrypted for its card and the CA keeps no copy
// (no escrow); if wrapping fails, the key is useless and is not kept either.
func (is *Issuer) WrapForCard(ctx context.Context, serial, hostChallenge, cardChallenge []byte, userKey hsm.RSAKeyPair) (wrapped []byte, err error) {
	defer func() {
		// The user key goes whatever happens. Use a fresh context so a
		// cancelled request cannot leave the key behind.
		dctx := context.WithoutCancel(ctx)
		err = errors.Join(err, destroyCtx(dctx, is.h, userKey.Private), destroyCtx(dctx, is.h, userKey.Public))
		if err != nil {
			wrapped = nil
		}
	}()
	if err := checkSerial(serial); err != nil {
		return nil, err
	}
	if len(hostChallenge) != scp.ChallengeLen || len(cardChallenge) != scp.ChallengeLen {
		return nil, fmt.Errorf("%w: challenges of %d and %d bytes (want %d)", ErrBadInput, len(hostChallenge), len(cardChallenge), scp.ChallengeLen)
	}
	if userKey.Private.Kind != hsm.KindRSAPrivate {
		return nil, fmt.Errorf("%w: user key is a %s key", ErrBadInput, userKey.Private.Kind)
	}
	kdek, err := is.h.DeriveAESECB(ctx, is.dek, serial, "K-DEK", hsm.KeyOptions{Usage: hsm.UseDerive})
	if err != nil {
		return nil, fmt.Errorf("cardkeys: derive K-DEK: %w", err)
	}
	defer func() { err = errors.Join(err, destroy(is.h, kdek)) }()
	challenges := append(append(make([]byte, 0, 2*scp.ChallengeLen), hostChallenge...), cardChallenge...)
	sdek, err := is.h.DeriveAESECB(ctx, kdek, challenges, "S-DEK", hsm.KeyOptions{Usage: hsm.UseWrap})
	if err != nil {
		return nil, fmt.Errorf("cardkeys: derive S-DEK: %w", err)
	}
	defer func() { err = errors.Join(err, destroy(is.h, sdek)) }()
	wrapped, err = is.h.WrapKWP(ctx, sdek, userKey.Private)
	if err != nil {
		return nil, fmt.Errorf("cardkeys: wrap user key: %w", err)
	}
	return wrapped, nil
}

// ExportCardKeys derives one card's three static keys and returns their
// values for the local card-manufacturing export (key ceremony card-batch):
// the derived copies are ExportInClear session objects, destroyed before
// return. Never called by the running CA.
func (is *Issuer) ExportCardKeys(ctx context.Context, serial []byte) (keys scp.CardKeys, err error) {
	if err := checkSerial(serial); err != nil {
		return scp.CardKeys{}, err
	}
	out := make([][]byte, 3)
	for i, kind := range []scp.KeyKind{scp.KeyENC, scp.KeyMAC, scp.KeyDEK} {
		mk, _ := is.master(kind)
		k, err := is.h.DeriveAESECB(ctx, mk, serial, kind.String()+"-export", hsm.KeyOptions{Extractable: hsm.ExportInClear})
		if err != nil {
			return scp.CardKeys{}, fmt.Errorf("cardkeys: derive %v: %w", kind, err)
		}
		v, err := is.h.SecretValue(ctx, k)
		err = errors.Join(err, destroy(is.h, k))
		if err != nil {
			return scp.CardKeys{}, fmt.Errorf("cardkeys: export %v: %w", kind, err)
		}
		out[i] = v
	}
	return scp.CardKeys{ENC: out[0], MAC: out[1], DEK: out[2]}, nil
}

func destroy(h *hsm.HSM, k hsm.Key) error {
	return destroyCtx(context.Background(), h, k)
}

func destroyCtx(ctx context.Context, h *hsm.HSM, k hsm.Key) error {
	if k.Kind == 0 {
		return nil
	}
	if err := h.Destroy(ctx, k); err != nil {
		return fmt.Errorf("cardkeys: destroy %s: %w", k.Label, err)
	}
	return nil
}
