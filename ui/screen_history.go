package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// historyScreen is the auditor's view of the operation history (TS Art. 20(2), 42(2): who
// asked, what, on what, when, and the result): the records in a table, selected by operator
// (TS Art. 20(2)(ii): one chosen operator's history on its own) and by date, the check of the
// whole hash chain with the first bad record named, and the export of the selection to a file.
// Reading, checking and exporting are themselves recorded by the domain.
func historyScreen() Screen {
	return Screen{ID: "audit.history", Title: "history.title", Permission: PermissionAudit, View: newHistoryView}
}

// AuditFilter selects audit records; zero fields match everything. From is inclusive, To
// exclusive.
type AuditFilter struct {
	Operator string
	From, To time.Time
}

// AuditCheck is the outcome of checking the audit chain. BadSeq is 0 when the chain is intact;
// otherwise it is the first bad record and Reason says what is wrong with it ("edited",
// "missing or reordered", "sequence gap", "truncated", "head missing", and against the CA
// witness "rewritten before a witnessed head", "truncated before a witnessed head", "forged
// receipt"). Witnessed is the newest record the CA vouches for, Unwitnessed the records after
// it; CAConsulted is false when only the receipts kept on the terminal were checked.
type AuditCheck struct {
	Records     int64
	BadSeq      int64
	Reason      string
	Witnessed   int64
	Unwitnessed int64
	CAConsulted bool
}

// ExportFormat is the file format of an audit export.
type ExportFormat string

// The export formats.
const (
	ExportJSONLines ExportFormat = "jsonl"
	ExportCSV       ExportFormat = "csv"
)

// AuditEntry is one record of the operation history: who asked, what, when, and the result
// (TS Art. 20(2)).
type AuditEntry struct {
	Seq      int64
	At       time.Time
	Operator string
	Action   string
	Target   string
	Result   string
	Detail   map[string]string // what the domain recorded besides (never secrets), e.g. the refusal's kind
}

