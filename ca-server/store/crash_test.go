package store

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"madoguchi/internal/testenv"
)

// The crash test re-executes the test binary as a child that runs the
// issuance write sequence in a loop; the parent kills it with SIGKILL at
// random moments and checks the invariants on every reopen.
const (
	crashChildEnv = "MADOGUCHI_STORE_CRASH_CHILD"
	crashDBEnv    = "MADOGUCHI_STORE_CRASH_DB"
	crashLogEnv   = "MADOGUCHI_STORE_CRASH_LOG"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) == "1" {
		crashChild()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// openDatabase opens the store database names: a PostgreSQL URL
// (IsPostgresURL) or else the path of a SQLite file.
func openDatabase(ctx context.Context, database string) (Writer, error) {
	if IsPostgresURL(database) {
		return OpenPostgres(ctx, database)
	}
	return OpenSQLite(ctx, database)
}

// crashChild is the killed process. Before "signing" a certificate it
// appends "signed <serial>" to the side log, and before confirming it appends
// "confirm <id>": what an HSM and a card would have observed.
func crashChild() {
	ctx := context.Background()
	s, err := openDatabase(ctx, os.Getenv(crashDBEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	log, err := os.OpenFile(os.Getenv(crashLogEnv), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		os.Exit(3)
	}
	note := func(format string, a ...any) {
		fmt.Fprintf(log, format+" .\n", a...)
		log.Sync()
	}
	fmt.Println("ready")
	now := time.Now()
	for i := 0; ; i++ {
		now = now.Add(time.Second)
		person := sum(fmt.Sprintf("person-%d", rand.IntN(4)))
		typ := CertSign
		if rand.IntN(2) == 0 {
			typ = CertAuth
		}
		is, err := begin(nopTB{}, s, "t1", fmt.Sprintf("req-%d-%d", os.Getpid(), i), person, typ, rand.IntN(2) == 0, now)
		if err != nil {
			continue // duplicate or pending person: refused, no certificate signed
		}
		note("signed %s", is.Serial)
		der := []byte("der-" + is.Serial)
		if _, err := s.MarkPrepared(ctx, is.ID, der, []byte("script"), []byte("chan"), now); err != nil {
			fmt.Fprintln(os.Stderr, "prepare:", err)
			os.Exit(4)
		}
		if rand.IntN(4) == 0 {
			if _, err := s.AbortIssuance(ctx, is.ID, "abort", now); err != nil {
				os.Exit(5)
			}
			continue
		}
		note("confirm %s", is.ID)
		if _, err := s.ConfirmIssuance(ctx, is.ID, "confirm-"+is.ID, sum("responses"), now); err != nil {
			// a renewal may lose the race only against itself; anything else is a bug
			fmt.Fprintln(os.Stderr, "confirm:", err)
			os.Exit(6)
		}
	}
}

// nopTB lets the child reuse the test helpers; they only call Fatal on
// errors that cannot happen with valid input.
type nopTB struct{ testing.TB }

func (nopTB) Helper()           {}
func (nopTB) Fatal(args ...any) { fmt.Fprintln(os.Stderr, args...); os.Exit(7) }

func TestCrashSafetyUnderSIGKILL(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "ca.db")
	logPath := filepath.Join(dir, "side.log")
	ctx := context.Background()
	s, err := OpenSQLite(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	enrol(t, s, "t1")
	s.Close()
	crashRounds(t, dbPath, logPath, 1, func(round int) {
		s, err := OpenSQLite(ctx, dbPath)
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		defer s.Close()
		checkSQLiteFile(t, s, round)
		checkCrashInvariants(t, &s.sqlStore, logPath, round)
	})
}

// TestCrashSafetyUnderSIGKILLPostgres is the crash test on PostgreSQL, with
// two writer processes at once (the scaled-out CA): both are killed at the
// same random moment, mid-transaction or not.
func TestCrashSafetyUnderSIGKILLPostgres(t *testing.T) {
	pg := testenv.Postgres(t)
	logPath := filepath.Join(t.TempDir(), "side.log")
	ctx := context.Background()
	s, err := OpenPostgres(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	enrol(t, s, "t1")
	s.Close()
	crashRounds(t, pg.DSN, logPath, 2, func(round int) {
		s, err := OpenPostgres(ctx, pg.DSN)
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		defer s.Close()
		checkCrashInvariants(t, &s.sqlStore, logPath, round)
	})
}

// crashRounds starts children writer processes on database, kills them all
// with SIGKILL at a random moment, and calls check, a number of rounds.
func crashRounds(t *testing.T, database, logPath string, children int, check func(round int)) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rounds := 20
	if testing.Short() {
		rounds = 4
	}
	for round := 0; round < rounds; round++ {
		var cmds []*exec.Cmd
		var stderrs []*strings.Builder
		for c := 0; c < children; c++ {
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), crashChildEnv+"=1", crashDBEnv+"="+database, crashLogEnv+"="+logPath)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// kill at a random moment once the child is writing
			if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("round %d: child did not start: %q %s", round, line, stderr.String())
			}
			cmds, stderrs = append(cmds, cmd), append(stderrs, &stderr)
		}
		time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
		for _, cmd := range cmds {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
		for i, cmd := range cmds {
			err := cmd.Wait()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
				t.Fatalf("round %d: child ended on its own (%v): %s", round, err, stderrs[i].String())
			}
		}
		check(round)
	}
}

