package ui

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/apperr"
)

func TestMain(m *testing.M) {
	if err := UseLanguage("ja"); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// fakeOperator is one operator of fakeBackend.
type fakeOperator struct {
	Operator
	perms    []Permission
	password string
	// fingerprint is what LoginFingerprint does for this operator: the scan events to report,
	// then the error to return (nil: match).
	events []ScanEvent
	result error
	locked bool
}

// fakeBackend is an in-process stand-in for app.Terminal, good for screen tests only; the real
// domain is exercised by app's own tests and the terminal's Xvfb test.
type fakeBackend struct {
	mu        sync.Mutex
	operators map[string]*fakeOperator
	fpCalls   int
	// gate, when non-nil, makes LoginFingerprint wait for a value after reporting its events.
	gate      chan struct{}
	loggedOut []string
	printed   []printRecord
	settings  []settingRecord
}

var _ Backend = (*fakeBackend)(nil)

func newFakeBackend(ops ...*fakeOperator) *fakeBackend {
	b := &fakeBackend{operators: map[string]*fakeOperator{}}
	for _, o := range ops {
		b.operators[o.ID] = o
	}
	return b
}

func (b *fakeBackend) LookupOperator(ctx context.Context, id string) (Operator, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.operators[id]
	if !ok {
		return Operator{}, apperr.New(apperr.NotFound, "operator: %q not found", id)
	}
	return o.Operator, nil
}

func (b *fakeBackend) LoginFingerprint(ctx context.Context, id string, progress func(ScanEvent)) (Session, error) {
	b.mu.Lock()
	b.fpCalls++
	o := b.operators[id]
	gate := b.gate
	b.mu.Unlock()
	if o.locked {
		return nil, apperr.New(apperr.LockedOut, "app: operator %q is locked", id)
	}
	for _, ev := range o.events {
		progress(ev)
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, apperr.Wrap(apperr.Cancelled, ctx.Err(), "auth: verify cancelled")
		}
	}
	if o.result != nil {
		return nil, o.result
	}
	return &fakeSession{b: b, op: o}, nil
}

func (b *fakeBackend) LoginPassword(ctx context.Context, id, password string) (Session, error) {
	o, ok := b.operators[id]
	switch {
	case !ok:
		return nil, apperr.New(apperr.BadCredentials, "app: unknown operator or wrong password")
	case o.locked:
		return nil, apperr.New(apperr.LockedOut, "app: operator %q is locked", id)
	case !o.PasswordExempt:
		return nil, apperr.New(apperr.PasswordNotAllowed, "app: operator %q must use a fingerprint", id)
	case password != o.password:
		return nil, apperr.New(apperr.BadCredentials, "app: unknown operator or wrong password")
	}
	return &fakeSession{b: b, op: o}, nil
}

func (b *fakeBackend) fingerprintCalls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fpCalls
}

type fakeSession struct {
	b       *fakeBackend
	op      *fakeOperator
	mu      sync.Mutex
	expired bool
}

func (s *fakeSession) Expired() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.expired }

func (s *fakeSession) expire() { s.mu.Lock(); s.expired = true; s.mu.Unlock() }

func (s *fakeSession) Operator() Operator { return s.op.Operator }

func (s *fakeSession) Allowed(p Permission) bool {
	if p == PermissionNone {
		return true
	}
	for _, q := range s.op.perms {
		if q == p {
			return true
		}
	}
	return false
}

// printRecord is one RecordPrinted call on a fake session.
type printRecord struct {
	caseID   int64
	document string
	job      int
	err      error
}

func (s *fakeSession) RecordPrinted(ctx context.Context, caseID int64, document string, job int, printErr error) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.printed = append(s.b.printed, printRecord{caseID, document, job, printErr})
	return nil
}

// settingRecord is one RecordSettingChanged call on a fake session.
type settingRecord struct {
	setting, value string
	err            error
}

