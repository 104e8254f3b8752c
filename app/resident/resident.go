// Package resident is the communication-server (CS) side of the terminal: the resident register
// as the CS application sees it, the resident-record file it exports for one applicant and the
// reception application imports (TS Art. 3(1)(2)), the characters outside the system's character
// set (外字, R02 II-2-5(4)(5)), and the outbox of resident changes that the CA turns into
// change-driven revocation (R02 II-3-1(2)).
//
// The register is behind the Register interface; the embedded default keeps it in the terminal
// database and loads it from CSV (fixtures/residents.csv holds fictional people for tests and
// demonstrations).
//
// Concurrency: functions taking a *sql.Tx run inside the caller's transaction; SQLRegister is
// safe for concurrent use.
package resident

import (
	"context"
	"database/sql"
	_ "embed"
	"encoding/csv"
	"errors"
	"io"
	"regexp"
	"strings"
	"time"

	"madoguchi/app/apperr"
)

// Status of a resident record.
type Status string

// Record statuses.
const (
	StatusResident Status = "resident"  // on the register
	StatusAbroad   Status = "abroad"    // 国外転出者: certificates rest on the 戸籍の附票 (TS Art. 3(1))
	StatusMovedOut Status = "moved_out" // moved to another municipality
	StatusDeceased Status = "deceased"
)

// Resident is one person's resident-record items as the certification service needs them
// (住民基本台帳法 Art. 7 items 1, 2, 3, 7; TS Art. 3(1)).
type Resident struct {
	RecordCode      string `json:"record_code"` // 住民票コード, 11 digits
	Name            string `json:"name"`
	NameKana        string `json:"name_kana"`
	FormerSurname   string `json:"former_surname,omitempty"` // 旧氏
	AliasName       string `json:"alias_name,omitempty"`     // 通称 (foreign resident)
	AliasKana       string `json:"alias_kana,omitempty"`
	BirthDate       string `json:"birth_date"` // YYYY-MM-DD
	Sex             string `json:"sex"`        // "M" or "F"
	Address         string `json:"address,omitempty"`
	Status          Status `json:"status"`
	FuhyoAddress    string `json:"fuhyo_address,omitempty"` // 戸籍の附票: last domestic address (abroad)
	Honseki         string `json:"honseki,omitempty"`       // 本籍 (abroad)
	ForeignResident bool   `json:"foreign_resident,omitempty"`
}

// Birth returns the birth date as a time (UTC midnight).
func (r Resident) Birth() (time.Time, error) {
	t, err := time.Parse("2006-01-02", r.BirthDate)
	if err != nil {
		return t, apperr.Wrap(apperr.InvalidInput, err, "resident: bad birth date")
	}
	return t, nil
}

// Query selects residents; empty fields are ignored, at least one must be set.
type Query struct {
	NameKana   string // prefix match, spaces ignored
	Name       string // substring match
	BirthDate  string // YYYY-MM-DD
	RecordCode string // exact
	Limit      int    // default 50
}

// Register is the resident register the CS application searches.
type Register interface {
	Search(ctx context.Context, q Query) ([]Resident, error)
	Get(ctx context.Context, recordCode string) (Resident, error)
}

// Querier reads.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// SQLRegister is the embedded default Register in the terminal database.
type SQLRegister struct{ Q Querier }

var _ Register = SQLRegister{}

const cols = `record_code, name, name_kana, former_surname, alias_name, alias_kana, birth_date, sex, address, status, fuhyo_address, honseki, foreign_resident`

func scan(row interface{ Scan(...any) error }) (Resident, error) {
	var r Resident
	err := row.Scan(&r.RecordCode, &r.Name, &r.NameKana, &r.FormerSurname, &r.AliasName, &r.AliasKana, &r.BirthDate, &r.Sex,
		&r.Address, &r.Status, &r.FuhyoAddress, &r.Honseki, &r.ForeignResident)
	return r, err
}

var (
	codePattern = regexp.MustCompile(`^[0-9]{11}$`)
	datePattern = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
)

