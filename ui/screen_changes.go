package ui

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/apperr"
)

// ChangesScreenID is the screen ID of the CS resident-changes screen.
const ChangesScreenID = "cs.changes"

// changesScreen records changes of the resident register for a resident found by search, and
// shows the outbox of change-driven revocation (異動等失効情報, R02 II-3-1(2)): every change is
// queued for the CA, which decides by its rule table which certificates it revokes; the
// terminal only says "this person's record changed". CS permission only (TS Art. 3(4)).
func changesScreen() Screen {
	return Screen{ID: ChangesScreenID, Title: "changes.title", Permission: PermissionCS, View: newChangesView}
}

// changeKinds are the changes this screen records, in the order offered.
var changeKinds = []ResidentChangeKind{ChangeMoveOut, ChangeMoveIn, ChangeName, ChangeDeath, ChangeEmigration}

func changeKindName(k ResidentChangeKind) string {
	switch k {
	case ChangeMoveOut:
		return tr("changes.kind.move_out")
	case ChangeMoveIn:
		return tr("changes.kind.move_in")
	case ChangeName:
		return tr("changes.kind.name_change")
	case ChangeDeath:
		return tr("changes.kind.death")
	case ChangeEmigration:
		return tr("changes.kind.emigration")
	case "address_change":
		return tr("changes.kind.address_change")
	case "correction":
		return tr("changes.kind.correction")
	}
	return string(k)
}

// changeEffect tells the CS operator what the CA's rule table does with a change
// (ca-server/revocation/rules.json "changes"), before it is recorded.
func changeEffect(k ResidentChangeKind) string {
	switch k {
	case ChangeMoveOut:
		return tr("changes.effect.move_out")
	case ChangeMoveIn:
		return tr("changes.effect.move_in")
	case ChangeName:
		return tr("changes.effect.name_change")
	case ChangeDeath:
		return tr("changes.effect.death")
	case ChangeEmigration:
		return tr("changes.effect.emigration")
	}
	return ""
}

var isoDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// changesView is the resident-changes screen. It is a widget so that tests can reach its fields.
type changesView struct {
	widget.BaseWidget
	shell *Shell
	desk  ResidentChangeDesk

	*residentSearchForm // step 1: the criteria and the search button
	results             *fyne.Container
	chosen              ResidentSummary
	chosenLabel         *widget.Label

	kind               *widget.RadioGroup
	effect             *widget.Label
	effective          *widget.Entry
	newName, newKana   *widget.Entry
	newAddress         *widget.Entry
	nameBox, moveInBox *fyne.Container
	record             *widget.Button

	outbox  *fyne.Container
	body    *fyne.Container // relaid out when the tables change size
	send    *widget.Button
	reload  *widget.Button
	sent    []OutboxEntry // delivered in this screen, shown until it is closed
	message *widget.Label
	notice  *widget.Label
	content fyne.CanvasObject
}

func newChangesView(s *Shell) fyne.CanvasObject {
	desk, ok := deskOf[ResidentChangeDesk](s.Session())
	if !ok {
		return procDangerLabel(tr("error.internal"))
	}
	v := &changesView{shell: s, desk: desk,
		results: container.NewVBox(), chosenLabel: procWrapped(tr("changes.none_chosen")),
		effect: widget.NewLabel(""), effective: widget.NewEntry(),
		newName: widget.NewEntry(), newKana: widget.NewEntry(), newAddress: widget.NewEntry(),
		outbox: container.NewVBox(), message: widget.NewLabel(""), notice: widget.NewLabel("")}
	v.ExtendBaseWidget(v)
	v.message.Importance = widget.DangerImportance
	v.message.Wrapping = fyne.TextWrapWord
	v.notice.Importance = widget.SuccessImportance
	v.notice.Wrapping = fyne.TextWrapWord
	v.effect.Importance = widget.WarningImportance
	v.effect.Wrapping = fyne.TextWrapWord
	v.residentSearchForm = newResidentSearchForm(s, desk, false, v.message, v.notice, v.showResults)
	names := make([]string, len(changeKinds))
	for i, k := range changeKinds {
		names[i] = changeKindName(k)
	}
	v.kind = widget.NewRadioGroup(names, func(string) { v.kindChanged() })
	v.kind.Horizontal = true
	v.effective.SetPlaceHolder(tr("changes.effective.placeholder"))
	v.newAddress.OnSubmitted = func(string) { v.doRecord() }
	v.effective.OnSubmitted = func(string) { v.doRecord() }
	v.nameBox = container.New(layout.NewFormLayout(),
		widget.NewLabel(tr("changes.new_name")), v.newName, widget.NewLabel(tr("changes.new_kana")), v.newKana)
	v.moveInBox = container.New(layout.NewFormLayout(), widget.NewLabel(tr("changes.new_address")), v.newAddress)
	v.record = widget.NewButtonWithIcon(tr("changes.record"), theme.DocumentSaveIcon(), v.doRecord)
	v.record.Importance = widget.HighImportance
	v.send = widget.NewButtonWithIcon(tr("changes.send"), theme.MailSendIcon(), v.doSend)
	v.reload = widget.NewButtonWithIcon(tr("changes.reload"), theme.ViewRefreshIcon(), v.loadOutbox)

	changeForm := container.New(layout.NewFormLayout(),
		widget.NewLabel(tr("changes.kind")), v.kind,
		widget.NewLabel(tr("changes.effective")), v.effective)
	v.body = container.NewVBox(
		procHeading("changes.step.search"), v.form, container.NewHBox(v.search), v.results,
		widget.NewSeparator(),
		procHeading("changes.step.change"), v.chosenLabel, changeForm, v.effect, v.nameBox, v.moveInBox, container.NewHBox(v.record),
		v.message, v.notice,
		widget.NewSeparator(),
		procHeading("changes.step.outbox"), procWrapped(tr("changes.outbox.intro")), container.NewHBox(v.reload, v.send), v.outbox,
	)
	_, v.content = newPageScroll(v.body)
	v.kindChanged()
	v.loadOutbox()
	return v
}

