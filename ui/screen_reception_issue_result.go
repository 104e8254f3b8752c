package ui

import (
	"image"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/data/binding"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/issue"
	"madoguchi/app/workflow"
)

// recResultPage is the issuance wizard's result: the certificates delivered on the card, and
// the issuance notice (交付通知書) the wizard makes, saves and prints, with its preview. The
// print button waits for the saved notice.
//
// Concurrency: touched on the UI goroutine only.
type recResultPage struct {
	c        *workflow.Case
	result   *issue.Result
	notice   binding.String // what became of the notice: being made, saved (where), printed
	saved    binding.String // the wizard's shared savedPath: the saved notice, "" until it is
	canPrint binding.Bool   // the notice is saved and a printer is set: the print button is enabled
	// noticePath shows notice; the print button follows canPrint.
	noticePath *widget.Label
	preview    *fyne.Container
	printBtn   *widget.Button
	body       fyne.CanvasObject
}

// newRecResultPage builds the page for the delivered result res of case c over the wizard's
// shared state (the case number, the saved notice's path); print prints the saved notice, home
// leaves the wizard.
func newRecResultPage(c *workflow.Case, res *issue.Result, shared recShared, print, home func()) *recResultPage {
	p := &recResultPage{c: c, result: res, notice: binding.NewString(), saved: shared.savedPath, canPrint: binding.NewBool(),
		preview: container.NewStack()}
	p.notice.Set(tr("reception.notice.making"))
	done := widget.NewLabelWithStyle(tr("reception.result.done", map[string]any{"Name": c.Applicant.Name}), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	done.Importance = widget.SuccessImportance
	done.Wrapping = fyne.TextWrapWord
	// Serial numbers and paths are long words without spaces: they break at the column's edge
	// instead of widening the window past the counter's screen (the header's log-out button
	// must stay reachable on a 1280 px screen).
	rows := []fyne.CanvasObject{widget.NewLabel(tr("reception.case_no")), widget.NewLabelWithData(shared.caseNo),
		widget.NewLabel(tr("reception.result.card_serial")), recBreakingLabel(res.CardSerial)}
	for _, d := range res.Delivered {
		rows = append(rows, widget.NewLabel(recCertTypeName(d.CertType)), recBreakingLabel(tr("reception.result.serial", map[string]any{"Serial": d.Serial})))
	}
	p.noticePath = widget.NewLabelWithData(p.notice)
	p.noticePath.Wrapping = fyne.TextWrapBreak
	p.printBtn = widget.NewButtonWithIcon(tr("reception.notice.print"), theme.DocumentPrintIcon(), print)
	// Printing the notice for the applicant is the clerk's next step (TS Art. 9's items are on it).
	p.printBtn.Importance = widget.HighImportance
	bindEnabled(p.printBtn, p.canPrint)
	homeBtn := widget.NewButtonWithIcon(tr("reception.home"), theme.HomeIcon(), home)
	left := container.NewVBox(done, container.New(layout.NewFormLayout(), rows...), widget.NewSeparator(),
		widget.NewLabelWithStyle(tr("reception.notice.title"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		p.noticePath)
	// The buttons stay in view below the scrolled details.
	p.body = container.NewGridWithColumns(2,
		container.NewBorder(nil, container.NewHBox(p.printBtn, homeBtn), nil, nil, container.NewVScroll(left)), p.preview)
	return p
}

// noticeSaved shows the notice saved at path, with its first page img (nil: the notice in
// words), printable when canPrint. The wizard refreshes its page after: the preview's size
// changes the page's layout.
func (p *recResultPage) noticeSaved(path string, canPrint bool, img image.Image) {
	if canPrint {
		p.notice.Set(tr("reception.notice.saved", map[string]any{"Path": path}))
	} else {
		p.notice.Set(tr("reception.notice.saved_no_printer", map[string]any{"Path": path}))
	}
	p.canPrint.Set(canPrint)
	p.saved.Set(path)
	if img != nil {
		p.preview.Objects = []fyne.CanvasObject{previewImage(img)}
	} else {
		p.preview.Objects = []fyne.CanvasObject{container.NewVScroll(p.textPreview())}
	}
}

// textPreview is the notice's content in words, when no PDF renderer is available.
func (p *recResultPage) textPreview() fyne.CanvasObject {
	lines := []string{tr("reception.notice.doc_title"), tr("reception.notice.addressee", map[string]any{"Name": p.c.Applicant.Name}), ""}
	for _, d := range p.result.Delivered {
		lines = append(lines, recCertTypeName(d.CertType)+"  "+tr("reception.result.serial", map[string]any{"Serial": d.Serial}))
	}
	lines = append(lines, "", tr("reception.notice.explained"))
	for _, it := range p.c.Explained {
		lines = append(lines, tr("list.bullet", map[string]any{"Text": tr(receptionKey("explain", string(it), "title"))}))
	}
	l := recBreakingLabel(strings.Join(lines, "\n"))
	return widget.NewCard(tr("reception.notice.preview"), "", l)
}

// recBreakingLabel is a label whose long words (serial numbers, file paths) break at the edge.
func recBreakingLabel(text string) *widget.Label {
	l := widget.NewLabel(text)
	l.Wrapping = fyne.TextWrapBreak
	return l
}

// recFailedPage is the issuance wizard's page after a failed issuance: what became of the
// certificates (the message of issue.Error: revoked before delivery, nothing issued, ...), the
// stages with the one that failed, and the choice to try again with the card or leave.
//
// Concurrency: touched on the UI goroutine only.
type recFailedPage struct {
	failMessage *widget.Label
	body        fyne.CanvasObject
}

// newRecFailedPage builds the page for the failure err under the issuance's stages progress;
// retry goes back to the card page, home leaves the wizard.
func newRecFailedPage(err error, progress fyne.CanvasObject, retry, home func()) *recFailedPage {
	p := &recFailedPage{failMessage: widget.NewLabel(receptionMessage(err))}
	p.failMessage.Wrapping = fyne.TextWrapWord
	p.failMessage.Importance = widget.DangerImportance
	title := widget.NewLabelWithStyle(tr("reception.failed.title"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	retryBtn := widget.NewButtonWithIcon(tr("reception.failed.retry"), theme.ViewRefreshIcon(), retry)
	homeBtn := widget.NewButtonWithIcon(tr("reception.home"), theme.HomeIcon(), home)
	p.body = container.NewVBox(title, progress, p.failMessage, container.NewHBox(layout.NewSpacer(), retryBtn, homeBtn))
	return p
}
