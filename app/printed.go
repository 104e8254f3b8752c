package app

import (
	"context"
	"strconv"

	"madoguchi/app/audit"
)

// Documents the counter prints for a case (the names recorded in the audit trail).
const (
	DocumentIssuanceNotice    = "issuance_notice"     // 交付通知: the certificates and the TS Art. 9 items
	DocumentRevocationNotice  = "revocation_notice"   // 失効の受付の控え
	DocumentCertificateCopy   = "certificate_copy"    // 電子証明書の写し
	DocumentHoldReleaseNotice = "hold_release_notice" // 一時保留の解除の控え
	DocumentTestPage          = "test_page"           // 印刷テスト (settings screen; case 0, no personal data)
)

// RecordPrinted records that the operator printed document for case caseID as print job job, or
// that printing failed with printErr. Printed documents carry the applicant's name and address,
// so who printed what, when, is part of the operator's history like every other counter action.
// Only the document's kind, the case and the job number are recorded, never its content.
func (s *Session) RecordPrinted(ctx context.Context, caseID int64, document string, job int, printErr error) error {
	// A fact, not a request: the print was sent from a screen the operator was allowed to use,
	// so it is recorded even if the session ended while the printer worked.
	e := audit.Entry{Operator: s.operatorID, Action: "document.print", Target: strconv.FormatInt(caseID, 10),
		Result: audit.ResultOK, Detail: map[string]string{"document": document, "job": strconv.Itoa(job)}}
	if printErr != nil {
		e.Result, e.Detail = audit.ResultError, refusalDetail(map[string]string{"document": document}, printErr)
	}
	return s.t.record(ctx, e)
}
