package ui

import (
	"context"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app"
)

// SettingsID is the screen id of the terminal settings.
const SettingsID = "supervisor.settings"

// settingsScreen is the supervisor's settings of this terminal: the CA's address, the card
// reader, and the terminal's enrolment with the CA with a one-time token, showing the
// municipality and expiry of the terminal's client certificate (TS Art. 7(i): the terminal and
// the CA authenticate each other). Supervisor only: the link to the CA decides where
// applicants' data is sent.
func settingsScreen() Screen {
	return Screen{ID: SettingsID, Title: "settings.title", Permission: PermissionSupervisor, View: newSettingsView}
}

type settingsView struct {
	shell    *Shell
	settings TerminalSettings

	caURL    *widget.Entry
	saveURL  *widget.Button
	readers  *widget.Select
	reload   *widget.Button
	token    *widget.Entry
	enrol    *widget.Button
	certInfo *widget.Label
	caFile   *widget.Label
	message  *widget.Label
	notice   *widget.Label
}

func newSettingsView(s *Shell) fyne.CanvasObject { return buildSettingsView(s).root() }

func (v *settingsView) root() fyne.CanvasObject {
	if v.settings == nil {
		return container.NewPadded(v.message)
	}
	_, page := newPageScroll(container.NewVBox(
		widget.NewLabelWithStyle(tr("settings.ca"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		container.New(layout.NewFormLayout(),
			widget.NewLabel(tr("settings.ca_url")), container.NewBorder(nil, nil, nil, v.saveURL, v.caURL),
			widget.NewLabel(tr("settings.ca_cert_file")), v.caFile,
			widget.NewLabel(tr("settings.certificate")), v.certInfo,
		),
		widget.NewSeparator(),
		widget.NewLabelWithStyle(tr("settings.enrol"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		wrapped(tr("settings.enrol.note")),
		container.New(layout.NewFormLayout(), widget.NewLabel(tr("settings.token")), container.NewBorder(nil, nil, nil, v.enrol, v.token)),
		widget.NewSeparator(),
		widget.NewLabelWithStyle(tr("settings.reader"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		container.New(layout.NewFormLayout(), widget.NewLabel(tr("settings.reader")), container.NewBorder(nil, nil, nil, v.reload, v.readers)),
		v.message, v.notice,
	))
	return container.NewPadded(page)
}

func wrapped(text string) *widget.Label {
	l := widget.NewLabel(text)
	l.Wrapping = fyne.TextWrapWord
	return l
}

func buildSettingsView(s *Shell) *settingsView {
	v := &settingsView{shell: s, settings: s.Terminal.Settings, message: wrapped(""), notice: wrapped("")}
	v.message.Importance = widget.DangerImportance
	v.notice.Importance = widget.SuccessImportance
	if v.settings == nil {
		v.message.SetText(tr("settings.unavailable"))
		return v
	}
	cur := v.settings.Current()
	v.caURL = widget.NewEntry()
	v.caURL.SetPlaceHolder("https://ca.example.lg.jp:8443")
	v.caURL.SetText(cur.CAURL)
	v.caURL.OnSubmitted = func(string) { v.doSaveURL() }
	v.saveURL = widget.NewButtonWithIcon(tr("settings.save"), theme.DocumentSaveIcon(), v.doSaveURL)
	v.caFile = wrapped(cur.CACertFile)
	if cur.CACertFile == "" {
		v.caFile.SetText(tr("settings.ca_cert_file.none"))
	}
	v.certInfo = wrapped("")
	v.showCertificate(cur.Certificate)
	v.token = widget.NewPasswordEntry() // a one-time secret: masked on screen
	v.token.OnSubmitted = func(string) { v.doEnrol() }
	v.enrol = widget.NewButtonWithIcon(tr("settings.enrol.button"), theme.LoginIcon(), v.doEnrol)
	v.enrol.Importance = widget.HighImportance
	v.readers = widget.NewSelect(nil, nil)
	v.readers.PlaceHolder = tr("settings.reader.first")
	v.reload = widget.NewButtonWithIcon(tr("settings.reader.reload"), theme.ViewRefreshIcon(), v.listReaders)
	v.listReaders()
	return v
}

// showCertificate says whether the terminal is enrolled, for which municipality, until when.
func (v *settingsView) showCertificate(c *TerminalCertificate) {
	if c == nil {
		v.certInfo.SetText(tr("settings.certificate.none"))
		v.certInfo.Importance = widget.WarningImportance
		v.certInfo.Refresh()
		return
	}
	key := "settings.certificate.info"
	v.certInfo.Importance = widget.MediumImportance
	if time.Until(c.NotAfter) < 30*24*time.Hour {
		key = "settings.certificate.expiring"
		v.certInfo.Importance = widget.WarningImportance
	}
	v.certInfo.SetText(tr(key, map[string]any{"ID": c.TerminalID, "Municipality": c.Municipality, "Expiry": c.NotAfter.Local().Format("2006-01-02")}))
}

func (v *settingsView) clearMessages() {
	v.message.SetText("")
	v.notice.SetText("")
}

func (v *settingsView) doSaveURL() {
	url := strings.TrimSpace(v.caURL.Text)
	v.clearMessages()
	v.saveURL.Disable()
	v.shell.async(func() {
		err := v.settings.SetCAURL(context.Background(), url)
		v.shell.do(func() {
			v.saveURL.Enable()
			if err != nil {
				v.message.SetText(tr("settings.ca_url.invalid"))
				return
			}
			v.notice.SetText(tr("settings.saved"))
		})
	})
}

func (v *settingsView) doEnrol() {
	token := strings.TrimSpace(v.token.Text)
	v.clearMessages()
	if token == "" {
		v.message.SetText(tr("settings.token.empty"))
		return
	}
	v.enrol.Disable()
	v.shell.async(func() {
		c, err := v.settings.Enrol(context.Background(), token)
		v.shell.do(func() {
			v.enrol.Enable()
			if err != nil {
				v.message.SetText(tr("settings.enrol.failed", map[string]any{"Reason": app.MessageJA(err)}))
				return
			}
			v.token.SetText("")
			v.showCertificate(&c)
			v.caFile.SetText(v.settings.Current().CACertFile)
			v.notice.SetText(tr("settings.enrol.done", map[string]any{"Municipality": c.Municipality}))
		})
	})
}

// listReaders offers the readers pcscd knows; choosing one saves it at once.
func (v *settingsView) listReaders() {
	current := v.settings.Current().Reader
	v.shell.async(func() {
		names, err := v.settings.Readers(context.Background())
		v.shell.do(func() {
			v.readers.OnChanged = nil
			if err != nil {
				v.readers.SetOptions(nil)
				v.readers.PlaceHolder = tr("settings.reader.none")
				v.readers.Refresh()
				return
			}
			opts := append([]string{tr("settings.reader.first")}, names...)
			v.readers.SetOptions(opts)
			if current == "" {
				v.readers.SetSelected(opts[0])
			} else {
				v.readers.SetSelected(current)
			}
			v.readers.OnChanged = v.chooseReader
		})
	})
}

func (v *settingsView) chooseReader(name string) {
	if name == tr("settings.reader.first") {
		name = ""
	}
	v.clearMessages()
	if err := v.settings.SetReader(name); err != nil {
		v.message.SetText(app.MessageJA(err))
		return
	}
	v.notice.SetText(tr("settings.saved"))
}
