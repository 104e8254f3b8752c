package app

// AuditActions lists every action code the terminal writes to its audit trail (app and
// app/issue). The audit view names each one in words from the translation key "action.<code>",
// so an auditor reading one operator's history never sees a raw code; TestAuditActionsListed
// keeps this list in step with the sources.
var AuditActions = []string{
	"audit.backup", "audit.export", "audit.history", "audit.verify", "audit.verify_failed",
	"audit.witness_refused",
	"card.key_destruction", "card.pin_reset",
	"case.approve", "case.complete", "case.explanation", "case.identity", "case.issue", "case.open",
	"case.pin_check", "case.refuse", "case.stop", "case.substitutions", "case.view",
	"certificate.copy", "certificate.release_hold", "certificate.revoke",
	"clock.synchronised", "clock.unsynchronised",
	"document.print",
	"holder.records",
	"issuance.aborted", "issuance.delivered", "issuance.start",
	"login.fingerprint", "login.password", "logout", "logout.idle",
	"operator.bootstrap", "operator.create", "operator.disable", "operator.enable",
	"operator.enroll_finger", "operator.grant", "operator.grant_exemption", "operator.list",
	"operator.unlock", "operator.withdraw", "operator.withdraw_exemption",
	"resident.change", "resident.change_send", "resident.export_file", "resident.import_file",
	"resident.import_register", "resident.pending_changes", "resident.search", "resident.send_changes",
	"terminal.settings",
}
