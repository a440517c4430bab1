package sqlstore

import (
	"database/sql"
)

// WriterDB exposes the write pool to the package's external tests, which check the schema
// and tamper with schema_migrations.
func (s *Store) WriterDB() *sql.DB { return s.writer }

// ReaderDB exposes the read pool to the package's external tests.
func (s *Store) ReaderDB() *sql.DB { return s.reader }

// MigrationCount is how many migrations the store embeds for its dialect.
func (s *Store) MigrationCount() int {
	ms, err := loadMigrations(migrationFiles, "migrations/"+s.d.String())
	if err != nil {
		panic(err)
	}
	return len(ms)
}
