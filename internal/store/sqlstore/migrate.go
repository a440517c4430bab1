package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew is returned (wrapped) by Migrate when the database has a migration this
// binary does not know: a newer latchkey migrated it, and running an older one against it
// could corrupt data.
var ErrSchemaTooNew = errors.New("sqlstore: database schema is newer than this binary")

// migration is one forward-only schema change.
type migration struct {
	version int
	name    string // the file name without the number and extension, e.g. "foundation"
	sql     string
}

// migrationName is the form of a migration file name: a four-digit version, an underscore and
// a snake_case name.
var migrationName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

// loadMigrations reads the embedded migrations of one dialect, checking that they are numbered
// 1, 2, 3, ... without gaps.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []migration
	for _, e := range entries { // ReadDir sorts by name, so by version
		m := migrationName.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil {
			return nil, fmt.Errorf("migrations: unexpected file %s/%s", dir, e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v != len(out)+1 {
			return nil, fmt.Errorf("migrations: %s/%s: expected version %04d", dir, e.Name(), len(out)+1)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration: %w", err)
		}
		out = append(out, migration{version: v, name: m[2], sql: string(b)})
	}
	return out, nil
}

// Migrate brings the schema up to date by applying, in order, the embedded migrations the
// database has not had yet, each in its own transaction together with its row in
// schema_migrations. It does nothing when the schema is current; it fails with ErrSchemaTooNew
// when the database has a migration this binary does not know, and when an applied
// migration's recorded name differs from the binary's. Several processes may migrate one
// database at once: on PostgreSQL they take turns on an advisory lock, on SQLite on the write
// lock, and each migration is applied exactly once.
func (s *Store) Migrate(ctx context.Context) error {
	if s.tx != nil {
		return errors.New("migrate: called on a transaction's store")
	}
	known, err := loadMigrations(migrationFiles, "migrations/"+s.d.String())
	if err != nil {
		return err
	}

	// One connection for the whole run: the PostgreSQL advisory lock belongs to a session.
	conn, err := s.writer.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	unlock, err := s.d.lockMigrations(ctx, conn)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer unlock()

	if _, err := conn.ExecContext(ctx, s.d.createMigrationsTable()); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	applied, err := appliedMigrations(ctx, conn)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := checkApplied(applied, known); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, m := range known {
		if _, ok := applied[m.version]; ok {
			continue
		}
		if err := s.applyMigration(ctx, conn, m); err != nil {
			return fmt.Errorf("migrate: %04d_%s: %w", m.version, m.name, err)
		}
	}
	return nil
}

// appliedMigrations returns the recorded migrations, name by version.
func appliedMigrations(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) (map[int]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT version, name FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	out := map[int]string{}
	for rows.Next() {
		var v int
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		out[v] = name
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return out, nil
}

// checkApplied refuses a database that has migrations the binary does not know, or whose
// recorded names disagree with the binary's (a renamed or replaced migration).
func checkApplied(applied map[int]string, known []migration) error {
	for v, name := range applied {
		if v < 1 || v > len(known) {
			return fmt.Errorf("%w: it has migration %04d_%s, this binary knows up to %04d; run a newer latchkey",
				ErrSchemaTooNew, v, name, len(known))
		}
		if k := known[v-1]; k.name != name {
			return fmt.Errorf("migration %04d is %q in the database but %q in this binary", v, name, k.name)
		}
	}
	return nil
}

// applyMigration runs m and records it, in one transaction. It re-checks inside the
// transaction that m is still missing: on SQLite another process may have applied it between
// our read of schema_migrations and our BEGIN IMMEDIATE.
func (s *Store) applyMigration(ctx context.Context, conn *sql.Conn, m migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	var n int
	if err := tx.QueryRowContext(ctx, s.d.rebind("SELECT COUNT(*) FROM schema_migrations WHERE version = ?"), m.version).Scan(&n); err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if step := goSteps[m.version]; step != nil {
		if err := step(ctx, tx, s.d); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
		m.version, m.name, toMicros(time.Now())); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// goSteps are the parts of migrations that SQL cannot express, run after the migration's SQL
// in its transaction, by version. Like the SQL, a step is never changed once shipped.
var goSteps = map[int]func(ctx context.Context, tx *sql.Tx, d dialect) error{
	15: rekeyEmails,
}

// rekeyEmails recomputes users.email_key with store.EmailKey (migration 0015). Rows are read
// first and then updated: a PostgreSQL connection cannot update while a result set is open.
// The new keys cannot collide: two addresses that share a new key (they differ only in A–Z
// case and in the IDNA form of the domain) shared the old one too, which was unique.
func rekeyEmails(ctx context.Context, tx *sql.Tx, d dialect) error {
	rows, err := tx.QueryContext(ctx, "SELECT id, email, email_key FROM users WHERE email IS NOT NULL")
	if err != nil {
		return fmt.Errorf("read email keys: %w", err)
	}
	type rekey struct{ id, key string }
	var changed []rekey
	for rows.Next() {
		var id, email string
		var key sql.NullString
		if err := rows.Scan(&id, &email, &key); err != nil {
			rows.Close()
			return fmt.Errorf("read email keys: %w", err)
		}
		if k := store.EmailKey(email); !key.Valid || k != key.String {
			changed = append(changed, rekey{id, k})
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read email keys: %w", err)
	}
	rows.Close()
	for _, c := range changed {
		if _, err := tx.ExecContext(ctx, d.rebind("UPDATE users SET email_key = ? WHERE id = ?"), c.key, c.id); err != nil {
			return fmt.Errorf("rekey the email of user %s: %w", c.id, err)
		}
	}
	return nil
}
