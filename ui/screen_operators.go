package ui

import (
	"context"
	"errors"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/apperr"
	"madoguchi/app/auth"
	"madoguchi/assets/translations"
)

// operatorsScreen is the supervisor's management of the terminal's operators: create, disable
// and re-enable, grant and withdraw each permission on its own, enrol a finger, exempt an
// operator from biometrics with a recorded reason, and unlock after a lockout (TS Art. 3(3)(4),
// Art. 20(1)(i): each operator's permissions are set and can be checked). The domain checks the
// Supervisor permission and records every change in the audit chain; this screen only asks.
func operatorsScreen() Screen {
	return Screen{ID: "supervisor.operators", Title: "operators.title", Permission: PermissionSupervisor, View: newOperatorsView}
}

// OperatorSummary is one row of the supervisor's operator list. It holds no password material.
type OperatorSummary struct {
	ID, Name       string
	Permissions    []Permission
	Active         bool // false: disabled by a supervisor
	Locked         bool // locked after repeated failed log-ins
	FingerEnrolled bool
	PasswordExempt bool // exempted from biometrics (TS Art. 3(3))
}

// OperatorDirectory is the supervisor's view of the operators. A Session that offers it
// implements it; the domain checks the Supervisor permission on every call (TS Art. 3(4)).
type OperatorDirectory interface {
	ListOperators(ctx context.Context) ([]OperatorSummary, error)
	// Unlock lifts the lockout of operator id.
	Unlock(ctx context.Context, id string) error
}

// EnrollProgress is one step of a fingerprint enrolment ("指を置いてください (3/5)").
type EnrollProgress struct {
	Stage int  // presses accepted so far
	Total int  // presses needed
	Retry bool // the last press was unusable and did not count
}

// OperatorAdmin is what the supervisor screen needs from the domain. A Session that offers it
// implements it. Every call is checked for the Supervisor permission and audited by the domain;
// a change that would leave no active supervisor is refused with kind LastSupervisor.
type OperatorAdmin interface {
	OperatorDirectory
	CreateOperator(ctx context.Context, id, name string) error
	SetOperatorActive(ctx context.Context, id string, active bool) error
	// Grant and Withdraw change one permission; reception and CS are separate permissions,
	// never implied by each other (TS Art. 3(4)).
	Grant(ctx context.Context, id string, p Permission) error
	Withdraw(ctx context.Context, id string, p Permission) error
	// EnrollFinger enrols finger (an fprintd finger name) for operator id while the operator
	// presses it; progress is called from the backend's goroutine for every stage.
	EnrollFinger(ctx context.Context, id, finger string, progress func(EnrollProgress)) error
	// GrantPasswordExemption lets id log in with ID + password because biometrics is
	// impracticable for them; the reason is required and recorded (TS Art. 3(3)).
	GrantPasswordExemption(ctx context.Context, id, reason, password string) error
	WithdrawPasswordExemption(ctx context.Context, id string) error
}

// enrollTimeout bounds the wait for the operator's presses at the reader; the domain has its
// own, shorter, limit per enrolment.
const enrollTimeout = 3 * time.Minute

// operatorsView is the supervisor's screen. Its methods run on the UI goroutine; domain calls go
// through Shell.async and their results come back through Shell.do, after which the list is
// read again from the domain, so the screen never shows a change the domain refused.
type operatorsView struct {
	shell *Shell
	admin OperatorAdmin

	ops      []OperatorSummary
	selected string // id of the operator shown in the detail panel, "" for none

	newID, newName *widget.Entry
	create         *widget.Button
	list           *fyne.Container
	message        *widget.Label // refusals, in Japanese
	notice         *widget.Label // what was just done

	detail       *fyne.Container
	detailTitle  *widget.Label
	detailState  *widget.Label
	perms        map[Permission]*widget.Check
	updating     bool // set while checks are changed by the program, not the supervisor
	finger       *widget.Select
	enroll       *widget.Button
	enrollState  *widget.Label
	enrollBar    *widget.ProgressBar
	exemptInfo   *widget.Label
	reason       *widget.Entry
	password     *widget.Entry
	password2    *widget.Entry
	exempt       *widget.Button
	unexempt     *widget.Button
	activeToggle *widget.Button
	unlock       *widget.Button
}

