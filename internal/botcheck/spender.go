package botcheck

import (
	"context"
	"sync"
	"time"
)

// sweepEvery is how often MemorySpender drops the keys whose challenges have expired: often
// enough that memory follows the recent rate of accepted solutions, rarely enough that the
// sweep's cost is lost in the noise.
const sweepEvery = time.Minute

// MemorySpender is a Spender in memory, safe for concurrent use: for tests, and for a single
// instance (on SQLite, say) that accepts losing its record on restart — a restart lets each
// challenge solved in the last TTL be replayed once more. Several instances need the
// database's Spender. Memory holds one entry per challenge accepted within the last TTL;
// every entry had to be solved, so an attacker pays for each one.
type MemorySpender struct {
	now func() time.Time

	mu        sync.Mutex
	spent     map[string]time.Time // key -> when it may be forgotten
	nextSweep time.Time
}

// NewMemorySpender returns an empty store; now defaults to time.Now.
func NewMemorySpender(now func() time.Time) *MemorySpender {
	if now == nil {
		now = time.Now
	}
	return &MemorySpender{now: now, spent: make(map[string]time.Time)}
}

// Spend reports whether key is spent for the first time, and records it until expires.
func (m *MemorySpender) Spend(ctx context.Context, key string, expires time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !now.Before(m.nextSweep) {
		for k, exp := range m.spent {
			if !now.Before(exp) {
				delete(m.spent, k)
			}
		}
		m.nextSweep = now.Add(sweepEvery)
	}
	if _, ok := m.spent[key]; ok {
		return false, nil
	}
	m.spent[key] = expires
	return true, nil
}
