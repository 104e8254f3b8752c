//go:build demo

package main

// The demo's virtual fingerprint device, linked only into the demo build (go build -tags demo,
// as internal/cmd/demo does): the production terminal links nothing of internal/services
// (issue 16; scripts/deps-check.sh checks it).

import (
	"log"
	"os"

	"madoguchi/internal/services"
)

// Both set by internal/cmd/demo (see the package comment).
const (
	virtualFingerEnv      = "MADOGUCHI_VIRTUAL_FINGER"
	virtualFingerPrintEnv = "MADOGUCHI_VIRTUAL_FINGER_PRINT"
)

// demoFinger returns the demo's "press the virtual finger" action, or nil when the demo did not
// set up the virtual device.
func demoFinger() func() error {
	socket, print := os.Getenv(virtualFingerEnv), os.Getenv(virtualFingerPrintEnv)
	if socket == "" || print == "" {
		return nil
	}
	log.Printf("demo: the fingerprint step offers a virtual finger (%s on %s)", print, socket)
	return func() error { return services.ScanVirtualFinger(socket, print, 0) }
}
