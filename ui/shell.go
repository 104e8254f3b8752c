package ui

import (
	"context"
	"fmt"
	"log"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// WindowTitle is the main window's title.
const WindowTitle = "窓口 Madoguchi — 統合端末"

// Shell is the window frame around the screens: a header with the logged-in operator, the
// current screen, and the persistent status bar. It shows the log-in screen until an operator
// logs in and afterwards offers only the screens that operator's permissions allow.
//
// Concurrency: all methods must be called on the UI goroutine.
type Shell struct {
	win     fyne.Window
	backend Backend
	screens []Screen
	status  *Status
	theme   *Theme

	session Session
	current string // ID of the screen shown, "" while logged out

	header   *fyne.Container
	titleRow *fyne.Container // app name and title, operator, home and log-out
	operator *widget.Label
	title    *widget.Label
	body     *fyne.Container
	bodyLane *container.Scroll // sideways scroll around body, the last resort of a too wide screen
	bar      *statusBar
	frame    fyne.CanvasObject
	login    *loginView // non-nil while the log-in screen is shown
	pin      *pinEntry  // non-nil while the applicant PIN screen is shown

	// ResidentFileDir is where the CS application writes resident-record files for the
	// reception application; empty disables the export.
	ResidentFileDir string

	// Terminal is what the reception issuance and settings screens need from the terminal's
	// wiring (settings, notice folder, preview, printer); see TerminalWiring.
	Terminal TerminalWiring

	// DemoFinger, when set, makes the fingerprint step offer a button that presses a virtual
	// finger on libfprint's virtual device: for demonstrations without a reader only. It runs
	// off the UI goroutine. Never set on a real terminal.
	DemoFinger func() error

	// IdleCheck is how often the shell asks the session whether the domain ended it (idle
	// log-out); set it before the first log-in.
	IdleCheck time.Duration
	stopIdle  context.CancelFunc
	idleRuns  sync.WaitGroup // idle watchers still running (StopWatching waits for them)

	// async runs a function that calls the backend; it must not run it on the UI goroutine.
	// do hands a function back to the UI goroutine (fyne.Do). Tests replace both: async to run
	// backend calls synchronously, do to queue UI work for the test goroutine, because Fyne's
	// test driver has no UI goroutine of its own.
	async func(func())
	do    func(func())
}

// NewShell builds the shell in w with the screen table screens (usually Screens()) and shows the
// log-in screen. The window's content is replaced.
func NewShell(w fyne.Window, b Backend, st *Status, screens []Screen) *Shell {
	s := &Shell{win: w, backend: b, screens: screens, status: st, theme: NewTheme(),
		async: func(f func()) { go f() }, do: fyne.Do, IdleCheck: 5 * time.Second}
	// The operator's name may be long: it takes the room left in the header and is shortened
	// with an ellipsis, so the home and log-out buttons always stay at the window's right edge.
	s.operator = widget.NewLabel("")
	s.operator.Alignment = fyne.TextAlignTrailing
	s.operator.Truncation = fyne.TextTruncateEllipsis
	s.title = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	appName := widget.NewLabelWithStyle(tr("app.name"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	home := widget.NewButtonWithIcon(tr("shell.home"), theme.HomeIcon(), func() { s.Show(HomeID) })
	logout := widget.NewButtonWithIcon(tr("shell.logout"), theme.LogoutIcon(), s.Logout)
	s.titleRow = container.NewBorder(nil, nil, container.NewHBox(appName, s.title), container.NewHBox(home, logout), s.operator)
	s.header = container.NewVBox(s.titleRow, widget.NewSeparator())
	s.body = container.NewStack()
	s.bar = newStatusBar(st)
	// The counter window must never grow past the screen (1200×800 on a 1280×1024 screen): a
	// screen too wide for the window scrolls sideways under the fixed header instead of pushing
	// the log-out button off-screen. Screens keep within the width themselves (long texts wrap
	// or are shortened; TestScreensFitCounterWindow); this is the last resort.
	s.bodyLane = container.NewHScroll(s.body)
	s.frame = container.NewBorder(s.header, s.bar.view, nil, nil, s.bodyLane)
	w.SetContent(s.frame)
	s.showLogin()
	return s
}

// Session returns the logged-in session, or nil.
func (s *Shell) Session() Session { return s.session }

// Current returns the ID of the screen shown ("" while the log-in screen is shown).
func (s *Shell) Current() string { return s.current }

// Window returns the shell's window.
func (s *Shell) Window() fyne.Window { return s.win }

// Backend returns the domain the shell talks to.
func (s *Shell) Backend() Backend { return s.backend }

// Permitted returns the registered screens the logged-in operator may open, in table order;
// none while logged out.
func (s *Shell) Permitted() []Screen {
	if s.session == nil {
		return nil
	}
	var out []Screen
	for _, sc := range s.screens {
		if s.session.Allowed(sc.Permission) {
			out = append(out, sc)
		}
	}
	return out
}

// Show opens the screen id. It refuses when nobody is logged in, the screen is unknown, or the
// operator lacks its permission (TS Art. 3(4)); the screen shown does not change then.
func (s *Shell) Show(id string) error {
	if s.session == nil {
		return fmt.Errorf("ui: show %q: nobody is logged in", id)
	}
	for _, sc := range s.screens {
		if sc.ID != id {
			continue
		}
		if !s.session.Allowed(sc.Permission) {
			return fmt.Errorf("ui: show %q: operator %q lacks permission %q", id, s.session.Operator().ID, sc.Permission)
		}
		s.title.SetText(tr(sc.Title))
		s.titleRow.Refresh() // the operator's name gets the room the new title leaves
		s.body.Objects = []fyne.CanvasObject{sc.View(s)}
		s.body.Refresh()
		s.bodyLane.ScrollToOffset(fyne.Position{})
		s.current = id
		return nil
	}
	return fmt.Errorf("ui: show %q: no such screen", id)
}

// Logout ends the session and returns to the log-in screen. A failure to record the log-out is
// logged (without secrets); the screen is locked regardless, because the clerk has left.
func (s *Shell) Logout() {
	if s.session != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.session.Logout(ctx); err != nil {
			log.Printf("ui: logout of operator %q: %v", s.session.Operator().ID, err)
		}
		cancel()
	}
	s.session = nil
	if s.stopIdle != nil {
		s.stopIdle()
		s.stopIdle = nil
	}
	s.showLogin()
}

// loggedIn is called by the log-in screen with a fresh session.
func (s *Shell) loggedIn(sess Session) {
	s.login = nil
	s.session = sess
	op := sess.Operator()
	s.operator.SetText(tr("shell.operator", map[string]any{"Name": op.Name, "ID": op.ID}))
	s.header.Show()
	// Lay the whole frame out again: the window may have been resized while the header was
	// hidden, and a hidden header is not laid out.
	s.frame.Refresh()
	s.watchIdle(sess)
	if err := s.Show(HomeID); err != nil {
		// The table lacks a home screen everyone may open: a programming error, but the
		// operator must not be left on a blank window holding a session.
		log.Printf("%v", err)
		s.Logout()
	}
}

// watchIdle locks the screen when the domain ends sess: the idle log-out must not leave the
// previous operator's screen open to the next person at the counter.
func (s *Shell) watchIdle(sess Session) {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopIdle = cancel
	every := s.IdleCheck
	s.idleRuns.Add(1)
	go func() {
		defer s.idleRuns.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if !sess.Expired() {
					continue
				}
				s.do(func() {
					if s.session != sess {
						return
					}
					if s.pin != nil {
						// Never leave an applicant's PIN entry behind the log-in screen.
						s.pin.clear()
						s.pin.done()
					}
					s.Logout()
					s.login.setMessage(tr("error.session_expired"))
				})
				return
			}
		}
	}()
}

