// Package testenv starts and stops the real services Madoguchi's tests run against — pcscd with
// the vpcd virtual reader, a SoftHSM2 token, an Xvfb display, a private D-Bus system bus with
// fprintd's virtual fingerprint device, PostgreSQL, and a CUPS print server — and always cleans
// them up.
//
// It is a thin testing.TB layer over madoguchi/internal/services, which starts and supervises
// pcscd, Xvfb, the fingerprint stack and cupsd without the testing package (the demo,
// internal/cmd/demo, uses it too): testenv puts files under t.TempDir(), turns errors into
// t.Fatal, stops services in t.Cleanup and sets the environment variables.
//
// # What each helper gives
//
//   - [PCSCD]: the machine's pcscd (`pcscd -f`), started after the readers of
//     /etc/reader.conf.d/vpcd answer: "Virtual PCD 00 00" (card side connects to TCP 35963) and
//     "Virtual PCD 00 01" (TCP 35964). [PCSCDWith] with APDUTrace runs `pcscd -f -a -i` and keeps
//     the trace in [PCSC.LogPath]. Sets no environment variable (the socket path is fixed).
//   - [SoftHSM]: a fresh token with a random label, SO PIN and user PIN in a private
//     softhsm2.conf under t.TempDir(). Sets SOFTHSM2_CONF. Find the token by label, never by slot
//     id: SoftHSM renumbers slots after an init.
//   - [Xvfb]: a 1280x800x24 X display on a free display number. Sets DISPLAY.
//     [Display.Screenshot] saves the root window as PNG (`import -window root`).
//   - [Fprintd]: a private `dbus-daemon` of type system, a polkit stand-in that authorises every
//     request (in-process, godbus), and `fprintd` with libfprint's virtual device. Sets
//     DBUS_SYSTEM_BUS_ADDRESS. [Fingerprint.Scan] is one finger press.
//   - [Postgres]: a fresh cluster (trust auth on loopback, superuser "postgres", fsync off) and
//     an empty database; [PG.DSN] is a pgx URL. Sets no environment variable. The cluster is a
//     copy of a template that initdb makes once per machine and PostgreSQL build under
//     /var/tmp/madoguchi-testenv (initdb ≈ 2 s, a copy ≈ 0.4 s).
//   - [CUPSD]: a private CUPS scheduler (`cupsd -f` with its own ServerRoot, spool and state under
//     a short temporary directory, listening only on a unix socket there, PreserveJobFiles No)
//     with one raw queue, [TestQueue], whose jobs are written to [CUPS.OutDir] as job-<id>.pdf
//     (a small backend of ours: CUPS' own file: device overwrites one file). Sets no environment
//     variable: pass [CUPS.Server] as the server (`lp -h`, CUPS_SERVER). [CUPS.DisableQueue],
//     EnableQueue and Stop make a paused queue and a server that is gone. Independent per test,
//     so parallel tests may each have one.
//
// Because SoftHSM, Xvfb and Fprintd call t.Setenv, tests that use them cannot call t.Parallel
// (the testing package panics); pass the returned paths explicitly if you need parallelism
// within a package. PCSCD and Postgres set nothing and may be used from parallel tests (PCSCD
// serialises them, see below).
//
// # One pcscd per machine
//
// pcscd's socket (/run/pcscd/pcscd.comm), its pid file and the vpcd TCP ports are fixed, so only
// one pcscd can run on a machine. [PCSCD] therefore holds an exclusive flock on [PCSCDLockPath]
// for the whole life of the test: tests in other packages (other test binaries), parallel
// tests in the same binary and a running demo (scripts/demo.sh) queue up on it. While holding
// the lock it removes what a dead harness pcscd left behind (stale pid file and socket, or a
// still-running orphan), and fails the test with a clear message if a pcscd that neither the
// harness nor the demo started is running or something else (systemd socket activation) holds
// the socket. Never start pcscd by hand while tests may run.
//
// # Cleanup guarantees
//
//   - Every child runs in its own process group with a parent-death signal (SIGTERM, SIGINT for
//     postgres' fast shutdown), so it dies with the test binary even when the binary is killed
//     with SIGKILL or panics. Children are started from a goroutine locked to its OS thread for
//     the child's whole life, because Linux sends the parent-death signal when the forking
//     *thread* exits, not the process.
//   - t.Cleanup stops each child with its stop signal, sends SIGKILL to the process group after
//     a bounded grace period, and always reaps it (a pcscd that is killed but not reaped blocks
//     the next one). Cleanup runs also when the test fails or calls t.FailNow.
//   - A service that cannot start, or does not become ready within [StartTimeout], fails the test
//     with t.Fatal and the tail of its log; it never skips. A service that dies during the test
//     is reported with t.Errorf at cleanup. When the test failed, cleanup logs the tail of each
//     service's log.
//   - Every child carries the environment variable [OwnerEnv] (pid and start time of the test
//     process); scripts/services-clean.sh uses it to kill harness services whose test binary is
//     gone, without touching services of tests still running.
//
// # Concurrency
//
// Helpers are safe to call from parallel tests except where they set environment variables (see
// above). The returned values are safe for concurrent use.
package testenv
