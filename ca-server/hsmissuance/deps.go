package hsmissuance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"madoguchi/ca-server/ceremony"
	"madoguchi/ca-server/hsm"
	"madoguchi/ca-server/issuance"
	"madoguchi/ca-server/profile"
	"madoguchi/internal/wallclock"
)

// Options configures FromActive.
type Options struct {
	// Profiles holds the certificate profiles; nil means profile.Default().
	Profiles *profile.Set
	// PoolSize > 0 serves user keys from a pre-generated Pool of that size,
	// refilled by PoolWorkers goroutines (default 1); 0 generates each key
	// on the request path.
	PoolSize         int
	PoolWorkers      int
	PoolTokenObjects bool
	Logger           *slog.Logger
}

// Deps are the HSM-backed dependencies of issuance.Service.
type Deps struct {
	Keys       issuance.KeyGenerator
	Cards      *CardChannel
	Issuer     *Issuer
	Applicants ApplicantChecker
	Pool       *Pool // nil without a pool
}

// FromActive builds the issuance dependencies over an activated CA (the key
// ceremony's open token): the two CA keys as HSM signers with their usable
// periods from the recorded generation dates (TS Art. 8(3)), the card issuer
// master keys (cardkeys), the person-hash key, and the key generator or
// pool. Leftover user keys of a previous run are destroyed first (TS Art.
// 5(iv): no copy of a user key is kept). Close the Deps before the HSM.
func FromActive(ctx context.Context, a *ceremony.Active, opts Options) (*Deps, error) {
	if a == nil || a.HSM == nil || a.State == nil {
		return nil, errors.New("hsmissuance: an activated ca is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Profiles == nil {
		var err error
		if opts.Profiles, err = profile.Default(); err != nil {
			return nil, fmt.Errorf("hsmissuance: %w", err)
		}
	}
	h := a.HSM
	cas := map[string]*CA{}
	for _, role := range []string{ceremony.RoleSignatureCA, ceremony.RoleAuthCA} {
		k, err := a.IssuingKey(role)
		if err != nil {
			return nil, fmt.Errorf("hsmissuance: %w", err)
		}
		// Activate checked the key against its certificate and its usable
		// period; IssuanceSigner refuses a superseded or expired key.
		signer, err := k.IssuanceSigner(wallclock.Now())
		if err != nil {
			return nil, fmt.Errorf("hsmissuance: %s signer: %w", role, err)
		}
		cas[role] = &CA{Certificate: k.Certificate, Signer: signer, KeyUsableUntil: k.IssueUntil()}
	}
	ck, err := a.CardKeys(ctx)
	if err != nil {
		return nil, err
	}
	phRec, err := a.State.Key(ceremony.RolePersonHash)
	if err != nil {
		return nil, fmt.Errorf("hsmissuance: %w", err)
	}
	phKey, err := h.FindKey(ctx, hsm.KeyQuery{Kind: hsm.KindHMAC, Label: phRec.Label, ID: phRec.ID})
	if err != nil {
		return nil, fmt.Errorf("hsmissuance: person-hash key: %w", err)
	}
	if n, err := DestroyLeftoverKeys(ctx, h, LabelUserKey); err != nil {
		return nil, err
	} else if n > 0 {
		opts.Logger.Warn("hsmissuance: destroyed leftover user keys", "objects", n)
	}
	d := &Deps{
		Cards: &CardChannel{Keys: ck, Wrapper: ck, SignatureCA: cas[ceremony.RoleSignatureCA].Certificate.Raw,
			AuthCA: cas[ceremony.RoleAuthCA].Certificate.Raw},
		Issuer:     &Issuer{Signature: *cas[ceremony.RoleSignatureCA], UserAuth: *cas[ceremony.RoleAuthCA], Profiles: opts.Profiles},
		Applicants: ApplicantChecker{HSM: h, Key: phKey},
		Keys:       Generator{HSM: h},
	}
	if opts.PoolSize > 0 {
		p, err := StartPool(ctx, PoolConfig{HSM: h, Size: opts.PoolSize, Workers: opts.PoolWorkers, TokenObjects: opts.PoolTokenObjects, Logger: opts.Logger})
		if err != nil {
			return nil, err
		}
		d.Pool, d.Keys = p, p
	}
	return d, nil
}

// Close stops the key pool (destroying its keys). Call it before closing
// the HSM.
func (d *Deps) Close() error {
	if d.Pool != nil {
		return d.Pool.Close()
	}
	return nil
}
