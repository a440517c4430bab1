package testdb_test

import (
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

func TestEachGivesMigratedStores(t *testing.T) {
	var dialects []string
	testdb.Each(t, func(t *testing.T, s *sqlstore.Store) {
		dialects = append(dialects, s.Dialect())
		if err := s.Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
		if ps, err := s.ListProjects(t.Context()); err != nil || len(ps) != 0 {
			t.Errorf("ListProjects on a fresh store = %v, %v", ps, err)
		}
	})
	if len(dialects) != 2 || dialects[0] != "sqlite" || dialects[1] != "postgres" {
		t.Errorf("Each ran %v", dialects)
	}
}

// TestPostgresURLDropsTheDatabase checks that every test gets its own database and that it is
// gone when the test ends.
func TestPostgresURLDropsTheDatabase(t *testing.T) {
	var first, second string
	t.Run("create", func(t *testing.T) {
		first, second = testdb.PostgresURL(t), testdb.PostgresURL(t)
		db, err := sql.Open("pgx", first)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		// An open connection must not keep the database from being dropped.
		if err := db.PingContext(t.Context()); err != nil {
			t.Fatalf("connect to the new database: %v", err)
		}
	})
	if first == "" {
		t.Skip("PostgreSQL is not available")
	}
	if first == second {
		t.Fatalf("two calls gave one database: %s", first)
	}
	u, err := url.Parse(first)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if !strings.HasPrefix(name, "latchkey_t_") {
		t.Errorf("database name %q", name)
	}
	base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL")
	if base == "" {
		base = testdb.DefaultPostgresURL
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var n int
	if err := admin.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after its test", name)
	}
}
