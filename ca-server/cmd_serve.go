package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"madoguchi/ca-server/api"
	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/ceremony"
	"madoguchi/ca-server/fleet"
	"madoguchi/ca-server/hsm"
	"madoguchi/ca-server/hsmissuance"
	"madoguchi/ca-server/issuance"
	"madoguchi/ca-server/profile"
	"madoguchi/ca-server/status"
	"madoguchi/ca-server/store"
	"madoguchi/ca-server/tlsca"
	"madoguchi/internal/timesync"
	"madoguchi/internal/wallclock"
	"madoguchi/jpki/wire"
)

func init() {
	register(command{name: "serve", summary: "serve the issuance API over mutual TLS", run: runServe})
}

// localStore is what serve and the local commands use of the store: the
// interfaces of the packages they hand it to, plus the verifier registry
// and closing. *store.SQLite (the default file DATA-DIR/ca.db) and
// *store.Postgres (--database postgres://…, for a CA scaled out to several
// processes) both implement it.
type localStore interface {
	store.Writer
	issuance.MaintenanceStore
	status.Store
	tlsca.Store
	api.VerifierRegistry
	audit.CheckpointSource // the public checkpoint endpoint
	api.WitnessHeads
	fleetStore // serve_fleet.go: leases, status changes, CRL archive, OCSP responders
	AddVerifier(ctx context.Context, v store.Verifier) error
	RevokeVerifier(ctx context.Context, name string, now time.Time) (store.Verifier, error)
}

// Both stores hold every consumer interface (the packages themselves
// check only the SQLite type).
var (
	_ localStore = (*store.SQLite)(nil)
	_ localStore = (*store.Postgres)(nil)
)

// databaseFlag registers --database on fs: where the store is.
func databaseFlag(fs *flag.FlagSet) *string {
	return fs.String("database", "", "store database: a postgres:// URL (several ca-server processes on one database; the password from PGPASSWORD or ~/.pgpass, never in the URL: command lines are visible to every local user), or a SQLite file (default DATA-DIR/ca.db)")
}

// storeDatabase is the database openLocal opens: database, or the SQLite
// file ca.db in the data directory when it is empty.
func storeDatabase(dataDir, database string) string {
	if database == "" {
		return filepath.Join(dataDir, "ca.db")
	}
	return database
}

// local is what every local sub-command opens in the data directory.
type local struct {
	st localStore
	// database is what st was opened from (storeDatabase); the audit
	// backup copies a SQLite file directly and reads a PostgreSQL
	// database through the store.
	database string
	// ca is the TLS CA: without its key when the key is in the HSM
	// (local_keys.go); serve and verifier-add replace it after activation.
	ca *tlsca.CA
	// audit appends chained records without checkpoints; serve replaces it
	// by a log signing checkpoints with the HSM key (local_keys.go).
	audit *audit.Log
}

// openLocal opens the store (database: see storeDatabase), the TLS CA and
// an unsigned audit log for a local command or serve.
func openLocal(ctx context.Context, dataDir, database string) (*local, error) {
	if dataDir == "" {
		return nil, fmt.Errorf("%w: --data-dir is required", errUsage)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	database = storeDatabase(dataDir, database)
	var st localStore
	var err error
	if store.IsPostgresURL(database) {
		st, err = store.OpenPostgres(ctx, database)
	} else {
		st, err = store.OpenSQLite(ctx, database)
	}
	if err != nil {
		return nil, err
	}
	ca, err := openTLSCA(dataDir, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	alog, err := audit.OpenUnsigned(ctx, st, nil)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &local{st: st, database: database, ca: ca, audit: alog}, nil
}

// Close closes the store. A signing audit log (serve) takes its last
// checkpoint before the HSM closes, not here.
func (l *local) Close() error { return l.st.Close() }

// issuanceDeps builds the HSM-backed issuance dependencies over the
// activated CA (ca-server/hsmissuance). A variable so tests can wrap it.
var issuanceDeps = hsmissuance.FromActive

// serveContext is the parent context of serve; tests replace it to stop the
// server without a signal.
var serveContext = context.Background

// unavailableService answers every issuance call with CodeUnavailable.
type unavailableService struct{ why string }

var _ api.Service = unavailableService{}

func (u unavailableService) err() error {
	return wire.Errorf(wire.CodeUnavailable, "issuance unavailable: %s", u.why)
}
func (u unavailableService) OpenChannel(context.Context, issuance.Caller) (wire.ChannelResponse, error) {
	return wire.ChannelResponse{}, u.err()
}
func (u unavailableService) Prepare(context.Context, issuance.Caller, wire.PrepareRequest) (wire.PrepareResponse, error) {
	return wire.PrepareResponse{}, u.err()
}
func (u unavailableService) Confirm(context.Context, issuance.Caller, string, wire.ConfirmRequest) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, u.err()
}
func (u unavailableService) Abort(context.Context, issuance.Caller, string, wire.AbortRequest) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, u.err()
}
func (u unavailableService) Status(context.Context, issuance.Caller, string) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, u.err()
}

