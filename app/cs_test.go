package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/operator"
	"madoguchi/app/resident"
)

// counter sets up a CS operator and a reception operator with the fixture residents.
func counter(t *testing.T) (*fixture, *app.Session, *app.Session) {
	t.Helper()
	return counterWith(t, nil)
}

// counterWith is counter with the configuration adjusted by edit (may be nil).
func counterWith(t *testing.T, edit func(*app.Config)) (*fixture, *app.Session, *app.Session) {
	t.Helper()
	f := newFixtureWith(t, edit)
	ctx := context.Background()
	f.addOperator(t, "cs1", "f-cs", operator.CS)
	f.addOperator(t, "rc1", "f-rc", operator.Reception)
	cs := f.loginFinger(t, "cs1", "f-cs")
	rc := f.loginFinger(t, "rc1", "f-rc")
	n, err := cs.ImportResidentFixtures(ctx)
	if err != nil || n != 8 {
		t.Fatalf("fixtures: %d, %v", n, err)
	}
	return f, cs, rc
}

func TestResidentSearch(t *testing.T) {
	_, cs, rc := counter(t)
	ctx := context.Background()
	cases := []struct {
		q    resident.Query
		want []string
	}{
		{resident.Query{NameKana: "タカハシ"}, []string{"90000000011"}},
		{resident.Query{NameKana: "ヨシノジロウ"}, []string{"90000000033"}},        // spaces ignored
		{resident.Query{Name: "𠮷野"}, []string{"90000000033"}},                // outside the BMP
		{resident.Query{Name: "佐藤"}, []string{"90000000044", "90000000022"}}, // 通称 and 旧氏
		{resident.Query{BirthDate: "1985-03-15"}, []string{"90000000088", "90000000011"}},
		{resident.Query{BirthDate: "2004-02-29"}, []string{"90000000066"}},
		{resident.Query{RecordCode: "90000000055"}, []string{"90000000055"}},
		{resident.Query{NameKana: "サトウ"}, []string{"90000000044"}}, // alias kana
		{resident.Query{Name: "%"}, nil},                           // LIKE wildcard is literal
	}
	for _, c := range cases {
		got, err := cs.SearchResidents(ctx, c.q)
		if err != nil {
			t.Fatalf("%+v: %v", c.q, err)
		}
		var codes []string
		for _, r := range got {
			codes = append(codes, r.RecordCode)
		}
		if strings.Join(codes, ",") != strings.Join(c.want, ",") {
			t.Errorf("%+v = %v, want %v", c.q, codes, c.want)
		}
	}
	if _, err := cs.SearchResidents(ctx, resident.Query{}); !errors.Is(err, apperr.InvalidInput) {
		t.Fatalf("empty query = %v", err)
	}
	// Reception may not search the register: CS and reception are separate (TS Art. 3(4)).
	if _, err := rc.SearchResidents(ctx, resident.Query{NameKana: "タ"}); !errors.Is(err, apperr.PermissionDenied) {
		t.Fatalf("reception search = %v", err)
	}
}