func (s *fakeSession) RecordSettingChanged(ctx context.Context, setting, value string, changeErr error) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.settings = append(s.b.settings, settingRecord{setting, value, changeErr})
	return nil
}

func (s *fakeSession) Logout(ctx context.Context) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.loggedOut = append(s.b.loggedOut, s.op.ID)
	return nil
}

// Operators used across the tests.
func receptionClerk() *fakeOperator {
	return &fakeOperator{Operator: Operator{ID: "R001", Name: "受付 花子"}, perms: []Permission{PermissionReception}}
}

func csClerk() *fakeOperator {
	return &fakeOperator{Operator: Operator{ID: "C001", Name: "住基 太郎"}, perms: []Permission{PermissionCS}}
}

func exemptClerk() *fakeOperator {
	return &fakeOperator{Operator: Operator{ID: "E001", Name: "補助 次郎", PasswordExempt: true},
		perms: []Permission{PermissionReception}, password: "correct horse"}
}

// testSize is the window size of the screen tests and their reference images.
var testSize = fyne.NewSize(960, 640)

// uiQueue stands in for Fyne's UI goroutine. Fyne's test driver runs fyne.Do at once on the
// calling goroutine, so a backend or watcher goroutine would touch widgets while the test reads
// them; instead the shell under test queues its UI work here and the test goroutine runs it in
// waitFor, keeping every widget access on one goroutine (and the tests -race clean).
type uiQueue struct{ funcs chan func() }

func (q *uiQueue) do(f func()) { q.funcs <- f }

func (q *uiQueue) drain() {
	for {
		select {
		case f := <-q.funcs:
			f()
		default:
			return
		}
	}
}

// testUI is the queue of the shell of the running test (tests in this package are sequential).
var testUI = &uiQueue{funcs: make(chan func(), 1024)}

// testApp is the one Fyne test app of the package's screen tests, with the terminal's theme,
// made at the first call. A new test app, and every theme change, empties Fyne's font and
// text-size caches, and measuring a text again with the bundled CJK faces builds a harfbuzz font
// over their large layout tables: under -race most of a screen test's time went there. One app
// keeps the measurements from test to test. Sharing it is safe because the tests of this
// package run one at a time (testUI) and none changes the app's settings; each test still gets
// its own window, closed when it ends.
var testApp = sync.OnceValue(func() fyne.App {
	a := test.NewApp()
	a.Settings().SetTheme(NewTheme())
	return a
})

// newTestShell opens a shell on a test window with the terminal's theme. Backend calls run
// synchronously on the test goroutine, and their results are applied at once, unless async is
// true: then they run on goroutines and their results wait in testUI for waitFor. Watcher
// reports (status bar, idle log-out) always go through testUI.
func newTestShell(t *testing.T, b Backend, screens []Screen, async bool) (*Shell, fyne.Window) {
	t.Helper()
	testUI = &uiQueue{funcs: make(chan func(), 1024)}
	fyne.SetCurrentApp(testApp())
	w := test.NewTempWindow(t, widget.NewLabel(""))
	w.Resize(testSize)
	st := NewStatus()
	st.do = testUI.do
	s := NewShell(w, b, st, screens)
	// A watcher left running would log a later test's window out from another goroutine.
	t.Cleanup(s.StopWatching)
	s.do = testUI.do
	if !async {
		s.async = func(f func()) { f() }
		s.do = func(f func()) { f() }
	}
	return s, w
}

// waitFor runs queued UI work and polls cond until it holds; it fails the test after a generous
// deadline, which only bounds a hang and asserts nothing about speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for testUI.drain(); !cond(); testUI.drain() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// loginAs types id on the log-in screen and presses Enter.
func loginAs(t *testing.T, s *Shell, id string) {
	t.Helper()
	if s.login == nil {
		t.Fatal("log-in screen not shown")
	}
	test.Type(s.login.idEntry, id)
	s.login.idEntry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
}