// AuditLog is what the auditor's screen needs from the domain. A Session that offers it
// implements it; the domain checks the Audit permission and records each call.
type AuditLog interface {
	AuditRecords(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
	// CheckAuditChain walks the whole chain. A broken chain is a result, not an error: the
	// error is for failures to check at all.
	CheckAuditChain(ctx context.Context) (AuditCheck, error)
	ExportAuditRecords(ctx context.Context, f AuditFilter, format ExportFormat, w io.Writer) error
}

const dateLayout = "2006-01-02"

// historyView is the auditor's screen. Its methods run on the UI goroutine; domain calls go
// through Shell.async and their results come back through Shell.do.
type historyView struct {
	shell *Shell
	log   AuditLog

	operator, from, to *widget.Entry
	show               *widget.Button
	verify             *widget.Button
	verdict            *widget.Label
	format             *widget.RadioGroup
	path               *widget.Entry
	export             *widget.Button
	count              *widget.Label
	table              *widget.Table
	message            *widget.Label
	notice             *widget.Label
	// detail shows the selected record whole (the table's cells are shortened with an
	// ellipsis to keep the columns within the window).
	detail *widget.Label

	rows   []AuditEntry
	filter AuditFilter // the filter of rows, which the export writes
}

// historyColumns are the table's columns: translation key and width. The last column (the
// detail) takes the rest of the window's width (historyTableLayout), never less than its width
// here; a cell's text longer than its column ends in an ellipsis and the selected record is
// shown whole below the table.
var historyColumns = []struct {
	key   string
	width float32
}{
	{"history.seq", 70}, {"history.at", 180}, {"history.operator", 120}, {"history.action", 230},
	{"history.target", 150}, {"history.result", 80}, {"history.detail", 200},
}

func newHistoryView(s *Shell) fyne.CanvasObject {
	_, o := buildHistoryView(s)
	return o
}

// buildHistoryView returns the view and its content (tests keep the view to reach its widgets).
func buildHistoryView(s *Shell) (*historyView, fyne.CanvasObject) {
	v := &historyView{shell: s, operator: widget.NewEntry(), from: widget.NewEntry(), to: widget.NewEntry(),
		message: widget.NewLabel(""), notice: widget.NewLabel(""), verdict: widget.NewLabel(""), count: widget.NewLabel(""),
		detail: widget.NewLabel("")}
	for _, l := range []*widget.Label{v.message, v.notice, v.verdict, v.detail} {
		l.Wrapping = fyne.TextWrapWord
	}
	v.message.Importance = widget.DangerImportance
	v.notice.Importance = widget.SuccessImportance
	for _, l := range []*widget.Label{v.message, v.notice, v.verdict} {
		l.Hide()
	}
	log, ok := s.Session().(AuditLog)
	if !ok {
		setShown(v.message, tr("error.internal"))
		return v, v.message
	}
	v.log = log

	v.operator.SetPlaceHolder(tr("history.operator.placeholder"))
	v.from.SetPlaceHolder(tr("history.date.placeholder"))
	v.to.SetPlaceHolder(tr("history.date.placeholder"))
	// The last 30 days by default: the whole history of a terminal grows without bound, and an
	// auditor widens the range on purpose.
	v.from.SetText(time.Now().In(japanTime).AddDate(0, 0, -30).Format(dateLayout))
	for _, e := range []*widget.Entry{v.operator, v.from, v.to} {
		e.OnSubmitted = func(string) { v.load() }
	}
	v.show = widget.NewButtonWithIcon(tr("history.show"), theme.SearchIcon(), v.load)
	v.show.Importance = widget.HighImportance
	v.verify = widget.NewButtonWithIcon(tr("history.verify"), theme.ConfirmIcon(), v.check)

	v.format = widget.NewRadioGroup([]string{tr("history.format.jsonl"), tr("history.format.csv")}, func(string) { v.suggestPath() })
	v.format.Horizontal = true
	v.format.SetSelected(tr("history.format.jsonl"))
	v.path = widget.NewEntry()
	v.path.OnSubmitted = func(string) { v.exportFile() }
	v.suggestPath()
	browse := widget.NewButtonWithIcon(tr("history.browse"), theme.FolderOpenIcon(), v.browse)
	v.export = widget.NewButtonWithIcon(tr("history.export"), theme.DocumentSaveIcon(), v.exportFile)

	v.table = widget.NewTable(
		func() (int, int) { return len(v.rows), len(historyColumns) },
		func() fyne.CanvasObject {
			l := widget.NewLabel("")
			l.Truncation = fyne.TextTruncateEllipsis
			return l
		},
		func(id widget.TableCellID, o fyne.CanvasObject) { v.fillCell(id, o.(*widget.Label)) })
	v.table.OnSelected = func(id widget.TableCellID) { v.showDetail(id.Row) }
	v.table.ShowHeaderRow = true
	v.table.CreateHeader = func() fyne.CanvasObject {
		return widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	}
	v.table.UpdateHeader = func(id widget.TableCellID, o fyne.CanvasObject) {
		if id.Row < 0 && id.Col >= 0 && id.Col < len(historyColumns) {
			o.(*widget.Label).SetText(tr(historyColumns[id.Col].key))
		}
	}
	for i, c := range historyColumns {
		v.table.SetColumnWidth(i, c.width)
	}

	label := func(key string) fyne.CanvasObject { return widget.NewLabel(tr(key)) }
	filters := container.NewHBox(label("history.operator"), sized(v.operator, 180),
		label("history.from"), sized(v.from, 150), label("history.to"), sized(v.to, 150), v.show)
	exportRow := container.NewBorder(nil, nil, container.NewHBox(v.verify, widget.NewSeparator(), v.format),
		container.NewHBox(browse, v.export), v.path)
	top := container.NewVBox(filters, exportRow, v.verdict, v.message, v.notice, v.count)
	v.detail.SetText(tr("history.detail.hint"))
	v.detail.Show()
	detailPane := container.NewVScroll(v.detail)
	detailPane.SetMinSize(fyne.NewSize(0, historyDetailHeight))
	bottom := container.NewVBox(widget.NewSeparator(), detailPane)
	v.load()
	return v, container.NewBorder(top, bottom, nil, nil, container.New(historyTableLayout{v.table}, v.table))
}

// historyDetailHeight is the height of the pane under the table that shows the selected record
// whole: four lines, scrolled when the record's detail is longer.
const historyDetailHeight = 120

// historyTableLayout gives the audit table its whole cell and widens the last column (the
// detail) to the width the other columns leave, so that the table needs no sideways scrolling
// in the counter window.
type historyTableLayout struct{ table *widget.Table }

func (l historyTableLayout) Layout(objects []fyne.CanvasObject, size fyne.Size) {
	for _, o := range objects {
		o.Move(fyne.Position{})
		o.Resize(size)
	}
	th := l.table.Theme()
	// Each column is followed by a separator of the theme's padding; the vertical scroll bar
	// sits over the last one.
	rest := size.Width - th.Size(theme.SizeNameScrollBar) - float32(len(historyColumns))*th.Size(theme.SizeNamePadding)
	last := len(historyColumns) - 1
	for _, c := range historyColumns[:last] {
		rest -= c.width
	}
	l.table.SetColumnWidth(last, fyne.Max(rest, historyColumns[last].width))
}

func (l historyTableLayout) MinSize(objects []fyne.CanvasObject) fyne.Size {
	return l.table.MinSize()
}

// showDetail shows record row of the table whole in the pane under the table.
func (v *historyView) showDetail(row int) {
	if row < 0 || row >= len(v.rows) {
		return
	}
	e := v.rows[row]
	lines := []string{tr("history.detail.record", map[string]any{"Seq": e.Seq, "At": e.At.In(japanTime).Format("2006-01-02 15:04:05"),
		"Operator": e.Operator, "Action": lang.X("action."+e.Action, e.Action), "Target": e.Target,
		"Result": lang.X("result."+e.Result, e.Result)})}
	keys := make([]string, 0, len(e.Detail))
	for k := range e.Detail {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lines = append(lines, k+" = "+e.Detail[k])
	}
	v.detail.SetText(strings.Join(lines, "\n"))
}

// sized gives an entry a fixed width in a row of an HBox.
func sized(o fyne.CanvasObject, width float32) fyne.CanvasObject {
	return container.NewGridWrap(fyne.NewSize(width, o.MinSize().Height), o)
}

func (v *historyView) fillCell(id widget.TableCellID, l *widget.Label) {
	if id.Row < 0 || id.Row >= len(v.rows) {
		return
	}
	e := v.rows[id.Row]
	l.Importance = widget.MediumImportance
	switch id.Col {
	case 0:
		l.SetText(fmt.Sprint(e.Seq))
	case 1:
		l.SetText(e.At.In(japanTime).Format("2006-01-02 15:04:05"))
	case 2:
		l.SetText(e.Operator)
	case 3:
		// Actions without a translation show their stable code, so no record is ever hidden.
		l.SetText(lang.X("action."+e.Action, e.Action))
	case 4:
		l.SetText(e.Target)
	case 5:
		if e.Result != "ok" {
			l.Importance = widget.DangerImportance
		}
		l.SetText(lang.X("result."+e.Result, e.Result))
	case 6:
		l.SetText(detailText(e.Detail))
	}
}

// detailText shows a record's detail as "key=value" pairs in key order. The domain never
// records secrets there (DOMAIN §9).
func detailText(d map[string]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+d[k])
	}
	return strings.Join(parts, ", ")
}

