package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Store is store.Store on SQLite or PostgreSQL. A Store from OpenSQLite or OpenPostgres is safe
// for concurrent use; the Store that InTx hands to its function is bound to that transaction
// and must not outlive it.
type Store struct {
	d dialect
	// writer runs every write and every transaction. On SQLite it is a single connection, the
	// only way SQLite allows writes without lock contention; on PostgreSQL it is the one pool.
	writer *sql.DB
	// reader runs plain reads outside a transaction. On SQLite it is a separate pool of
	// query-only connections, so reads never queue behind the writer (WAL lets them run while
	// it writes); on PostgreSQL it is the same pool as writer.
	reader *sql.DB
	// tx is set on the Store handed to an InTx function: every method then runs on it.
	tx *sql.Tx
	// full is set when a write failed for lack of space or resources, and cleared when one
	// succeeds again; while it is set, Ping probes with a write. Shared with the Stores of
	// transactions.
	full *atomic.Bool
	// log receives warnings about rows the store reads around (see store.User.Unreadable);
	// nil: slog.Default().
	log *slog.Logger
}

// SetLogger sets where the store logs what it works around, such as an unreadable stored
// document. Call it before the store is used.
func (s *Store) SetLogger(l *slog.Logger) { s.log = l }

func (s *Store) logger() *slog.Logger {
	if s.log == nil {
		return slog.Default()
	}
	return s.log
}

var _ store.Store = (*Store)(nil)

// Pool sizes. SQLite: reads are CPU-bound in-process work, so a few connections per core;
// PostgreSQL: enough for the 50-way races in the conformance suite and a busy instance, well
// under the server's default max_connections of 100 so that several instances fit.
const (
	pgMaxOpenConns    = 20
	pgMaxIdleConns    = 10
	pgConnMaxLifetime = 30 * time.Minute
	pgConnMaxIdleTime = 5 * time.Minute
)

