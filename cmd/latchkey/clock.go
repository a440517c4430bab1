//go:build !latchkey_testclock

package main

import "github.com/latchkey-dev/latchkey/internal/app"

// clockOptions is empty in a release build: every command runs on the system clock. The
// end-to-end tests build the binary with the latchkey_testclock tag instead (testclock.go).
func clockOptions(func(string) (string, bool)) ([]app.Option, error) { return nil, nil }
