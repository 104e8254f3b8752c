package ui

import (
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
)

// baseScreens is a fixed table of the shell tests (home, one CS, one supervisor and one audit
// screen), so that they do not change whenever the production table gains a screen.
func baseScreens() []Screen {
	return []Screen{homeScreen(), residentsScreen(), operatorsScreen(), historyScreen()}
}

// dutyScreens is the fixed table plus a reception duty, to check the shell's gating.
func dutyScreens() []Screen {
	view := func(text string) func(*Shell) fyne.CanvasObject {
		return func(*Shell) fyne.CanvasObject { return widget.NewLabel(text) }
	}
	return append(baseScreens(),
		Screen{ID: "reception.apply", Title: "test.reception", Permission: PermissionReception, View: view("reception")},
	)
}

// menuTitles returns the labels of the home menu's buttons.
func menuTitles(w fyne.Window) []string {
	var out []string
	for _, o := range test.LaidOutObjects(w.Content()) {
		if b, ok := o.(*widget.Button); ok && b.Importance == widget.HighImportance {
			out = append(out, b.Text)
		}
	}
	return out
}

func TestHomeMenuOnlyPermittedScreens(t *testing.T) {
	for _, tc := range []struct {
		clerk *fakeOperator
		want  []string
		deny  []string
	}{
		{receptionClerk(), []string{"test.reception"}, []string{"cs.residents", "supervisor.operators", "audit.history"}},
		{csClerk(), []string{"住民検索・ファイル作成"}, []string{"reception.apply", "supervisor.operators", "audit.history"}},
	} {
		t.Run(tc.clerk.ID, func(t *testing.T) {
			s, w := newTestShell(t, newFakeBackend(tc.clerk), dutyScreens(), false)
			loginAs(t, s, tc.clerk.ID)
			if s.Current() != HomeID {
				t.Fatalf("not on home after log-in: %q", s.login.message.Text)
			}
			got := menuTitles(w)
			if len(got) != len(tc.want) || got[0] != tc.want[0] {
				t.Errorf("menu = %v, want %v", got, tc.want)
			}
			for _, id := range tc.deny {
				if err := s.Show(id); err == nil {
					t.Errorf("Show(%q) allowed for %s", id, tc.clerk.ID)
				}
				if s.Current() != HomeID {
					t.Errorf("refused Show(%q) changed the screen to %q", id, s.Current())
				}
			}
		})
	}
}

func TestHomeMenuOpensScreen(t *testing.T) {
	s, w := newTestShell(t, newFakeBackend(receptionClerk()), dutyScreens(), false)
	loginAs(t, s, "R001")
	for _, o := range test.LaidOutObjects(w.Content()) {
		if b, ok := o.(*widget.Button); ok && b.Text == "test.reception" {
			test.Tap(b)
		}
	}
	if s.Current() != "reception.apply" {
		t.Fatalf("current = %q, want reception.apply", s.Current())
	}
	if s.title.Text != "test.reception" {
		t.Errorf("header title = %q", s.title.Text)
	}
}

func TestHomeWithoutDuties(t *testing.T) {
	s, w := newTestShell(t, newFakeBackend(receptionClerk()), baseScreens(), false)
	loginAs(t, s, "R001")
	if got := menuTitles(w); len(got) != 0 {
		t.Errorf("menu = %v, want none", got)
	}
	found := false
	for _, o := range test.LaidOutObjects(w.Content()) {
		if l, ok := o.(*widget.Label); ok && l.Text == tr("home.no_duties") {
			found = true
		}
	}
	if !found {
		t.Error("no explanation shown for an empty menu")
	}
}

func TestScreenTable(t *testing.T) {
	seen := map[string]bool{}
	for _, sc := range Screens() {
		if sc.ID == "" || sc.View == nil || sc.Title == "" {
			t.Errorf("incomplete screen %+v", sc)
		}
		if seen[sc.ID] {
			t.Errorf("screen id %q registered twice", sc.ID)
		}
		seen[sc.ID] = true
	}
	if !seen[HomeID] {
		t.Error("no home screen")
	}
}
