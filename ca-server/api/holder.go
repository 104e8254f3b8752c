package api

import (
	"context"
	"net/http"

	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/status"
	"madoguchi/ca-server/traffic"
	"madoguchi/jpki/wire"
)

// HolderRevoker revokes a signature certificate on its holder's signed online request
// (status.Service).
type HolderRevoker interface {
	RevokeOnline(ctx context.Context, req wire.HolderRevocation) (status.OnlineRevocation, error)
}

// AckSigner signs revocation acknowledgements with the CA's audit key (audit.ReceiptSigner).
type AckSigner interface {
	SignAck(ack wire.RevocationAck) (wire.SignedRevocationAck, error)
}

var (
	_ HolderRevoker = (*status.Service)(nil)
	_ AckSigner     = (*audit.ReceiptSigner)(nil)
)

// maxHolderBody bounds a holder's request body (base64 payload and signature).
const maxHolderBody = 8 << 10

// holderRevoke serves POST /v1/holder/revoke on the public listener (CPS §4.9.3.1: the holder
// revokes the signature certificate online with a signature by its key). The listener
// authenticates nobody, so a refusal is counted in its summary like every other public request
// (ServeHTTP's deferred count), never audited one by one: a flood of bad requests cannot fill
// the audit log (issue 13 threat 4). An accepted request is authenticated by the certificate's
// own signature and is audited as the holder's action: terminal "holder", operator the
// certificate, the request id and the SHA-256 of what was signed.
func (h *statusHandler) holderRevoke(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		err := wire.Errorf(wire.CodeMethodNotAllowed, "POST a signed holder revocation")
		writeProblem(w, err)
		return err
	}
	var req wire.HolderRevocation
	if err := decodeHolder(w, r, &req); err != nil {
		writeProblem(w, err)
		return err
	}
	done, err := h.cfg.Holders.RevokeOnline(r.Context(), req)
	if err != nil {
		writeProblem(w, err)
		return err
	}
	ctx := context.WithoutCancel(r.Context())
	if aerr := h.cfg.Audit.Record(ctx, audit.Entry{Terminal: status.HolderTerminal, Operator: "certificate " + done.Serial,
		Action: "certificate.revoke.online", Target: done.Serial, Result: "ok",
		Detail: traffic.Clean("kind stop-using, reason 5; request "+done.RequestID+"; payload sha256 "+done.PayloadSHA256+"; from "+traffic.ClientIP(r), 512)}); aerr != nil {
		h.cfg.Logger.Error("api: audit online revocation", "serial", done.Serial, "err", aerr)
	}
	signed, err := h.cfg.Acks.SignAck(done.Ack)
	if err != nil {
		// The revocation stands (CPS §4.9: never undone); the holder can see it in the CRL/OCSP.
		h.cfg.Logger.Error("api: sign revocation acknowledgement", "serial", done.Serial, "err", err)
		err = wire.Wrap(wire.CodeUnavailable, err, "revoked, but the acknowledgement could not be signed")
		writeProblem(w, err)
		return err
	}
	writeJSON(w, http.StatusOK, signed)
	return nil
}

// decodeHolder reads exactly one JSON object of at most maxHolderBody bytes.
func decodeHolder(w http.ResponseWriter, r *http.Request, v any) error {
	return decodeJSON(w, r, maxHolderBody, v)
}

func statusOfHolder(code wire.Code) (int, bool) {
	switch code {
	case wire.CodeHolderSignatureInvalid:
		return http.StatusUnauthorized, true
	case wire.CodeOnlineSignatureOnly:
		return http.StatusForbidden, true
	case wire.CodeRequestStale:
		return http.StatusBadRequest, true
	case wire.CodeRequestReplayed:
		return http.StatusConflict, true
	}
	return 0, false
}
