package ui

import (
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/data/binding"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/workflow"
)

// recFilePage is the issuance wizard's first page: the resident-record file from the CS
// application's hand-over folder, new issuance or renewal (with the current certificate's
// expiry, CPS §6.3.2.2), the certificate types and whether they go on a new card. It owns its
// widgets and says what the case is for; the wizard opens the case with the domain.
//
// Concurrency: touched on the UI goroutine only.
type recFilePage struct {
	kind          *widget.RadioGroup // 新規発行 / 更新
	newCard       *widget.Check      // 新しいカードへの発行
	currentExpiry *widget.Entry      // renewal: the current certificate's expiry
	renewalBox    *fyne.Container
	fileBody      *fyne.Container
	files         *widget.Select
	filePaths     map[string]string // shown name → path
	typeSign      *widget.Check
	typeAuth      *widget.Check
	canImport     binding.Bool // a file, a certificate type and a valid expiry: the button is enabled
	importBtn     *widget.Button
	// dir is the hand-over folder (Shell.ResidentFileDir), read at each listing.
	dir func() string
	// message is the wizard's message line, where an invalid expiry date is said.
	message binding.String
}

// newRecFilePage builds the page; submit opens the case (the import button, and Enter in the
// expiry field when the button is enabled).
func newRecFilePage(dir func() string, message binding.String, submit func()) *recFilePage {
	p := &recFilePage{dir: dir, message: message, canImport: binding.NewBool()}
	p.kind = widget.NewRadioGroup([]string{tr("reception.kind.new_issuance"), tr("reception.kind.renewal")}, nil)
	p.kind.Horizontal = true
	p.kind.Required = true
	p.kind.SetSelected(tr("reception.kind.new_issuance"))
	p.newCard = widget.NewCheck(tr("reception.kind.new_card"), nil)
	p.currentExpiry = widget.NewEntry()
	p.currentExpiry.SetPlaceHolder(tr("reception.renewal.expiry_placeholder"))
	renewalNote := widget.NewLabel(tr("reception.renewal.note"))
	renewalNote.Wrapping = fyne.TextWrapWord
	p.renewalBox = container.NewVBox(container.New(layout.NewFormLayout(),
		widget.NewLabel(tr("reception.renewal.expiry")), p.currentExpiry), renewalNote)
	p.renewalBox.Hide()
	p.files = widget.NewSelect(nil, nil)
	p.files.PlaceHolder = tr("reception.file.choose")
	p.typeSign = widget.NewCheck(tr("reception.cert.signature"), nil)
	p.typeAuth = widget.NewCheck(tr("reception.cert.user_auth"), nil)
	p.typeSign.SetChecked(true)
	p.typeAuth.SetChecked(true)
	p.importBtn = widget.NewButtonWithIcon(tr("reception.file.import"), theme.NavigateNextIcon(), submit)
	p.importBtn.Importance = widget.HighImportance
	bindEnabled(p.importBtn, p.canImport)
	refresh := widget.NewButtonWithIcon(tr("reception.file.refresh"), theme.ViewRefreshIcon(), p.listFiles)
	update := func() { p.checkImportable() }
	p.files.OnChanged = func(string) { update() }
	p.typeSign.OnChanged = func(bool) { update() }
	p.typeAuth.OnChanged = func(bool) { update() }
	p.kind.OnChanged = func(string) { p.updateKind() }
	p.currentExpiry.OnChanged = func(string) { update() }
	p.currentExpiry.OnSubmitted = func(string) {
		if isSet(p.canImport) {
			submit()
		}
	}
	note := widget.NewLabel(tr("reception.file.note"))
	note.Wrapping = fyne.TextWrapWord
	form := container.New(layout.NewFormLayout(),
		widget.NewLabel(tr("reception.file.label")), container.NewBorder(nil, nil, nil, refresh, p.files),
		widget.NewLabel(tr("reception.kind")), p.kind,
		widget.NewLabel(tr("reception.cert.types")), container.NewVBox(p.typeSign, p.typeAuth),
		widget.NewLabel(tr("reception.kind.card")), p.newCard,
	)
	p.fileBody = container.NewVBox(note, form, p.renewalBox, container.NewHBox(layout.NewSpacer(), p.importBtn))
	return p
}

// isRenewal reports whether the clerk chose renewal (更新) at the start.
func (p *recFilePage) isRenewal() bool { return p.kind.Selected == tr("reception.kind.renewal") }

// caseKind is the kind of case the first step opens.
func (p *recFilePage) caseKind() workflow.Kind {
	if p.isRenewal() {
		return workflow.Renewal
	}
	return workflow.NewIssuance
}

// updateKind shows the renewal's expiry field only for a renewal.
func (p *recFilePage) updateKind() {
	if p.isRenewal() != p.renewalBox.Visible() {
		if p.isRenewal() {
			p.renewalBox.Show()
		} else {
			p.renewalBox.Hide()
		}
		p.fileBody.Refresh()
	}
	p.checkImportable()
}

// renewalExpiry parses the current certificate's expiry date typed for a renewal.
func (p *recFilePage) renewalExpiry() (time.Time, bool) {
	d, err := japanDay(p.currentExpiry.Text)
	return d, err == nil
}

// listFiles offers the files in the hand-over folder, newest first.
func (p *recFilePage) listFiles() {
	p.filePaths = map[string]string{}
	dir := p.dir()
	var names []string
	if dir != "" {
		type found struct {
			name string
			mod  time.Time
		}
		var fs []found
		ents, err := os.ReadDir(dir)
		if err != nil && !os.IsNotExist(err) {
			log.Printf("ui: list resident files: %v", err)
		}
		for _, e := range ents {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue
			}
			fs = append(fs, found{e.Name(), info.ModTime()})
		}
		slices.SortFunc(fs, func(a, b found) int { return b.mod.Compare(a.mod) })
		for _, f := range fs {
			label := tr("reception.file.option", map[string]any{"Name": f.name, "Time": f.mod.Format("01/02 15:04")})
			names = append(names, label)
			p.filePaths[label] = filepath.Join(dir, f.name)
		}
	}
	p.files.SetOptions(names)
	p.files.ClearSelected()
	if len(names) == 0 {
		p.files.PlaceHolder = tr("reception.file.none")
	} else {
		p.files.PlaceHolder = tr("reception.file.choose")
	}
	p.files.Refresh()
	p.checkImportable()
}

func (p *recFilePage) certTypes() []workflow.CertType {
	var out []workflow.CertType
	if p.typeSign.Checked {
		out = append(out, workflow.SignatureCert)
	}
	if p.typeAuth.Checked {
		out = append(out, workflow.UserAuthCert)
	}
	return out
}

func (p *recFilePage) checkImportable() {
	ok := p.files.Selected != "" && len(p.certTypes()) != 0
	if p.kind != nil && p.isRenewal() {
		_, valid := p.renewalExpiry()
		if !valid && strings.TrimSpace(p.currentExpiry.Text) != "" {
			p.message.Set(tr("reception.renewal.expiry_invalid"))
		} else {
			p.message.Set("")
		}
		ok = ok && valid
	}
	p.canImport.Set(ok)
}
