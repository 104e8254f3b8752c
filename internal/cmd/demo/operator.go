package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"

	"madoguchi/internal/services"
)

// The demo's first operator: a supervisor enrolled on the virtual fingerprint device, so that
// the login screen can be passed with the demo UI's "press the virtual finger" button.
const (
	demoOperatorID   = "demo1"
	demoOperatorName = "デモ 管理者"
	demoFinger       = "right-index-finger"
	// VirtualPrintEnv names the print id the demo enrolled; the terminal's virtual-finger button
	// presses it ("SCAN <id>" on the MADOGUCHI_VIRTUAL_FINGER socket) to log in as demo1.
	VirtualPrintEnv = "MADOGUCHI_VIRTUAL_FINGER_PRINT"
	demoPrint       = "demo1-right-index"
)

// operatorMarker records that the demo supervisor exists in the terminal database.
func (d *demo) operatorMarker(termDir string) string {
	return filepath.Join(termDir, ".demo-operator")
}

// bootstrapOperator creates the demo supervisor with `madoguchi cli bootstrap` on first run,
// pressing the virtual finger for each enrolment stage fprintd asks for. It logs and returns
// without error when the CLI is not there yet or refuses (the window comes up regardless).
func (d *demo) bootstrapOperator(ctx context.Context, termBin, termDir string) {
	marker := d.operatorMarker(termDir)
	if _, err := os.Stat(marker); err == nil {
		d.log.Printf("  skipped creating the demo supervisor: %s (%s) exists already; log in with id %s and the virtual finger", demoOperatorID, demoOperatorName, demoOperatorID)
		return
	}
	env := []string{"DISPLAY=" + d.display, "DBUS_SYSTEM_BUS_ADDRESS=" + d.busAddress}
	help, _ := outputEnv(ctx, env, termBin, "cli", "-h")
	if !strings.Contains(help, "bootstrap") {
		d.log.Printf("  not available yet: `madoguchi cli bootstrap` (the terminal CLI); no operator can log in until a supervisor is created")
		return
	}
	db := filepath.Join(termDir, "terminal.db")
	d.log.Printf("  first run: creating the demo supervisor %s (%s) with `madoguchi cli -db %s bootstrap -finger %s`, pressing the virtual finger %q for each enrolment stage",
		demoOperatorID, demoOperatorName, db, demoFinger, demoPrint)
	if err := d.enrolWithVirtualFinger(ctx, termBin, env, db); err != nil {
		d.log.Printf("  FAILED, going on without a demo operator: %v", err)
		return
	}
	_ = os.WriteFile(marker, []byte(demoOperatorID+"\n"), 0o600)
	d.log.Printf("  the demo supervisor %s is enrolled; log in with id %s and the virtual finger", demoOperatorID, demoOperatorID)
}

// enrolWithVirtualFinger runs the CLI's bootstrap and answers each EnrollStatus of fprintd with
// one press, until the enrolment is done and the CLI exits.
func (d *demo) enrolWithVirtualFinger(ctx context.Context, termBin string, env []string, db string) error {
	conn, err := dbus.Connect(d.busAddress)
	if err != nil {
		return fmt.Errorf("connect to the private system bus: %w", err)
	}
	defer conn.Close()
	if err := conn.AddMatchSignal(dbus.WithMatchInterface("net.reactivated.Fprint.Device"), dbus.WithMatchMember("EnrollStatus")); err != nil {
		return fmt.Errorf("watch EnrollStatus: %w", err)
	}
	signals := make(chan *dbus.Signal, 16)
	conn.Signal(signals)

	ctx, cancel := context.WithTimeout(ctx, toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, termBin, "cli", "-db", db, "bootstrap",
		"-id", demoOperatorID, "-name", demoOperatorName, "-finger", demoFinger)
	cmd.Env = append(os.Environ(), services.OwnerEnv+"="+services.OwnerValue())
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	logPath := filepath.Join(d.logs, "terminal-bootstrap.log")
	defer func() { _ = os.WriteFile(logPath, out.Bytes(), 0o600) }()

	for press := 1; press <= 20; press++ {
		pressed := make(chan error, 1)
		go func() { pressed <- services.ScanVirtualFinger(d.fingerSock, demoPrint, 30*time.Second) }()
		select {
		case err := <-pressed:
			if err != nil {
				return fmt.Errorf("press %d: %w", press, err)
			}
		case err := <-exited:
			return fmt.Errorf("madoguchi cli bootstrap ended before the enrolment (%v): %s", err, strings.TrimSpace(out.String()))
		}
		select {
		case sig := <-signals:
			if len(sig.Body) < 2 {
				return fmt.Errorf("press %d: malformed EnrollStatus %v", press, sig.Body)
			}
			result, _ := sig.Body[0].(string)
			done, _ := sig.Body[1].(bool)
			d.log.Printf("    press %d: %s", press, result)
			if done {
				if result != "enroll-completed" {
					return fmt.Errorf("enrolment ended with %s", result)
				}
				select {
				case err := <-exited:
					if err != nil {
						return fmt.Errorf("madoguchi cli bootstrap: %v: %s", err, strings.TrimSpace(out.String()))
					}
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		case err := <-exited:
			return fmt.Errorf("madoguchi cli bootstrap ended during the enrolment (%v): %s", err, strings.TrimSpace(out.String()))
		case <-time.After(30 * time.Second):
			return fmt.Errorf("press %d: no EnrollStatus from fprintd within 30 s", press)
		}
	}
	return fmt.Errorf("enrolment not done after 20 presses")
}
