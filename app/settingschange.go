package app

import (
	"context"

	"madoguchi/app/audit"
)

// Terminal settings a supervisor changes on the settings screen (the names recorded in the
// audit trail).
const (
	SettingCAURL     = "ca_url"    // where applicants' data is sent
	SettingReader    = "reader"    // the PC/SC reader cards are written in
	SettingEnrolment = "enrolment" // the terminal's client certificate (TS Art. 7(i))
	SettingPrinter   = "printer"   // the CUPS queue the counter's documents print to
)

// RecordSettingChanged records that the operator changed setting (Setting*) of this terminal to
// value, or tried to and was refused with changeErr. The CA address, the enrolment and the
// printer decide where applicants' data and documents go, so a supervisor's change is part of
// the operator's history like any counter action. value must be something an auditor may read:
// never the enrolment token, which is a one-time secret.
func (s *Session) RecordSettingChanged(ctx context.Context, setting, value string, changeErr error) error {
	// A fact, like RecordPrinted: the change was made from a screen the operator was allowed
	// to use, so it is recorded even if the session ended meanwhile.
	e := audit.Entry{Operator: s.operatorID, Action: "terminal.settings", Target: setting, Result: audit.ResultOK,
		Detail: map[string]string{"value": value}}
	if changeErr != nil {
		e.Result, e.Detail = resultOf(changeErr), refusalDetail(e.Detail, changeErr)
	}
	return s.t.record(ctx, e)
}
