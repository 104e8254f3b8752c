package ui

import (
	"bytes"
	"context"
	"errors"
	"image"
	"log"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/data/binding"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/issue"
	"madoguchi/app/workflow"
	"madoguchi/assets/translations"
)

// ReceptionIssueID is the screen id of the new-issuance wizard.
const ReceptionIssueID = "reception.issue"

// receptionIssueScreen is the reception application's new issuance (新規発行) as a wizard, one
// step per page, in the order the rules require: the applicant's resident-record file from the
// CS application and the certificate types, the existence check (実在性), the identity check
// (本人性; proxy branch), the TS Art. 9 explanations, the card's expiry date, then the issuance
// itself with the applicant setting the PINs, the result and the issuance notice
// (DOMAIN §4; CPS §4.1–4.4).
//
// The certificate types are chosen with the file, not after the explanations: the domain opens
// the case with them, and which explanations are due depends on them (TS Art. 9(1) vs (2)).
func receptionIssueScreen() Screen {
	return Screen{ID: ReceptionIssueID, Title: "reception.issue.title", Permission: PermissionReception, View: newIssueWizard}
}

// wizardStep names the wizard's pages (stable: tests and the walkthrough refer to them).
type wizardStep string

const (
	stepFile        wizardStep = "file"        // choose the resident-record file and the certificate types
	stepExistence   wizardStep = "existence"   // 実在性: the imported record
	stepGaiji       wizardStep = "gaiji"       // 外字: substitutes for characters the certificate cannot hold (only when needed)
	stepIdentity    wizardStep = "identity"    // 本人性: document, proxy branch, doubt
	stepExplanation wizardStep = "explanation" // TS Art. 9 items, each acknowledged
	stepCard        wizardStep = "card"        // card expiry date, insert the card
	stepIssuing     wizardStep = "issuing"     // named progress; the applicant sets the PINs
	stepResult      wizardStep = "result"      // delivered; notice preview, save, print
	stepStopped     wizardStep = "stopped"     // case stopped (doubt, applicant withdrew)
	stepFailed      wizardStep = "failed"      // issuance failed (revoked before delivery)
)

// wizardSteps are the numbered steps shown in the header.
var wizardSteps = []wizardStep{stepFile, stepExistence, stepIdentity, stepExplanation, stepCard, stepIssuing, stepResult}

// The named stages of an issuance on the progress page, in order.
const (
	stageKeyAndCert = iota // 鍵生成・証明書発行: channel, prepare at the CA (per type)
	stageWrite             // カードへ書込み: the CA's script relayed (per type)
	stagePIN               // 暗証番号の設定
	stageVerify            // 読み戻し確認
	stageConfirm           // 交付確定
)

// stageOf maps an orchestration step to its stage.
func stageOf(step issue.Step) int {
	switch step {
	case issue.StepScript:
		return stageWrite
	case issue.StepPIN:
		return stagePIN
	case issue.StepVerify:
		return stageVerify
	case issue.StepConfirm:
		return stageConfirm
	}
	return stageKeyAndCert
}

// issueWizard is one issuance at the counter: the case, the sequence of pages and the calls to
// the domain between them. Every field is touched on the UI goroutine only.
type issueWizard struct {
	shell *Shell
	desk  ReceptionDesk
	step  wizardStep
	c     *workflow.Case // the open case, nil before the import

	// shared is the state the pages share and show; message is its message line.
	shared  recShared
	message *widget.Label
	page    *fyne.Container
	view    fyne.CanvasObject

	// The pages (screen_reception_issue_*.go), each made over shared and its own bindings when
	// its step is shown. Embedded, so the wizard and its tests reach their widgets as its own.
	*recFilePage        // file and certificate types
	*recExistencePage   // existence check
	*recGaijiPage       // 外字
	*recIdentityPage    // identity check
	*recExplanationPage // TS Art. 9 explanations
	*recCardPage        // card expiry and card
	*recIssuingPage     // the issuance's stages
	*recResultPage      // delivered; the notice
	*recFailedPage      // the issuance failed
}

// recShared is the state the wizard's pages share and show, as bindings: the wizard and the
// pages set it on the UI goroutine (a domain call's answer arrives through Shell.do), and the
// labels made over it with NewLabelWithData follow, whichever page shows them. A Set from another
// goroutine would have to go through fyne.Do like any widget change.
type recShared struct {
	header    binding.String // the step header: the step's number and name
	message   binding.String // the message line under every page: the last refusal or invalid input
	caseNo    binding.String // the open case's number
	certTypes binding.String // the open case's certificate types, named
	savedPath binding.String // where the result's notice was saved, "" until it is
}

