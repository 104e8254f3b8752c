package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"madoguchi/internal/testenv"
)

// forEachStore runs f once on a fresh SQLite file and once on a fresh
// PostgreSQL database (a real server from testenv.Postgres), so every
// behavioural test holds for both implementations. f gets the shared
// sqlStore, whose w pool also takes raw SQL in either dialect's common
// subset ("?" placeholders).
func forEachStore(t *testing.T, f func(t *testing.T, s *sqlStore)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		s, _ := openTest(t)
		f(t, &s.sqlStore)
	})
	t.Run("postgres", func(t *testing.T) {
		s := openTestPostgres(t)
		f(t, &s.sqlStore)
	})
}

// openTestPostgres starts a PostgreSQL server for the test and opens a
// migrated store on its database.
func openTestPostgres(t testing.TB) *Postgres {
	t.Helper()
	pg := testenv.Postgres(t)
	s, err := OpenPostgres(context.Background(), pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPostgresMigratesOnceAndReopens(t *testing.T) {
	ctx := context.Background()
	pg := testenv.Postgres(t)
	s, err := OpenPostgres(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := migrationsIn(postgresMigrationFiles, "migrations/postgres")
	if err != nil {
		t.Fatal(err)
	}
	sqliteMs, _ := migrations()
	if len(ms) != len(sqliteMs) {
		t.Fatalf("%d PostgreSQL migrations, %d SQLite ones: the schemas must match", len(ms), len(sqliteMs))
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != len(ms) {
		t.Fatalf("schema version %d, %v; want %d", v, err, len(ms))
	}
	enrol(t, s, "t1")
	s.Close()
	s2, err := OpenPostgres(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Terminal(ctx, "t1"); err != nil {
		t.Fatalf("data lost on reopen: %v", err)
	}
	if v, err := s2.SchemaVersion(ctx); err != nil || v != len(ms) {
		t.Fatalf("schema version after reopen %d, %v; want %d", v, err, len(ms))
	}
}

// TestConcurrentIssuanceOnePerPerson: many goroutines, through two store
// handles on one database (two ca-server processes), begin an issuance of
// the same type for the same person at once. Exactly one wins; every other
// gets ErrPendingPerson, or ErrDuplicatePerson once a valid one exists —
// never a serialisation error, never a second certificate (CPS §4.3.1.1).
func TestConcurrentIssuanceOnePerPerson(t *testing.T) {
	ctx := context.Background()
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ca.db")
		a, err := OpenSQLite(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		b, err := OpenSQLite(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		concurrentIssuance(t, a, b)
	})
	t.Run("postgres", func(t *testing.T) {
		pg := testenv.Postgres(t)
		a, err := OpenPostgres(ctx, pg.DSN)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		b, err := OpenPostgres(ctx, pg.DSN)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		concurrentIssuance(t, a, b)
	})
}

func concurrentIssuance(t *testing.T, a, b Writer) {
	const n = 16
	ctx := context.Background()
	enrol(t, a, "t1")
	person := sum("contested person")
	// prepared makes n issuances ready to begin: channel and key recorded.
	prepared := func(round string, supersedes bool) []Issuance {
		var out []Issuance
		for i := 0; i < n; i++ {
			ch := Channel{ID: fmt.Sprintf("ch-%s-%d", round, i), TerminalID: "t1", HostChallenge: []byte("12345678"), CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
			if err := a.CreateChannel(ctx, ch); err != nil {
				t.Fatal(err)
			}
			key := sum(fmt.Sprintf("key-%s-%d", round, i))
			if err := a.RecordKeyFingerprint(ctx, key, t0); err != nil {
				t.Fatal(err)
			}
			req := fmt.Sprintf("req-%s-%d", round, i)
			out = append(out, Issuance{ID: fmt.Sprintf("is-%s-%d", round, i), TerminalID: "t1", RequestID: req, RequestSHA256: sum(req),
				OperatorID: "op1", ChannelID: ch.ID, CardSerial: cardFor(person), PersonHash: person, CertType: CertSign, Supersedes: supersedes,
				Serial: fmt.Sprintf("%s%02x", map[string]string{"first": "a", "dup": "b", "renew": "c"}[round], i), KeySHA256: key,
				Deadline: t0.Add(10 * time.Minute)})
		}
		return out
	}
	// race begins all of them at once and returns the winners and the
	// errors of the others.
	race := func(iss []Issuance) (won []Issuance, errs []error) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		start := make(chan struct{})
		for i, is := range iss {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := s.BeginIssuance(ctx, is, t0)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					won = append(won, is)
				} else {
					errs = append(errs, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		return won, errs
	}
	expect := func(what string, won []Issuance, errs []error, winners int, want error) {
		t.Helper()
		if len(won) != winners {
			t.Fatalf("%s: %d winners, want %d (errors %v)", what, len(won), winners, errs)
		}
		for _, err := range errs {
			if !errors.Is(err, want) {
				t.Fatalf("%s: loser got %v, want %v", what, err, want)
			}
		}
	}

	// no certificate yet: one pending wins, the rest see it pending
	won, errs := race(prepared("first", false))
	expect("first issuance", won, errs, 1, ErrPendingPerson)
	first := deliver(t, a, won[0], t0)

	// a valid certificate exists: every non-renewal is refused
	won, errs = race(prepared("dup", false))
	expect("second issuance", won, errs, 0, ErrDuplicatePerson)

	// renewals: one pending wins, its delivery supersedes the first
	won, errs = race(prepared("renew", true))
	expect("renewal", won, errs, 1, ErrPendingPerson)
	renewed := deliver(t, b, won[0], t0.Add(time.Minute))
	if got, err := a.ValidIssuance(ctx, person, CertSign); err != nil || got.ID != renewed.ID {
		t.Fatalf("valid certificate %q, %v; want the renewal %q", got.ID, err, renewed.ID)
	}
	if old, err := b.Issuance(ctx, first.ID); err != nil || old.State != StateRevoked || old.RevocationReason != ReasonSuperseded {
		t.Fatalf("first certificate %s reason %d, %v; want revoked, superseded", old.State, old.RevocationReason, err)
	}
}

// TestPostgresHasTheMethodsOfSQLite: the two implementations are
// interchangeable wherever a consumer names one of them.
func TestPostgresHasTheMethodsOfSQLite(t *testing.T) {
	names := func(typ reflect.Type) []string {
		var out []string
		for i := 0; i < typ.NumMethod(); i++ {
			out = append(out, typ.Method(i).Name+" "+typ.Method(i).Type.String()[len("func("+typ.String()):])
		}
		return out
	}
	lite, pg := names(reflect.TypeFor[*SQLite]()), names(reflect.TypeFor[*Postgres]())
	if !slices.Equal(lite, pg) {
		t.Fatalf("method sets differ:\nSQLite   %q\nPostgres %q", lite, pg)
	}
	if len(lite) < 40 {
		t.Fatalf("only %d methods: %q", len(lite), lite)
	}
}

// TestPostgresConcurrentOpenMigratesOnce: ca-server processes starting
// together on an empty database all open it; the advisory lock makes one
// apply the migrations while the others wait and find the schema current.
func TestPostgresConcurrentOpenMigratesOnce(t *testing.T) {
	ctx := context.Background()
	pg := testenv.Postgres(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	stores := make([]*Postgres, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = OpenPostgres(ctx, pg.DSN)
		}()
	}
	wg.Wait()
	ms, _ := migrationsIn(postgresMigrationFiles, "migrations/postgres")
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("open %d: %v", i, errs[i])
		}
		defer stores[i].Close()
		if v, err := stores[i].SchemaVersion(ctx); err != nil || v != len(ms) {
			t.Fatalf("open %d: schema version %d, %v; want %d", i, v, err, len(ms))
		}
	}
	enrol(t, stores[0], "t1")
	if _, err := stores[n-1].Terminal(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
}

// TestPostgresRefusesTruncate: TRUNCATE fires no row trigger, so the
// PostgreSQL schema refuses it on the tables whose rows are never deleted
// (CPS §4.9: revocation is never undone; TS Arts. 12–16: status requests
// are append-only). SQLite has no TRUNCATE.
func TestPostgresRefusesTruncate(t *testing.T) {
	ctx := context.Background()
	s := openTestPostgres(t)
	enrol(t, s, "t1")
	delivered(t, s, "t1", sum("p1"), CertSign)
	for _, table := range []string{"issuances", "status_requests"} {
		if _, err := s.w.ExecContext(ctx, "TRUNCATE "+table+" CASCADE"); err == nil {
			t.Fatalf("TRUNCATE %s accepted", table)
		}
	}
	if _, err := s.ValidIssuance(ctx, sum("p1"), CertSign); err != nil {
		t.Fatalf("certificate gone: %v", err)
	}
}
