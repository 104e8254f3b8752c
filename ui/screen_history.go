package ui

import (
	"context"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// historyScreen shows the operation history of one chosen operator on its own, for auditors
// (TS Art. 20(2)(ii), 42(2): who asked, what, when, and the result). Viewing it is itself
// recorded by the domain.
func historyScreen() Screen {
	return Screen{ID: "audit.history", Title: "history.title", Permission: PermissionAudit, View: newHistoryView}
}

type historyView struct {
	shell   *Shell
	hist    AuditHistory
	id      *widget.Entry
	show    *widget.Button
	table   *fyne.Container
	message *widget.Label
}

func newHistoryView(s *Shell) fyne.CanvasObject {
	v := &historyView{shell: s, id: widget.NewEntry(), table: container.NewGridWithColumns(4), message: widget.NewLabel("")}
	v.message.Importance = widget.DangerImportance
	v.message.Wrapping = fyne.TextWrapWord
	hist, ok := s.Session().(AuditHistory)
	if !ok {
		v.message.SetText(tr("error.internal"))
		return v.message
	}
	v.hist = hist
	v.id.SetPlaceHolder(tr("history.operator_id"))
	v.id.OnSubmitted = func(string) { v.load() }
	v.show = widget.NewButtonWithIcon(tr("history.show"), theme.SearchIcon(), v.load)
	form := container.NewBorder(nil, nil, widget.NewLabel(tr("history.operator_id")), v.show, v.id)
	return container.NewBorder(container.NewVBox(form, v.message), nil, nil, nil, container.NewScroll(container.NewVBox(v.table)))
}

func (v *historyView) load() {
	id := strings.TrimSpace(v.id.Text)
	if id == "" {
		v.message.SetText(tr("login.error.empty_id"))
		return
	}
	v.shell.async(func() {
		entries, err := v.hist.History(context.Background(), id)
		v.shell.do(func() { v.render(entries, err) })
	})
}

func (v *historyView) render(entries []AuditEntry, err error) {
	v.table.RemoveAll()
	if err != nil {
		v.message.SetText(errorMessage(err))
		return
	}
	v.message.SetText("")
	if len(entries) == 0 {
		v.message.SetText(tr("history.empty"))
		return
	}
	for _, key := range []string{"history.at", "history.action", "history.target", "history.result"} {
		v.table.Add(widget.NewLabelWithStyle(tr(key), fyne.TextAlignLeading, fyne.TextStyle{Bold: true}))
	}
	for _, e := range entries {
		v.table.Add(widget.NewLabel(e.At.Local().Format("2006-01-02 15:04:05")))
		// Actions without a translation show their stable code, so no record is ever hidden.
		v.table.Add(widget.NewLabel(lang.X("action."+e.Action, e.Action)))
		v.table.Add(widget.NewLabel(e.Target))
		result := widget.NewLabel(lang.X("result."+e.Result, e.Result))
		if e.Result != "ok" {
			result.Importance = widget.DangerImportance
		}
		v.table.Add(result)
	}
}