func newRecShared() recShared {
	return recShared{header: binding.NewString(), message: binding.NewString(), caseNo: binding.NewString(),
		certTypes: binding.NewString(), savedPath: binding.NewString()}
}

// bindEnabled makes button b enabled while on holds: a page sets its binding and never the
// button, so the button shows what the binding says.
func bindEnabled(b *widget.Button, on binding.Bool) {
	on.AddListener(binding.NewDataListener(func() {
		if isSet(on) {
			b.Enable()
		} else {
			b.Disable()
		}
	}))
}

// isSet is the value of on. A handler checks it rather than its button's state, which follows
// the binding one turn of the event loop later in the running app.
func isSet(on binding.Bool) bool {
	v, _ := on.Get()
	return v
}

func newIssueWizard(s *Shell) fyne.CanvasObject { return buildIssueWizard(s).root() }

// root is the wizard's outermost object.
func (w *issueWizard) root() fyne.CanvasObject {
	if w.view == nil {
		return w.message
	}
	return w.view
}

// buildIssueWizard builds the wizard on its first page.
func buildIssueWizard(s *Shell) *issueWizard {
	w := &issueWizard{shell: s, shared: newRecShared(), page: container.NewStack()}
	w.message = widget.NewLabelWithData(w.shared.message)
	w.message.Importance = widget.DangerImportance
	w.message.Wrapping = fyne.TextWrapWord
	desk, ok := s.Session().(ReceptionDesk)
	if !ok {
		w.shared.message.Set(tr("error.internal"))
		return w
	}
	w.desk = desk
	header := widget.NewLabelWithData(w.shared.header)
	header.TextStyle = fyne.TextStyle{Bold: true}
	w.view = container.NewBorder(container.NewVBox(header, widget.NewSeparator()), w.message, nil, nil, w.page)
	w.showFile()
	return w
}

// show replaces the page and the step header.
func (w *issueWizard) show(step wizardStep, page fyne.CanvasObject) {
	w.step = step
	w.shared.message.Set("")
	n := slices.Index(wizardSteps, step)
	if step == stepGaiji {
		// A sub-step of the existence check, shown only when the record needs it.
		n = slices.Index(wizardSteps, stepExistence)
	}
	if n >= 0 {
		w.shared.header.Set(tr("reception.step", map[string]any{"N": n + 1, "Of": len(wizardSteps), "Name": tr(receptionKey("step", string(step)))}))
	} else {
		w.shared.header.Set(tr(receptionKey("step", string(step))))
	}
	w.page.Objects = []fyne.CanvasObject{container.NewPadded(page)}
	w.page.Refresh()
}

// refuse shows a refusal of the domain: its message (the table of assets/translations, in the
// wizard's context) in the page and in a dialog, which tells the clerk what happened and what to
// do (never the raw error text).
func (w *issueWizard) refuse(err error) {
	msg := receptionMessage(err)
	w.shared.message.Set(msg)
	showReceptionDialog(w.shell.win, tr("reception.error.title"), msg)
}

// setCase takes the case as the domain last answered it, and shows what the pages share of it.
func (w *issueWizard) setCase(c *workflow.Case) {
	w.c = c
	w.shared.caseNo.Set(fmtInt(c.ID))
	w.shared.certTypes.Set(recCertTypeNames(c.CertTypes))
}

// receptionMessage is the clerk's message for a failure of the wizard.
func receptionMessage(err error) string {
	switch {
	case errors.Is(err, ErrCardUnavailable):
		return tr("reception.error.no_card")
	case errors.Is(err, ErrPINCancelled):
		// The orchestration wraps it in issue.Error, whose message says what became of the
		// certificates; a bare cancel (no issuance started) gets the plain message.
		var ie *issue.Error
		if errors.As(err, &ie) {
			return errorMessageIn(translations.Reception, err)
		}
		return errorMessageIn(translations.Reception, apperr.New(apperr.Cancelled, "ui: cancelled"))
	}
	return errorMessageIn(translations.Reception, err)
}

// showMessageDialog shows msg with word wrapping in a modal dialog.
func showReceptionDialog(win fyne.Window, title, msg string) {
	l := widget.NewLabel(msg)
	l.Wrapping = fyne.TextWrapWord
	d := dialog.NewCustom(title, tr("reception.close"), l, win)
	d.Resize(fyne.NewSize(560, 240))
	d.Show()
}

// ---- step: file and certificate types (recFilePage, screen_reception_issue_file.go) ----

// showFile shows the first page: the resident-record file and what the case is for.
func (w *issueWizard) showFile() {
	w.recFilePage = newRecFilePage(func() string { return w.shell.ResidentFileDir }, w.shared.message, w.doImport)
	w.show(stepFile, w.fileBody)
	w.listFiles()
}

