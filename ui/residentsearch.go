package ui

import (
	"context"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// ResidentQuery selects residents; empty fields are ignored, at least one must be set.
type ResidentQuery struct {
	NameKana   string // prefix of the kana reading
	Name       string // part of the name
	BirthDate  string // YYYY-MM-DD
	RecordCode string // 住民票コード, exact
}

// ResidentSummary is one search result of the resident register.
type ResidentSummary struct {
	RecordCode, Name, NameKana, BirthDate string
	Status                                string // "resident", "abroad", "moved_out", "deceased"
}

// ResidentSearcher is what a screen that picks a resident needs from the register: ResidentRegister
// and ResidentChangeDesk both offer it.
type ResidentSearcher interface {
	SearchResidents(ctx context.Context, q ResidentQuery) ([]ResidentSummary, error)
}

// residentSearchForm is the one resident search of the terminal, shared by the screens that pick
// a resident (the CS residents screen, the resident-changes screen): the criteria entries, the
// search button, and the search itself off the UI goroutine. The screen lays out form and
// search, and shows what is found in show. Screens embed it, so their tests reach the entries
// and the button as fields of the screen.
//
// Concurrency: touched on the UI goroutine only; the search runs through shell.async and hands
// its result back with shell.do.
type residentSearchForm struct {
	shell            *Shell
	reg              ResidentSearcher
	kana, name, code *widget.Entry
	birth            *widget.Entry // nil on a screen that does not search by birth date
	search           *widget.Button
	form             *fyne.Container // the labelled entries
	// message and notice are the screen's labels: a search clears the notice and says in message
	// what is missing or wrong.
	message, notice *widget.Label
	show            func([]ResidentSummary, error)
}

// newResidentSearchForm builds the form. withBirth adds the birth-date criterion; show gets the
// residents found (or the error) on the UI goroutine, after the button is enabled again.
func newResidentSearchForm(s *Shell, reg ResidentSearcher, withBirth bool, message, notice *widget.Label,
	show func([]ResidentSummary, error)) *residentSearchForm {
	f := &residentSearchForm{shell: s, reg: reg, kana: widget.NewEntry(), name: widget.NewEntry(), code: widget.NewEntry(),
		message: message, notice: notice, show: show}
	entries := []*widget.Entry{f.kana, f.name, f.code}
	rows := []fyne.CanvasObject{widget.NewLabel(tr("cs.name_kana")), f.kana, widget.NewLabel(tr("cs.name")), f.name}
	if withBirth {
		f.birth = widget.NewEntry()
		f.birth.SetPlaceHolder("1980-04-01")
		entries = append(entries, f.birth)
		rows = append(rows, widget.NewLabel(tr("cs.birth_date")), f.birth)
	}
	rows = append(rows, widget.NewLabel(tr("cs.record_code")), f.code)
	for _, e := range entries {
		e.OnSubmitted = func(string) { f.doSearch() }
	}
	f.search = widget.NewButtonWithIcon(tr("cs.search"), theme.SearchIcon(), f.doSearch)
	f.form = container.New(layout.NewFormLayout(), rows...)
	return f
}

// query is the criteria typed, without surrounding spaces.
func (f *residentSearchForm) query() ResidentQuery {
	q := ResidentQuery{NameKana: strings.TrimSpace(f.kana.Text), Name: strings.TrimSpace(f.name.Text),
		RecordCode: strings.TrimSpace(f.code.Text)}
	if f.birth != nil {
		q.BirthDate = strings.TrimSpace(f.birth.Text)
	}
	return q
}

// doSearch asks the register off the UI goroutine; an empty query is refused here, as the
// domain would refuse it.
func (f *residentSearchForm) doSearch() {
	q := f.query()
	f.notice.SetText("")
	if q == (ResidentQuery{}) {
		f.message.SetText(tr("cs.need_criteria"))
		return
	}
	f.message.SetText("")
	f.search.Disable()
	f.shell.async(func() {
		rs, err := f.reg.SearchResidents(context.Background(), q)
		f.shell.do(func() {
			f.search.Enable()
			f.show(rs, err)
		})
	})
}
