package ui

import (
	"context"
	"errors"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/auth"
	"madoguchi/app/operator"
)

// supervisorShell logs the fixture's supervisor in (password, exempted) on a test shell and puts
// the operator management screen in its body.
func supervisorShell(t *testing.T, f *appFixture) (*Shell, fyne.Window, *operatorsView) {
	t.Helper()
	s, w := newTestShell(t, AppBackend{Terminal: f.term}, Screens(), false)
	loginAs(t, s, "sup")
	test.Type(s.login.pwEntry, "supervisor pass 1")
	s.login.pwEntry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if s.Current() != HomeID {
		t.Fatalf("supervisor log-in failed: %q", s.login.message.Text)
	}
	if err := s.Show("supervisor.operators"); err != nil {
		t.Fatal(err)
	}
	v, obj := buildOperatorsView(s)
	s.body.Objects = []fyne.CanvasObject{obj}
	s.body.Refresh()
	return s, w, v
}

func operatorNamed(t *testing.T, f *appFixture, id string) operator.Operator {
	t.Helper()
	o, err := f.term.LookupOperator(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestSupervisorCreatesAndSetsUpOperator: the supervisor creates an operator, grants the
// reception permission alone (CS stays separate, TS Art. 3(4)), enrols a finger with the
// reader's stages shown, and the new operator can log in with it; every change is in the audit
// chain.
func TestSupervisorCreatesAndSetsUpOperator(t *testing.T) {
	f := newAppFixture(t)
	_, w, v := supervisorShell(t, f)

	// Empty fields are refused before the domain is asked.
	test.Tap(v.create)
	if v.message.Text != tr("supervisor.error.create_empty") {
		t.Errorf("empty create: %q", v.message.Text)
	}
	test.Type(v.newID, "bad id!")
	test.Type(v.newName, "誤り")
	v.newName.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if v.message.Text != tr("supervisor.error.invalid_id") {
		t.Errorf("invalid id: %q", v.message.Text)
	}
	v.newID.SetText("")
	v.newName.SetText("")
	test.Type(v.newID, "R010")
	test.Type(v.newName, "受付 三郎")
	v.newName.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if v.message.Text != "" || !strings.Contains(v.notice.Text, "受付 三郎（R010）さんを登録しました") {
		t.Fatalf("create: message %q notice %q", v.message.Text, v.notice.Text)
	}
	if v.selected != "R010" || !contains(labelsIn(w), "R010") {
		t.Fatalf("new operator not selected/listed: %q %v", v.selected, labelsIn(w))
	}
	// A second operator with the same id is refused in plain Japanese.
	test.Type(v.newID, "R010")
	test.Type(v.newName, "重複")
	test.Tap(v.create)
	if v.message.Text != "この職員番号は既に登録されています" {
		t.Errorf("duplicate: %q", v.message.Text)
	}

	test.Tap(v.perms[PermissionReception])
	if o := operatorNamed(t, f, "R010"); !o.Has(operator.Reception) || o.Has(operator.CS) {
		t.Fatalf("after granting reception: %+v", o.Permissions)
	}
	if v.notice.Text != "R010 さんに「受付」の権限を付与しました" {
		t.Errorf("grant notice %q", v.notice.Text)
	}
	if !v.perms[PermissionReception].Checked || v.perms[PermissionCS].Checked {
		t.Errorf("checks after grant: reception %v cs %v", v.perms[PermissionReception].Checked, v.perms[PermissionCS].Checked)
	}

	// The enrolment shows the reader's stages; the press awaited is stage+1.
	v.enrollProgress(EnrollProgress{Stage: 2, Total: 5})
	if v.enrollState.Text != "指を置いてください (3/5)" || v.enrollBar.Value != 0.4 {
		t.Errorf("stage text %q, bar %v", v.enrollState.Text, v.enrollBar.Value)
	}
	v.enrollProgress(EnrollProgress{Stage: 2, Total: 5, Retry: true})
	if !strings.HasSuffix(v.enrollState.Text, "もう一度置いてください (3/5)") {
		t.Errorf("retry text %q", v.enrollState.Text)
	}
	f.fp.Present("finger-R010")
	v.finger.SetSelected("左手 人差し指")
	test.Tap(v.enroll)
	f.fp.Present("")
	if v.enrollState.Text != "指紋を登録しました" || v.message.Text != "" {
		t.Fatalf("enrol: state %q message %q", v.enrollState.Text, v.message.Text)
	}
	if o := operatorNamed(t, f, "R010"); o.Finger != "left-index-finger" {
		t.Fatalf("enrolled finger = %q", o.Finger)
	}
	if !contains(labelsIn(w), "指紋") {
		t.Errorf("log-in method not shown as fingerprint: %v", labelsIn(w))
	}
	f.fp.Present("finger-R010")
	if _, err := (AppBackend{Terminal: f.term}).LoginFingerprint(context.Background(), "R010", func(ScanEvent) {}); err != nil {
		t.Fatalf("new operator's fingerprint log-in: %v", err)
	}

	recs, err := audit.List(context.Background(), f.term.DB(), audit.Filter{Operator: "sup"})
	if err != nil {
		t.Fatal(err)
	}
	done := map[string]bool{}
	for _, r := range recs {
		if r.Target == "R010" && r.Result == audit.ResultOK {
			done[r.Action] = true
		}
	}
	for _, a := range []string{"operator.create", "operator.grant", "operator.enroll_finger"} {
		if !done[a] {
			t.Errorf("no successful %s of R010 in the audit chain", a)
		}
	}
}

// TestSupervisorExemptionNeedsReason: the ID + password exemption is granted only with a
// reason (TS Art. 3(3)); short or mismatched passwords are refused on the screen, and the
// password fields are emptied whatever happens.
func TestSupervisorExemptionNeedsReason(t *testing.T) {
	f := newAppFixture(t)
	f.addOperator(t, "R001", "受付 花子", "finger-R001", operator.Reception)
	_, _, v := supervisorShell(t, f)
	v.selectOperator("R001")

	test.Type(v.password, "long enough pass")
	test.Type(v.password2, "long enough pass")
	test.Tap(v.exempt)
	if v.message.Text != "生体認証を免除する理由を入力してください" {
		t.Errorf("no reason: %q", v.message.Text)
	}
	test.Type(v.reason, "右手の負傷により指紋を読み取れないため")
	test.Type(v.password, "short")
	test.Type(v.password2, "short")
	test.Tap(v.exempt)
	if v.message.Text != "パスワードは10文字以上にしてください" || v.password.Text != "" || v.password2.Text != "" {
		t.Errorf("short password: message %q, fields %q %q", v.message.Text, v.password.Text, v.password2.Text)
	}
	test.Type(v.password, "long enough pass")
	test.Type(v.password2, "long enough pasS")
	v.password2.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if v.message.Text != tr("supervisor.error.password_mismatch") {
		t.Errorf("mismatch: %q", v.message.Text)
	}
	if o := operatorNamed(t, f, "R001"); o.PasswordExempt {
		t.Fatal("exemption recorded although refused on the screen")
	}

	test.Type(v.password, "long enough pass")
	test.Type(v.password2, "long enough pass")
	v.password2.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if v.message.Text != "" || v.password.Text != "" {
		t.Fatalf("exemption: message %q, password field %q", v.message.Text, v.password.Text)
	}
	o := operatorNamed(t, f, "R001")
	if !o.PasswordExempt || o.ExemptReason != "右手の負傷により指紋を読み取れないため" || o.ExemptBy != "sup" {
		t.Fatalf("exemption = %v %q by %q", o.PasswordExempt, o.ExemptReason, o.ExemptBy)
	}
	if _, err := (AppBackend{Terminal: f.term}).LoginPassword(context.Background(), "R001", "long enough pass"); err != nil {
		t.Fatalf("password log-in of the exempted operator: %v", err)
	}
	if v.unexempt.Disabled() {
		t.Fatal("withdraw button disabled for an exempted operator")
	}
	test.Tap(v.unexempt)
	if o := operatorNamed(t, f, "R001"); o.PasswordExempt {
		t.Fatal("exemption not withdrawn")
	}
}

// TestSupervisorLastSupervisorGuard: withdrawing the supervisor permission from, or disabling,
// the only active supervisor is refused with a clear message and changes nothing; disabling
// and re-enabling another operator works and takes effect at log-in.
func TestSupervisorLastSupervisorGuard(t *testing.T) {
	f := newAppFixture(t)
	f.addOperator(t, "R001", "受付 花子", "finger-R001", operator.Reception)
	_, _, v := supervisorShell(t, f)
	want := "この変更をすると、有効な管理者が一人もいなくなります。先に別の職員に管理者の権限を付与してください"

	v.selectOperator("sup")
	test.Tap(v.perms[PermissionSupervisor]) // uncheck
	if v.message.Text != want {
		t.Errorf("withdraw last supervisor: %q", v.message.Text)
	}
	if !v.perms[PermissionSupervisor].Checked {
		t.Error("supervisor check left unticked after the refusal")
	}
	test.Tap(v.activeToggle)
	if v.message.Text != want {
		t.Errorf("disable last supervisor: %q", v.message.Text)
	}
	if o := operatorNamed(t, f, "sup"); !o.Active || !o.Has(operator.Supervisor) {
		t.Fatalf("refused change applied: %+v", o)
	}

	v.selectOperator("R001")
	test.Tap(v.activeToggle)
	if o := operatorNamed(t, f, "R001"); o.Active {
		t.Fatal("R001 not disabled")
	}
	if v.activeToggle.Text != "利用再開" {
		t.Errorf("toggle after disabling: %q", v.activeToggle.Text)
	}
	f.fp.Present("finger-R001")
	_, err := (AppBackend{Terminal: f.term}).LoginFingerprint(context.Background(), "R001", func(ScanEvent) {})
	if !errors.Is(err, apperr.OperatorDisabled) {
		t.Fatalf("disabled operator's log-in: %v", err)
	}
	test.Tap(v.activeToggle)
	if o := operatorNamed(t, f, "R001"); !o.Active {
		t.Fatal("R001 not re-enabled")
	}
}

func TestFingerNamesTranslated(t *testing.T) {
	ja, en := loadCatalogue(t, "ja.json"), loadCatalogue(t, "en.json")
	for _, n := range auth.FingerNames {
		k := "supervisor.finger." + n
		if ja[k] == "" || en[k] == "" {
			t.Errorf("finger %s: ja %q en %q", n, ja[k], en[k])
		}
	}
	if got := fingerLabel("right-index-finger"); got != "右手 人差し指" {
		t.Errorf("fingerLabel = %q", got)
	}
}