// doImport imports the chosen file, which opens the case; the domain consumes the file, and the
// copy in the hand-over folder is removed so it is not offered again.
func (w *issueWizard) doImport() {
	if !isSet(w.canImport) {
		return
	}
	path := w.filePaths[w.files.Selected]
	req := IssuanceApplication{Kind: w.caseKind(), CertTypes: w.certTypes(), NewCard: w.newCard.Checked}
	if path == "" || len(req.CertTypes) == 0 {
		return
	}
	if req.Kind == workflow.Renewal {
		d, ok := w.renewalExpiry()
		if !ok {
			return
		}
		req.CurrentExpiry = d
	}
	w.canImport.Set(false)
	w.shell.async(func() {
		data, err := os.ReadFile(path)
		var c *workflow.Case
		if err == nil {
			req.ResidentFile = data
			c, err = w.desk.OpenIssuance(context.Background(), req)
		} else {
			err = apperr.Wrap(apperr.NotFound, err, "ui: read resident file")
		}
		if err == nil || errors.Is(err, apperr.FileUsed) || errors.Is(err, apperr.FileExpired) {
			if rerr := os.Remove(path); rerr != nil {
				log.Printf("ui: remove consumed resident file: %v", rerr)
			}
		}
		w.shell.do(func() {
			if err != nil {
				w.listFiles()
				w.refuse(err)
				return
			}
			w.setCase(c)
			w.showExistence()
		})
	})
}

// ---- step: existence check ----

// showExistence shows the record of the case just opened.
func (w *issueWizard) showExistence() {
	w.recExistencePage = newRecExistencePage(w.c, w.shared, w.afterExistence)
	w.show(stepExistence, w.recExistencePage.content(w.stopButton()))
}

// recKindName names the case's kind as the clerk chose it (新規発行 / 更新, on a new card).
func recKindName(c *workflow.Case) string {
	name := tr("reception.kind.new_issuance")
	if c.Kind == workflow.Renewal {
		name = tr("reception.kind.renewal")
	}
	if c.NewCard {
		name += tr("reception.kind.on_new_card")
	}
	return name
}

// receptionKey joins a translation key of this screen from its parts ("reception.doc.passport").
func receptionKey(parts ...string) string { return "reception." + strings.Join(parts, ".") }

func fmtInt(n int64) string { return strconv.FormatInt(n, 10) }

func recCertTypeNames(ts []workflow.CertType) string {
	var names []string
	for _, t := range ts {
		names = append(names, recCertTypeName(t))
	}
	return strings.Join(names, tr("list.enumeration"))
}

func recCertTypeName(t workflow.CertType) string {
	switch t {
	case workflow.SignatureCert:
		return tr("reception.cert.signature")
	case workflow.UserAuthCert:
		return tr("reception.cert.user_auth")
	}
	return string(t)
}

// stopButton ends the case at the applicant's wish, with a recorded reason.
func (w *issueWizard) stopButton() *widget.Button {
	return widget.NewButtonWithIcon(tr("reception.stop"), theme.CancelIcon(), func() {
		reason := widget.NewEntry()
		reason.SetPlaceHolder(tr("reception.stop.reason"))
		dialog.ShowForm(tr("reception.stop.title"), tr("reception.stop"), tr("reception.close"),
			[]*widget.FormItem{widget.NewFormItem(tr("reception.stop.reason_label"), reason)},
			func(ok bool) {
				if ok {
					w.stop(strings.TrimSpace(reason.Text))
				}
			}, w.shell.win)
	})
}

func (w *issueWizard) stop(reason string) {
	if reason == "" {
		w.refuse(apperr.New(apperr.ReasonRequired, "ui: stopping needs a reason"))
		return
	}
	id := w.c.ID
	w.shell.async(func() {
		err := w.desk.StopCase(context.Background(), id, reason)
		w.shell.do(func() {
			if err != nil {
				w.refuse(err)
				return
			}
			w.showStopped(tr("reception.stopped.withdrawn"))
		})
	})
}

// ---- step: identity check ----

// recDocuments are the accepted photo identity documents, in the order they are offered.
var recDocuments = workflow.PhotoIDs

func recDocumentName(d workflow.Document) string { return tr(receptionKey("doc", string(d))) }

func recDocumentNames() []string {
	var out []string
	for _, d := range recDocuments {
		out = append(out, recDocumentName(d))
	}
	return out
}

func recDocumentOf(name string) workflow.Document {
	for _, d := range recDocuments {
		if recDocumentName(d) == name {
			return d
		}
	}
	return ""
}

