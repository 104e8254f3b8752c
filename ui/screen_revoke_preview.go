package ui

import (
	"context"
	"errors"
	"image"
	"log"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// documentPreview shows a document the counter hands over (the revocation acknowledgement):
// page 1 rendered by the terminal's PDFRenderer (printpreview.go: the very PDF that is saved and
// printed), the file saved under the wiring's NoticeDir, and a print button when the terminal
// has a printer. Rendering, saving and printing run off the UI goroutine; until the page is
// rendered (or if rendering fails) a message stands in its place, and printing stays possible,
// since the PDF itself is fine.
type documentPreview struct {
	shell    *Shell
	out      TerminalWiring
	caseID   int64
	document string // app.Document*: recorded with each print
	pdf      []byte
	path     string // where the PDF was saved, "" until then
	page     *fyne.Container
	print    *widget.Button
	message  *widget.Label // stands in for the page
	status   *widget.Label // saved / printed / why not
	view     fyne.CanvasObject
	// rendered is set once the page image is shown (tests wait for it).
	rendered bool
}

// previewPageSize is the on-screen size of the page image (A4 proportions).
var previewPageSize = fyne.NewSize(360, 510)

// newDocumentPreview starts rendering and saving pdf, document seq (from 0) of case caseID, of
// kind document (app.Document*): the saved file's name carries the case and the time, which seq
// staggers by milliseconds so that the documents of one case never collide.
func newDocumentPreview(s *Shell, out TerminalWiring, title string, caseID int64, document string, seq int, pdf []byte) *documentPreview {
	p := &documentPreview{shell: s, out: out, caseID: caseID, document: document, pdf: pdf,
		message: widget.NewLabel(tr("preview.rendering")), status: widget.NewLabel("")}
	p.message.Wrapping = fyne.TextWrapWord
	p.status.Wrapping = fyne.TextWrapWord
	p.page = container.NewStack(p.message)
	p.print = widget.NewButtonWithIcon(tr("preview.print"), theme.DocumentPrintIcon(), p.doPrint)
	p.print.Importance = widget.HighImportance
	p.print.Disable() // until the file is saved
	heading := widget.NewLabelWithStyle(title, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	heading.Wrapping = fyne.TextWrapWord
	page := container.NewGridWrap(previewPageSize, p.page)
	p.view = container.NewVBox(heading, container.NewHBox(page), container.NewHBox(p.print), p.status)
	s.async(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var img image.Image
		var renderErr error = errNoRenderer
		if out.Preview != nil {
			img, renderErr = out.Preview.RenderFirstPage(ctx, pdf)
		}
		path, saveErr := saveNotice(out.NoticeDir, caseID, pdf, time.Now().Add(time.Duration(seq)*time.Millisecond))
		s.do(func() { p.show(img, renderErr, path, saveErr) })
	})
	return p
}

var errNoRenderer = errors.New("ui: no pdf renderer")

func (p *documentPreview) show(img image.Image, renderErr error, path string, saveErr error) {
	if renderErr != nil {
		if renderErr != errNoRenderer {
			log.Printf("ui: preview of case %d: %v", p.caseID, renderErr)
		}
		p.message.SetText(tr("preview.failed"))
	} else {
		p.page.Objects = []fyne.CanvasObject{previewImage(img)}
		p.page.Refresh()
		p.rendered = true
	}
	switch {
	case saveErr != nil:
		p.setStatus(tr("preview.not_saved"), widget.DangerImportance)
	case !printerReady(p.out.Print):
		p.path = path
		p.setStatus(tr("preview.saved_no_printer", map[string]any{"Path": path}), widget.WarningImportance)
	default:
		p.path = path
		p.setStatus(tr("preview.saved", map[string]any{"Path": path}), widget.MediumImportance)
		p.print.Enable()
	}
}

func (p *documentPreview) setStatus(text string, imp widget.Importance) {
	p.status.Importance = imp
	p.status.SetText(text)
}

func (p *documentPreview) doPrint() {
	if !printerReady(p.out.Print) || p.path == "" {
		return
	}
	p.print.Disable()
	p.setStatus(tr("preview.printing"), widget.MediumImportance)
	path, sess := p.path, p.shell.session
	p.shell.async(func() {
		job, err := printAndRecord(sess, p.out.Print, path, p.caseID, p.document)
		p.shell.do(func() {
			p.print.Enable()
			if err != nil {
				// The preview stays, so the clerk can see to the printer and try again.
				log.Printf("ui: print document of case %d: %v", p.caseID, err)
				p.setStatus(tr("preview.print_failed", map[string]any{"Reason": printErrorText(err)}), widget.DangerImportance)
				return
			}
			p.setStatus(tr("preview.printed", map[string]any{"Job": job}), widget.SuccessImportance)
		})
	})
}
