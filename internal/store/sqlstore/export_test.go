package sqlstore

import (
	"database/sql"
)

// WriterDB exposes the write pool to the package's external tests, which check the schema
// and tamper with schema_migrations.
func (s *Store) WriterDB() *sql.DB { return s.writer }

// ReaderDB exposes the read pool to the package's external tests.
func (s *Store) ReaderDB() *sql.DB { return s.reader }