// parseFilter reads the filter fields. The dates are calendar days in Japan Standard Time, as
// every time the terminal shows and prints; the "to" day is included.
func (v *historyView) parseFilter() (AuditFilter, error) {
	f := AuditFilter{Operator: strings.TrimSpace(v.operator.Text)}
	var err error
	if t := strings.TrimSpace(v.from.Text); t != "" {
		if f.From, err = japanDay(t); err != nil {
			return f, errors.New("from")
		}
	}
	if t := strings.TrimSpace(v.to.Text); t != "" {
		to, err := japanDay(t)
		if err != nil {
			return f, errors.New("to")
		}
		f.To = to.AddDate(0, 0, 1)
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, errors.New("range")
	}
	return f, nil
}

func (v *historyView) load() {
	f, err := v.parseFilter()
	if err != nil {
		setShown(v.notice, "")
		setShown(v.message, tr("history.error.date"))
		return
	}
	setShown(v.message, "")
	v.show.Disable()
	v.shell.async(func() {
		entries, err := v.log.AuditRecords(context.Background(), f)
		v.shell.do(func() {
			v.show.Enable()
			v.render(f, entries, err)
		})
	})
}

func (v *historyView) render(f AuditFilter, entries []AuditEntry, err error) {
	if err != nil {
		setShown(v.message, errorMessage(err))
		return
	}
	v.rows, v.filter = entries, f
	who := f.Operator
	if who == "" {
		who = tr("history.everyone")
	}
	if len(entries) == 0 {
		v.count.SetText(tr("history.empty"))
	} else {
		v.count.SetText(tr("history.count", map[string]any{"Count": len(entries), "Operator": who}))
	}
	v.table.UnselectAll()
	v.detail.SetText(tr("history.detail.hint"))
	v.table.Refresh()
	v.table.ScrollToTop()
}

