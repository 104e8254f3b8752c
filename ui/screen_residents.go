package ui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// ResidentRegister is the CS application's view of the resident register (TS Art. 3(1)). A
// Session that offers it implements it; the domain checks the CS permission and audits the
// search criteria and every exported file.
type ResidentRegister interface {
	ResidentSearcher
	// ExportResidentFile returns the integrity-protected resident-record file of one applicant,
	// which the reception application imports once, before it expires.
	ExportResidentFile(ctx context.Context, recordCode string) ([]byte, error)
}

// residentsScreen is the CS application's search of the resident register and the export of one
// applicant's resident-record file for the reception application (TS Art. 3(1)(2)). Files go to
// the shell's ResidentFileDir, the hand-over point between the two applications of the terminal.
func residentsScreen() Screen {
	return Screen{ID: "cs.residents", Title: "cs.title", Permission: PermissionCS, View: newResidentsView}
}

type residentsView struct {
	*residentSearchForm // the criteria and the search button
	shell               *Shell
	reg                 ResidentRegister
	table               *fyne.Container // one row per resident found
	body                *fyne.Container // laid out again when the table changes
	message, notice     *widget.Label
}

func newResidentsView(s *Shell) fyne.CanvasObject {
	_, o := buildResidentsView(s)
	return o
}

// buildResidentsView returns the view and its content (tests keep the view to reach its
// widgets). The whole screen scrolls under the shell's header: the list of residents found can
// be longer than the window.
func buildResidentsView(s *Shell) (*residentsView, fyne.CanvasObject) {
	v := &residentsView{shell: s, table: container.NewVBox(), message: procWrapped(""), notice: procWrapped("")}
	v.message.Importance = widget.DangerImportance
	v.notice.Importance = widget.SuccessImportance
	reg, ok := s.Session().(ResidentRegister)
	if !ok {
		v.message.SetText(tr("error.internal"))
		return v, v.message
	}
	v.reg = reg
	v.residentSearchForm = newResidentSearchForm(s, reg, true, v.message, v.notice, v.render)
	v.search.Importance = widget.HighImportance
	v.body = container.NewVBox(v.form, container.NewHBox(v.search), v.message, v.notice, v.table)
	_, page := newPageScroll(v.body)
	return v, page
}

// render lists the residents found: equal columns whose texts wrap (a long name or kana never
// widens the window), each row as tall as its own cells.
func (v *residentsView) render(rs []ResidentSummary, err error) {
	defer v.body.Refresh()
	v.table.RemoveAll()
	if err != nil {
		v.message.SetText(errorMessage(err))
		return
	}
	if len(rs) == 0 {
		v.message.SetText(tr("cs.no_results"))
		return
	}
	v.table.Add(procTableRow(procTableHeader("cs.record_code", "cs.name", "cs.name_kana", "cs.birth_date", "cs.status", "")...))
	for _, r := range rs {
		r := r
		b := widget.NewButtonWithIcon(tr("cs.export"), theme.DocumentSaveIcon(), func() { v.export(r) })
		if r.Status == "deceased" || r.Status == "moved_out" {
			b.Disable() // the domain refuses them too (kind ResidentNotEligible)
		}
		v.table.Add(procTableRow(procWrapped(r.RecordCode), procWrapped(r.Name), procWrapped(r.NameKana),
			procWrapped(r.BirthDate), procWrapped(residentStatusName(r.Status)), container.NewVBox(b)))
	}
}

// export writes the applicant's file into ResidentFileDir, never over an existing file.
func (v *residentsView) export(r ResidentSummary) {
	dir := v.shell.ResidentFileDir
	if dir == "" {
		v.message.SetText(tr("cs.no_file_dir"))
		return
	}
	v.message.SetText("")
	v.notice.SetText("")
	v.shell.async(func() {
		data, err := v.reg.ExportResidentFile(context.Background(), r.RecordCode)
		var path string
		if err == nil {
			path, err = writeResidentFile(dir, r.RecordCode, data, time.Now())
		}
		v.shell.do(func() {
			defer v.body.Refresh() // the message's lines push the list down
			if err != nil {
				v.message.SetText(errorMessage(err))
				return
			}
			v.notice.SetText(tr("cs.exported", map[string]any{"Name": r.Name, "Path": path}))
		})
	})
}

// writeResidentFile stores data as dir/resident-<code>-<time>.json, readable by this user only
// (the file carries the applicant's personal data), refusing to replace an existing file.
func writeResidentFile(dir, recordCode string, data []byte, now time.Time) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("ui: resident file directory: %w", err)
	}
	path := filepath.Join(dir, fmt.Sprintf("resident-%s-%s.json", recordCode, now.Format("20060102-150405.000")))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("ui: write resident file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("ui: write resident file: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("ui: write resident file: %w", err)
	}
	return path, nil
}

// residentStatusName is the translated resident status.
func residentStatusName(status string) string {
	switch status {
	case "resident":
		return tr("cs.status.resident")
	case "abroad":
		return tr("cs.status.abroad")
	case "moved_out":
		return tr("cs.status.moved_out")
	case "deceased":
		return tr("cs.status.deceased")
	}
	return status
}
