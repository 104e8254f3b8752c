package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"

	"madoguchi/internal/services"
)

// PG is a running PostgreSQL server with one empty database.
type PG struct {
	DSN      string // pgx URL of the database, e.g. postgres://postgres@127.0.0.1:PORT/madoguchi_test?sslmode=disable
	AdminDSN string // the same server's "postgres" database, for CREATE/DROP DATABASE
	Port     int
	DataDir  string
	LogPath  string

	svc *services.Service
	// how it was started, for Start after Stop
	opts PostgresOptions
	dir  string
	cred *syscall.Credential
	tb   testing.TB // whose cleanup stops a server started again by Start
}

// Stop shuts the server down before the test ends (fast shutdown), for tests of a lost
// database. Cleanup does it otherwise.
func (p *PG) Stop() error { return p.svc.Stop() }

// Start starts a server stopped by Stop again, on the same data directory and port (the
// clients' DSN stays valid), and waits until it accepts connections: a database that comes
// back after an outage. The server is stopped by the cleanup registered when the PG was
// made, not by one registered now: cleanups run last-in first-out, and clients started
// after the PG (a serve under test) must stop while their database still runs.
func (p *PG) Start(t testing.TB) {
	t.Helper()
	if !p.svc.Exited() {
		t.Fatalf("testenv: postgres: Start while the server on port %d still runs", p.Port)
	}
	p.svc, _ = startPostgresOn(p.tb, p.opts, p.dir, p.DataDir, p.cred, p.Port, false)
	p.LogPath = p.svc.LogPath()
}

// stopCurrent is the cleanup of a PG: it stops the server Start started last (the first
// one has its own cleanup; Stop is idempotent).
func (p *PG) stopCurrent() {
	if err := p.svc.Stop(); err != nil && !p.svc.Aborted() {
		p.tb.Errorf("testenv: %v", err)
	}
	if tail := p.svc.LogTail(); p.tb.Failed() && tail != "" {
		p.tb.Logf("testenv: %s log:%s", p.svc.Name(), tail)
	}
}

// PostgresOptions configures PostgresWith; the zero value is the Debian PostgreSQL 15 server.
type PostgresOptions struct {
	BinDir   string // directory with initdb and postgres; default /usr/lib/postgresql/15/bin
	Database string // default "madoguchi_test"
	// Durable keeps fsync on (the default turns it off, -F, for speed), for
	// benchmarks that compare commit costs with a store that syncs.
	Durable bool
}

// Postgres initialises a cluster in a fresh temporary directory, starts it on 127.0.0.1 on a
// free port (trust authentication, superuser "postgres", fsync off), and creates an empty
// database. As root the server runs as the "postgres" system user, because postgres refuses to
// run as root.
func Postgres(t testing.TB) *PG {
	t.Helper()
	return PostgresWith(t, PostgresOptions{})
}

// PostgresWith is Postgres with options.
func PostgresWith(t testing.TB, opts PostgresOptions) *PG {
	t.Helper()
	if opts.BinDir == "" {
		opts.BinDir = "/usr/lib/postgresql/15/bin"
	}
	if opts.Database == "" {
		opts.Database = "madoguchi_test"
	}
	for _, tool := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(opts.BinDir, tool)); err != nil {
			t.Fatalf("testenv: postgres: %v", err)
		}
	}
	cred, err := postgresCredential()
	if err != nil {
		t.Fatalf("%v", err)
	}
	// Not t.TempDir(): its parent is root-only (0700), and the server user must reach the
	// directory. shortTempDir is under /tmp and keeps the socket path short.
	dir := shortTempDir(t, "pg")
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatalf("testenv: postgres: %v", err)
		}
	}
	template, err := pgTemplate(opts.BinDir, cred)
	if err != nil {
		t.Fatalf("%v", err)
	}
	dataDir := filepath.Join(dir, "data")
	if _, err := services.RunTool("cp", "cp", []string{"-a", template, dataDir}, nil, nil); err != nil {
		t.Fatalf("%v", err)
	}

	p := runPG(t, opts, dir, dataDir, cred)
	ctx, cancel := context.WithTimeout(context.Background(), timeout())
	defer cancel()
	conn, err := pgx.Connect(ctx, p.AdminDSN)
	if err != nil {
		t.Fatalf("testenv: postgres: connect: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{opts.Database}.Sanitize()); err != nil {
		t.Fatalf("testenv: postgres: create database %q: %v", opts.Database, err)
	}
	return p
}