// OpenSQLite opens (creating if needed) the SQLite database file at path, with its parent
// directory. The file is created readable by its owner only, as it holds every secret hash. It
// runs WAL with synchronous=FULL and foreign keys on; writes and transactions go through a
// single connection and plain reads through a pool of read-only ones. path is a plain file
// name: SQLite URIs and ":memory:" are refused (a memory database would differ per connection).
// Call Migrate before use.
func OpenSQLite(ctx context.Context, path string) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.Contains(path, "?") {
		return nil, fmt.Errorf("open sqlite: %q is not a plain file path", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open sqlite: create directory: %w", err)
	}
	// Create the file ourselves so that it gets mode 0600; SQLite would use 0644. SQLite gives
	// the -wal and -shm files the mode of the database file.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}

	writer, err := sql.Open("sqlite", sqliteWriterDSN(path))
	if err != nil {
		return nil, fmt.Errorf("open sqlite writer: %w", err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	// The writer connects first: it switches the file to WAL, which the readers rely on.
	if err := writer.PingContext(ctx); err != nil {
		writer.Close()
		return nil, fmt.Errorf("open sqlite writer: %w", err)
	}

	reader, err := sql.Open("sqlite", sqliteReaderDSN(path))
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("open sqlite reader: %w", err)
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	reader.SetMaxOpenConns(n)
	reader.SetMaxIdleConns(n)
	reader.SetConnMaxIdleTime(5 * time.Minute)
	if err := reader.PingContext(ctx); err != nil {
		reader.Close()
		writer.Close()
		return nil, fmt.Errorf("open sqlite reader: %w", err)
	}
	return &Store{d: dialectSQLite, writer: writer, reader: reader, full: new(atomic.Bool)}, nil
}

// OpenPostgres connects to the PostgreSQL database at url (a postgres:// URL or a key=value
// connection string, as pgx accepts) and checks that it answers. Call Migrate before use.
func OpenPostgres(ctx context.Context, url string) (*Store, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		// pgx's parse errors can quote the connection string, password included.
		return nil, errors.New("open postgres: invalid connection string")
	}
	db.SetMaxOpenConns(pgMaxOpenConns)
	db.SetMaxIdleConns(pgMaxIdleConns)
	db.SetConnMaxLifetime(pgConnMaxLifetime)
	db.SetConnMaxIdleTime(pgConnMaxIdleTime)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return &Store{d: dialectPostgres, writer: db, reader: db, full: new(atomic.Bool)}, nil
}

// Dialect names the database: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.String() }

// Collectors returns Prometheus collectors of the connection pools' statistics, one per pool:
// db_name "latchkey_writer" and "latchkey_reader" on SQLite, "latchkey" on PostgreSQL.
func (s *Store) Collectors() []prometheus.Collector {
	if s.d == dialectSQLite {
		return []prometheus.Collector{
			collectors.NewDBStatsCollector(s.writer, "latchkey_writer"),
			collectors.NewDBStatsCollector(s.reader, "latchkey_reader"),
		}
	}
	return []prometheus.Collector{collectors.NewDBStatsCollector(s.writer, "latchkey")}
}

// Ping reports whether the database answers and, after a write failed for lack of space or
// resources, whether a write succeeds again: only then does it write (a probe row in
// spent_challenges that the sweeper removes), so that a healthy server's readiness checks
// never write.
func (s *Store) Ping(ctx context.Context) error {
	if s.tx == nil && s.full.Load() {
		_, err := s.exec(ctx, `INSERT INTO spent_challenges (challenge_key, expires_at) VALUES ('latchkey:write-probe', 0)
			ON CONFLICT (challenge_key) DO UPDATE SET expires_at = 1 - spent_challenges.expires_at`)
		if err != nil {
			return fmt.Errorf("ping: write probe: %w", s.storage(err))
		}
		return nil
	}
	if s.tx != nil {
		var one int
		if err := s.tx.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			return fmt.Errorf("ping: %w", err)
		}
		return nil
	}
	if err := s.writer.PingContext(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if s.reader != s.writer {
		if err := s.reader.PingContext(ctx); err != nil {
			return fmt.Errorf("ping: %w", err)
		}
	}
	return nil
}

// Close releases the database. It is an error on the Store of a transaction: that store does
// not own the database.
func (s *Store) Close() error {
	if s.tx != nil {
		return errors.New("sqlstore: Close called on a transaction's store")
	}
	var errs []error
	if s.reader != s.writer {
		errs = append(errs, s.reader.Close())
	}
	errs = append(errs, s.writer.Close())
	return errors.Join(errs...)
}

// InTx runs fn in one transaction: all of fn's writes commit together or not at all. The Store
// passed to fn runs every method on the transaction; calling InTx on it runs fn inline, in the
// same transaction. fn runs once: it is not retried.
//
// On SQLite the transaction holds the only write connection until it ends, so fn must use the
// Store it is given, never the outer one (which would wait for the connection fn holds), and
// should be short.
func (s *Store) InTx(ctx context.Context, fn func(tx store.Store) error) error {
	if s.tx != nil {
		return fn(s)
	}
	return s.atomic(ctx, func(tx *Store) error { return fn(tx) })
}

// atomic runs fn so that its writes happen all or not at all: in a new transaction, or, when s
// is already in one, inside a savepoint, so that a failure of fn undoes fn's writes but leaves
// the caller's transaction usable (on PostgreSQL a failed statement would otherwise abort it).
func (s *Store) atomic(ctx context.Context, fn func(tx *Store) error) error {
	if s.tx != nil {
		return s.savepoint(ctx, fn)
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", s.storage(err))
	}
	bound := *s
	bound.tx = tx
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(&bound); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", s.storage(err))
	}
	s.wrote()
	return nil
}

// guarded runs fn, a single statement that may fail on a constraint, so that a failure leaves
// the caller's transaction usable on every dialect (see dialect.statementsNeedSavepoint).
func (s *Store) guarded(ctx context.Context, fn func(s *Store) error) error {
	if s.tx != nil && s.d.statementsNeedSavepoint() {
		return s.savepoint(ctx, fn)
	}
	return fn(s)
}

