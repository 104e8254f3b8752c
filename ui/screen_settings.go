package ui

import (
	"context"
	"log"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app"
	"madoguchi/assets/translations"
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
	queue    *widget.Entry
	server   *widget.Entry
	savePrn  *widget.Button
	testPage *widget.Button
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
		widget.NewSeparator(),
		widget.NewLabelWithStyle(tr("settings.printer"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		wrapped(tr("settings.printer.note")),
		container.New(layout.NewFormLayout(),
			widget.NewLabel(tr("settings.printer.queue")), v.queue,
			widget.NewLabel(tr("settings.printer.server")), v.server,
		),
		container.NewHBox(layout.NewSpacer(), v.testPage, v.savePrn),
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
	v.queue = widget.NewEntry()
	v.queue.SetPlaceHolder(tr("settings.printer.queue.none"))
	v.queue.SetText(cur.Printer)
	v.server = widget.NewEntry()
	v.server.SetPlaceHolder(tr("settings.printer.server.default"))
	v.server.SetText(cur.CUPSServer)
	v.server.OnSubmitted = func(string) { v.doSavePrinter() }
	v.savePrn = widget.NewButtonWithIcon(tr("settings.save"), theme.DocumentSaveIcon(), v.doSavePrinter)
	v.testPage = widget.NewButtonWithIcon(tr("settings.printer.test"), theme.DocumentPrintIcon(), v.doTestPage)
	if cur.Printer == "" {
		v.testPage.Disable()
	}
	return v
}

// recordChange notes a setting's change, or its failure, in the supervisor's history (sess is
// taken on the UI goroutine; nil when nobody is logged in). Called off the UI goroutine.
func recordChange(sess Session, setting, value string, err error) {
	if sess == nil {
		return
	}
	if rerr := sess.RecordSettingChanged(context.Background(), setting, value, err); rerr != nil {
		log.Printf("ui: recording the change of setting %s: %v", setting, rerr)
	}
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
	v.certInfo.SetText(tr(key, map[string]any{"ID": c.TerminalID, "Municipality": c.Municipality, "Expiry": c.NotAfter.In(japanTime).Format(dateLayout)}))
}

func (v *settingsView) clearMessages() {
	v.message.SetText("")
	v.notice.SetText("")
}

func (v *settingsView) doSaveURL() {
	url := strings.TrimSpace(v.caURL.Text)
	v.clearMessages()
	v.saveURL.Disable()
	sess := v.shell.session
	v.shell.async(func() {
		err := v.settings.SetCAURL(context.Background(), url)
		recordChange(sess, app.SettingCAURL, url, err)
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
	sess := v.shell.session
	v.shell.async(func() {
		c, err := v.settings.Enrol(context.Background(), token)
		// The token is a one-time secret: the record names the certificate, never the token.
		recordChange(sess, app.SettingEnrolment, c.TerminalID+" "+c.Municipality, err)
		v.shell.do(func() {
			v.enrol.Enable()
			if err != nil {
				v.message.SetText(tr("settings.enrol.failed", map[string]any{"Reason": errorMessageIn(translations.Settings, err)}))
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
	err := v.settings.SetReader(name)
	sess := v.shell.session
	v.shell.async(func() { recordChange(sess, app.SettingReader, name, err) })
	if err != nil {
		v.message.SetText(errorMessageIn(translations.Settings, err))
		return
	}
	v.notice.SetText(tr("settings.saved"))
}

func (v *settingsView) doSavePrinter() {
	queue, server := strings.TrimSpace(v.queue.Text), strings.TrimSpace(v.server.Text)
	v.clearMessages()
	v.savePrn.Disable()
	v.testPage.Disable()
	sess := v.shell.session
	v.shell.async(func() {
		ctx, cancel := context.WithTimeout(context.Background(), procedureTimeout)
		err := v.settings.SetPrinter(ctx, queue, server)
		cancel()
		value := queue
		if server != "" {
			value += " @ " + server
		}
		recordChange(sess, app.SettingPrinter, value, err)
		configured := v.settings.Current().Printer != "" // the new queue, or the old one kept
		v.shell.do(func() {
			v.savePrn.Enable()
			if configured {
				v.testPage.Enable()
			}
			switch {
			case err != nil:
				v.message.SetText(tr("settings.printer.failed", map[string]any{"Reason": printerSettingText(err)}))
			case queue == "":
				v.notice.SetText(tr("settings.printer.off"))
			default:
				v.notice.SetText(tr("settings.saved"))
			}
		})
	})
}

// printerSettingText explains a refused printer setting: a malformed name or address, or what
// printing itself would have said (the settings context of the table).
func printerSettingText(err error) string { return errorMessageIn(translations.Settings, err) }

// doTestPage prints the test page and records it like any printed document (case 0: it is no
// applicant's).
func (v *settingsView) doTestPage() {
	v.clearMessages()
	v.testPage.Disable()
	sess := v.shell.session
	v.shell.async(func() {
		ctx, cancel := context.WithTimeout(context.Background(), printTimeout)
		job, err := v.settings.PrintTestPage(ctx)
		cancel()
		recordPrinted(sess, 0, app.DocumentTestPage, job, err)
		v.shell.do(func() {
			v.testPage.Enable()
			if err != nil {
				v.message.SetText(tr("preview.print_failed", map[string]any{"Reason": printErrorText(err)}))
				return
			}
			v.notice.SetText(tr("settings.printer.printed", map[string]any{"Job": job}))
		})
	})
}