// fingerLabel is the translated name of one of fprintd's finger names (auth.FingerNames); the
// keys are "supervisor.finger.<name>" (TestFingerNamesTranslated checks both catalogues).
func fingerLabel(name string) string { return lang.L("supervisor.finger." + name) }

func newOperatorsView(s *Shell) fyne.CanvasObject {
	_, o := buildOperatorsView(s)
	return o
}

// buildOperatorsView returns the view and its content (tests keep the view to reach its widgets).
func buildOperatorsView(s *Shell) (*operatorsView, fyne.CanvasObject) {
	v := &operatorsView{shell: s, list: container.NewVBox(),
		message: widget.NewLabel(""), notice: widget.NewLabel("")}
	v.message.Importance = widget.DangerImportance
	v.message.Wrapping = fyne.TextWrapWord
	v.notice.Importance = widget.SuccessImportance
	v.notice.Wrapping = fyne.TextWrapWord
	v.message.Hide()
	v.notice.Hide()
	admin, ok := s.Session().(OperatorAdmin)
	if !ok {
		setShown(v.message, tr("error.internal"))
		return v, v.message
	}
	v.admin = admin

	v.newID = widget.NewEntry()
	v.newID.SetPlaceHolder(tr("supervisor.new_id.placeholder"))
	v.newName = widget.NewEntry()
	v.newName.SetPlaceHolder(tr("supervisor.new_name.placeholder"))
	v.newID.OnSubmitted = func(string) { v.createOperator() }
	v.newName.OnSubmitted = func(string) { v.createOperator() }
	v.create = widget.NewButtonWithIcon(tr("supervisor.create"), theme.ContentAddIcon(), v.createOperator)
	v.create.Importance = widget.HighImportance
	reload := widget.NewButtonWithIcon(tr("operators.reload"), theme.ViewRefreshIcon(), v.load)
	createForm := container.NewBorder(nil, nil, widget.NewLabel(tr("supervisor.new")),
		container.NewHBox(v.create, reload),
		container.NewGridWithColumns(2, v.newID, v.newName))

	v.buildDetail()
	top := container.NewVBox(createForm, v.message, v.notice)
	// The detail pane is a form of entries: the wheel scrolls the pane wherever the pointer is.
	_, detail := newPageScroll(v.detail)
	split := container.NewHSplit(container.NewVScroll(v.list), detail)
	split.Offset = 0.6
	v.load()
	// Keyboard first: the new operator's id field takes the focus once the screen is shown.
	s.do(func() { s.Window().Canvas().Focus(v.newID) })
	return v, container.NewBorder(top, nil, nil, nil, split)
}

