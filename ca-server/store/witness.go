package store

import "context"

// LastAuditRecordOf returns the newest successful ("ok") audit record of one terminal with
// one action, or ErrNotFound: the CA's last witnessed audit head of a terminal is such a
// record (ca-server/api witness.go), so the CA's own hash-chained log is the one place it
// is kept. The scan runs backwards from the newest record and stops at the first match,
// which for a terminal that reports every 10 minutes is near the end of the log.
func (s *sqlStore) LastAuditRecordOf(ctx context.Context, terminal, action string) (AuditRecord, error) {
	r, err := scanAudit(s.r.QueryRowContext(ctx, `SELECT `+auditCols+` FROM audit_records
		WHERE terminal = ? AND action = ? AND result = 'ok' ORDER BY seq DESC LIMIT 1`, terminal, action))
	if err != nil {
		return AuditRecord{}, notFound(err, "audit record")
	}
	return r, nil
}
