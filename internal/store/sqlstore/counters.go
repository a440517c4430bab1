package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// TakeCounters upserts each counter with a no-op update: on PostgreSQL the update locks the
// row until the transaction ends, which SELECT ... FOR UPDATE could not do for a row that does
// not exist yet; on SQLite the transaction holds the only writer connection already.
func (s *Store) TakeCounters(ctx context.Context, projectID string, keys []store.CounterKey, at time.Time) ([]store.Counter, error) {
	out := make([]store.Counter, 0, len(keys))
	for _, k := range keys {
		var c store.Counter
		var window, updated int64
		var last, locked sql.NullInt64
		err := s.guarded(ctx, func(s *Store) error {
			return s.writeRow(ctx, `INSERT INTO protect_counters
				(project_id, scope, counter_key, count, window_start, last_at, locked_until, updated_at)
				VALUES (?, ?, ?, 0, ?, NULL, NULL, ?)
				ON CONFLICT (project_id, scope, counter_key) DO UPDATE SET count = protect_counters.count
				RETURNING count, window_start, last_at, locked_until, updated_at`,
				projectID, k.Scope, k.Key, toMicros(at), toMicros(at)).Scan(&c.Count, &window, &last, &locked, &updated)
		})
		if err != nil {
			return nil, s.wrap(err, "take counter %s", k.Scope)
		}
		c.ProjectID, c.Scope, c.Key = projectID, k.Scope, k.Key
		c.WindowStart, c.UpdatedAt = fromMicros(window), fromMicros(updated)
		c.LastAt, c.LockedUntil = fromNullMicros(last), fromNullMicros(locked)
		out = append(out, c)
	}
	return out, nil
}

// GetCounters reads counters; missing ones are zero.
func (s *Store) GetCounters(ctx context.Context, projectID string, keys []store.CounterKey, at time.Time) ([]store.Counter, error) {
	out := make([]store.Counter, 0, len(keys))
	for _, k := range keys {
		c := store.Counter{ProjectID: projectID, Scope: k.Scope, Key: k.Key, WindowStart: at, UpdatedAt: at}
		var window, updated int64
		var last, locked sql.NullInt64
		err := s.queryRow(ctx, `SELECT count, window_start, last_at, locked_until, updated_at FROM protect_counters
			WHERE project_id = ? AND scope = ? AND counter_key = ?`, projectID, k.Scope, k.Key).
			Scan(&c.Count, &window, &last, &locked, &updated)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, s.wrap(err, "get counter %s", k.Scope)
		default:
			c.WindowStart, c.UpdatedAt = fromMicros(window), fromMicros(updated)
			c.LastAt, c.LockedUntil = fromNullMicros(last), fromNullMicros(locked)
		}
		out = append(out, c)
	}
	return out, nil
}

// SaveCounter writes the counter back.
func (s *Store) SaveCounter(ctx context.Context, c store.Counter) error {
	err := s.guarded(ctx, func(s *Store) error {
		return mustAffect(s.execAffected(ctx, `UPDATE protect_counters
			SET count = ?, window_start = ?, last_at = ?, locked_until = ?, updated_at = ?
			WHERE project_id = ? AND scope = ? AND counter_key = ?`,
			c.Count, toMicros(c.WindowStart), toNullMicros(c.LastAt), toNullMicros(c.LockedUntil), toMicros(c.UpdatedAt),
			c.ProjectID, c.Scope, c.Key))
	})
	return s.wrap(err, "save counter %s", c.Scope)
}

// DeleteIdleCounters sweeps counters nobody touched since before and that hold no lock past it.
// It deletes in batches that commit one by one, so that a large backlog never holds the
// database (SQLite's one writer) for long.
func (s *Store) DeleteIdleCounters(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		n, err := s.execAffected(ctx, `DELETE FROM protect_counters WHERE (project_id, scope, counter_key) IN
			(SELECT project_id, scope, counter_key FROM protect_counters
			WHERE updated_at < ? AND (locked_until IS NULL OR locked_until < ?) LIMIT ?)`,
			toMicros(before), toMicros(before), gcBatch)
		total += int(n)
		if err != nil || n < gcBatch {
			return total, s.wrap(err, "delete idle counters")
		}
	}
}

// gcBatch is how many rows one deleting statement of a sweep takes at most.
const gcBatch = 1000

// SpendChallenge inserts the key unless it is there: the insert that lands is the first spend.
func (s *Store) SpendChallenge(ctx context.Context, key string, expires time.Time) (bool, error) {
	var n int64
	err := s.guarded(ctx, func(s *Store) error {
		var err error
		n, err = s.execAffected(ctx, `INSERT INTO spent_challenges (challenge_key, expires_at) VALUES (?, ?)
			ON CONFLICT (challenge_key) DO NOTHING`, key, toMicros(expires))
		return err
	})
	if err != nil {
		return false, s.wrap(err, "spend challenge")
	}
	return n == 1, nil
}
