// Command benchwindow is the baseline of the terminal's start-up benchmark
// (BenchmarkWindowStartup): a minimal Fyne window, built like the terminal (GL driver, same
// window size), whose theme and fonts can be chosen, so that the cost of the terminal itself
// and of its bundled fonts can be told apart from the cost of Fyne and the X server.
//
//	benchwindow [-theme default|terminal|files] [-regular FILE -bold FILE] [-free-after D]
//	            [-nobold] [-cpuprofile FILE] [-memprofile FILE] [-profile-for D]
//
// -theme default is Fyne's default theme (Latin Noto Sans bundled in Fyne; Japanese glyphs
// fall back to the system fonts); terminal is ui.NewTheme() with the embedded Noto Sans CJK JP
// OpenType faces; files is the terminal's sizes with the faces read from -regular and -bold
// (for comparing other encodings of the same faces, e.g. TrueType). -nobold draws the title in
// the regular face, so the bold face is never loaded. -free-after returns freed
// heap to the operating system that long after start (runtime/debug.FreeOSMemory).
//
// It is a measuring tool only; the terminal never runs it.
package main

import (
	"flag"
	"log"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"madoguchi/ui"
)

func main() {
	themeName := flag.String("theme", "default", "default, terminal or files")
	regular := flag.String("regular", "", "regular face for -theme files")
	bold := flag.String("bold", "", "bold face for -theme files")
	freeAfter := flag.Duration("free-after", 0, "call debug.FreeOSMemory this long after start (0: never)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the first -profile-for of the run to this file")
	profileFor := flag.Duration("profile-for", 5*time.Second, "length of the CPU profile")
	memProfile := flag.String("memprofile", "", "write a heap profile to this file once -profile-for has passed")
	noBold := flag.Bool("nobold", false, "no bold text on the window (the bold face is then never loaded: what a lazily loaded bold face saves on a first screen without bold text)")
	flag.Parse()
	if *memProfile != "" {
		time.AfterFunc(*profileFor, func() {
			f, err := os.Create(*memProfile)
			if err != nil {
				log.Fatal(err)
			}
			runtime.GC()
			pprof.WriteHeapProfile(f)
			f.Close()
		})
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		time.AfterFunc(*profileFor, func() { pprof.StopCPUProfile(); f.Close() })
	}
	if err := ui.UseLanguage("ja"); err != nil {
		log.Fatal(err)
	}
	a := fyneapp.NewWithID("jp.madoguchi.benchwindow")
	switch *themeName {
	case "default":
	case "terminal":
		a.Settings().SetTheme(ui.NewTheme())
	case "files":
		a.Settings().SetTheme(&fileTheme{Theme: ui.NewTheme(), regular: load(*regular), bold: load(*bold)})
	default:
		log.Fatalf("benchwindow: unknown theme %q", *themeName)
	}
	w := a.NewWindow("窓口 Madoguchi — benchwindow")
	w.Resize(fyne.NewSize(1200, 800))
	// The same kinds of text as the terminal's log-in screen: bold title, body text, an entry
	// with a placeholder, a button with an icon.
	entry := widget.NewEntry()
	entry.SetPlaceHolder("職員番号を入力して Enter")
	w.SetContent(container.NewVBox(
		widget.NewLabelWithStyle("窓口 Madoguchi ログイン", fyne.TextAlignLeading, fyne.TextStyle{Bold: !*noBold}),
		widget.NewLabel("職員番号"), entry,
		widget.NewButtonWithIcon("次へ", theme.NavigateNextIcon(), func() {}),
	))
	if *freeAfter > 0 {
		time.AfterFunc(*freeAfter, debug.FreeOSMemory)
	}
	w.ShowAndRun()
}

func load(path string) fyne.Resource {
	r, err := fyne.LoadResourceFromPath(path)
	if err != nil {
		log.Printf("benchwindow: %v", err)
		os.Exit(2)
	}
	return r
}

// fileTheme is the terminal's theme with its faces read from files.
type fileTheme struct {
	*ui.Theme
	regular, bold fyne.Resource
}

func (t *fileTheme) Font(style fyne.TextStyle) fyne.Resource {
	switch {
	case style.Symbol:
		return t.Theme.Font(style)
	case style.Bold:
		return t.bold
	default:
		return t.regular
	}
}