// The tables grow after the screen is laid out; body.Refresh lays the whole screen out again
// so that they get their rows' height (a container's Add lays out only that container).

func (v *changesView) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(v.content)
}

func (v *changesView) selectedKind() ResidentChangeKind {
	for _, k := range changeKinds {
		if changeKindName(k) == v.kind.Selected {
			return k
		}
	}
	return ""
}

// kindChanged shows the fields the chosen change needs and what the CA will do with it.
func (v *changesView) kindChanged() {
	k := v.selectedKind()
	v.effect.SetText(changeEffect(k))
	if k == ChangeName {
		v.nameBox.Show()
	} else {
		v.nameBox.Hide()
	}
	if k == ChangeMoveIn {
		v.moveInBox.Show()
	} else {
		v.moveInBox.Hide()
	}
	procSetEnabled(v.record, v.chosen.RecordCode != "" && k != "")
}

func (v *changesView) showResults(rs []ResidentSummary, err error) {
	defer v.body.Refresh()
	v.results.RemoveAll()
	if err != nil {
		v.message.SetText(errorMessage(err))
		return
	}
	if len(rs) == 0 {
		v.message.SetText(tr("cs.no_results"))
		return
	}
	v.results.Add(procTableRow(procTableHeader("cs.record_code", "cs.name", "cs.birth_date", "cs.status", "")...))
	for _, r := range rs {
		r := r
		b := widget.NewButtonWithIcon(tr("changes.choose"), theme.ConfirmIcon(), func() { v.choose(r) })
		if r.Status == "deceased" {
			b.Disable() // the domain refuses changes of a deceased resident too
		}
		v.results.Add(procTableRow(procWrapped(r.RecordCode), procWrapped(r.Name), procWrapped(r.BirthDate),
			procWrapped(residentStatusName(r.Status)), container.NewVBox(b)))
	}
}

func (v *changesView) choose(r ResidentSummary) {
	v.chosen = r
	v.chosenLabel.SetText(tr("changes.chosen", map[string]any{"Name": r.Name, "Code": r.RecordCode, "Status": residentStatusName(r.Status)}))
	v.message.SetText("")
	v.notice.SetText("")
	v.kindChanged()
}

// entry returns the change to record, or the key of what is missing.
func (v *changesView) entry() (ResidentChangeEntry, string) {
	e := ResidentChangeEntry{RecordCode: v.chosen.RecordCode, Kind: v.selectedKind(), Effective: strings.TrimSpace(v.effective.Text)}
	switch {
	case e.RecordCode == "":
		return e, "changes.error.no_resident"
	case e.Kind == "":
		return e, "changes.error.kind"
	case !isoDate.MatchString(e.Effective):
		return e, "changes.error.effective"
	}
	if _, err := time.Parse("2006-01-02", e.Effective); err != nil {
		return e, "changes.error.effective"
	}
	switch e.Kind {
	case ChangeName:
		e.NewName, e.NewKana = strings.TrimSpace(v.newName.Text), strings.TrimSpace(v.newKana.Text)
		if e.NewName == "" || e.NewKana == "" {
			return e, "changes.error.new_name"
		}
	case ChangeMoveIn:
		e.NewAddress = strings.TrimSpace(v.newAddress.Text)
		if e.NewAddress == "" {
			return e, "changes.error.new_address"
		}
	}
	return e, ""
}

func (v *changesView) doRecord() {
	e, key := v.entry()
	v.notice.SetText("")
	if key != "" {
		v.message.SetText(tr(key))
		return
	}
	v.message.SetText("")
	v.record.Disable()
	v.shell.async(func() {
		err := v.desk.RecordChange(context.Background(), e)
		v.shell.do(func() {
			v.record.Enable()
			if err != nil {
				v.message.SetText(procedureErrorMessage(err))
				return
			}
			v.notice.SetText(tr("changes.recorded", map[string]any{"Name": v.chosen.Name, "Kind": changeKindName(e.Kind)}))
			v.effective.SetText("")
			v.newName.SetText("")
			v.newKana.SetText("")
			v.newAddress.SetText("")
			v.loadOutbox()
		})
	})
}

