//go:build !demo

package main

// demoFinger is nil in the production build: a real terminal has a real finger to press, and the
// virtual device's code (internal/services) is linked only with -tags demo (demofinger.go).
func demoFinger() func() error { return nil }