// checkSQLiteFile checks the file's page structure and foreign keys.
func checkSQLiteFile(t *testing.T, s *SQLite, round int) {
	t.Helper()
	ctx := context.Background()
	var ok string
	if err := s.r.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("round %d: integrity_check %q %v", round, ok, err)
	}
	rows, err := s.r.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		t.Fatal(err)
	}
	if rows.Next() {
		t.Fatalf("round %d: foreign key violations", round)
	}
	rows.Close()
}

func checkCrashInvariants(t *testing.T, s *sqlStore, logPath string, round int) {
	t.Helper()
	ctx := context.Background()
	signed, confirmed := readSideLog(t, logPath)
	// every certificate that may have been signed has a record
	for serial := range signed {
		var n int
		if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM issuances WHERE serial = ?", serial).Scan(&n); err != nil || n != 1 {
			t.Fatalf("round %d: signed serial %s has %d records (%v)", round, serial, n, err)
		}
	}
	// every delivered mark follows a confirmation
	all, err := s.auditFreeIssuances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	valid := map[string]int{}
	for _, is := range all {
		switch is.State {
		case StateDelivered, StateHeld:
			if !confirmed[is.ID] || is.ConfirmSHA256 == nil {
				t.Fatalf("round %d: %s delivered without a confirmation", round, is.ID)
			}
			valid[fmt.Sprintf("%x/%s", is.PersonHash, is.CertType)]++
		case StatePrepared:
			if is.DER == nil {
				t.Fatalf("round %d: prepared without DER", round)
			}
		}
	}
	for k, n := range valid {
		if n > 1 {
			t.Fatalf("round %d: %d valid certificates for %s", round, n, k)
		}
	}
	// the sweeper's recovery: interrupted issuances end revoked with reason 0
	far := time.Now().Add(24 * 365 * time.Hour)
	od, err := s.OverdueIssuances(ctx, far, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, is := range od {
		if _, err := s.AbortIssuance(ctx, is.ID, "", far); err != nil {
			t.Fatalf("round %d: recover %s: %v", round, is.ID, err)
		}
	}
	t.Logf("round %d: %d issuances, %d signed, %d recovered", round, len(all), len(signed), len(od))
}

func (s *sqlStore) auditFreeIssuances(ctx context.Context) ([]Issuance, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+issuanceCols+` FROM issuances`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Issuance
	for rows.Next() {
		is, err := scanIssuance(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, is)
	}
	return out, rows.Err()
}

func readSideLog(t *testing.T, path string) (signed, confirmed map[string]bool) {
	signed, confirmed = map[string]bool{}, map[string]bool{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[2] != "." {
			continue // a line cut by the kill
		}
		kind, v := f[0], f[1]
		switch kind {
		case "signed":
			signed[v] = true
		case "confirm":
			confirmed[v] = true
		}
	}
	return
}