// savepoint runs fn inside a savepoint of the current transaction. Savepoints of one name
// nest: RELEASE and ROLLBACK TO act on the innermost, on both SQLite and PostgreSQL.
func (s *Store) savepoint(ctx context.Context, fn func(s *Store) error) error {
	if _, err := s.tx.ExecContext(ctx, "SAVEPOINT latchkey_sp"); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_, _ = s.tx.ExecContext(context.WithoutCancel(ctx), "ROLLBACK TO SAVEPOINT latchkey_sp")
			panic(p)
		}
	}()
	if err := fn(s); err != nil {
		// WithoutCancel: if ctx ended, the rollback must still run for the transaction to stay
		// usable (database/sql rolls the whole transaction back anyway when ctx ends).
		if _, rbErr := s.tx.ExecContext(context.WithoutCancel(ctx), "ROLLBACK TO SAVEPOINT latchkey_sp"); rbErr != nil {
			return errors.Join(err, fmt.Errorf("rollback to savepoint: %w", rbErr))
		}
		if _, rlErr := s.tx.ExecContext(context.WithoutCancel(ctx), "RELEASE SAVEPOINT latchkey_sp"); rlErr != nil {
			return errors.Join(err, fmt.Errorf("release savepoint: %w", rlErr))
		}
		return err
	}
	if _, err := s.tx.ExecContext(ctx, "RELEASE SAVEPOINT latchkey_sp"); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) writeDB() querier {
	if s.tx != nil {
		return s.tx
	}
	return s.writer
}

func (s *Store) readDB() querier {
	if s.tx != nil {
		return s.tx
	}
	return s.reader
}

// exec runs a write statement.
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	res, err := s.writeDB().ExecContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, s.storage(err)
	}
	if s.tx == nil { // in a transaction, only the commit says the write is stored
		s.wrote()
	}
	return res, nil
}

// storage turns an error that says the database cannot store more into
// failure.StorageUnavailable (503 storage_unavailable with Retry-After), and remembers that
// writes fail until one succeeds; other errors pass through.
func (s *Store) storage(err error) error {
	if err == nil || !s.d.isStorageFull(err) {
		return err
	}
	if _, done := failure.As(err); done {
		return err
	}
	s.full.Store(true)
	return failure.StorageUnavailable(err)
}

// wrote notes that a write succeeded: the database has room again.
func (s *Store) wrote() {
	if s.full.Load() {
		s.full.Store(false)
	}
}

// execAffected runs a write statement and returns how many rows it changed.
func (s *Store) execAffected(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := s.exec(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// writeRow runs a write statement with a RETURNING clause.
func (s *Store) writeRow(ctx context.Context, q string, args ...any) *sql.Row {
	return s.writeDB().QueryRowContext(ctx, s.d.rebind(q), args...)
}

// writeQuery runs a write statement with a RETURNING clause that yields many rows.
func (s *Store) writeQuery(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return s.writeDB().QueryContext(ctx, s.d.rebind(q), args...)
}

// query runs a read. Inside a transaction it reads the transaction's own writes.
func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return s.readDB().QueryContext(ctx, s.d.rebind(q), args...)
}

// queryRow runs a read of one row.
func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return s.readDB().QueryRowContext(ctx, s.d.rebind(q), args...)
}

// wrap adds context to err and translates it into the store's errors: a missing row becomes
// store.ErrNotFound, a unique violation store.ErrConflict and a foreign key violation (a parent
// that is not in the project) store.ErrNotFound. The driver's message is kept for the log; it
// names the constraint, never the offending value.
func (s *Store) wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	op := fmt.Sprintf(format, args...)
	err = s.storage(err)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%s: %w", op, err)
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	case s.d.isUniqueViolation(err):
		return fmt.Errorf("%s: %w (%v)", op, store.ErrConflict, err)
	case s.d.isForeignKeyViolation(err):
		return fmt.Errorf("%s: %w (%v)", op, store.ErrNotFound, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// mustAffect turns "zero rows changed" into store.ErrNotFound.
func mustAffect(n int64, err error) error {
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}
