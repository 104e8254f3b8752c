// Command vcard runs a virtual JPKI card in a vpcd reader, and makes blank card stock.
//
//	vcard run --state FILE [--port 35963] [--host 127.0.0.1] [--fault SPEC]...
//	vcard stock --count N --out DIR --keys FILE
//
// run plugs the card kept in FILE into pcscd's vpcd reader ("Virtual PCD 00 00" on port
// 35963, "Virtual PCD 00 01" on 35964) until interrupted; faults (drop@N, sw@N=XXXX,
// garbage@N, truncate@N, seed=S, delay=D, chunk=N, removed) are those of vcard.Faults.Apply. stock creates N blank cards,
// one state file per card named by serial, from the first N lines of a card-key batch file
// ("serial-hex enc-hex mac-hex dek-hex" per line), as a card manufacturer would.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"madoguchi/cardio/vcard"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// faultList collects repeated --fault flags.
type faultList []string

func (f *faultList) String() string     { return fmt.Sprint(*f) }
func (f *faultList) Set(s string) error { *f = append(*f, s); return nil }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: vcard run --state FILE [--port N] [--fault SPEC]... | vcard stock --count N --out DIR --keys FILE")
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, args[1:], stderr)
	case "stock":
		err = cmdStock(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "vcard: unknown command %q (want run or stock)\n", args[0])
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("vcard run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	state := fs.String("state", "", "card state file (required)")
	port := fs.Int("port", 35963, "vpcd port (35963 = Virtual PCD 00 00, 35964 = Virtual PCD 00 01)")
	host := fs.String("host", "127.0.0.1", "vpcd host")
	var faults faultList
	fs.Var(&faults, "fault", "fault to inject: drop@N, sw@N=XXXX, garbage@N, truncate@N, seed=S, delay=D, chunk=N, removed (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *state == "" || fs.NArg() != 0 {
		return errors.New("vcard: run needs --state FILE and no other arguments")
	}
	if *port < 1 || *port > 65535 {
		return fmt.Errorf("vcard: port %d out of range", *port)
	}
	f := vcard.NewFaults()
	for _, spec := range faults {
		if err := f.Apply(spec); err != nil {
			return err
		}
	}
	card, err := vcard.Open(*state, nil)
	if err != nil {
		return err
	}
	logger := log.New(stderr, "", log.LstdFlags)
	link := &vcard.Link{
		Card:   card,
		Addr:   net.JoinHostPort(*host, strconv.Itoa(*port)),
		Faults: f,
		Logf:   logger.Printf,
	}
	logger.Printf("vcard: card %X (%s) for vpcd at %s", card.Serial(), card.Lifecycle(), link.Addr)
	if err := link.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func cmdStock(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vcard stock", flag.ContinueOnError)
	fs.SetOutput(stderr)
	count := fs.Int("count", 0, "number of cards to make (required)")
	out := fs.String("out", "", "directory for the card state files (required)")
	keys := fs.String("keys", "", "card-key batch file (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *count < 1 || *out == "" || *keys == "" || fs.NArg() != 0 {
		return errors.New("vcard: stock needs --count N (≥ 1), --out DIR and --keys FILE")
	}
	f, err := os.Open(*keys)
	if err != nil {
		return fmt.Errorf("vcard: %w", err)
	}
	defer f.Close()
	entries, err := vcard.ParseKeyBatch(f)
	if err != nil {
		return err
	}
	if len(entries) < *count {
		return fmt.Errorf("vcard: key batch has %d cards, %d asked for", len(entries), *count)
	}
	paths, err := vcard.MakeStock(*out, entries[:*count])
	for _, p := range paths {
		fmt.Fprintln(stdout, p)
	}
	return err
}