// Search implements Register.
func (s SQLRegister) Search(ctx context.Context, q Query) ([]Resident, error) {
	where, args := []string{}, []any{}
	if q.RecordCode != "" {
		where, args = append(where, "record_code = ?"), append(args, q.RecordCode)
	}
	if k := strings.ReplaceAll(strings.ReplaceAll(q.NameKana, " ", ""), "　", ""); k != "" {
		where = append(where, "(replace(replace(name_kana,' ',''),'　','') LIKE ? ESCAPE '\\' OR replace(replace(alias_kana,' ',''),'　','') LIKE ? ESCAPE '\\')")
		args = append(args, likeEscape(k)+"%", likeEscape(k)+"%")
	}
	if q.Name != "" {
		where = append(where, "(name LIKE ? ESCAPE '\\' OR alias_name LIKE ? ESCAPE '\\' OR former_surname LIKE ? ESCAPE '\\')")
		p := "%" + likeEscape(q.Name) + "%"
		args = append(args, p, p, p)
	}
	if q.BirthDate != "" {
		if !datePattern.MatchString(q.BirthDate) {
			return nil, apperr.New(apperr.InvalidInput, "resident: birth date must be YYYY-MM-DD")
		}
		where, args = append(where, "birth_date = ?"), append(args, q.BirthDate)
	}
	if len(where) == 0 {
		return nil, apperr.New(apperr.InvalidInput, "resident: search needs at least one criterion")
	}
	limit := q.Limit
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	args = append(args, limit)
	rows, err := s.Q.QueryContext(ctx, `SELECT `+cols+` FROM residents WHERE `+strings.Join(where, " AND ")+` ORDER BY name_kana, record_code LIMIT ?`, args...)
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "resident: search")
	}
	defer rows.Close()
	var out []Resident
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, apperr.Wrap(apperr.Internal, err, "resident: search")
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Get implements Register.
func (s SQLRegister) Get(ctx context.Context, code string) (Resident, error) {
	r, err := scan(s.Q.QueryRowContext(ctx, `SELECT `+cols+` FROM residents WHERE record_code = ?`, code))
	if errors.Is(err, sql.ErrNoRows) {
		return r, apperr.New(apperr.NotFound, "resident: no resident with record code %q", code)
	}
	if err != nil {
		return r, apperr.Wrap(apperr.Internal, err, "resident: get")
	}
	return r, nil
}

// Fixtures is the CSV of fictional residents shipped for tests and demonstrations.
//
//go:embed fixtures/residents.csv
var Fixtures []byte

// Validate checks one record's fields.
func (r Resident) Validate() error {
	switch {
	case !codePattern.MatchString(r.RecordCode):
		return apperr.New(apperr.InvalidInput, "resident: record code %q is not 11 digits", r.RecordCode)
	case strings.TrimSpace(r.Name) == "" || strings.TrimSpace(r.NameKana) == "":
		return apperr.New(apperr.InvalidInput, "resident: %s: name and kana required", r.RecordCode)
	case r.Sex != "M" && r.Sex != "F":
		return apperr.New(apperr.InvalidInput, "resident: %s: sex must be M or F", r.RecordCode)
	}
	if _, err := time.Parse("2006-01-02", r.BirthDate); err != nil {
		return apperr.New(apperr.InvalidInput, "resident: %s: birth date %q is not YYYY-MM-DD", r.RecordCode, r.BirthDate)
	}
	switch r.Status {
	case StatusResident, StatusMovedOut, StatusDeceased:
		if r.Address == "" && r.Status == StatusResident {
			return apperr.New(apperr.InvalidInput, "resident: %s: address required", r.RecordCode)
		}
	case StatusAbroad:
		if r.FuhyoAddress == "" || r.Honseki == "" {
			return apperr.New(apperr.InvalidInput, "resident: %s: a person abroad needs the items of the family-register supplement (koseki no fuhyo)", r.RecordCode)
		}
	default:
		return apperr.New(apperr.InvalidInput, "resident: %s: unknown status %q", r.RecordCode, r.Status)
	}
	return nil
}

// ImportCSV upserts the residents of a CSV with the header of fixtures/residents.csv. The whole
// import fails on the first bad row (the caller's transaction is rolled back).
func ImportCSV(ctx context.Context, tx *sql.Tx, r io.Reader, at time.Time) (int, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return 0, apperr.Wrap(apperr.InvalidInput, err, "resident: read csv header")
	}
	want := strings.Split(strings.ReplaceAll(cols, " ", ""), ",")
	if strings.Join(header, ",") != strings.Join(want, ",") {
		return 0, apperr.New(apperr.InvalidInput, "resident: csv header must be %s", strings.Join(want, ","))
	}
	n := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, apperr.Wrap(apperr.InvalidInput, err, "resident: read csv")
		}
		res := Resident{RecordCode: rec[0], Name: rec[1], NameKana: rec[2], FormerSurname: rec[3], AliasName: rec[4], AliasKana: rec[5],
			BirthDate: rec[6], Sex: rec[7], Address: rec[8], Status: Status(rec[9]), FuhyoAddress: rec[10], Honseki: rec[11], ForeignResident: rec[12] == "1"}
		if err := res.Validate(); err != nil {
			return n, err
		}
		if err := Put(ctx, tx, res, at); err != nil {
			return n, err
		}
		n++
	}
}

// Put inserts or replaces one resident.
func Put(ctx context.Context, tx *sql.Tx, r Resident, at time.Time) error {
	if err := r.Validate(); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO residents(`+cols+`, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(record_code) DO UPDATE SET name=excluded.name, name_kana=excluded.name_kana, former_surname=excluded.former_surname,
		alias_name=excluded.alias_name, alias_kana=excluded.alias_kana, birth_date=excluded.birth_date, sex=excluded.sex,
		address=excluded.address, status=excluded.status, fuhyo_address=excluded.fuhyo_address, honseki=excluded.honseki,
		foreign_resident=excluded.foreign_resident, updated_at=excluded.updated_at`,
		r.RecordCode, r.Name, r.NameKana, r.FormerSurname, r.AliasName, r.AliasKana, r.BirthDate, r.Sex, r.Address, string(r.Status),
		r.FuhyoAddress, r.Honseki, r.ForeignResident, at.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return apperr.Wrap(apperr.Internal, err, "resident: put")
	}
	return nil
}
