package hsmissuance

import (
	"context"
	"encoding/json"
	"fmt"

	"madoguchi/ca-server/issuance"
	"madoguchi/ca-server/store"
	"madoguchi/cardio/perso"
	"madoguchi/jpki/wire"
)

var _ issuance.MaintenanceSession = (*cardSession)(nil)

// maintenanceFiles are the card EFs a maintenance change targets: the PIN (RESET PIN) and
// the private key (DELETE KEY) of each certificate type (docs/CARD-PROTOCOL.md §5).
var maintenanceFiles = map[store.CertType]struct{ pin, key uint16 }{
	store.CertSign: {pin: perso.FIDSignaturePIN, key: perso.FIDSignatureKey},
	store.CertAuth: {pin: perso.FIDUserAuthPIN, key: perso.FIDUserAuthKey},
}

// BuildMaintenanceScript builds EXTERNAL AUTHENTICATE, one RESET PIN or DELETE KEY per change,
// FINALIZE, for this card session. The script carries no key material, so its stored state is
// the same WithoutAPDUs form as issuance's.
func (s *cardSession) BuildMaintenanceScript(ctx context.Context, changes []issuance.MaintenanceChange) ([][]byte, error) {
	defer s.sess.Close()
	items := make([]perso.Item, 0, len(changes))
	for _, ch := range changes {
		f, ok := maintenanceFiles[ch.Target]
		if !ok {
			return nil, fmt.Errorf("hsmissuance: maintenance of unknown certificate type %q", ch.Target)
		}
		switch ch.Operation {
		case wire.MaintenancePINReset:
			items = append(items, perso.ResetPIN{FID: f.pin})
		case wire.MaintenanceKeyDestruction:
			items = append(items, perso.DestroyKey{FID: f.key})
		default:
			return nil, fmt.Errorf("hsmissuance: unknown maintenance operation %q", ch.Operation)
		}
	}
	script, err := perso.BuildIssuanceScript(ctx, s.sess, items...)
	if err != nil {
		return nil, fmt.Errorf("hsmissuance: %w", err)
	}
	if s.state, err = json.Marshal(script.WithoutAPDUs()); err != nil {
		return nil, fmt.Errorf("hsmissuance: encode session state: %w", err)
	}
	return script.APDUs(), nil
}
