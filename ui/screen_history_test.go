package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/operator"
)

// auditorShell logs the fixture's supervisor (who also holds Audit) in and puts the audit log
// screen in the shell's body.
func auditorShell(t *testing.T, f *appFixture) (*Shell, fyne.Window, *historyView) {
	t.Helper()
	s, w := newTestShell(t, AppBackend{Terminal: f.term}, Screens(), false)
	loginAs(t, s, "sup")
	test.Type(s.login.pwEntry, "supervisor pass 1")
	s.login.pwEntry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if err := s.Show("audit.history"); err != nil {
		t.Fatal(err)
	}
	v, obj := buildHistoryView(s)
	s.body.Objects = []fyne.CanvasObject{obj}
	s.body.Refresh()
	return s, w, v
}

// TestAuditorFiltersByOperatorAndDate: one chosen operator's history on its own (TS Art.
// 20(2)(ii)), a date range, and refusals of malformed dates.
func TestAuditorFiltersByOperatorAndDate(t *testing.T) {
	f := newAppFixture(t)
	f.addOperator(t, "R001", "受付 花子", "finger-R001", operator.Reception)
	f.fp.Present("someone-else")
	(AppBackend{Terminal: f.term}).LoginFingerprint(context.Background(), "R001", func(ScanEvent) {})
	_, _, v := auditorShell(t, f)

	if len(v.rows) == 0 || !strings.Contains(v.count.Text, "全職員の操作記録") {
		t.Fatalf("initial list: %d rows, %q", len(v.rows), v.count.Text)
	}
	test.Type(v.operator, "R001")
	v.operator.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if len(v.rows) != 1 || v.rows[0].Operator != "R001" || v.rows[0].Action != "login.fingerprint" || v.rows[0].Result != "refused" {
		t.Fatalf("R001's history = %+v", v.rows)
	}
	if v.count.Text != "R001の操作記録 1 件" {
		t.Errorf("count = %q", v.count.Text)
	}
	// The table shows the record in Japanese, a refusal in the danger colour.
	var cells []string
	for col := range historyColumns {
		l := widget.NewLabel("")
		v.fillCell(widget.TableCellID{Row: 0, Col: col}, l)
		cells = append(cells, l.Text)
		if col == 5 && l.Importance != widget.DangerImportance {
			t.Errorf("refusal shown with importance %v", l.Importance)
		}
	}
	if cells[2] != "R001" || cells[3] != "指紋でログイン" || cells[5] != "拒否" || !strings.Contains(cells[6], "error_kind=fingerprint no match") {
		t.Errorf("table row = %v", cells)
	}

	// The filter's days are Japanese calendar days, whatever the machine's time zone.
	today := time.Now().In(japanTime).Format(dateLayout)
	tomorrow := time.Now().In(japanTime).AddDate(0, 0, 1).Format(dateLayout)
	v.from.SetText(today)
	v.to.SetText(today)
	test.Tap(v.show)
	if len(v.rows) != 1 {
		t.Errorf("today's records of R001 = %d", len(v.rows))
	}
	v.from.SetText(tomorrow)
	v.to.SetText("")
	test.Tap(v.show)
	if len(v.rows) != 0 || v.count.Text != "条件に合う操作記録はありません" {
		t.Errorf("from tomorrow: %d rows, %q", len(v.rows), v.count.Text)
	}
	for _, bad := range [][2]string{{"2026/04/01", ""}, {tomorrow, today}} {
		v.from.SetText(bad[0])
		v.to.SetText(bad[1])
		test.Tap(v.show)
		if v.message.Text != tr("history.error.date") {
			t.Errorf("dates %v: message %q", bad, v.message.Text)
		}
	}
}

