package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Values cross the database boundary in forms both dialects store the same way: times as
// BIGINT unix microseconds (UTC, so no time zone or driver time handling is involved), JSON
// documents as TEXT, optional strings as NULL.

// toMicros is the stored form of t.
func toMicros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros is the time.Time of a stored time, in UTC.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// toNullMicros is the stored form of an optional time.
func toNullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

// fromNullMicros is the optional time of a stored one.
func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// nullString stores "" as NULL: used for columns where "none" must not collide in a unique
// index (a user's email and phone).
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// docText is the stored form of a JSON document given as bytes. Binding a string, not bytes,
// keeps it TEXT on both dialects (pgx would send bytes as bytea).
func docText(b []byte) string { return string(b) }

// docBytes is the document read back; an empty document reads as nil.
func docBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// stringsJSON encodes a string list; nil is stored as [].
func stringsJSON(v []string) (string, error) {
	if v == nil {
		return "[]", nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// stringsFromJSON decodes a string list; it is never nil.
func stringsFromJSON(s string) ([]string, error) {
	v := []string{}
	if s == "" {
		return v, nil
	}
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("decode string list: %w", err)
	}
	if v == nil { // the document was null
		v = []string{}
	}
	return v, nil
}

// objectJSON encodes a JSON object; nil is stored as {}.
func objectJSON(v map[string]any) (string, error) {
	if v == nil {
		return "{}", nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// objectFromJSON decodes a JSON object; it is never nil. Numbers come back as float64, as
// encoding/json decodes them.
func objectFromJSON(s string) (map[string]any, error) {
	v := map[string]any{}
	if s == "" {
		return v, nil
	}
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}
	if v == nil { // the document was null
		v = map[string]any{}
	}
	return v, nil
}

// inChunk bounds how many values go into one IN (...) list, well under SQLite's and
// PostgreSQL's limits on bound parameters.
const inChunk = 500

// placeholders returns "?, ?, ..." with n marks.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// sortedUnique returns the distinct values of ids in ascending order, in a new slice. Writes
// touch rows in this order so that two PostgreSQL transactions lock shared rows in the same
// order and cannot deadlock.
func sortedUnique(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// chunks splits ids into consecutive pieces of at most inChunk values.
func chunks(ids []string) [][]string {
	var out [][]string
	for len(ids) > inChunk {
		out = append(out, ids[:inChunk])
		ids = ids[inChunk:]
	}
	if len(ids) > 0 {
		out = append(out, ids)
	}
	return out
}

// withIDs appends the ids to the leading arguments of a query.
func withIDs(lead []any, ids []string) []any {
	out := make([]any, 0, len(lead)+len(ids))
	out = append(out, lead...)
	for _, id := range ids {
		out = append(out, id)
	}
	return out
}

// pageClause is the ORDER BY and LIMIT of a page ascending by col, with col > after already
// filtered by the caller. A limit of zero or less means no limit.
func pageClause(col string, limit int) (string, []any) {
	if limit <= 0 {
		return " ORDER BY " + col, nil
	}
	return " ORDER BY " + col + " LIMIT ?", []any{limit}
}

// newestFirst is the tail of a listing newest first by (created_at, id), which follows its
// WHERE clause: rows below the one whose id is before ("" for the newest), at most limit (zero
// or less: no limit). Ids carry only the second they were made in, so rows of one second would
// come in random order by id alone. The cursor stays an id: owner (a condition on table, with
// its args) says whose rows it may name, and found is false when it names none of them, so
// that nothing is below it.
func (s *Store) newestFirst(ctx context.Context, table, owner string, ownerArgs []any, before string, limit int) (tail string, args []any, found bool, err error) {
	if before != "" {
		var at int64
		err := s.queryRow(ctx, `SELECT created_at FROM `+table+` WHERE `+owner+` AND id = ?`, append(ownerArgs, before)...).Scan(&at)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil, false, nil
		}
		if err != nil {
			return "", nil, false, fmt.Errorf("find the cursor's row: %w", err)
		}
		tail, args = ` AND (created_at < ? OR (created_at = ? AND id < ?))`, []any{at, at, before}
	}
	tail += ` ORDER BY created_at DESC, id DESC`
	if limit > 0 {
		tail, args = tail+` LIMIT ?`, append(args, limit)
	}
	return tail, args, true, nil
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}
