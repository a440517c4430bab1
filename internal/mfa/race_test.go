package mfa_test

import (
	"sync"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/failure"
)

// checkOneWins runs fn n times at once and checks that exactly one call succeeds and every
// other fails with the failure code loserCode.
func checkOneWins(t *testing.T, n int, loserCode string, fn func() error) {
	t.Helper()
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			errs[i] = fn()
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	wins := 0
	for i, err := range errs {
		if err == nil {
			wins++
			continue
		}
		if fe, ok := failure.As(err); !ok || fe.Code != loserCode {
			t.Errorf("racer %d: %v, want %s", i, err, loserCode)
		}
	}
	if wins != 1 {
		t.Errorf("%d concurrent calls: %d succeeded, want exactly 1", n, wins)
	}
}
