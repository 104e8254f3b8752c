package resident_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/csv"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/app/resident"
	"madoguchi/app/store"
)

// errRollback ends a fuzz transaction: every input runs against the same database state.
var errRollback = errors.New("rollback")

// fuzzDB opens a terminal database (SQLite, a temp dir of the fuzz process) with the
// fictional residents loaded. Opened once per fuzz process: each input then runs in a
// transaction that is rolled back.
func fuzzDB(f *testing.F) *store.DB {
	db, err := store.Open(context.Background(), filepath.Join(f.TempDir(), "terminal.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	if err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := resident.ImportCSV(context.Background(), tx, bytes.NewReader(resident.Fixtures), time.Now())
		return err
	}); err != nil {
		f.Fatal(err)
	}
	return db
}

func usedFiles(t *testing.T, tx *sql.Tx) int {
	t.Helper()
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM resident_files WHERE used_at IS NOT NULL`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// FuzzImportFile: the reception's import of a resident-record file (TS Art. 3(1)), bytes
// the terminal reads from outside. Only the file this terminal exported is accepted (any
// other content fails the HMAC), and it imports to exactly the exported record; a refused
// file is a FileTampered/FileExpired/FileUsed refusal that marks nothing used; an accepted
// file cannot be imported a second time.
func FuzzImportFile(f *testing.F) {
	db := fuzzDB(f)
	ctx := context.Background()
	now := time.Now()
	var genuine []byte
	var exported resident.File
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		genuine, exported, err = resident.ExportFile(ctx, tx, nil, rand.Reader, "90000000011", "cs-1", now, time.Hour)
		return err
	}); err != nil {
		f.Fatal(err)
	}
	f.Add(genuine)
	f.Add(bytes.ReplaceAll(genuine, []byte(`,"`), []byte(",\n  \""))) // re-indented: still the same file
	f.Add(bytes.Replace(genuine, []byte("90000000011"), []byte("90000000022"), 1))
	f.Add(bytes.Replace(genuine, []byte(`"mac":"`), []byte(`"mac":"00`), 1))
	f.Add([]byte(`{"format":"madoguchi-resident-file/1","payload":{},"mac":""}`))
	f.Add([]byte(`{"format":"madoguchi-resident-file/1","payload":null,"mac":"","x":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = db.Tx(ctx, func(tx *sql.Tx) error {
			got, err := resident.ImportFile(ctx, tx, nil, data, "rec-1", now)
			if err != nil {
				if !errors.Is(err, apperr.FileTampered) && !errors.Is(err, apperr.FileExpired) && !errors.Is(err, apperr.FileUsed) {
					t.Fatalf("refusal of an unexpected kind: %v", err)
				}
				if n := usedFiles(t, tx); n != 0 {
					t.Fatalf("a refused file marked %d files used", n)
				}
				return errRollback
			}
			if got.ID != exported.ID || got.Resident != exported.Resident || !got.ExpiresAt.Equal(exported.ExpiresAt) || got.ExportedBy != exported.ExportedBy {
				t.Fatalf("accepted a file that is not the exported one: %+v", got)
			}
			if n := usedFiles(t, tx); n != 1 {
				t.Fatalf("accepted file marked %d files used", n)
			}
			if _, err := resident.ImportFile(ctx, tx, nil, data, "rec-1", now); !errors.Is(err, apperr.FileUsed) {
				t.Fatalf("second import: %v", err)
			}
			return errRollback
		})
	})
}

// FuzzImportCSV: the resident register CSV import. A refused CSV is an InvalidInput
// refusal; an accepted one stored every row, and reading each resident back gives the
// row's fields (the last row of a record code wins).
func FuzzImportCSV(f *testing.F) {
	db := fuzzDB(f)
	ctx := context.Background()
	f.Add(resident.Fixtures)
	lines := bytes.SplitAfter(resident.Fixtures, []byte("\n"))
	f.Add(bytes.Join(lines[:2], nil))
	f.Add(append(bytes.Join(lines[:2], nil), lines[1]...))
	f.Add(bytes.Replace(bytes.Join(lines[:2], nil), []byte(",1985-03-15,"), []byte(",1985-02-30,"), 1))
	f.Add([]byte(strings.Replace(string(bytes.Join(lines[:2], nil)), ",resident,", ",\"res\"\"ident\",", 1)))
	f.Add(lines[0])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = db.Tx(ctx, func(tx *sql.Tx) error {
			n, err := resident.ImportCSV(ctx, tx, bytes.NewReader(data), time.Now())
			if err != nil {
				if !errors.Is(err, apperr.InvalidInput) {
					t.Fatalf("refusal of an unexpected kind: %v", err)
				}
				return errRollback
			}
			recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
			if err != nil || len(recs)-1 != n {
				t.Fatalf("accepted %d rows; csv reader: %d records, %v", n, len(recs), err)
			}
			last := map[string][]string{}
			for _, r := range recs[1:] {
				last[r[0]] = r
			}
			for code, r := range last {
				got, err := resident.SQLRegister{Q: tx}.Get(ctx, code)
				if err != nil {
					t.Fatalf("get %s: %v", code, err)
				}
				want := resident.Resident{RecordCode: r[0], Name: r[1], NameKana: r[2], FormerSurname: r[3], AliasName: r[4], AliasKana: r[5],
					BirthDate: r[6], Sex: r[7], Address: r[8], Status: resident.Status(r[9]), FuhyoAddress: r[10], Honseki: r[11], ForeignResident: r[12] == "1"}
				if got != want {
					t.Fatalf("stored %+v, row says %+v", got, want)
				}
			}
			return errRollback
		})
	})
}