// showIdentity shows the identity page of the open case's applicant.
func (w *issueWizard) showIdentity() {
	w.recIdentityPage = newRecIdentityPage(w.c.Applicant.Name, w.c.Applicant.BirthDate, w.doIdentity)
	w.show(stepIdentity, w.recIdentityPage.content(w.stopButton()))
	w.updateIdentity()
}

func (w *issueWizard) doIdentity() {
	if !isSet(w.identityOK) {
		return
	}
	e := w.evidence()
	id := w.c.ID
	w.identityOK.Set(false)
	w.shell.async(func() {
		c, err := w.desk.RecordIdentity(context.Background(), id, e)
		w.shell.do(func() {
			switch {
			case errors.Is(err, apperr.IdentityDoubt):
				// CPS §4.1.2.1(3): any doubt → stop, no certificate. The stop is recorded.
				if c != nil {
					w.setCase(c)
				}
				w.showStopped(errorMessageIn(translations.Reception, err))
			case err != nil:
				w.updateIdentity()
				w.refuse(err)
			default:
				w.setCase(c)
				w.showExplanation()
			}
		})
	})
}

// ---- step: explanations (TS Art. 9) ----

// showExplanation shows the explanations due for the case's certificate types.
func (w *issueWizard) showExplanation() {
	w.recExplanationPage = newRecExplanationPage(w.c.CertTypes, w.doExplanation)
	w.show(stepExplanation, w.recExplanationPage.content(w.stopButton()))
	w.updateExplanation()
}

func (w *issueWizard) doExplanation() {
	if !isSet(w.allAcknowledged) {
		return
	}
	items := w.acknowledged()
	id := w.c.ID
	w.allAcknowledged.Set(false)
	w.shell.async(func() {
		c, err := w.desk.RecordExplanation(context.Background(), id, items)
		w.shell.do(func() {
			if err != nil {
				w.updateExplanation()
				w.refuse(err)
				return
			}
			w.setCase(c)
			w.showCard()
		})
	})
}

// ---- step: card expiry and card ----

// showCard asks for the card's expiry date and the card; its start button begins the issuance.
func (w *issueWizard) showCard() {
	w.recCardPage = newRecCardPage(w.c.Applicant.Name, w.shared, w.doIssue)
	w.show(stepCard, w.recCardPage.content(w.stopButton()))
	w.updateCard()
	if c := w.shell.win.Canvas(); c != nil {
		c.Focus(w.expiry)
	}
}

// ---- step: issuing ----

func (w *issueWizard) doIssue() {
	expiry, ok := w.cardExpiry()
	if !ok {
		return
	}
	w.recIssuingPage = newRecIssuingPage(w.c.Applicant.Name)
	w.show(stepIssuing, w.recIssuingPage.body)
	order := IssuanceOrder{
		CaseID:     w.c.ID,
		CardExpiry: expiry,
		Progress: func(step issue.Step, t workflow.CertType) {
			w.shell.do(func() {
				detail := ""
				if t != "" {
					detail = recCertTypeName(t)
				}
				w.progress.start(stageOf(step), detail)
			})
		},
	}
	caseID := w.c.ID
	order.PIN = func(ctx context.Context, req ApplicantPINRequest) ([]byte, error) { return w.askPIN(ctx, caseID, req) }
	w.shell.async(func() {
		res, err := w.desk.Issue(context.Background(), order)
		w.shell.do(func() {
			if err != nil {
				w.progress.fail()
				w.showFailed(err)
				return
			}
			w.progress.finish()
			w.showResult(res)
		})
	})
}

// askPIN hands the window to the applicant for one PIN of the issuance (askApplicantPIN).
func (w *issueWizard) askPIN(ctx context.Context, id int64, req ApplicantPINRequest) ([]byte, error) {
	return askApplicantPIN(ctx, w.shell, id, req)
}