// TestAuditorChecksChain: the chain check reports an intact chain with its size and how much of
// it the CA witnessed, and after a record is edited in the database file it names the first bad
// record.
func TestAuditorChecksChain(t *testing.T) {
	f := newAppFixture(t)
	f.addOperator(t, "R001", "受付 花子", "finger-R001", operator.Reception)
	_, _, v := auditorShell(t, f)
	test.Tap(v.verify)
	// no CA in this fixture: the verdict says the CA was not consulted and nothing is witnessed
	if !strings.Contains(v.verdict.Text, "件を検査しました。改ざん・欠落はありません\n") || !strings.Contains(v.verdict.Text, "認証局に照会できなかったため") ||
		!strings.Contains(v.verdict.Text, "番号 0 まで") {
		t.Fatalf("intact chain: %q (message %q)", v.verdict.Text, v.message.Text)
	}
	if _, err := f.term.DB().ExecContext(context.Background(), `UPDATE audit_log SET target = 'R999' WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	test.Tap(v.verify)
	want := "番号 3 の記録で異常を検出しました（内容が書き換えられています）。この記録以降は信頼できません。監査責任者に報告してください"
	if v.verdict.Text != want {
		t.Fatalf("edited chain: %q", v.verdict.Text)
	}
}

// TestAuditorExports: the records of the current selection go to a new file (0600) as JSON
// lines or CSV; an existing file is never overwritten.
func TestAuditorExports(t *testing.T) {
	f := newAppFixture(t)
	f.addOperator(t, "R001", "受付 花子", "finger-R001", operator.Reception)
	f.fp.Present("finger-R001")
	(AppBackend{Terminal: f.term}).LoginFingerprint(context.Background(), "R001", func(ScanEvent) {})
	_, _, v := auditorShell(t, f)
	dir := t.TempDir()

	test.Type(v.operator, "R001")
	test.Tap(v.show)
	path := filepath.Join(dir, "r001.jsonl")
	v.path.SetText(path)
	test.Tap(v.export)
	if v.message.Text != "" || !strings.Contains(v.notice.Text, path) {
		t.Fatalf("export: message %q notice %q", v.message.Text, v.notice.Text)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v %v", st, err)
	}
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	lines := 0
	for sc := bufio.NewScanner(file); sc.Scan(); lines++ {
		var rec struct{ Operator, Action string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Operator != "R001" {
			t.Errorf("line %d: %q (%v)", lines, sc.Text(), err)
		}
	}
	if lines != 1 {
		t.Errorf("exported %d records of R001, want 1", lines)
	}

	v.path.SetText(path)
	test.Tap(v.export)
	if v.message.Text != "同じ名前のファイルが既にあります。別の名前にしてください" {
		t.Errorf("export over an existing file: %q", v.message.Text)
	}

	v.format.SetSelected("CSV")
	if !strings.HasSuffix(v.path.Text, ".csv") {
		t.Errorf("suggested path for CSV: %q", v.path.Text)
	}
	csvPath := filepath.Join(dir, "all.csv")
	v.operator.SetText("")
	test.Tap(v.show)
	v.path.SetText(csvPath)
	test.Tap(v.export)
	data, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatalf("csv export: %v (%q)", err, v.message.Text)
	}
	if !strings.HasPrefix(string(data), "seq,at,operator,action,target,result,detail,hash\n") || !strings.Contains(string(data), "operator.bootstrap") {
		t.Errorf("csv = %.200q", data)
	}

	v.path.SetText("relative.jsonl")
	test.Tap(v.export)
	if v.message.Text != tr("history.error.path") {
		t.Errorf("relative path: %q", v.message.Text)
	}
}

// TestJapanDayIgnoresMachineZone: a typed day (card expiry, renewal expiry, audit filter) is the
// start of that day in Japan, not at the machine's midnight (which, on a machine east of Japan,
// falls on the previous Japanese day). time.Local is not changed here: watchers of other tests
// read it.
func TestJapanDayIgnoresMachineZone(t *testing.T) {
	d, err := japanDay(" 2031-05-01 ")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2031, 5, 1, 0, 0, 0, 0, japanTime); !d.Equal(want) || d.Location() != japanTime {
		t.Errorf("japanDay = %v, want %v", d, want)
	}
	if got := d.In(japanTime).Format(dateLayout); got != "2031-05-01" {
		t.Errorf("shown back as %s", got)
	}
	for _, bad := range []string{"", "2031-5-1", "2031-02-29", "令和13年5月1日"} {
		if _, err := japanDay(bad); err == nil {
			t.Errorf("japanDay(%q) accepted", bad)
		}
	}
}
