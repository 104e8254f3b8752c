package main

import (
	"fmt"
	"io"
	"runtime"
)

func init() {
	register(command{
		name:    "version",
		summary: "print the ca-server version and Go runtime",
		run: func(args []string, stdout, _ io.Writer) error {
			if len(args) != 0 {
				return fmt.Errorf("%w: version takes no arguments", errUsage)
			}
			fmt.Fprintf(stdout, "ca-server (madoguchi) %s\n", runtime.Version())
			return nil
		},
	})
}
