// Package sqlstore is the one SQL implementation of store.Store, for SQLite (the embedded
// default) and PostgreSQL; dialect.go holds the differences between the two.
package sqlstore

import (
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)
