package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

const recoveryCodeColumns = `id, project_id, user_id, hash, created_at, used_at`

// ReplaceRecoveryCodes deletes the user's set and inserts the new one in one transaction (a
// savepoint inside the caller's), so a failure leaves the old set in place. It first locks the
// user's row: two concurrent replacements then run one after the other, and the second deletes
// the first's set instead of both sets ending up merged.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, projectID, userID string, codes []store.RecoveryCode) error {
	err := s.atomic(ctx, func(s *Store) error {
		var one int
		if err := s.queryRow(ctx, `SELECT 1 FROM users WHERE project_id = ? AND id = ?`+s.d.forUpdate(),
			projectID, userID).Scan(&one); err != nil {
			return err // ErrNoRows: no such user in the project
		}
		if _, err := s.exec(ctx, `DELETE FROM recovery_codes WHERE project_id = ? AND user_id = ?`,
			projectID, userID); err != nil {
			return err
		}
		for _, c := range codes {
			if c.ProjectID != projectID || c.UserID != userID {
				return fmt.Errorf("recovery code %s is not of user %s in project %s", c.ID, userID, projectID)
			}
			if _, err := s.exec(ctx, `INSERT INTO recovery_codes (`+recoveryCodeColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
				c.ID, c.ProjectID, c.UserID, nonNilBytes(c.Hash), toMicros(c.CreatedAt), toNullMicros(c.UsedAt)); err != nil {
				return err
			}
		}
		return nil
	})
	return s.wrap(err, "replace recovery codes of user %s", userID)
}

// UseRecoveryCode is one UPDATE whose WHERE clause requires the code to be unused, so of any
// number of concurrent callers exactly one changes the row: on SQLite writes are serialised;
// on PostgreSQL the losers wait for the winner's row lock, re-check the condition against the
// committed row and match nothing.
func (s *Store) UseRecoveryCode(ctx context.Context, projectID, userID string, hash []byte, at time.Time) (store.RecoveryCode, error) {
	c, err := scanRecoveryCode(s.writeRow(ctx, `UPDATE recovery_codes SET used_at = ?
		WHERE project_id = ? AND user_id = ? AND hash = ? AND used_at IS NULL
		RETURNING `+recoveryCodeColumns,
		toMicros(at), projectID, userID, nonNilBytes(hash)))
	// The hash stays out of the error: it is the lookup key of a live code.
	return c, s.wrap(err, "use a recovery code of user %s", userID)
}

// CountRecoveryCodes returns how many of the user's codes are unused.
func (s *Store) CountRecoveryCodes(ctx context.Context, projectID, userID string) (int, error) {
	var n int
	err := s.queryRow(ctx, `SELECT COUNT(*) FROM recovery_codes WHERE project_id = ? AND user_id = ? AND used_at IS NULL`,
		projectID, userID).Scan(&n)
	return n, s.wrap(err, "count recovery codes of user %s", userID)
}

func scanRecoveryCode(sc scanner) (store.RecoveryCode, error) {
	var c store.RecoveryCode
	var created int64
	var used sql.NullInt64
	if err := sc.Scan(&c.ID, &c.ProjectID, &c.UserID, &c.Hash, &created, &used); err != nil {
		return store.RecoveryCode{}, err
	}
	c.CreatedAt, c.UsedAt = fromMicros(created), fromNullMicros(used)
	return c, nil
}
