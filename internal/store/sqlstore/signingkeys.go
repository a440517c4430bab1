package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

const signingKeyColumns = `id, project_id, algorithm, private_key, public_jwk, created_at, activates_at, retires_at`

// CreateSigningKey stores k; ErrConflict on a duplicate id, ErrNotFound when its project does
// not exist.
func (s *Store) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	err := s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO signing_keys (`+signingKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			k.ID, k.ProjectID, k.Algorithm, k.PrivateKey, docText(k.PublicJWK),
			toMicros(k.CreatedAt), toMicros(k.ActivatesAt), toNullMicros(k.RetiresAt))
		return err
	})
	return s.wrap(err, "create signing key %s", k.ID)
}

// ListSigningKeys returns the project's keys not retired at `at`, by activation then id.
func (s *Store) ListSigningKeys(ctx context.Context, projectID string, at time.Time) ([]store.SigningKey, error) {
	rows, err := s.query(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys
		WHERE project_id = ? AND (retires_at IS NULL OR retires_at > ?)
		ORDER BY activates_at, id`, projectID, toMicros(at))
	if err != nil {
		return nil, s.wrap(err, "list signing keys of project %s", projectID)
	}
	out, err := collect(rows, scanSigningKey)
	return out, s.wrap(err, "list signing keys of project %s", projectID)
}

// ListPublishedSigningKeys returns every project's keys not retired at `at`, by activation then
// id. It reads the whole table, which holds a few keys per project; each instance reads it once
// per key-cache TTL.
func (s *Store) ListPublishedSigningKeys(ctx context.Context, at time.Time) ([]store.SigningKey, error) {
	rows, err := s.query(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys
		WHERE retires_at IS NULL OR retires_at > ?
		ORDER BY activates_at, id`, toMicros(at))
	if err != nil {
		return nil, s.wrap(err, "list published signing keys")
	}
	out, err := collect(rows, scanSigningKey)
	return out, s.wrap(err, "list published signing keys")
}

// RetireSigningKeys makes every other key of the project retire at `at` unless it retires
// earlier already.
func (s *Store) RetireSigningKeys(ctx context.Context, projectID, keepID string, at time.Time) error {
	_, err := s.exec(ctx, `UPDATE signing_keys SET retires_at = ?
		WHERE project_id = ? AND id <> ? AND (retires_at IS NULL OR retires_at > ?)`,
		toMicros(at), projectID, keepID, toMicros(at))
	return s.wrap(err, "retire signing keys of project %s", projectID)
}

func scanSigningKey(sc scanner) (store.SigningKey, error) {
	var k store.SigningKey
	var jwk string
	var created, activates int64
	var retires sql.NullInt64
	if err := sc.Scan(&k.ID, &k.ProjectID, &k.Algorithm, &k.PrivateKey, &jwk, &created, &activates, &retires); err != nil {
		return store.SigningKey{}, err
	}
	k.PublicJWK = docBytes(jwk)
	k.CreatedAt = fromMicros(created)
	k.ActivatesAt = fromMicros(activates)
	k.RetiresAt = fromNullMicros(retires)
	return k, nil
}

// sealedColumns lists every column that holds secretbox ciphertexts, for RewrapSealed. A new
// sealed column is not done until it is listed here (the conformance suite checks rewrapping).
var sealedColumns = []struct {
	table, column string
	check         bool // the master key check: rewrapped like a secret, but it is none
}{
	{"signing_keys", "private_key", false},
	{"outbox", "payload", false},
	{"mfa_factors", "secret", false},
	{"webhooks", "secret", false},
	{"master_key_check", "canary", true},
}

// RewrapSealed rewraps every sealed value. Each change is a compare-and-set on the value read,
// so a concurrent rotation or write is never overwritten with a stale value.
func (s *Store) RewrapSealed(ctx context.Context, rewrap func([]byte) ([]byte, bool, error)) (int, error) {
	changed := 0
	for _, c := range sealedColumns {
		type row struct {
			id     string
			sealed []byte
		}
		rows, err := s.query(ctx, fmt.Sprintf(`SELECT id, %s FROM %s ORDER BY id`, c.column, c.table))
		if err != nil {
			return changed, s.wrap(err, "read %s.%s", c.table, c.column)
		}
		all, err := collect(rows, func(sc scanner) (row, error) {
			var r row
			return r, sc.Scan(&r.id, &r.sealed)
		})
		if err != nil {
			return changed, s.wrap(err, "read %s.%s", c.table, c.column)
		}
		for _, r := range all {
			if len(r.sealed) == 0 { // content already dropped (a delivered message)
				continue
			}
			next, ok, err := rewrap(r.sealed)
			if err != nil {
				return changed, fmt.Errorf("rewrap %s.%s of %s: %w", c.table, c.column, r.id, err)
			}
			if !ok || bytes.Equal(next, r.sealed) {
				continue
			}
			n, err := s.execAffected(ctx, fmt.Sprintf(`UPDATE %s SET %s = ? WHERE id = ? AND %s = ?`, c.table, c.column, c.column),
				next, r.id, r.sealed)
			if err != nil {
				return changed, s.wrap(err, "save rewrapped %s.%s of %s", c.table, c.column, r.id)
			}
			if !c.check {
				changed += int(n)
			}
		}
	}
	return changed, nil
}
