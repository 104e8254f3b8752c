package printout

import (
	"strings"
	"time"

	"madoguchi/app/apperr"
)

// TestPage is the page a supervisor prints from the settings screen to check a printer: which
// queue and terminal, when, and lines that show whether the Japanese fonts print whole. It
// carries no personal data.
type TestPage struct {
	Queue    string // the CUPS queue it was sent to
	Terminal string // the terminal's id, or its data directory before enrolment
	Date     time.Time
}

// testPageSample covers the character classes the counter's documents use.
var testPageSample = []row{
	{label: "漢字", value: "電子証明書交付通知書　署名用　利用者証明用　失効　暗証番号"},
	{label: "ひらがな・カタカナ", value: "あいうえお　かきくけこ　アイウエオ　カキクケコ　ヴァ"},
	{label: "英数字・記号", value: "ABCXYZ abcxyz 0123456789 ０１２３４５６７８９ （）「」・／：－"},
}

// TestPage makes the printer test page.
func (p *Printer) TestPage(t TestPage) ([]byte, error) {
	if strings.TrimSpace(t.Queue) == "" || t.Date.IsZero() {
		return nil, apperr.New(apperr.InvalidInput, "printout: a test page needs the queue and the date")
	}
	s := p.newSheet("印刷テスト", t.Date)
	s.heading(formatInstant(t.Date))
	s.paragraph("前文", "このページは端末の設定画面から印刷したテストページです。次の文字が欠けずに、かすれずに印刷されていることを確かめてください。")
	s.section("印刷先")
	s.grid(
		row{label: "プリンタ（キュー）", value: t.Queue},
		row{label: "端末", value: t.Terminal},
		row{label: "印刷日時", value: formatInstant(t.Date)},
	)
	s.section("文字の確認")
	s.grid(testPageSample...)
	return s.finish()
}
