package sqlstore

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/latchkey-dev/latchkey/internal/failure"
)

// TestStorageFullErrors: PostgreSQL's insufficient-resources class (53xxx: disk_full 53100,
// out_of_memory 53200, too_many_connections 53300) becomes 503 storage_unavailable with
// Retry-After, and marks the store as unable to write until a write succeeds; other errors
// are left alone. (SQLite's SQLITE_FULL is shown on a real full disk in internal/app's
// TestDiskFullIsAnnouncedAndRecovered.)
func TestStorageFullErrors(t *testing.T) {
	for code, full := range map[string]bool{"53100": true, "53200": true, "53300": true, "53400": true,
		"23505": false, "40001": false, "57P01": false, "08006": false} {
		s := &Store{d: dialectPostgres, full: new(atomic.Bool)}
		err := s.wrap(fmt.Errorf("exec: %w", &pgconn.PgError{Code: code, Message: "x"}), "create user %s", "u1")
		fe, ok := failure.As(err)
		got := ok && fe.Kind == failure.Unavailable && fe.Code == "storage_unavailable" && fe.RetryAfter > 0
		if got != full || s.full.Load() != full {
			t.Errorf("SQLSTATE %s: %v (marked full %v), want storage_unavailable %v", code, err, s.full.Load(), full)
		}
		var pe *pgconn.PgError
		if full && !errors.As(err, &pe) {
			t.Errorf("SQLSTATE %s: the driver's error is no longer in the chain, for the log: %v", code, err)
		}
		s.wrote()
		if s.full.Load() {
			t.Errorf("SQLSTATE %s: still marked full after a successful write", code)
		}
	}
}