func (v *operatorsView) buildDetail() {
	v.detailTitle = widget.NewLabelWithStyle(tr("supervisor.select_hint"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	v.detailTitle.Wrapping = fyne.TextWrapWord
	v.detailState = widget.NewLabel("")
	v.detailState.Wrapping = fyne.TextWrapWord

	v.perms = map[Permission]*widget.Check{}
	permBox := container.NewGridWithColumns(2)
	for _, p := range []Permission{PermissionReception, PermissionCS, PermissionSupervisor, PermissionAudit} {
		p := p
		c := widget.NewCheck(permissionName(p), func(on bool) { v.setPermission(p, on) })
		v.perms[p] = c
		permBox.Add(c)
	}
	separation := widget.NewLabel(tr("supervisor.permissions.note"))
	separation.Wrapping = fyne.TextWrapWord
	separation.Importance = widget.LowImportance

	names := make([]string, len(auth.FingerNames))
	for i, n := range auth.FingerNames {
		names[i] = fingerLabel(n)
	}
	v.finger = widget.NewSelect(names, nil)
	v.finger.SetSelected(fingerLabel(auth.DefaultFinger))
	v.enroll = widget.NewButtonWithIcon(tr("supervisor.enroll"), theme.AccountIcon(), v.enrollFinger)
	v.enroll.Importance = widget.HighImportance
	v.enrollState = widget.NewLabel("")
	v.enrollState.Wrapping = fyne.TextWrapWord
	v.enrollBar = widget.NewProgressBar()
	v.enrollBar.TextFormatter = func() string { return "" }
	v.enrollBar.Hide()

	v.exemptInfo = widget.NewLabel(tr("supervisor.exempt.note"))
	v.exemptInfo.Wrapping = fyne.TextWrapWord
	v.exemptInfo.Importance = widget.LowImportance
	v.reason = widget.NewMultiLineEntry()
	v.reason.SetPlaceHolder(tr("supervisor.exempt.reason.placeholder"))
	v.reason.SetMinRowsVisible(2)
	v.reason.Wrapping = fyne.TextWrapWord
	v.password = widget.NewPasswordEntry()
	v.password.SetPlaceHolder(tr("supervisor.exempt.password.placeholder"))
	v.password2 = widget.NewPasswordEntry()
	v.password2.SetPlaceHolder(tr("supervisor.exempt.password2.placeholder"))
	v.password2.OnSubmitted = func(string) { v.grantExemption() }
	v.exempt = widget.NewButtonWithIcon(tr("supervisor.exempt.grant"), theme.ConfirmIcon(), v.grantExemption)
	v.unexempt = widget.NewButtonWithIcon(tr("supervisor.exempt.withdraw"), theme.CancelIcon(), v.withdrawExemption)

	v.activeToggle = widget.NewButtonWithIcon(tr("supervisor.disable"), theme.MediaPauseIcon(), v.toggleActive)
	v.unlock = widget.NewButtonWithIcon(tr("operators.unlock"), theme.LoginIcon(), func() { v.unlockOperator(v.selected) })
	v.unlock.Importance = widget.WarningImportance

	heading := func(key string) fyne.CanvasObject {
		return widget.NewLabelWithStyle(tr(key), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	}
	form := container.New(layout.NewFormLayout(),
		widget.NewLabel(tr("supervisor.exempt.reason")), v.reason,
		widget.NewLabel(tr("login.password")), v.password,
		widget.NewLabel(tr("supervisor.exempt.password2")), v.password2,
	)
	v.detail = container.NewVBox(
		v.detailTitle, v.detailState,
		widget.NewSeparator(), heading("operators.permissions"), permBox, separation,
		widget.NewSeparator(), heading("supervisor.fingerprint"),
		container.NewBorder(nil, nil, nil, v.enroll, v.finger), v.enrollBar, v.enrollState,
		widget.NewSeparator(), heading("supervisor.exempt"), v.exemptInfo, form,
		container.NewHBox(v.exempt), container.NewHBox(v.unexempt),
		widget.NewSeparator(), heading("operators.state"), container.NewHBox(v.activeToggle, v.unlock),
	)
	v.showDetail()
}

func (v *operatorsView) say(notice string) {
	setShown(v.message, "")
	setShown(v.notice, notice)
}

func (v *operatorsView) refuse(msg string) {
	setShown(v.notice, "")
	setShown(v.message, msg)
}

// setShown sets a message label's text and hides the label while it is empty, so that an empty
// message takes no room.
func setShown(l *widget.Label, text string) {
	l.SetText(text)
	if text == "" {
		l.Hide()
	} else {
		l.Show()
	}
}

func (v *operatorsView) load() {
	v.shell.async(func() {
		ops, err := v.admin.ListOperators(context.Background())
		v.shell.do(func() { v.show(ops, err) })
	})
}

// show renders the operator list and refreshes the detail panel of the selected operator.
func (v *operatorsView) show(ops []OperatorSummary, err error) {
	if err != nil {
		v.refuse(errorMessage(err))
		return
	}
	v.ops = ops
	v.list.RemoveAll()
	bold := func(key string) *widget.Label {
		return widget.NewLabelWithStyle(tr(key), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	}
	v.list.Add(operatorRow(bold("operators.id"), bold("operators.name"), bold("operators.permissions"),
		bold("operators.method"), bold("operators.state")))
	for _, o := range ops {
		id := o.ID
		pick := widget.NewButton(o.ID, func() { v.selectOperator(id) })
		if id == v.selected {
			pick.Importance = widget.HighImportance
		}
		state := widget.NewLabel(stateName(o))
		if !o.Active || o.Locked {
			state.Importance = widget.DangerImportance
		}
		v.list.Add(operatorRow(pick, widget.NewLabel(o.Name), widget.NewLabel(permissionList(o.Permissions)),
			widget.NewLabel(methodName(o)), state))
	}
	v.list.Refresh()
	v.showDetail()
}

// operatorRow lays out one row of the operator list: the id (a button that selects the
// operator) at a fixed width, then name, permissions, log-in method and state in equal columns
// whose text is shortened with an ellipsis rather than widening the list.
func operatorRow(id fyne.CanvasObject, cells ...*widget.Label) fyne.CanvasObject {
	grid := container.NewGridWithColumns(len(cells))
	for _, c := range cells {
		c.Truncation = fyne.TextTruncateEllipsis
		grid.Add(c)
	}
	return container.NewBorder(nil, nil, container.NewGridWrap(fyne.NewSize(110, id.MinSize().Height), id), nil, grid)
}

func permissionList(ps []Permission) string {
	names := make([]string, 0, len(ps))
	for _, p := range ps {
		names = append(names, permissionName(p))
	}
	if len(names) == 0 {
		return tr("supervisor.permissions.none")
	}
	return strings.Join(names, tr("list.separator"))
}

func methodName(o OperatorSummary) string {
	switch {
	case o.PasswordExempt:
		return tr("operators.method.password")
	case !o.FingerEnrolled:
		return tr("operators.method.none")
	}
	return tr("operators.method.fingerprint")
}

func stateName(o OperatorSummary) string {
	switch {
	case !o.Active:
		return tr("operators.state.disabled")
	case o.Locked:
		return tr("operators.state.locked")
	}
	return tr("operators.state.active")
}

func (v *operatorsView) find(id string) (OperatorSummary, bool) {
	for _, o := range v.ops {
		if o.ID == id {
			return o, true
		}
	}
	return OperatorSummary{}, false
}

func (v *operatorsView) selectOperator(id string) {
	if id != v.selected {
		v.reason.SetText("")
		v.clearPasswords()
		v.enrollState.SetText("")
		v.enrollBar.Hide()
	}
	v.selected = id
	v.show(v.ops, nil)
}

// showDetail fills the detail panel from the selected operator, or disables it.
func (v *operatorsView) showDetail() {
	o, ok := v.find(v.selected)
	controls := []fyne.Disableable{v.finger, v.enroll, v.reason, v.password, v.password2, v.exempt, v.unexempt, v.activeToggle, v.unlock}
	v.updating = true
	defer func() { v.updating = false }()
	if !ok {
		v.selected = ""
		v.detailTitle.SetText(tr("supervisor.select_hint"))
		v.detailState.SetText("")
		for _, c := range v.perms {
			c.SetChecked(false)
			c.Disable()
		}
		for _, c := range controls {
			c.Disable()
		}
		return
	}
	v.detailTitle.SetText(tr("shell.operator", map[string]any{"Name": o.Name, "ID": o.ID}))
	v.detailState.SetText(tr("supervisor.detail.state", map[string]any{"Method": methodName(o), "State": stateName(o)}))
	for p, c := range v.perms {
		c.Enable()
		held := false
		for _, q := range o.Permissions {
			held = held || q == p
		}
		c.SetChecked(held)
	}
	for _, c := range controls {
		c.Enable()
	}
	if o.PasswordExempt {
		v.exempt.SetText(tr("supervisor.exempt.change"))
	} else {
		v.exempt.SetText(tr("supervisor.exempt.grant"))
		v.unexempt.Disable()
	}
	if o.Active {
		v.activeToggle.SetText(tr("supervisor.disable"))
		v.activeToggle.SetIcon(theme.MediaPauseIcon())
	} else {
		v.activeToggle.SetText(tr("supervisor.enable"))
		v.activeToggle.SetIcon(theme.MediaPlayIcon())
	}
	if !o.Locked {
		v.unlock.Disable()
	}
}

// supervisorMessage is the message for a refusal of a supervisor action, in the supervisor
// context of the table (an existing id is an operator id).
func supervisorMessage(err error) string { return errorMessageIn(translations.Supervisor, err) }

func (v *operatorsView) createOperator() {
	id, name := strings.TrimSpace(v.newID.Text), strings.TrimSpace(v.newName.Text)
	if id == "" || name == "" {
		v.refuse(tr("supervisor.error.create_empty"))
		return
	}
	v.create.Disable()
	v.shell.async(func() {
		err := v.admin.CreateOperator(context.Background(), id, name)
		v.shell.do(func() {
			v.create.Enable()
			switch {
			case errors.Is(err, apperr.InvalidInput):
				v.refuse(tr("supervisor.error.invalid_id"))
				return
			case err != nil:
				v.refuse(supervisorMessage(err))
				return
			}
			v.newID.SetText("")
			v.newName.SetText("")
			v.selected = id
			v.say(tr("supervisor.created", map[string]any{"Name": name, "ID": id}))
			v.load()
		})
	})
}

func (v *operatorsView) setPermission(p Permission, on bool) {
	if v.updating || v.selected == "" {
		return
	}
	id := v.selected
	v.shell.async(func() {
		var err error
		if on {
			err = v.admin.Grant(context.Background(), id, p)
		} else {
			err = v.admin.Withdraw(context.Background(), id, p)
		}
		v.shell.do(func() {
			if err != nil {
				v.refuse(supervisorMessage(err))
			} else {
				key := "supervisor.granted"
				if !on {
					key = "supervisor.withdrawn"
				}
				v.say(tr(key, map[string]any{"ID": id, "Permission": permissionName(p)}))
			}
			// The list is re-read either way, so a refused change shows the real state again.
			v.load()
		})
	})
}

// enrollFinger enrols the chosen finger of the selected operator, showing each of the reader's
// stages; the operator presses the finger several times (fprintd's num-enroll-stages).
func (v *operatorsView) enrollFinger() {
	id := v.selected
	if id == "" {
		return
	}
	finger := auth.DefaultFinger
	for _, n := range auth.FingerNames {
		if fingerLabel(n) == v.finger.Selected {
			finger = n
		}
	}
	v.enroll.Disable()
	v.enrollBar.SetValue(0)
	v.enrollBar.Show()
	v.enrollState.SetText(tr("supervisor.enroll.starting"))
	v.shell.async(func() {
		ctx, cancel := context.WithTimeout(context.Background(), enrollTimeout)
		defer cancel()
		err := v.admin.EnrollFinger(ctx, id, finger, func(p EnrollProgress) {
			v.shell.do(func() {
				if v.selected == id { // the supervisor may have selected someone else meanwhile
					v.enrollProgress(p)
				}
			})
		})
		v.shell.do(func() {
			v.enroll.Enable()
			if v.selected != id {
				v.enrollBar.Hide()
				v.enrollState.SetText("")
			}
			if err != nil {
				v.enrollBar.Hide()
				v.enrollState.SetText("")
				msg := supervisorMessage(err)
				if errors.Is(err, apperr.InvalidInput) {
					msg = tr("supervisor.error.enroll_duplicate")
				}
				v.refuse(msg)
				return
			}
			if v.selected == id {
				v.enrollBar.SetValue(1)
				v.enrollState.SetText(tr("supervisor.enroll.done"))
			}
			v.say(tr("supervisor.enrolled", map[string]any{"ID": id, "Finger": fingerLabel(finger)}))
			v.load()
		})
	})
}

func (v *operatorsView) enrollProgress(p EnrollProgress) {
	if p.Total <= 0 {
		return
	}
	v.enrollBar.SetValue(float64(p.Stage) / float64(p.Total))
	if p.Stage >= p.Total {
		v.enrollState.SetText(tr("supervisor.enroll.done"))
		return
	}
	data := map[string]any{"Stage": p.Stage + 1, "Total": p.Total}
	if p.Retry {
		v.enrollState.SetText(tr("supervisor.enroll.retry", data))
		return
	}
	v.enrollState.SetText(tr("supervisor.enroll.place", data))
}

func (v *operatorsView) clearPasswords() {
	v.password.SetText("")
	v.password2.SetText("")
}

// grantExemption records the ID + password exemption of the selected operator. The reason is
// required (TS Art. 3(3): only when biometrics is impracticable, with the reason recorded); the
// password fields are cleared whatever the outcome.
func (v *operatorsView) grantExemption() {
	id := v.selected
	reason, pw, pw2 := strings.TrimSpace(v.reason.Text), v.password.Text, v.password2.Text
	switch {
	case id == "":
		return
	case reason == "":
		v.clearPasswords()
		v.refuse(tr("supervisor.error.reason_required"))
		return
	case len([]rune(pw)) < auth.MinPasswordLen:
		v.clearPasswords()
		v.refuse(tr("supervisor.error.password_short", map[string]any{"Min": auth.MinPasswordLen}))
		return
	case pw != pw2:
		v.clearPasswords()
		v.refuse(tr("supervisor.error.password_mismatch"))
		return
	}
	v.clearPasswords()
	v.exempt.Disable()
	v.shell.async(func() {
		err := v.admin.GrantPasswordExemption(context.Background(), id, reason, pw)
		v.shell.do(func() {
			v.exempt.Enable()
			if err != nil {
				v.refuse(supervisorMessage(err))
				return
			}
			v.reason.SetText("")
			v.say(tr("supervisor.exempted", map[string]any{"ID": id}))
			v.load()
		})
	})
}

func (v *operatorsView) withdrawExemption() {
	id := v.selected
	if id == "" {
		return
	}
	v.run(func(ctx context.Context) error { return v.admin.WithdrawPasswordExemption(ctx, id) },
		tr("supervisor.unexempted", map[string]any{"ID": id}))
}

func (v *operatorsView) toggleActive() {
	o, ok := v.find(v.selected)
	if !ok {
		return
	}
	key := "supervisor.disabled"
	if !o.Active {
		key = "supervisor.enabled"
	}
	v.run(func(ctx context.Context) error { return v.admin.SetOperatorActive(ctx, o.ID, !o.Active) },
		tr(key, map[string]any{"ID": o.ID}))
}

func (v *operatorsView) unlockOperator(id string) {
	if id == "" {
		return
	}
	v.run(func(ctx context.Context) error { return v.admin.Unlock(ctx, id) },
		tr("supervisor.unlocked", map[string]any{"ID": id}))
}

// run performs one supervisor action off the UI goroutine, then shows its outcome and re-reads
// the list.
func (v *operatorsView) run(action func(ctx context.Context) error, done string) {
	v.shell.async(func() {
		err := action(context.Background())
		v.shell.do(func() {
			if err != nil {
				v.refuse(supervisorMessage(err))
			} else {
				v.say(done)
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
