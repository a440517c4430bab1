package sqlstore_test

import (
	"testing"

	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/storetest"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestConformance runs the store conformance suite on both databases. The postgres half is
// skipped when no server answers, except under CI=true, where it fails.
func TestConformance(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		storetest.Run(t, func(t *testing.T) store.Store { return testdb.SQLite(t) })
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		storetest.Run(t, func(t *testing.T) store.Store { return testdb.Postgres(t) })
	})
}
