// Package testdb makes fresh, migrated databases for tests.
//
// Every call gives the test a database of its own, removed when the test ends, so tests can
// run in parallel and never see each other's rows. PostgreSQL tests use the server at
// LATCHKEY_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable);
// when it cannot be reached they are skipped, except under CI=true, where they fail.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
)

// DefaultPostgresURL is the server used when LATCHKEY_TEST_POSTGRES_URL is not set.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// setupTimeout bounds creating, migrating and dropping a test database, so that a hung server
// fails the test instead of stalling the whole run.
const setupTimeout = 30 * time.Second

// SQLite returns a migrated store on a new database file in t.TempDir(), closed when the test
// ends.
func SQLite(t testing.TB) *sqlstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	s, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "latchkey.db"))
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("testdb: close sqlite: %v", err)
		}
	})
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("testdb: migrate sqlite: %v", err)
	}
	return s
}

// Postgres returns a migrated store on a new PostgreSQL database, closed and dropped when the
// test ends.
func Postgres(t testing.TB) *sqlstore.Store {
	t.Helper()
	u := PostgresURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	s, err := sqlstore.OpenPostgres(ctx, u)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	// Registered after PostgresURL's cleanup, so it runs first: the store lets go of its
	// connections before the database is dropped.
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("testdb: close postgres: %v", err)
		}
	})
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("testdb: migrate postgres: %v", err)
	}
	return s
}

// PostgresURL creates a new, empty (not migrated) PostgreSQL database and returns its URL, for
// tests that hand a database to something else, such as the latchkey binary. The database is
// dropped when the test ends, even if connections to it are still open.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL")
	if base == "" {
		base = DefaultPostgresURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// Not u.Redacted(): the URL did not parse, and it may hold a password.
		t.Fatalf("testdb: LATCHKEY_TEST_POSTGRES_URL is not a postgres:// URL")
	}

	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("testdb: open %s: %v", u.Redacted(), err)
	}
	defer admin.Close()
	pingCtx, pingCancel := context.WithTimeout(ctx, 5*time.Second)
	err = admin.PingContext(pingCtx)
	pingCancel()
	if err != nil {
		msg := fmt.Sprintf("testdb: PostgreSQL at %s is not reachable (set LATCHKEY_TEST_POSTGRES_URL): %v", u.Redacted(), err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; PostgreSQL tests are required in CI")
		}
		t.Skip(msg)
	}

	name := "latchkey_t_" + randomHex(8)
	// The name is ours (a fixed prefix and hex digits), so it is safe to put in the statement;
	// CREATE DATABASE takes no parameters.
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testdb: create database %s: %v", name, err)
	}
	t.Cleanup(func() { dropDatabase(t, base, name) })

	dbURL := *u
	dbURL.Path = "/" + name
	dbURL.RawPath = ""
	return dbURL.String()
}

// dropDatabase removes a test database, disconnecting whoever is still on it.
func dropDatabase(t testing.TB, base, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Errorf("testdb: drop database %s: %v", name, err)
		return
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		t.Errorf("testdb: drop database %s: %v", name, err)
	}
}

// Each runs fn twice, as the subtests "sqlite" and "postgres", each with a fresh migrated
// store. The postgres subtest is skipped (or, under CI=true, fails) without a server.
func Each(t *testing.T, fn func(t *testing.T, s *sqlstore.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("testdb: read random bytes: %v", err))
	}
	return hex.EncodeToString(b)
}
