package ui

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/issue"
	"madoguchi/assets/translations"
)

// StartupReport is what the terminal did at start that the operators must know, in the
// domain's terms; the dialog words it in the screens' language.
type StartupReport struct {
	EnrolFailed      error              // enrolment with a token from the command line failed
	SettingsFailed   error              // the CA connection settings could not be read
	Recovered        []issue.Resolution // what became of each issuance a previous run left unfinished
	RecoveryDeferred bool               // another process was issuing: recovery was not run
}

// lines are the report's items in the screens' language, in order.
func (r StartupReport) lines() []string {
	var out []string
	if r.EnrolFailed != nil {
		out = append(out, tr("startup.enrol_failed", map[string]any{"Reason": errorMessageIn(translations.Settings, r.EnrolFailed)}))
	}
	if r.SettingsFailed != nil {
		out = append(out, tr("startup.settings_failed", map[string]any{"Reason": errorMessageIn(translations.Settings, r.SettingsFailed)}))
	}
	for _, res := range r.Recovered {
		out = append(out, translations.Render(translations.MessagePhrases(res.Message()), trArgs))
	}
	if r.RecoveryDeferred {
		out = append(out, tr("startup.recovery_deferred"))
	}
	return out
}

// ShowStartupReport shows, over the log-in screen and before anyone logs in, what the terminal
// did at start that the operators must know: above all the outcome of each issuance a previous
// run left unfinished (delivered, or revoked before delivery, and whether a card must be
// personalised again; DESIGN "Issuance, end to end" step 6), and a failed enrolment. Nothing is
// shown when there is nothing to report. UI goroutine only.
func ShowStartupReport(s *Shell, report StartupReport) {
	messages := report.lines()
	if len(messages) == 0 {
		return
	}
	intro := widget.NewLabel(tr("startup.intro"))
	intro.Wrapping = fyne.TextWrapWord
	list := container.NewVBox()
	for _, m := range messages {
		l := widget.NewLabel(tr("startup.item", map[string]any{"Text": strings.TrimSpace(m)}))
		l.Wrapping = fyne.TextWrapWord
		list.Add(l)
	}
	body := container.NewBorder(intro, nil, nil, nil, container.NewVScroll(list))
	d := dialog.NewCustom(tr("startup.title"), tr("startup.ok"), body, s.win)
	d.Resize(fyne.NewSize(720, 420))
	d.Show()
}
