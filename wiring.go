package main

import (
	"log"
	"os"

	"madoguchi/internal/services"
)

// The demo's virtual fingerprint device (see the package comment); both set by internal/cmd/demo.
const (
	virtualFingerEnv      = "MADOGUCHI_VIRTUAL_FINGER"
	virtualFingerPrintEnv = "MADOGUCHI_VIRTUAL_FINGER_PRINT"
)

// demoFinger returns the demo's "press the virtual finger" action, or nil on a real terminal.
func demoFinger() func() error {
	socket, print := os.Getenv(virtualFingerEnv), os.Getenv(virtualFingerPrintEnv)
	if socket == "" || print == "" {
		return nil
	}
	log.Printf("demo: the fingerprint step offers a virtual finger (%s on %s)", print, socket)
	return func() error { return services.ScanVirtualFinger(socket, print, 0) }
}