// askApplicantPIN hands the window to the applicant for one PIN of case id and waits for it on
// the calling (backend) goroutine: a new PIN goes through Shell.AskApplicantPIN (the domain
// judges it by the rules of TS Art. 4 first), the card's current PIN (req.Existing) is typed
// once and judged by the card. The PIN comes back as a fresh copy that the caller overwrites
// after use; it is never kept here. It returns ErrPINCancelled when the entry was cancelled,
// ctx's error when ctx ended (the PIN screen is closed then). Used by the issuance wizard and
// the PIN reset.
func askApplicantPIN(ctx context.Context, s *Shell, id int64, req ApplicantPINRequest) ([]byte, error) {
	got := make(chan []byte, 1)
	gaveUp := make(chan error, 1)
	s.do(func() {
		use := func(pin []byte) error {
			got <- bytes.Clone(pin)
			return nil
		}
		cancelled := func() { gaveUp <- ErrPINCancelled }
		if req.Existing {
			// The card's own PIN (renewal): typed once; the card judges it, not the rules for
			// new PINs.
			s.ShowApplicantPIN(PINRequest{Kind: req.Kind, Existing: true, Submit: use, Cancelled: cancelled})
		} else if err := s.AskApplicantPIN(id, req.Kind, use, cancelled); err != nil {
			gaveUp <- err
			return
		}
		if req.Refused != nil && s.pin != nil {
			s.pin.message.SetText(applicantPINRefusal(req.Refused))
		}
	})
	select {
	case pin := <-got:
		return pin, nil
	case err := <-gaveUp:
		return nil, err
	case <-ctx.Done():
		s.do(func() {
			if s.pin != nil {
				s.pin.clear()
				s.pin.done()
			}
		})
		return nil, ctx.Err()
	}
}

// applicantPINRefusal tells the applicant why the previous entry was refused: the card's answer
// to its current PIN (with the tries left), or the rule a new PIN broke.
func applicantPINRefusal(err error) string { return errorMessage(err) }

// ---- results ----

// showFailed shows the failed issuance, err, under its stages.
func (w *issueWizard) showFailed(err error) {
	w.recFailedPage = newRecFailedPage(err, w.progress.view, w.showCard, w.home)
	w.show(stepFailed, w.recFailedPage.body)
	showReceptionDialog(w.shell.win, tr("reception.failed.title"), w.failMessage.Text)
}

// home leaves the wizard for the home screen.
func (w *issueWizard) home() { w.shell.Show(HomeID) }

func (w *issueWizard) showStopped(msg string) {
	l := widget.NewLabel(msg)
	l.Wrapping = fyne.TextWrapWord
	l.Importance = widget.WarningImportance
	note := widget.NewLabel(tr("reception.stopped.note"))
	note.Wrapping = fyne.TextWrapWord
	home := widget.NewButtonWithIcon(tr("reception.home"), theme.HomeIcon(), w.home)
	w.show(stepStopped, container.NewVBox(l, note, container.NewHBox(layout.NewSpacer(), home)))
}

// showResult shows the delivered result res and makes its notice.
func (w *issueWizard) showResult(res *issue.Result) {
	w.recResultPage = newRecResultPage(w.c, res, w.shared, w.doPrint, w.home)
	w.show(stepResult, w.recResultPage.body)
	w.makeNotice()
}

// savedPath is where the notice was saved, "" until it is.
func (w *issueWizard) savedPath() string {
	path, _ := w.shared.savedPath.Get()
	return path
}

// makeNotice renders the notice, saves it in the data directory and shows its preview.
func (w *issueWizard) makeNotice() {
	id, res := w.c.ID, w.result
	wiring := w.shell.Terminal
	w.shell.async(func() {
		ctx := context.Background()
		pdf, err := w.desk.IssuanceNotice(ctx, id, res)
		var path string
		if err == nil {
			path, err = saveNotice(wiring.NoticeDir, id, pdf, time.Now())
		}
		var img image.Image
		var perr error
		if err == nil && wiring.Preview != nil {
			img, perr = wiring.Preview.RenderFirstPage(ctx, pdf)
			if perr != nil {
				log.Printf("ui: notice preview: %v", perr)
			}
		}
		w.shell.do(func() {
			if err != nil {
				w.notice.Set(tr("reception.notice.failed"))
				w.refuse(err)
				return
			}
			w.noticeSaved(path, printerReady(wiring.Print), img)
			w.page.Refresh()
		})
	})
}

func (w *issueWizard) doPrint() {
	print, path, caseID, sess := w.shell.Terminal.Print, w.savedPath(), w.c.ID, w.shell.session
	if print == nil || path == "" || !isSet(w.canPrint) {
		return
	}
	w.canPrint.Set(false)
	w.shell.async(func() {
		job, err := printAndRecord(sess, print, path, caseID, app.DocumentIssuanceNotice)
		w.shell.do(func() {
			w.canPrint.Set(true)
			if err != nil {
				log.Printf("ui: print notice: %v", err)
				msg := tr("reception.notice.print_failed", map[string]any{"Reason": printErrorText(err), "Path": path})
				w.shared.message.Set(msg)
				showReceptionDialog(w.shell.win, tr("reception.error.title"), msg)
				return
			}
			w.notice.Set(tr("reception.notice.printed", map[string]any{"Job": job, "Path": path}))
		})
	})
}