// startPostgres starts the server of dataDir on 127.0.0.1 on a free port, sockets in dir, and
// waits until it accepts connections (postmaster.pid says "ready"; a hot standby says so once
// it accepts read-only connections).
func startPostgres(t testing.TB, opts PostgresOptions, dir, dataDir string, cred *syscall.Credential) (*services.Service, int) {
	t.Helper()
	return startPostgresOn(t, opts, dir, dataDir, cred, 0, true)
}

// startPostgresOn is startPostgres on a given port (0: a free one), registering a cleanup
// that stops it when withCleanup.
func startPostgresOn(t testing.TB, opts PostgresOptions, dir, dataDir string, cred *syscall.Credential, fixed int, withCleanup bool) (*services.Service, int) {
	t.Helper()
	// The free port is only probably free until postgres binds it: retry on a lost race.
	for attempt := 1; ; attempt++ {
		port, err := fixed, error(nil)
		if port == 0 {
			port, err = freePort()
		}
		if err != nil {
			t.Fatalf("testenv: postgres: %v", err)
		}
		logPath := filepath.Join(dir, fmt.Sprintf("postgres-%d-%d.log", port, attempt))
		args := []string{"-D", dataDir, "-k", dir, "-p", strconv.Itoa(port), "-h", "127.0.0.1",
			"-c", "max_connections=50", "-c", "shared_buffers=16MB"}
		if !opts.Durable {
			args = append(args, "-F")
		}
		svc, err := services.Start(services.Spec{
			Name:        "postgres",
			Path:        filepath.Join(opts.BinDir, "postgres"),
			Args:        args,
			LogPath:     logPath,
			StopSignal:  syscall.SIGINT,  // fast shutdown: do not wait for clients
			DeathSignal: syscall.SIGQUIT, // immediate shutdown when the test binary dies
			Credential:  cred,
		})
		if err != nil {
			t.Fatalf("%v", err)
		}
		if withCleanup {
			cleanup(t, svc)
		}
		err = svc.WaitReady(timeout(), func() error { return postmasterReady(dataDir) })
		if err == nil {
			return svc, port
		}
		svc.Abort()
		if attempt < 3 && fixed == 0 && strings.Contains(services.FileTail(logPath, 4096), "could not bind") {
			continue
		}
		t.Fatalf("%v", err)
	}
}