func runServe(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf ceremonyFlags
	cf.register(fs) // --data, --module, --kwp-mechanism, --dev
	fs.StringVar(&cf.dataDir, "data-dir", "", "data directory (same as --data)")
	database := databaseFlag(fs)
	var shares listFlag
	fs.Var(&shares, "share", shareHelp+" (TS Art. 27: the CA keys are activated by M custodians)")
	listen := fs.String("listen", "127.0.0.1:8443", "address to listen on")
	hosts := fs.String("hosts", "", "comma-separated host names/addresses for the server certificate (default: the listen host)")
	deadline := fs.Duration("deadline", 10*time.Minute, "time a prepared issuance may wait for its confirmation before it is revoked (reason 0)")
	sweepEvery := fs.Duration("sweep-every", 30*time.Second, "how often overdue issuances are revoked")
	sessions := fs.Int("sessions", 2, "HSM sessions for request handling")
	hsmTimeout := fs.Duration("hsm-call-timeout", hsm.DefaultCallTimeout, "deadline of each PKCS#11 call; a call past it fails, its session is retired when it returns and /readyz is false meanwhile")
	poolSize := fs.Int("key-pool", 0, "keep this many user keys pre-generated in the HSM (0: generate on each request)")
	poolWorkers := fs.Int("key-pool-workers", 1, "goroutines (each with its own HSM session) refilling the key pool")
	profilesDir := fs.String("profiles", "", "directory overriding the embedded certificate profiles")
	auditEvery := fs.Duration("audit-checkpoint-every", 5*time.Minute, "how often the audit log is checkpointed with the HSM key, covering records of local commands (CPS §5.4)")
	auditBackupDir := fs.String("audit-backup-dir", "", "directory of the daily audit backups (default DATA-DIR/audit-backup; in production other media) (CPS §5.4)")
	auditBackupCheck := fs.Duration("audit-backup-check-every", time.Hour, "how often serve checks whether today's (UTC) audit backup is still to be made")
	leaseTTL := fs.Duration("lease-ttl", 10*time.Second, "how long the job lease (sweeper, CRL publication, change-driven checks, audit checkpoints) lasts unrenewed: a replica that dies is replaced by another within this and a fifth of it")
	auditWitnessDir := fs.String("audit-witness-dir", "", "directory of checkpoint copies kept by `ca-server audit witness`: at start the audit log must extend them, as it must extend the newest audit backup, before anything is signed")
	statusF := registerStatusFlags(fs)   // serve_status.go
	trafficF := registerTrafficFlags(fs) // serve_traffic.go
	logFormat := fs.String("log-format", "text", "log format on stderr: text, or json (one log/slog object per line, for a collector)")
	configFile := fs.String("config", "", "TOML file setting any of these flags by name (name = value); flags on the command line win (serve_ops.go)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := applyConfigFile(fs, *configFile); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *sessions < 1 || *sessions > 64 || *hsmTimeout <= 0 || *poolSize < 0 || *poolWorkers < 1 || *poolWorkers > 64 || *auditEvery <= 0 || *auditBackupCheck <= 0 || *leaseTTL < time.Second {
		return fmt.Errorf("%w: --sessions 1..64, --hsm-call-timeout > 0, --key-pool ≥ 0, --key-pool-workers 1..64, --audit-checkpoint-every > 0, --audit-backup-check-every > 0, --lease-ttl ≥ 1s", errUsage)
	}
	if err := trafficF.check(); err != nil {
		return err
	}
	if err := statusF.check(); err != nil {
		return err
	}
	logger, err := newLogger(*logFormat, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(serveContext(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	l, err := openLocal(ctx, cf.dataDir, *database)
	if err != nil {
		return err
	}
	defer l.Close()
	if pg, ok := l.st.(*store.Postgres); ok && store.ServingAsOwner(pg) {
		logger.Warn("serve: connected to PostgreSQL as the owner of the store's tables: this process could drop the audit tables' append-only triggers; " +
			"in production run `ca-server db migrate --database OWNER_URL --serving-role ROLE` and serve as ROLE")
	}
	// CPS §6.8: say when the audit timestamps are not vouched for by a
	// synchronised clock. The watch keeps the unsigned log it starts with
	// (records chain the same; the signing log of startHSMAudit covers
	// them with its checkpoints); stopped before the store closes.
	stopClock := startClockWatch(ctx, l.audit, timesync.Read, 10*time.Minute, logger)
	defer stopClock()

	holder := holderID()
	statusF.holder = holder
	var lease *fleet.Lease // set once the CA is active

	var svc api.Service
	var statusDeps *hsmissuance.Deps // serve_status.go: nil while the CA is not active
	var statusActive *ceremony.Active
	_, serr := ceremony.LoadState(cf.dataDir)
	switch {
	case errors.Is(serr, ceremony.ErrNotInitialised):
		logger.Warn("serve: issuance disabled: no key ceremony in the data directory (run ceremony-init)")
		svc = unavailableService{why: "not configured"}
	case serr != nil:
		return serr
	default:
		common, err := cf.common(stdout, stderr)
		if err != nil {
			return err
		}
		common.HSM.PoolSize = *sessions
		common.HSM.CallTimeout = *hsmTimeout
		if *poolSize > 0 {
			common.HSM.PoolSize += *poolWorkers
		}
		ps, err := presentedShares(shares, &cf, ceremony.PurposeToken)
		if err != nil {
			return err
		}
		// TS Art. 27, 45: the CA keys become usable only when M custodians
		// present their shares; stopping the server deactivates them.
		active, err := ceremony.Activate(ctx, ceremony.ActivateOptions{Common: common, Shares: ps})
		if err != nil {
			return err
		}
		defer active.HSM.Close()
		statusActive = active
		// Issue 14: the scheduled jobs run on the one replica holding the
		// job lease in the database, and their writes carry its fencing
		// token; only an activated replica competes for it (one without
		// keys could not run the jobs); released after the last
		// checkpoint, before the HSM closes.
		if lease, err = fleet.Start(ctx, fleet.LeaseConfig{Store: l.st, Name: jobsLease, Holder: holder, TTL: *leaseTTL, Logger: logger}); err != nil {
			return err
		}
		defer lease.Stop()
		statusF.lease = lease
		// CPS §5.4: checkpoints signed in the HSM, covering the records
		// local commands appended, after the whole log verified against
		// its outside witnesses; stopped before the HSM closes.
		if *auditBackupDir == "" {
			*auditBackupDir = defaultAuditBackupDir(cf.dataDir)
		}
		stopAudit, err := startHSMAudit(ctx, l, common, active, cf.dataDir, auditWitnesses{backupDir: *auditBackupDir, witnessDir: *auditWitnessDir},
			*auditEvery, lease, func(err error) { logger.Error("serve: audit checkpoint", "err", err) })
		if err != nil {
			return err
		}
		defer stopAudit()
		// CPS §5.4: the audit log is backed up daily (cmd_audit_backup.go);
		// stopped before the checkpointing log stops.
		stopBackups := startAuditBackups(ctx, l, cf.dataDir, *auditBackupDir, *auditBackupCheck, wallclock.Now,
			func(err error) { logger.Error("serve: audit backup", "err", err) })
		defer stopBackups()
		// The TLS CA key, when it is in the HSM, signs enrolments and the
		// server certificate from now on.
		if ca, err := signingTLSCA(active, l.st); err != nil {
			return err
		} else if ca != nil {
			l.ca = ca
		}
		opts := hsmissuance.Options{PoolSize: *poolSize, PoolWorkers: *poolWorkers, Logger: logger}
		if *profilesDir != "" {
			if opts.Profiles, err = profile.Load(*profilesDir); err != nil {
				return err
			}
		}
		deps, err := issuanceDeps(ctx, active, opts)
		statusDeps = deps
		if err != nil {
			return err
		}
		defer deps.Close()
		s, err := issuance.New(issuance.Config{Store: l.st, Keys: deps.Keys, Cards: deps.Cards, Issuer: deps.Issuer,
			Applicants: deps.Applicants, Logger: logger, Deadline: *deadline})
		if err != nil {
			return err
		}
		// interrupted issuances of a previous run end revoked (reason 0),
		// by the replica holding the job lease
		if fctx, ok := lease.Fenced(ctx); ok {
			if n, err := s.Sweep(fctx); err != nil {
				return err
			} else if n > 0 {
				logger.Info("serve: revoked overdue issuances at start", "count", n)
			}
		}
		tick := time.NewTicker(*sweepEvery)
		defer tick.Stop()
		sweepCtx, stopSweep := context.WithCancel(ctx)
		sweepDone := make(chan struct{})
		go func() { defer close(sweepDone); s.RunSweeper(sweepCtx, lease.Gate(sweepCtx, tick.C), nil) }()
		defer func() { stopSweep(); <-sweepDone }() // before the store and the HSM close
		svc = s
		logger.Info("serve: issuance active", "custodians", strings.Join(active.Who, ","), "hsm_sessions", common.HSM.PoolSize, "key_pool", *poolSize)
	}

	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("%w: --listen %q: %v", errUsage, *listen, err)
	}
	names := []string{host}
	if *hosts != "" {
		names = strings.Split(*hosts, ",")
	}
	serverCert, err := l.ca.ServerCertificate(names)
	if err != nil {
		return err
	}
	witness, err := newWitness(l, statusActive) // serve_witness.go
	if err != nil {
		return err
	}
	// issue 13 threat 4: budgets, connection caps, audit summaries of
	// refused traffic, metrics; stopped (last summaries written) after the
	// listeners and before the audit log and the store.
	tr, err := startTraffic(ctx, trafficF, l.audit, logger, stdout)
	if err != nil {
		return err
	}
	defer tr.stop()
	statusF.traffic = tr
	// /readyz and the operational series (serve_ops.go)
	tr.ops.watchStore(l.st)
	if statusActive != nil {
		tr.ops.watchHSM(statusActive.HSM)
		tr.ops.leaseHolder(func() bool { _, held := lease.Held(); return held })
		if statusDeps != nil && statusDeps.Pool != nil {
			pool := statusDeps.Pool
			tr.ops.gaugeFunc(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "madoguchi_key_pool_ready", Help: "Pre-generated user keys ready in the HSM (--key-pool)."},
				func() float64 { return float64(pool.Ready()) }))
		}
	} else {
		tr.ops.leaseHolder(nil)
		tr.ops.addCheck("hsm", func(context.Context) error {
			return errors.New("not activated (no key ceremony, or serve started without the custodians' shares)")
		})
	}
	srv, err := api.New(api.Config{Service: svc, Enroller: l.ca, Terminals: l.st, Audit: l.audit, ClientCAs: l.ca.Pool(), Logger: logger,
		Traffic: tr.guard("api", trafficF.terminal), Witness: witness})
	if err != nil {
		return err
	}
	stopStatus, err := startStatus(ctx, statusF, l, srv, statusActive, statusDeps, cf.dataDir, serverCert, logger, stdout)
	if err != nil {
		return err
	}
	defer stopStatus()
	ln, err := tr.listen(*listen, "api")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: tr.ops.instrument(srv), TLSConfig: api.TLSConfig(serverCert), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 16 << 10}
	fmt.Fprintf(stdout, "ca-server: listening on https://%s (TLS CA certificate %s)\n", ln.Addr(), filepath.Join(cf.dataDir, "tls-ca.crt"))
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}
