package main

import (
	"bytes"
	"context"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"madoguchi/app"
	"madoguchi/app/cli"
	"madoguchi/internal/testenv"
)

// cliStandInEnv makes the re-executed test binary behave as `madoguchi cli ...` (the real
// app/cli driver on fprintd), standing in for the terminal binary, whose main does not need to
// be built with Fyne's GL for this.
const cliStandInEnv = "MADOGUCHI_DEMO_TEST_CLI_STAND_IN"

func runCLIStandIn() {
	if len(os.Args) < 2 || os.Args[1] != "cli" {
		os.Exit(2)
	}
	os.Exit(cli.Run(context.Background(), os.Args[2:], cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}))
}

// TestBootstrapOperatorWithVirtualFinger: on first run the demo creates its supervisor through
// the terminal CLI, answering each of fprintd's enrolment stages with one virtual press; the
// terminal database then has an operator. The second run skips it.
func TestBootstrapOperatorWithVirtualFinger(t *testing.T) {
	fp := testenv.Fprintd(t)
	t.Setenv(cliStandInEnv, "1")
	var logBuf bytes.Buffer
	dir := t.TempDir()
	d := &demo{
		log:        log.New(&logBuf, "", 0),
		logs:       dir,
		busAddress: fp.BusAddress,
		fingerSock: fp.DeviceSocket,
	}
	termDir := filepath.Join(dir, "terminal")
	if err := os.MkdirAll(termDir, 0o700); err != nil {
		t.Fatal(err)
	}
	d.bootstrapOperator(context.Background(), os.Args[0], termDir)
	t.Log(logBuf.String())
	if !strings.Contains(logBuf.String(), "press 5: enroll-completed") {
		t.Errorf("log lacks the fifth, completing press:\n%s", logBuf.String())
	}
	if _, err := os.Stat(d.operatorMarker(termDir)); err != nil {
		t.Fatalf("no operator marker: %v\n%s", err, logBuf.String())
	}
	term, err := app.Open(context.Background(), app.Config{DBPath: filepath.Join(termDir, "terminal.db")})
	if err != nil {
		t.Fatal(err)
	}
	empty, err := term.NeedsBootstrap(context.Background())
	term.Close()
	if err != nil || empty {
		t.Fatalf("terminal still needs bootstrap after the demo's (%v)", err)
	}

	logBuf.Reset()
	d.bootstrapOperator(context.Background(), os.Args[0], termDir)
	if !strings.Contains(logBuf.String(), "skipped creating the demo supervisor") {
		t.Fatalf("second run did not skip:\n%s", logBuf.String())
	}
}

// TestBootstrapOperatorNotAvailable: a terminal binary without the CLI is reported, not fatal.
func TestBootstrapOperatorNotAvailable(t *testing.T) {
	var logBuf bytes.Buffer
	dir := t.TempDir()
	d := &demo{log: log.New(&logBuf, "", 0), logs: dir}
	d.bootstrapOperator(context.Background(), "/bin/false", dir)
	if !strings.Contains(logBuf.String(), "not available yet: `madoguchi cli bootstrap`") {
		t.Fatalf("log: %s", logBuf.String())
	}
}
