package store

import (
	"context"
	"time"
)

// CounterKey names one attack-protection counter of a project: a scope (what is counted, e.g.
// "password:account") and a key within it (e.g. a user id, an IP prefix).
type CounterKey struct {
	Scope string
	Key   string
}

// Counter counts events (failed secrets, sent messages) for one key in a time window, and may
// hold a lock. What the numbers mean, and when a lock starts and ends, is the protect
// package's to decide; the store keeps them consistent across instances.
type Counter struct {
	ProjectID   string
	Scope       string
	Key         string
	Count       int
	WindowStart time.Time  // when Count started counting
	LastAt      *time.Time // the newest counted event; nil before the first
	LockedUntil *time.Time // refused until then; nil when not locked
	UpdatedAt   time.Time
}

// Counters stores attack-protection counters.
type Counters interface {
	// TakeCounters returns the project's counters with these keys, in the order given,
	// creating missing ones at zero (window starting at `at`). Inside InTx it holds their rows
	// until the transaction ends (on SQLite the transaction holds the only writer), so that a
	// check and the count that follows it are one atomic step across instances. Callers take
	// keys in one fixed order of scopes, so that two transactions cannot deadlock.
	// ErrNotFound when the project does not exist.
	TakeCounters(ctx context.Context, projectID string, keys []CounterKey, at time.Time) ([]Counter, error)
	// GetCounters reads the project's counters with these keys, without creating or locking
	// them: a counter that does not exist comes back at zero (window starting at `at`).
	GetCounters(ctx context.Context, projectID string, keys []CounterKey, at time.Time) ([]Counter, error)
	// SaveCounter writes a counter's count, window, times and lock.
	SaveCounter(ctx context.Context, c Counter) error
	// DeleteIdleCounters removes counters, of every project, last updated before `before` and
	// not locked past it: a counter nobody touched for its whole window counts nothing.
	DeleteIdleCounters(ctx context.Context, before time.Time) (int, error)
}

// SpentChallenges records bot-check challenges that were accepted, so that each is accepted
// once across every instance.
type SpentChallenges interface {
	// SpendChallenge records key as spent until expires, in one statement: true for the first
	// caller, false for every later one (of any number of concurrent callers, one gets true).
	// Garbage collection forgets them once they expire: they could not verify again anyway.
	SpendChallenge(ctx context.Context, key string, expires time.Time) (bool, error)
}
