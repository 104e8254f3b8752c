package ui

import (
	"context"
	"errors"
	"image/color"
	"log"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/apperr"
	"madoguchi/assets/translations"
)

// loginView is the log-in screen. The operator types their operator id; an operator of issuance
// and revocation then verifies a finger on the reader (TS Art. 3(3): biometric log-in), and only
// an operator a supervisor exempted from biometrics is offered the password form instead.
//
// Every backend call runs on its own goroutine; results come back through fyne.Do and are
// dropped when the clerk has moved on meanwhile (attempt counter).
type loginView struct {
	shell *Shell
	view  fyne.CanvasObject

	// step 1: operator id
	idStep  *fyne.Container
	idEntry *widget.Entry
	next    *widget.Button

	// step 2a: fingerprint
	fpStep     *fyne.Container
	fpPrompt   *widget.Label
	fpState    *widget.Label
	fpProgress *widget.ProgressBarInfinite
	fpRetry    *widget.Button
	fpDemo     *widget.Button // presses the demo's virtual finger; hidden without Shell.DemoFinger

	// step 2b: password (exempted operators only)
	pwStep     *fyne.Container
	pwOperator *widget.Label
	pwEntry    *widget.Entry
	pwLogin    *widget.Button

	message *widget.Label // the last refusal, in the clerk's language

	operator Operator
	attempt  int                // incremented whenever a pending result becomes stale
	cancel   context.CancelFunc // cancels the pending backend call, if any
}

