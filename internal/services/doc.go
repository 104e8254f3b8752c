// Package services starts, supervises and stops the real services Madoguchi runs against —
// pcscd with the vpcd virtual readers, an Xvfb display, a private D-Bus system bus with a
// polkit stand-in and fprintd's virtual fingerprint device, and private CUPS schedulers with file
// queues (cupsd.go) — for the test harness (internal/testenv, which wraps it for testing.TB) and
// the demo (internal/cmd/demo).
//
// # Process guarantees
//
//   - Every child runs in its own process group with a parent-death signal, so it dies with its
//     owner even when the owner is killed with SIGKILL, and a Ctrl-C at the terminal reaches only
//     the owner, which then stops its children in order. Children are started from a goroutine
//     locked to its OS thread for the child's whole life, because Linux sends the parent-death
//     signal when the forking *thread* exits, not the process.
//   - Service.Stop sends the stop signal, SIGKILL to the process group after a bounded grace
//     period, and always reaps the child (a pcscd that is killed but not reaped blocks the next).
//   - Every child carries OwnerEnv naming its owner process; scripts/services-clean.sh uses it to
//     kill services whose owner is gone.
//
// # One pcscd per machine
//
// pcscd's socket, pid file and the vpcd TCP ports are fixed, so only one pcscd can run on a
// machine. Its users hold LockPCSCD's flock for as long as their pcscd runs; StartPCSCD stops an
// orphan of ours (it carries OwnerEnv) and refuses, with ErrForeignPCSCD, a pcscd it did not
// start.
//
// # Concurrency
//
// The functions are safe to call from several goroutines; the returned values are safe for
// concurrent use. Nothing here sets environment variables: callers pass addresses to clients.
package services