func TestResidentFileExportImport(t *testing.T) {
	f, cs, rc := counter(t)
	ctx := context.Background()
	data, err := cs.ExportResidentFile(ctx, "90000000022")
	if err != nil {
		t.Fatal(err)
	}
	// CS may not import, reception may not export (TS Art. 3(4)).
	if _, err := cs.ImportResidentFile(ctx, data); !errors.Is(err, apperr.PermissionDenied) {
		t.Fatalf("cs import = %v", err)
	}
	if _, err := rc.ExportResidentFile(ctx, "90000000022"); !errors.Is(err, apperr.PermissionDenied) {
		t.Fatalf("reception export = %v", err)
	}
	got, err := rc.ImportResidentFile(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Resident.Name != "山﨑 花子" || got.Resident.FormerSurname != "佐藤" || got.ExportedBy != "cs1" {
		t.Fatalf("imported %+v", got.Resident)
	}
	// Reuse.
	if _, err := rc.ImportResidentFile(ctx, data); !errors.Is(err, apperr.FileUsed) {
		t.Fatalf("reuse = %v", err)
	}
	if r := f.lastAudit(t); r.Action != "resident.import_file" || r.Result != audit.ResultRefused || r.Detail["error_kind"] != "file used" {
		t.Fatalf("audit = %+v", r)
	}
}

func TestResidentFileRefusals(t *testing.T) {
	ctx := context.Background()
	tamper := func(data []byte, from, to string) []byte {
		var env map[string]json.RawMessage
		json.Unmarshal(data, &env)
		p := bytes.Replace(env["payload"], []byte(from), []byte(to), 1)
		env["payload"] = p
		out, _ := json.Marshal(env)
		return out
	}
	cases := []struct {
		name   string
		mangle func(f *fixture, data []byte) []byte
		want   apperr.Kind
	}{
		{"address edited", func(_ *fixture, d []byte) []byte { return tamper(d, "見本町一丁目", "見本町九丁目") }, apperr.FileTampered},
		{"birth date edited", func(_ *fixture, d []byte) []byte { return tamper(d, "1985-03-15", "1985-03-16") }, apperr.FileTampered},
		{"expiry extended", func(_ *fixture, d []byte) []byte {
			return tamper(d, `"expires_at":"2026-04-01T`, `"expires_at":"2027-04-01T`)
		}, apperr.FileTampered},
		{"mac edited", func(_ *fixture, d []byte) []byte { return bytes.Replace(d, []byte(`"mac":"`), []byte(`"mac":"00`), 1) }, apperr.FileTampered},
		{"not json", func(_ *fixture, d []byte) []byte { return []byte("氏名,住所\n") }, apperr.FileTampered},
		{"expired", func(f *fixture, d []byte) []byte { f.clock.Advance(6 * time.Minute); return d }, apperr.FileExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, cs, rc := counter(t)
			data, err := cs.ExportResidentFile(ctx, "90000000011")
			if err != nil {
				t.Fatal(err)
			}
			bad := c.mangle(f, data)
			if bytes.Equal(bad, data) && c.want != apperr.FileExpired {
				t.Fatal("mangle did not change the file")
			}
			if _, err := rc.ImportResidentFile(ctx, bad); !errors.Is(err, c.want) {
				t.Fatalf("import = %v, want %v", err, c.want)
			}
			if r := f.lastAudit(t); r.Action != "resident.import_file" || r.Result != audit.ResultRefused || r.Detail["error_kind"] != c.want.String() {
				t.Fatalf("audit = %+v", r)
			}
			var used int
			f.t.DB().QueryRow(`SELECT count(*) FROM resident_files WHERE used_at IS NOT NULL`).Scan(&used)
			if used != 0 {
				t.Fatal("refused file marked used")
			}
			if c.want == apperr.FileTampered {
				// The genuine file is still importable once.
				if _, err := rc.ImportResidentFile(ctx, data); err != nil {
					t.Fatalf("genuine file after tampered attempt: %v", err)
				}
			}
		})
	}
}

func TestResidentFileNotForDeceased(t *testing.T) {
	_, cs, _ := counter(t)
	if _, err := cs.ExportResidentFile(context.Background(), "90000000077"); !errors.Is(err, apperr.ResidentNotEligible) {
		t.Fatalf("deceased export = %v", err)
	}
}

func TestResidentChangesOutbox(t *testing.T) {
	f, cs, _ := counter(t)
	ctx := context.Background()
	changes := []resident.Change{
		{RecordCode: "90000000011", Kind: resident.MoveOut, Effective: "2026-04-01"},
		{RecordCode: "90000000022", Kind: resident.NameChange, Effective: "2026-04-01", NewName: "佐藤 花子", NewKana: "サトウ ハナコ"},
		{RecordCode: "90000000088", Kind: resident.Death, Effective: "2026-03-31"},
		{RecordCode: "90000000033", Kind: resident.Emigration, Effective: "2026-04-01"},
	}
	for _, c := range changes {
		if err := cs.RecordResidentChange(ctx, c); err != nil {
			t.Fatalf("%s: %v", c.Kind, err)
		}
	}
	// Refusals change nothing.
	for _, c := range []struct {
		ch   resident.Change
		want apperr.Kind
	}{
		{resident.Change{RecordCode: "90000000088", Kind: resident.MoveIn, Effective: "2026-04-02", NewAddress: "x"}, apperr.ResidentNotEligible},
		{resident.Change{RecordCode: "90000000044", Kind: resident.NameChange, Effective: "2026-04-02"}, apperr.InvalidInput},
		{resident.Change{RecordCode: "90000000044", Kind: "marriage", Effective: "2026-04-02"}, apperr.InvalidInput},
		{resident.Change{RecordCode: "99999999999", Kind: resident.Death, Effective: "2026-04-02"}, apperr.NotFound},
	} {
		if err := cs.RecordResidentChange(ctx, c.ch); !errors.Is(err, c.want) {
			t.Fatalf("%+v = %v, want %v", c.ch, err, c.want)
		}
	}
	pending, err := cs.PendingChanges(ctx)
	if err != nil || len(pending) != 4 || pending[2].Kind != resident.Death {
		t.Fatalf("pending = %+v, %v", pending, err)
	}
	got, _ := cs.SearchResidents(ctx, resident.Query{RecordCode: "90000000033"})
	if got[0].Status != resident.StatusAbroad || got[0].Address != "" || got[0].FuhyoAddress == "" {
		t.Fatalf("emigrated = %+v", got[0])
	}
	got, _ = cs.SearchResidents(ctx, resident.Query{NameKana: "サトウハナコ"})
	if len(got) != 1 || got[0].Name != "佐藤 花子" {
		t.Fatalf("renamed = %+v", got)
	}
	_ = f
}
