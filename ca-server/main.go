// Command ca-server is Madoguchi's headless JPKI certification authority: it
// issues signature and user-authentication certificates to counter terminals
// over mutual TLS, with every CA key held in an HSM reached through PKCS#11.
//
// Administration is never offered over the network (TS Art. 20(1)(iii),
// 42(1)(iii)): key ceremonies, key activation and audit review are local
// sub-commands of this binary, run at the data centre.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

// command is one sub-command of ca-server. Each file that implements a
// sub-command registers it from an init function, so adding a command never
// touches this file.
type command struct {
	name    string
	summary string // one line for the command list
	// run executes the command with the arguments after its name. It
	// returns errUsage (possibly wrapped) when the arguments are wrong.
	run func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("ca-server: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// errUsage marks a command-line mistake; main prints usage and exits 2.
var errUsage = errors.New("usage error")

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ca-server <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Madoguchi JPKI certification authority (headless).")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	width := 0
	for n := range commands {
		names = append(names, n)
		width = max(width, len(n))
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "ca-server <command> --help" for a command's flags.`)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "ca-server: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	err := c.run(args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "ca-server %s: %v\n", c.name, err)
		return 2
	default:
		fmt.Fprintf(stderr, "ca-server %s: %v\n", c.name, err)
		return 1
	}
}
