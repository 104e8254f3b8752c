package ui

import (
	"context"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// operatorsScreen lists the terminal's operators for supervisors: permissions, log-in method and
// state, with the unlock of a locked operator (TS Art. 3(4), Art. 20(1)(i): each operator's
// permissions are set and can be checked).
func operatorsScreen() Screen {
	return Screen{ID: "supervisor.operators", Title: "operators.title", Permission: PermissionSupervisor, View: newOperatorsView}
}

type operatorsView struct {
	shell   *Shell
	dir     OperatorDirectory
	table   *fyne.Container
	message *widget.Label
}

func newOperatorsView(s *Shell) fyne.CanvasObject {
	v := &operatorsView{shell: s, table: container.NewGridWithColumns(6), message: widget.NewLabel("")}
	v.message.Importance = widget.DangerImportance
	v.message.Wrapping = fyne.TextWrapWord
	dir, ok := s.Session().(OperatorDirectory)
	if !ok {
		v.message.SetText(tr("error.internal"))
		return v.message
	}
	v.dir = dir
	reload := widget.NewButtonWithIcon(tr("operators.reload"), theme.ViewRefreshIcon(), v.load)
	v.load()
	return container.NewBorder(container.NewHBox(reload), v.message, nil, nil, container.NewScroll(container.NewVBox(v.table)))
}

func (v *operatorsView) load() {
	v.shell.async(func() {
		ops, err := v.dir.ListOperators(context.Background())
		v.shell.do(func() { v.show(ops, err) })
	})
}

func (v *operatorsView) show(ops []OperatorSummary, err error) {
	if err != nil {
		v.message.SetText(errorMessage(err))
		return
	}
	v.message.SetText("")
	v.table.RemoveAll()
	for _, key := range []string{"operators.id", "operators.name", "operators.permissions", "operators.method", "operators.state", ""} {
		v.table.Add(widget.NewLabelWithStyle(tr(key), fyne.TextAlignLeading, fyne.TextStyle{Bold: true}))
	}
	for _, o := range ops {
		perms := make([]string, 0, len(o.Permissions))
		for _, p := range o.Permissions {
			perms = append(perms, permissionName(p))
		}
		method := tr("operators.method.fingerprint")
		switch {
		case o.PasswordExempt:
			method = tr("operators.method.password")
		case !o.FingerEnrolled:
			method = tr("operators.method.none")
		}
		state := tr("operators.state.active")
		switch {
		case !o.Active:
			state = tr("operators.state.disabled")
		case o.Locked:
			state = tr("operators.state.locked")
		}
		var action fyne.CanvasObject = widget.NewLabel("")
		if o.Locked {
			id := o.ID
			b := widget.NewButtonWithIcon(tr("operators.unlock"), theme.LoginIcon(), func() { v.unlock(id) })
			b.Importance = widget.WarningImportance
			action = b
		}
		v.table.Add(widget.NewLabel(o.ID))
		v.table.Add(widget.NewLabel(o.Name))
		v.table.Add(widget.NewLabel(strings.Join(perms, "・")))
		v.table.Add(widget.NewLabel(method))
		v.table.Add(widget.NewLabel(state))
		v.table.Add(action)
	}
}

func (v *operatorsView) unlock(id string) {
	v.shell.async(func() {
		err := v.dir.Unlock(context.Background(), id)
		v.shell.do(func() {
			if err != nil {
				v.message.SetText(errorMessage(err))
				return
			}
			v.load()
		})
	})
}

// permissionName is the translated name of a permission.
func permissionName(p Permission) string {
	switch p {
	case PermissionReception:
		return tr("permission.reception")
	case PermissionCS:
		return tr("permission.cs")
	case PermissionSupervisor:
		return tr("permission.supervisor")
	case PermissionAudit:
		return tr("permission.audit")
	}
	return string(p)
}
