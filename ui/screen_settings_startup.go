package ui

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"
)

// ShowStartupReport shows, over the log-in screen and before anyone logs in, what the terminal
// did at start that the operators must know: above all the outcome of each issuance a previous
// run left unfinished (delivered, or revoked before delivery, and whether a card must be
// personalised again; DESIGN "Issuance, end to end" step 6), and a failed enrolment. messages
// are in Japanese (issue.Resolution.MessageJA, app.MessageJA). Nothing is shown when there are
// none. UI goroutine only.
func ShowStartupReport(s *Shell, messages []string) {
	if len(messages) == 0 {
		return
	}
	intro := widget.NewLabel(tr("startup.intro"))
	intro.Wrapping = fyne.TextWrapWord
	list := container.NewVBox()
	for _, m := range messages {
		l := widget.NewLabel("・" + strings.TrimSpace(m))
		l.Wrapping = fyne.TextWrapWord
		list.Add(l)
	}
	body := container.NewBorder(intro, nil, nil, nil, container.NewVScroll(list))
	d := dialog.NewCustom(tr("startup.title"), tr("startup.ok"), body, s.win)
	d.Resize(fyne.NewSize(720, 420))
	d.Show()
}