func (v *changesView) loadOutbox() {
	v.shell.async(func() {
		es, err := v.desk.PendingOutbox(context.Background())
		v.shell.do(func() {
			if err != nil {
				v.message.SetText(procedureErrorMessage(err))
				return
			}
			v.showOutbox(es)
		})
	})
}

// doSend delivers what is due now (the terminal also sends on its own timer where wired).
func (v *changesView) doSend() {
	v.send.Disable()
	v.message.SetText("")
	v.shell.async(func() {
		ctx, cancel := context.WithTimeout(context.Background(), procedureTimeout)
		es, err := v.desk.SendOutbox(ctx)
		cancel()
		v.shell.do(func() {
			v.send.Enable()
			var pending []OutboxEntry
			failed := false
			for _, e := range es {
				if e.State == OutboxSent {
					v.sent = append(v.sent, e)
				} else {
					pending = append(pending, e)
				}
				failed = failed || e.State == OutboxFailed
			}
			switch {
			case errors.Is(err, apperr.CAUnavailable):
				// Nothing is lost: the changes stay in the outbox until the CA takes them.
				v.message.SetText(tr("changes.error.ca_unavailable"))
				v.loadOutbox()
				return
			case err != nil:
				v.message.SetText(procedureErrorMessage(err))
				v.loadOutbox()
				return
			case failed:
				v.message.SetText(tr("changes.send_failed"))
			default:
				v.notice.SetText(tr("changes.sent_all"))
			}
			v.showOutbox(pending)
		})
	})
}

// showOutbox lists the undelivered changes, then those delivered from this screen.
func (v *changesView) showOutbox(pending []OutboxEntry) {
	defer v.body.Refresh()
	v.outbox.RemoveAll()
	v.outbox.Add(procTableRow(procTableHeader("changes.col.record_code", "changes.col.kind", "changes.col.effective",
		"changes.col.recorded_at", "changes.col.state", "changes.col.ca")...))
	rows := append(append([]OutboxEntry{}, pending...), v.sent...)
	if len(rows) == 0 {
		v.outbox.Add(procWrapped(tr("changes.outbox.empty")))
		return
	}
	for _, e := range rows {
		state := procWrapped(outboxStateName(e))
		switch e.State {
		case OutboxSent:
			state.Importance = widget.SuccessImportance
		case OutboxFailed:
			state.Importance = widget.DangerImportance
		}
		v.outbox.Add(procTableRow(procWrapped(e.RecordCode), procWrapped(changeKindName(e.Kind)), procWrapped(e.Effective),
			procWrapped(e.RecordedAt.In(japanTime).Format("2006-01-02 15:04")), state, procWrapped(outboxOutcome(e))))
	}
}

// procWrapped is a label that wraps at word boundaries, so that long texts and table cells fit the
// window's width instead of widening the screen past it.
func procWrapped(text string) *widget.Label {
	l := widget.NewLabel(text)
	l.Wrapping = fyne.TextWrapWord
	return l
}

// procTableRow is one row of a table: equal columns, each row as tall as its own cells (a single
// grid would make every row as tall as the tallest).
func procTableRow(cells ...fyne.CanvasObject) fyne.CanvasObject {
	return container.NewGridWithColumns(len(cells), cells...)
}

// procTableHeader returns the bold column titles (an empty key gives an empty cell).
func procTableHeader(keys ...string) []fyne.CanvasObject {
	out := make([]fyne.CanvasObject, len(keys))
	for i, k := range keys {
		text := ""
		if k != "" {
			text = tr(k)
		}
		l := procWrapped(text)
		l.TextStyle.Bold = true
		out[i] = l
	}
	return out
}

func outboxStateName(e OutboxEntry) string {
	switch e.State {
	case OutboxSent:
		return tr("changes.state.sent")
	case OutboxWaiting:
		return tr("changes.state.waiting")
	case OutboxFailed:
		return tr("changes.state.failed", map[string]any{"Attempts": e.Attempts})
	}
	return tr("changes.state.pending")
}

// outboxOutcome says what the CA did with a delivered change.
func outboxOutcome(e OutboxEntry) string {
	if e.State != OutboxSent {
		return ""
	}
	names := func(ts []CertType) string {
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = certTypeName(t)
		}
		return strings.Join(out, tr("list.separator"))
	}
	var parts []string
	if len(e.Revoked) > 0 {
		parts = append(parts, tr("changes.ca.revoked", map[string]any{"Certificates": names(e.Revoked)}))
	}
	if len(e.Deferred) > 0 {
		parts = append(parts, tr("changes.ca.deferred", map[string]any{"Certificates": names(e.Deferred)}))
	}
	if len(parts) == 0 {
		return tr("changes.ca.nothing")
	}
	return strings.Join(parts, "　")
}
