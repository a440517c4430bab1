//go:build latchkey_testclock

package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/app"
)

// testClockEnv names a file that holds a duration (such as "1h30m") added to the system
// clock. Only a binary built with the latchkey_testclock tag reads it: the end-to-end tests
// move the time of every process they started forward together, so that expiry and cool-downs
// are tested without sleeping and without depending on how fast the machine is.
const testClockEnv = "LATCHKEY_TEST_CLOCK_FILE"

func clockOptions(lookupEnv func(string) (string, bool)) ([]app.Option, error) {
	path, ok := lookupEnv(testClockEnv)
	if !ok || path == "" {
		return nil, nil
	}
	if _, err := readOffset(path); err != nil {
		return nil, err
	}
	now := func() time.Time {
		d, err := readOffset(path)
		if err != nil {
			// The file was valid at start; a test rewriting it mid-read must not stop the clock.
			return time.Now()
		}
		return time.Now().Add(d)
	}
	return []app.Option{app.WithClock(now)}, nil
}

func readOffset(path string) (time.Duration, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", testClockEnv, err)
	}
	s := strings.TrimSpace(string(raw))
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", testClockEnv, err)
	}
	return d, nil
}
