package ui

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
)

// newPageScroll puts a screen's body in a vertical scroll container that the mouse wheel scrolls
// wherever the pointer is, and returns the scroll container (to scroll it from the program) and
// the object to show.
//
// Fyne hands a wheel event to the deepest scrollable object under the pointer, and every
// single-line entry holds a scroller of its own that takes the event and does nothing with it:
// on a form of full-width entries the wheel stopped as soon as an entry passed under the pointer
// (the revocation acknowledgement could not be reached with the wheel). A transparent layer over
// the page, last in the tree and so found after the entries, takes the wheel events for the page
// itself; it implements nothing else, so clicks, hovering and typing reach the widgets below.
func newPageScroll(body fyne.CanvasObject) (*container.Scroll, fyne.CanvasObject) {
	s := container.NewVScroll(body)
	return s, container.NewStack(s, newWheelToPage(s))
}

// wheelToPage passes the mouse wheel on to the page's scroll container. UI goroutine only.
type wheelToPage struct {
	widget.BaseWidget
	page *container.Scroll
}

var _ fyne.Scrollable = (*wheelToPage)(nil)

func newWheelToPage(page *container.Scroll) *wheelToPage {
	w := &wheelToPage{page: page}
	w.ExtendBaseWidget(w)
	return w
}

// Scrolled scrolls the page.
func (w *wheelToPage) Scrolled(ev *fyne.ScrollEvent) { w.page.Scrolled(ev) }

// MinSize is zero: the layer takes the size of the page and never asks for room of its own.
func (w *wheelToPage) MinSize() fyne.Size { return fyne.Size{} }

func (w *wheelToPage) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(canvas.NewRectangle(color.Transparent))
}
