package ceremony

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"madoguchi/ca-server/hsm"
)

// RekeyMasterKeysOptions configures the replacement of the card issuer
// master keys.
type RekeyMasterKeysOptions struct {
	Common
	Shares []PresentedShare // M token shares
}

// masterKeyLabels are the card issuer master keys' labels by role (the
// labels cardkeys looks up).
var masterKeyLabels = []struct{ role, label string }{
	{RoleMasterENC, "MK-ENC"}, {RoleMasterMAC, "MK-MAC"}, {RoleMasterDEK, "MK-DEK"},
}

// RekeyMasterKeys is the migration path for a CA initialised before card
// master keys were backed up, and the way back to card service for a CA
// restored from a backup without them: with M custodians it generates a
// new, backup-wrappable set (MK-ENC, MK-MAC, MK-DEK), destroys every older
// master-key object in the token and records the new set. Cards made from
// the old master keys can no longer open a secure channel: the card stock
// must be replaced with a new card batch, and a new backup made.
func RekeyMasterKeys(ctx context.Context, o RekeyMasterKeysOptions) (*State, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	st, err := LoadState(o.DataDir)
	if err != nil {
		return nil, err
	}
	r, err := o.newRun("rekey-card-masters", nil)
	if err != nil {
		return nil, err
	}
	return st, r.step(ctx, "finish", nil, rekeyMasterKeys(ctx, &o, st, r))
}

func rekeyMasterKeys(ctx context.Context, o *RekeyMasterKeysOptions, st *State, r *run) (retErr error) {
	h, _, err := openWithShares(ctx, o.Common, st, r, o.Shares)
	if err != nil {
		return err
	}
	defer h.Close()
	var fresh []hsm.Key
	defer func() {
		if retErr != nil {
			for _, k := range fresh {
				retErr = errors.Join(retErr, h.Destroy(context.WithoutCancel(ctx), k))
			}
		}
	}()
	for _, mk := range masterKeyLabels {
		k, err := h.GenerateAES(ctx, mk.label, masterKeyOptions())
		if err := r.step(ctx, "generate "+mk.role+" key", map[string]string{"label": mk.label, "id": hex.EncodeToString(k.ID), "backup": "wrappable under the trusted backup kek only"}, err); err != nil {
			return err
		}
		fresh = append(fresh, k)
	}
	now := o.Now().UTC()
	next := *st
	next.Version = StateVersion
	next.Keys = nil
	for _, k := range st.Keys {
		if !isMasterRole(k.Role) {
			next.Keys = append(next.Keys, k)
		}
	}
	for i, mk := range masterKeyLabels {
		next.Keys = append(next.Keys, KeyRecord{Role: mk.role, Label: mk.label, ID: fresh[i].ID, Generated: now, BackupWrappable: true})
	}
	if err := r.step(ctx, "update key inventory", nil, saveState(o.DataDir, &next)); err != nil {
		return err
	}
	*st = next
	fresh = nil // recorded: kept whatever happens next
	// Old master keys go: cards made from them are to be replaced.
	for i, mk := range masterKeyLabels {
		keys, err := h.FindKeys(ctx, hsm.KeyQuery{Kind: hsm.KindAES, Label: mk.label})
		n := 0
		for _, k := range keys {
			if !bytes.Equal(k.ID, st.Keys[len(st.Keys)-3+i].ID) {
				err = errors.Join(err, h.Destroy(ctx, k))
				n++
			}
		}
		if err := r.step(ctx, "destroy old "+mk.role+" key", map[string]string{"objects": fmt.Sprint(n)}, err); err != nil {
			return err
		}
	}
	fmt.Fprintln(o.Log, "  new card master keys recorded: cards made from the old ones must be replaced (new card-batch), and a new backup made")
	return nil
}