// postgresCredential returns the user to run the server as: the "postgres" system user when
// running as root, nil (the current user) otherwise.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("testenv: postgres refuses to run as root and there is no postgres user: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("testenv: postgres user has ids %q/%q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// postmasterReady reports whether postmaster.pid says "ready" (its 8th line, PostgreSQL ≥ 10).
func postmasterReady(dataDir string) error {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 8 || strings.TrimSpace(lines[7]) != "ready" {
		return fmt.Errorf("postmaster.pid status not ready yet")
	}
	return nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// pgTemplateRoot holds clusters made by initdb, one per PostgreSQL build and server user.
const pgTemplateRoot = "/var/tmp/madoguchi-testenv"

// initdbArgs are the initdb options of every test cluster (after -D <dir>).
var initdbArgs = []string{"-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"}

// pgTemplate returns the data directory of a pristine cluster, made by initdb once per machine,
// PostgreSQL build and server user, which each test copies: initdb takes about 2 s on this
// project's machines, a copy about 0.4 s. The template is built in a temporary directory and
// renamed into place complete, so concurrent test binaries never see half of one; it is never
// started or modified.
func pgTemplate(binDir string, cred *syscall.Credential) (string, error) {
	key := sha256.New()
	for _, tool := range []string{"initdb", "postgres"} {
		st, err := os.Stat(filepath.Join(binDir, tool))
		if err != nil {
			return "", fmt.Errorf("testenv: postgres: %w", err)
		}
		fmt.Fprintf(key, "%s %d %d\n", filepath.Join(binDir, tool), st.Size(), st.ModTime().UnixNano())
	}
	fmt.Fprintf(key, "%q uid %d\n", initdbArgs, os.Geteuid())
	if cred != nil {
		fmt.Fprintf(key, "as %d:%d\n", cred.Uid, cred.Gid)
	}
	final := filepath.Join(pgTemplateRoot, "pg-"+hex.EncodeToString(key.Sum(nil))[:16])
	data := filepath.Join(final, "data")
	if _, err := os.Stat(filepath.Join(final, "complete")); err == nil {
		return data, nil
	}

	if err := os.MkdirAll(pgTemplateRoot, 0o755); err != nil {
		return "", fmt.Errorf("testenv: postgres template: %w", err)
	}
	tmp, err := os.MkdirTemp(pgTemplateRoot, "tmp-")
	if err != nil {
		return "", fmt.Errorf("testenv: postgres template: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op after a successful rename
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("testenv: postgres template: %w", err)
	}
	if cred != nil {
		if err := os.Chown(tmp, int(cred.Uid), int(cred.Gid)); err != nil {
			return "", fmt.Errorf("testenv: postgres template: %w", err)
		}
	}
	args := append([]string{"-D", filepath.Join(tmp, "data")}, initdbArgs...)
	if _, err := services.RunTool("initdb", filepath.Join(binDir, "initdb"), args, nil, cred); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, "complete"), nil, 0o644); err != nil {
		return "", fmt.Errorf("testenv: postgres template: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		// Another test binary was faster: use its template.
		if _, statErr := os.Stat(filepath.Join(final, "complete")); statErr == nil {
			return data, nil
		}
		return "", fmt.Errorf("testenv: postgres template: %w", err)
	}
	return data, nil
}

// PGRoles are the two roles of a production-like store (ca-server's
// PostgreSQL store): an owner that owns the database and runs the
// migrations, and a serving role that owns nothing and gets only the
// privileges `ca-server db migrate --serving-role` grants it.
type PGRoles struct {
	OwnerDSN   string // pgx URL of the database as the owner role
	ServingDSN string // pgx URL of the database as the serving role
	Owner      string // role names
	Serving    string
}

// Roles creates the owner role (made owner of the test database, so it
// owns its public schema, PostgreSQL ≥ 15) and the serving role, both
// LOGIN without superuser or CREATEROLE, and returns their DSNs. DSN keeps
// working as the superuser.
func (p *PG) Roles(t testing.TB) PGRoles {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout())
	defer cancel()
	conn, err := pgx.Connect(ctx, p.AdminDSN)
	if err != nil {
		t.Fatalf("testenv: postgres: connect: %v", err)
	}
	defer conn.Close(context.Background())
	r := PGRoles{Owner: "madoguchi_owner", Serving: "madoguchi_serving"}
	u, err := url.Parse(p.DSN)
	if err != nil {
		t.Fatalf("testenv: postgres: %v", err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	for _, q := range []string{
		"CREATE ROLE " + pgx.Identifier{r.Owner}.Sanitize() + " LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB",
		"CREATE ROLE " + pgx.Identifier{r.Serving}.Sanitize() + " LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB",
		"ALTER DATABASE " + pgx.Identifier{db}.Sanitize() + " OWNER TO " + pgx.Identifier{r.Owner}.Sanitize(),
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("testenv: postgres: %s: %v", q, err)
		}
	}
	as := func(role string) string {
		v := *u
		v.User = url.User(role)
		return v.String()
	}
	r.OwnerDSN, r.ServingDSN = as(r.Owner), as(r.Serving)
	return r
}

// runPG starts the server of dataDir and returns it as a PG, stopped at
// cleanup (a fresh cluster and a standby made by pg_basebackup alike).
func runPG(t testing.TB, opts PostgresOptions, dir, dataDir string, cred *syscall.Credential) *PG {
	t.Helper()
	svc, port := startPostgres(t, opts, dir, dataDir, cred)
	p := &PG{
		DSN:      fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", port, opts.Database),
		AdminDSN: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		Port:     port,
		DataDir:  dataDir,
		LogPath:  svc.LogPath(),
		svc:      svc,
		opts:     opts,
		dir:      dir,
		cred:     cred,
		tb:       t,
	}
	t.Cleanup(p.stopCurrent)
	return p
}
