package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/data/binding"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// stageState is where one named step of a long operation is.
type stageState int

const (
	stagePending stageState = iota
	stageRunning
	stageDone
	stageFailed
)

// stepProgress shows a long operation as a list of NAMED steps with a mark each (waiting,
// running, done, failed) and a bar over all of them, so the clerk and the applicant can see
// where an issuance is and, after a failure, at which step it stopped.
//
// The steps' texts and the bar's value are bindings the labels and the bar are made over; a
// step's mark and colour are set on its icon and label.
//
// Concurrency: UI goroutine only.
type stepProgress struct {
	names  []string
	detail []string // optional text after a step's name (e.g. the certificate type)
	state  []stageState
	texts  []binding.String // each step's name, detail and "…" while it runs
	done   binding.Float    // the steps done, a running one counting half
	icons  []*widget.Icon
	labels []*widget.Label
	view   fyne.CanvasObject
}

// newStepProgress builds the list for the translated step names.
func newStepProgress(names ...string) *stepProgress {
	p := &stepProgress{names: names, detail: make([]string, len(names)), state: make([]stageState, len(names)), done: binding.NewFloat()}
	rows := container.NewVBox()
	for range names {
		text := binding.NewString()
		icon := widget.NewIcon(nil)
		label := widget.NewLabelWithData(text)
		label.SizeName = theme.SizeNameSubHeadingText
		p.texts = append(p.texts, text)
		p.icons = append(p.icons, icon)
		p.labels = append(p.labels, label)
		rows.Add(container.NewHBox(icon, label))
	}
	bar := widget.NewProgressBarWithData(p.done)
	bar.Max = float64(len(names))
	p.view = container.NewVBox(rows, bar)
	p.refresh()
	return p
}

// start marks step i running, every step before it done, and shows detail after its name.
func (p *stepProgress) start(i int, detail string) {
	if i < 0 || i >= len(p.names) {
		return
	}
	for j := 0; j < i; j++ {
		if p.state[j] != stageFailed {
			p.state[j] = stageDone
		}
	}
	p.state[i] = stageRunning
	p.detail[i] = detail
	p.refresh()
}

// finish marks every step done.
func (p *stepProgress) finish() {
	for i := range p.state {
		p.state[i] = stageDone
		p.detail[i] = ""
	}
	p.refresh()
}

// fail marks the running step (or the first pending one when none runs) failed.
func (p *stepProgress) fail() {
	at := -1
	for i, s := range p.state {
		if s == stageRunning {
			at = i
			break
		}
	}
	if at < 0 {
		for i, s := range p.state {
			if s == stagePending {
				at = i
				break
			}
		}
	}
	if at >= 0 {
		p.state[at] = stageFailed
	}
	p.refresh()
}

// running returns the index of the running step, or -1.
func (p *stepProgress) running() int {
	for i, s := range p.state {
		if s == stageRunning {
			return i
		}
	}
	return -1
}

func (p *stepProgress) refresh() {
	done := 0.0
	for i, s := range p.state {
		text := p.names[i]
		if p.detail[i] != "" {
			text = tr("progress.stage_detail", map[string]any{"Stage": text, "Detail": p.detail[i]})
		}
		var res fyne.Resource
		imp := widget.LowImportance
		switch s {
		case stagePending:
			res = theme.RadioButtonIcon()
		case stageRunning:
			res, imp = theme.MediaPlayIcon(), widget.HighImportance
			text += " …"
			done += 0.5
		case stageDone:
			res, imp = theme.ConfirmIcon(), widget.SuccessImportance
			done++
		case stageFailed:
			res, imp = theme.ErrorIcon(), widget.DangerImportance
		}
		p.icons[i].SetResource(res)
		if p.labels[i].Importance != imp {
			// The colour is no part of the bound text: a step that fails keeps its text.
			p.labels[i].Importance = imp
			p.labels[i].Refresh()
		}
		p.texts[i].Set(text)
	}
	p.done.Set(done)
}
