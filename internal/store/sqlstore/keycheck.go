package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// keyCheckID is the one row's id in master_key_check.
const keyCheckID = "canary"

// KeyCheck returns the sealed key check.
func (s *Store) KeyCheck(ctx context.Context) ([]byte, error) {
	var sealed []byte
	err := s.queryRow(ctx, `SELECT canary FROM master_key_check WHERE id = ?`, keyCheckID).Scan(&sealed)
	if err != nil {
		return nil, s.wrap(err, "read the master key check")
	}
	return sealed, nil
}

// AddKeyCheck inserts the key check unless one exists, then reads back the one that won.
func (s *Store) AddKeyCheck(ctx context.Context, sealed []byte, at time.Time) ([]byte, error) {
	err := s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO master_key_check (id, canary, created_at) VALUES (?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, keyCheckID, sealed, toMicros(at))
		return err
	})
	if err != nil {
		return nil, s.wrap(err, "write the master key check")
	}
	// Read through the writer, so that inside a transaction the read sees the transaction.
	var stored []byte
	if err := s.writeRow(ctx, `SELECT canary FROM master_key_check WHERE id = ?`, keyCheckID).Scan(&stored); err != nil {
		return nil, s.wrap(err, "read the master key check")
	}
	return stored, nil
}

// AnySealed returns the first non-empty sealed value of the first sealed column that has one.
func (s *Store) AnySealed(ctx context.Context) ([]byte, error) {
	for _, c := range sealedColumns {
		if c.check {
			continue
		}
		var sealed []byte
		err := s.queryRow(ctx, fmt.Sprintf(`SELECT %s FROM %s WHERE length(%s) > 0 LIMIT 1`, c.column, c.table, c.column)).
			Scan(&sealed)
		if err == nil {
			return sealed, nil
		}
		if err = s.wrap(err, "read a sealed %s.%s", c.table, c.column); !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("read a sealed value: %w", store.ErrNotFound)
}