func newLoginView(s *Shell) *loginView {
	lv := &loginView{shell: s}

	lv.idEntry = widget.NewEntry()
	lv.idEntry.SetPlaceHolder(tr("login.operator_id.placeholder"))
	lv.idEntry.OnSubmitted = func(string) { lv.submitID() }
	lv.next = widget.NewButtonWithIcon(tr("login.next"), theme.NavigateNextIcon(), lv.submitID)
	lv.next.Importance = widget.HighImportance
	lv.idStep = container.NewVBox(
		widget.NewLabel(tr("login.operator_id")), lv.idEntry, lv.next)

	lv.fpPrompt = widget.NewLabelWithStyle(tr("login.fingerprint.prompt"), fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	lv.fpState = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{})
	lv.fpProgress = widget.NewProgressBarInfinite()
	lv.fpRetry = widget.NewButtonWithIcon(tr("login.fingerprint.retry"), theme.ViewRefreshIcon(), lv.startFingerprint)
	lv.fpRetry.Importance = widget.HighImportance
	fpBack := widget.NewButtonWithIcon(tr("login.back"), theme.NavigateBackIcon(), lv.back)
	lv.fpDemo = widget.NewButtonWithIcon(tr("login.fingerprint.demo"), theme.MediaPlayIcon(), lv.pressDemoFinger)
	lv.fpDemo.Importance = widget.WarningImportance
	lv.fpDemo.Hide()
	lv.fpStep = container.NewVBox(lv.fpPrompt, lv.fpProgress, lv.fpState, lv.fpDemo, lv.fpRetry, fpBack)

	lv.pwOperator = widget.NewLabel("")
	lv.pwEntry = widget.NewPasswordEntry()
	lv.pwEntry.OnSubmitted = func(string) { lv.submitPassword() }
	lv.pwLogin = widget.NewButtonWithIcon(tr("login.password.submit"), theme.LoginIcon(), lv.submitPassword)
	lv.pwLogin.Importance = widget.HighImportance
	pwBack := widget.NewButtonWithIcon(tr("login.back"), theme.NavigateBackIcon(), lv.back)
	lv.pwStep = container.NewVBox(lv.pwOperator, widget.NewLabel(tr("login.password")), lv.pwEntry, lv.pwLogin, pwBack)

	lv.message = widget.NewLabel("")
	lv.message.Importance = widget.DangerImportance
	lv.message.Wrapping = fyne.TextWrapWord

	heading := widget.NewLabelWithStyle(tr("login.title"), fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	heading.SizeName = theme.SizeNameHeadingText
	width := canvas.NewRectangle(color.Transparent)
	width.SetMinSize(fyne.NewSize(520, 0))
	panel := container.NewStack(width, container.NewVBox(heading,
		container.NewStack(lv.idStep, lv.fpStep, lv.pwStep), lv.message))
	lv.view = container.NewCenter(panel)
	lv.showStep(lv.idStep)
	return lv
}

// focus puts the cursor in the current step's field, once the view is on the window.
func (lv *loginView) focus() {
	if lv.shell.login != lv {
		return
	}
	if c := lv.shell.win.Canvas(); c != nil {
		switch {
		case lv.idStep.Visible():
			c.Focus(lv.idEntry)
		case lv.pwStep.Visible():
			c.Focus(lv.pwEntry)
		}
	}
}

func (lv *loginView) showStep(step *fyne.Container) {
	for _, s := range []*fyne.Container{lv.idStep, lv.fpStep, lv.pwStep} {
		if s == step {
			s.Show()
		} else {
			s.Hide()
		}
	}
	if lv.view != nil {
		lv.view.Refresh()
	}
	lv.focus()
}

// setMessage shows text (or nothing) under the form and lays the panel out again, because
// visibility and text changes alter its size.
func (lv *loginView) setMessage(text string) {
	lv.message.SetText(text)
	lv.view.Refresh()
}

// begin makes every pending result stale and returns a context for a new backend call and the
// attempt number its result must carry.
func (lv *loginView) begin() (context.Context, int) {
	if lv.cancel != nil {
		lv.cancel()
	}
	lv.attempt++
	ctx, cancel := context.WithCancel(context.Background())
	lv.cancel = cancel
	return ctx, lv.attempt
}

// current reports whether a result of attempt is still wanted.
func (lv *loginView) current(attempt int) bool {
	return attempt == lv.attempt && lv.shell.login == lv
}

func (lv *loginView) back() {
	lv.begin()
	lv.fpProgress.Stop()
	lv.pwEntry.SetText("")
	lv.setMessage("")
	lv.showStep(lv.idStep)
}

func (lv *loginView) submitID() {
	id := strings.TrimSpace(lv.idEntry.Text)
	if id == "" {
		lv.setMessage(tr("login.error.empty_id"))
		return
	}
	lv.setMessage("")
	lv.next.Disable()
	ctx, attempt := lv.begin()
	lv.shell.async(func() {
		op, err := lv.shell.backend.LookupOperator(ctx, id)
		lv.shell.do(func() {
			if !lv.current(attempt) {
				return
			}
			lv.next.Enable()
			if err != nil {
				lv.setMessage(errorMessageIn(translations.Login, err))
				return
			}
			lv.operator = op
			if op.PasswordExempt {
				lv.pwOperator.SetText(tr("login.password.operator", map[string]any{"Name": op.Name, "ID": op.ID}))
				lv.showStep(lv.pwStep)
				return
			}
			lv.startFingerprint()
		})
	})
}

func (lv *loginView) startFingerprint() {
	lv.setMessage("")
	lv.fpRetry.Hide()
	if lv.shell.DemoFinger != nil {
		lv.fpDemo.Show()
	}
	lv.fpProgress.Show()
	lv.fpPrompt.SetText(tr("login.fingerprint.prompt"))
	lv.fpState.SetText(tr("login.fingerprint.waiting", map[string]any{"Name": lv.operator.Name}))
	lv.showStep(lv.fpStep)
	lv.view.Refresh()
	lv.fpProgress.Start()
	ctx, attempt := lv.begin()
	id := lv.operator.ID
	lv.shell.async(func() {
		sess, err := lv.shell.backend.LoginFingerprint(ctx, id, func(ev ScanEvent) {
			lv.shell.do(func() {
				if lv.current(attempt) {
					lv.showScan(ev)
				}
			})
		})
		lv.shell.do(func() { lv.finish(attempt, sess, err) })
	})
}

// pressDemoFinger presses the demo's virtual finger; the verification under way sees it.
func (lv *loginView) pressDemoFinger() {
	press := lv.shell.DemoFinger
	if press == nil {
		return
	}
	lv.shell.async(func() {
		if err := press(); err != nil {
			log.Printf("ui: demo finger: %v", err)
		}
	})
}

func (lv *loginView) showScan(ev ScanEvent) {
	switch ev {
	case ScanWaiting:
		lv.fpState.SetText(tr("login.fingerprint.waiting", map[string]any{"Name": lv.operator.Name}))
	case ScanRetry:
		lv.fpState.SetText(tr("login.fingerprint.retry_scan"))
	}
}

func (lv *loginView) submitPassword() {
	password := lv.pwEntry.Text
	lv.pwEntry.SetText("")
	if password == "" {
		lv.setMessage(tr("login.error.empty_password"))
		return
	}
	lv.setMessage("")
	lv.pwLogin.Disable()
	ctx, attempt := lv.begin()
	id := lv.operator.ID
	lv.shell.async(func() {
		sess, err := lv.shell.backend.LoginPassword(ctx, id, password)
		lv.shell.do(func() {
			lv.pwLogin.Enable()
			lv.finish(attempt, sess, err)
		})
	})
}

// finish applies the result of a log-in attempt.
func (lv *loginView) finish(attempt int, sess Session, err error) {
	if !lv.current(attempt) {
		// The clerk went back or started over; a session that arrives anyway is ended at once
		// so that no operator stays logged in behind the log-in screen.
		if err == nil && sess != nil {
			go sess.Logout(context.Background())
		}
		return
	}
	lv.fpProgress.Stop()
	if err != nil {
		if lv.fpStep.Visible() {
			lv.fpProgress.Hide()
			lv.fpState.SetText("")
			// A locked or disabled operator cannot succeed by pressing again.
			if !errors.Is(err, apperr.LockedOut) && !errors.Is(err, apperr.OperatorDisabled) {
				lv.fpRetry.Show()
			}
		}
		lv.setMessage(errorMessageIn(translations.Login, err))
		lv.focus()
		return
	}
	lv.cancel()
	lv.shell.loggedIn(sess)
}
