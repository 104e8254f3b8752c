package raclient

import (
	"context"
	"errors"
	"net/http"

	"madoguchi/jpki/wire"
)

// Witness kinds (issue 13 threat 2: the CA witnesses the terminal's audit chain head); test
// with errors.Is(err, raclient.ErrAuditHeadRefused).
var (
	// ErrAuditHeadRefused: the head goes backwards from, or forks from, what the CA already
	// witnessed for this terminal: the terminal's audit file was rewritten or replaced.
	ErrAuditHeadRefused = errors.New("raclient: the CA refused the audit head: it contradicts a head the CA witnessed")
	// ErrAuditAnchorStale: the head's anchor is not the CA's last witnessed head; read it
	// (LatestAuditHead) and send again.
	ErrAuditAnchorStale = errors.New("raclient: the audit head's anchor is not the CA's last witnessed head")
)

// WitnessAuditHead sends the terminal's audit chain head and gets the CA's signed receipt.
// Not retried inside (the next periodic send is the retry); the caller checks the receipt's
// signature against a pinned key (wire.VerifyAuditReceipt).
func (c *Client) WitnessAuditHead(ctx context.Context, operator string, req wire.AuditHeadRequest) (wire.AuditReceipt, error) {
	var out wire.AuditReceipt
	return out, c.do(ctx, false, http.MethodPost, "/v1/terminal-audit/heads", operator, req, &out)
}

// LatestAuditHead returns the last audit head the CA witnessed for this terminal (Found false
// when none) and the CA's current audit key certificate. Read-only, so retried.
func (c *Client) LatestAuditHead(ctx context.Context, operator string) (wire.WitnessedHead, error) {
	var out wire.WitnessedHead
	return out, c.do(ctx, true, http.MethodGet, "/v1/terminal-audit/heads/latest", operator, nil, &out)
}
