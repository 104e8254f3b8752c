package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
)

// homeScreen is the menu every logged-in operator sees: one button per screen the operator's
// permissions allow, so a reception operator never sees CS duties and vice versa (TS Art. 3(4)).
func homeScreen() Screen {
	return Screen{ID: HomeID, Title: "home.title", Permission: PermissionNone, View: homeView}
}

func homeView(s *Shell) fyne.CanvasObject {
	op := s.Session().Operator()
	welcome := widget.NewLabelWithStyle(tr("home.welcome", map[string]any{"Name": op.Name}),
		fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	welcome.Wrapping = fyne.TextWrapWord
	menu := container.NewGridWrap(fyne.NewSize(280, 72))
	for _, sc := range s.Permitted() {
		if sc.ID == HomeID {
			continue
		}
		id := sc.ID
		b := widget.NewButton(tr(sc.Title), func() { s.Show(id) })
		b.Importance = widget.HighImportance
		menu.Add(b)
	}
	var body fyne.CanvasObject = menu
	if len(menu.Objects) == 0 {
		body = widget.NewLabel(tr("home.no_duties"))
	}
	// The menu scrolls under the header when an operator holding every permission has more
	// duties than the window shows.
	_, page := newPageScroll(container.NewPadded(container.NewVBox(welcome, widget.NewLabel(tr("home.choose")), body)))
	return page
}