// check verifies the whole chain and names the first bad record.
func (v *historyView) check() {
	v.verify.Disable()
	setShown(v.verdict, tr("history.verify.running"))
	v.verdict.Importance = widget.MediumImportance
	v.shell.async(func() {
		res, err := v.log.CheckAuditChain(context.Background())
		v.shell.do(func() {
			v.verify.Enable()
			switch {
			case err != nil:
				setShown(v.verdict, "")
				setShown(v.message, errorMessage(err))
			case res.BadSeq == 0:
				v.verdict.Importance = widget.SuccessImportance
				witness := "history.verify.witness"
				if !res.CAConsulted {
					witness = "history.verify.witness_offline"
				}
				setShown(v.verdict, tr("history.verify.intact", map[string]any{"Count": res.Records})+"\n"+
					tr(witness, map[string]any{"Witnessed": res.Witnessed, "Unwitnessed": res.Unwitnessed}))
			default:
				v.verdict.Importance = widget.DangerImportance
				setShown(v.verdict, tr("history.verify.broken", map[string]any{"Seq": res.BadSeq,
					"Reason": lang.X("history.reason."+res.Reason, res.Reason)}))
			}
			v.verdict.Refresh()
		})
	})
}

func (v *historyView) selectedFormat() ExportFormat {
	if v.format.Selected == tr("history.format.csv") {
		return ExportCSV
	}
	return ExportJSONLines
}

// suggestPath proposes a file name in the user's home directory for the chosen format, keeping
// a directory the auditor already chose.
func (v *historyView) suggestPath() {
	if v.path == nil {
		return
	}
	dir := filepath.Dir(v.path.Text)
	if v.path.Text == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return
		}
		dir = home
	}
	name := "audit-" + time.Now().Format("20060102-150405") + "." + string(v.selectedFormat())
	v.path.SetText(filepath.Join(dir, name))
}

// browse lets the auditor pick the export file with Fyne's file dialog.
func (v *historyView) browse() {
	d := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
		if err != nil || w == nil {
			return
		}
		path := w.URI().Path()
		w.Close()
		os.Remove(path) // the dialog creates the file; exportFile creates it again, exclusively
		v.path.SetText(path)
	}, v.shell.Window())
	d.SetFileName(filepath.Base(v.path.Text))
	d.Show()
}

// exportFile writes the records of the filter the table shows to the chosen file (mode 0600,
// never over an existing file). A failed export leaves no partial file behind.
func (v *historyView) exportFile() {
	path := strings.TrimSpace(v.path.Text)
	if path == "" || !filepath.IsAbs(path) {
		setShown(v.message, tr("history.error.path"))
		return
	}
	f := v.filter // what the table shows, as the notice says
	format := v.selectedFormat()
	v.export.Disable()
	v.shell.async(func() {
		err := v.writeExport(path, f, format)
		v.shell.do(func() {
			v.export.Enable()
			switch {
			case errors.Is(err, os.ErrExist):
				setShown(v.notice, "")
				setShown(v.message, tr("history.error.exists"))
			case err != nil:
				setShown(v.notice, "")
				var pe *os.PathError
				if errors.As(err, &pe) {
					setShown(v.message, tr("history.error.write"))
				} else {
					setShown(v.message, errorMessage(err))
				}
			default:
				setShown(v.message, "")
				setShown(v.notice, tr("history.exported", map[string]any{"Path": path}))
				v.suggestPath()
			}
		})
	})
}

func (v *historyView) writeExport(path string, f AuditFilter, format ExportFormat) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = v.log.ExportAuditRecords(context.Background(), f, format, out)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}
