// Package testclock is the one hand-moved clock that tests inject where code takes a
// func() time.Time, so that expiry and windows are tested without sleeping or depending on
// the machine's speed.
package testclock

import (
	"sync"
	"time"
)

// Clock is a clock that only a test moves. Its methods are safe for concurrent use, because
// servers under test read it from their own goroutines while the test advances it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock standing at start.
func New(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now reports the clock's time; pass the method value (c.Now) where a func() time.Time is
// wanted.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (backward when d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set puts the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
