package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// This file holds every difference between SQLite and PostgreSQL. The rest of the package
// writes one query text (with ? placeholders) and one code path for both.

// dialect names the SQL database behind a Store.
type dialect int

const (
	dialectSQLite dialect = iota + 1
	dialectPostgres
)

func (d dialect) String() string {
	switch d {
	case dialectSQLite:
		return "sqlite"
	case dialectPostgres:
		return "postgres"
	}
	return "unknown"
}

// sqliteBusyTimeoutMS is how long a SQLite connection waits for a lock held by another process
// (a second latchkey on the same file, a backup) before giving up with SQLITE_BUSY.
const sqliteBusyTimeoutMS = 10000

// sqliteWriterDSN is the DSN of the one writer connection. The pragmas go in the DSN so that a
// connection reopened by database/sql gets them too. _txlock=immediate takes the write lock at
// BEGIN, so a transaction never fails half-way with SQLITE_BUSY when it upgrades from read to
// write; synchronous=FULL makes every commit durable before it returns.
func sqliteWriterDSN(path string) string {
	q := url.Values{}
	q.Set("_txlock", "immediate")
	q.Add("_pragma", "busy_timeout("+strconv.Itoa(sqliteBusyTimeoutMS)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	return path + "?" + q.Encode()
}

// sqliteReaderDSN is the DSN of the read pool. query_only makes a write sent to a reader by
// mistake fail loudly instead of competing with the writer for the lock. journal_mode is left
// alone: the writer has already put the file in WAL mode, which is persistent, and setting it
// would be a write.
func sqliteReaderDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.Itoa(sqliteBusyTimeoutMS)+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_query_only", "1")
	return path + "?" + q.Encode()
}

// rebind turns the ? placeholders of q into the dialect's form: $1, $2, ... for PostgreSQL.
// Queries in this package never contain a literal question mark, so a plain scan is enough.
func (d dialect) rebind(q string) string {
	if d != dialectPostgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// forUpdate is the suffix that locks the selected rows until the transaction ends. SQLite needs
// none: its one writer connection and BEGIN IMMEDIATE already serialise every write
// transaction. On PostgreSQL (READ COMMITTED) it makes two concurrent replacements of one row's
// children (a role's permissions, a member's roles) run one after the other instead of mixing.
func (d dialect) forUpdate() string {
	if d == dialectPostgres {
		return " FOR UPDATE"
	}
	return ""
}

// skipLocked is the suffix of a locking subquery that passes over rows other transactions
// hold, so that concurrent claimers take disjoint rows instead of queueing (PostgreSQL only).
func (d dialect) skipLocked() string {
	if d == dialectPostgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// statementsNeedSavepoint reports whether a failed statement spoils the whole transaction it
// runs in. PostgreSQL aborts the transaction on any error, so a method that may fail with a
// constraint violation runs inside a savepoint there when the caller holds a transaction; on
// SQLite a failed statement is undone on its own and the transaction goes on.
func (d dialect) statementsNeedSavepoint() bool { return d == dialectPostgres }

// isUniqueViolation reports whether err is a unique or primary key violation.
func (d dialect) isUniqueViolation(err error) bool {
	switch d {
	case dialectSQLite:
		var se *sqlite.Error
		if errors.As(err, &se) {
			return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
		}
	case dialectPostgres:
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return pe.Code == "23505" // unique_violation
		}
	}
	return false
}

// isForeignKeyViolation reports whether err is a foreign key violation: a row refers to a
// parent that does not exist (in its project: the keys include project_id).
func (d dialect) isForeignKeyViolation(err error) bool {
	switch d {
	case dialectSQLite:
		var se *sqlite.Error
		if errors.As(err, &se) {
			return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
		}
	case dialectPostgres:
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return pe.Code == "23503" // foreign_key_violation
		}
	}
	return false
}

// isStorageFull reports whether err says the database cannot store more: SQLite's
// SQLITE_FULL ("database or disk is full") or an I/O error (SQLITE_IOERR and its extended
// codes, which a failing or full disk gives too), or PostgreSQL's class 53, insufficient
// resources (disk_full 53100, out_of_memory, too_many_connections, ...).
func (d dialect) isStorageFull(err error) bool {
	switch d {
	case dialectSQLite:
		var se *sqlite.Error
		if errors.As(err, &se) {
			primary := se.Code() & 0xff
			return primary == sqlite3.SQLITE_FULL || primary == sqlite3.SQLITE_IOERR
		}
	case dialectPostgres:
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return strings.HasPrefix(pe.Code, "53")
		}
	}
	return false
}

// createMigrationsTable is the DDL of the table that records applied migrations. It lives in
// code, not in a migration, because Migrate needs it before it can run the first migration.
func (d dialect) createMigrationsTable() string {
	if d == dialectPostgres {
		return `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at BIGINT  NOT NULL
)`
	}
	return `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at INTEGER NOT NULL
) STRICT`
}

// migrationLockKey is the PostgreSQL advisory lock key that Migrate holds: "latchkey" in ASCII.
const migrationLockKey int64 = 0x6c617463686b6579

// lockMigrations makes concurrent Migrate calls on one database take turns. On PostgreSQL it
// takes a session advisory lock on conn, a connection reserved for the whole migration run.
// SQLite needs no lock here: each migration runs in a BEGIN IMMEDIATE transaction that
// re-checks whether another process applied it first.
func (d dialect) lockMigrations(ctx context.Context, conn *sql.Conn) (unlock func(), err error) {
	if d != dialectPostgres {
		return func() {}, nil
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
		return nil, fmt.Errorf("take migration lock: %w", err)
	}
	return func() {
		// A background context: the lock must go even when ctx is already cancelled.
		if _, err := conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", migrationLockKey); err != nil {
			// The session still holds the lock; drop the connection rather than hand a
			// locked session back to the pool, where it would block every later Migrate.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}, nil
}