// StopWatching stops the idle watcher and waits until it has returned, so no automatic log-out
// touches the window afterwards (the window is closing, or a test is over). Call it on the UI
// goroutine, never from work the watcher queued.
func (s *Shell) StopWatching() {
	if s.stopIdle != nil {
		s.stopIdle()
		s.stopIdle = nil
	}
	s.idleRuns.Wait()
}

func (s *Shell) showLogin() {
	s.current = ""
	s.header.Hide()
	s.login = newLoginView(s)
	s.body.Objects = []fyne.CanvasObject{s.login.view}
	s.body.Refresh()
	s.bodyLane.ScrollToOffset(fyne.Position{})
	s.login.focus()
}

// ShowApplicantPIN hands the whole window to the applicant to set a PIN (CPS §6.4.1.2: the
// applicant sets it personally). The header, menu and status bar are hidden while it shows;
// when req.Submit accepts the PIN, or the entry is cancelled, the previous content returns.
func (s *Shell) ShowApplicantPIN(req PINRequest) {
	previous := s.win.Content()
	restore := func() {
		s.pin = nil
		s.win.SetContent(previous)
	}
	p := newPINEntry(req, s.theme, restore)
	s.pin = p
	s.win.SetContent(p.view)
	p.focus(s.win.Canvas())
}

// PINJudge applies the PIN rules of the domain to the PIN an applicant typed for a case (TS
// Art. 4: not easily guessed; the birthday rule needs the case's applicant). A Session that
// offers it implements it. Refusals are app/pinrule errors (errors.Is(err, apperr.WeakPIN)).
// Implementations never keep, log or record the PIN.
type PINJudge interface {
	CheckApplicantPIN(ctx context.Context, caseID int64, kind PINKind, pin []byte) error
}

// AskApplicantPIN shows the applicant PIN screen for case caseID: the domain judges each PIN
// the applicant submits (TS Art. 4), and an accepted PIN goes to use exactly once (for example
// to the card). use must not keep pin; a refusal from use is shown like a rule refusal. It
// refuses when the session offers no PINJudge.
func (s *Shell) AskApplicantPIN(caseID int64, kind PINKind, use func(pin []byte) error, cancelled func()) error {
	judge, ok := s.session.(PINJudge)
	if !ok {
		return fmt.Errorf("ui: session cannot judge applicant PINs")
	}
	s.ShowApplicantPIN(PINRequest{Kind: kind, Cancelled: cancelled, Submit: func(pin []byte) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := judge.CheckApplicantPIN(ctx, caseID, kind, pin); err != nil {
			return err
		}
		return use(pin)
	}})
	return nil
}
