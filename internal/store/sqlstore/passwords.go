package sqlstore

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// GetPasswordHash returns the user's encoded password hash.
func (s *Store) GetPasswordHash(ctx context.Context, projectID, userID string) (string, error) {
	var hash string
	err := s.queryRow(ctx, `SELECT hash FROM user_passwords WHERE project_id = ? AND user_id = ?`,
		projectID, userID).Scan(&hash)
	return hash, s.wrap(err, "get password of user %s", userID)
}

// SetPasswordHash upserts the user's hash.
func (s *Store) SetPasswordHash(ctx context.Context, projectID, userID, hash string, at time.Time) error {
	err := s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO user_passwords (project_id, user_id, hash, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (project_id, user_id) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at`,
			projectID, userID, hash, toMicros(at))
		return err
	})
	return s.wrap(err, "set password of user %s", userID)
}

// UpgradePasswordHash is one conditioned UPDATE.
func (s *Store) UpgradePasswordHash(ctx context.Context, projectID, userID, old, hash string, at time.Time) error {
	err := s.guarded(ctx, func(s *Store) error {
		return mustAffect(s.execAffected(ctx, `UPDATE user_passwords SET hash = ?, updated_at = ?
			WHERE project_id = ? AND user_id = ? AND hash = ?`, hash, toMicros(at), projectID, userID, old))
	})
	return s.wrap(err, "upgrade password of user %s", userID)
}

// DeletePasswordHash removes the user's password.
func (s *Store) DeletePasswordHash(ctx context.Context, projectID, userID string) error {
	_, err := s.exec(ctx, `DELETE FROM user_passwords WHERE project_id = ? AND user_id = ?`, projectID, userID)
	return s.wrap(err, "delete password of user %s", userID)
}

// CountPasswordHashPrefixes groups the project's hashes by their first 7 bytes.
func (s *Store) CountPasswordHashPrefixes(ctx context.Context, projectID string) ([]store.PrefixCount, error) {
	rows, err := s.query(ctx, `SELECT substr(hash, 1, 7), COUNT(*) FROM user_passwords WHERE project_id = ?
		GROUP BY substr(hash, 1, 7)`, projectID)
	if err != nil {
		return nil, s.wrap(err, "count password hashes")
	}
	out, err := collect(rows, func(sc scanner) (store.PrefixCount, error) {
		var c store.PrefixCount
		return c, sc.Scan(&c.Prefix, &c.Count)
	})
	// Sorted here: the databases' collations order "$2" and "$a" differently.
	slices.SortFunc(out, func(a, b store.PrefixCount) int { return strings.Compare(a.Prefix, b.Prefix) })
	return out, s.wrap(err, "count password hashes")
}
