package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

const mfaChallengeColumns = `id, project_id, user_id, token_hash, connection_type, amr, attempts, max_attempts, status,
	created_at, expires_at, completed_at`

// CreateMFAChallenge stores c; ErrNotFound when its user does not exist.
func (s *Store) CreateMFAChallenge(ctx context.Context, c store.MFAChallenge) error {
	amr, err := stringsJSON(c.AMR)
	if err != nil {
		return s.wrap(err, "create MFA challenge %s", c.ID)
	}
	err = s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO mfa_challenges (`+mfaChallengeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.ProjectID, c.UserID, c.TokenHash, c.ConnectionType, amr, c.Attempts, c.MaxAttempts, c.Status,
			toMicros(c.CreatedAt), toMicros(c.ExpiresAt), toNullMicros(c.CompletedAt))
		return err
	})
	return s.wrap(err, "create MFA challenge %s", c.ID)
}

// GetMFAChallenge returns the project's challenge with the token hash.
func (s *Store) GetMFAChallenge(ctx context.Context, projectID string, tokenHash []byte) (store.MFAChallenge, error) {
	c, err := scanMFAChallenge(s.queryRow(ctx, `SELECT `+mfaChallengeColumns+` FROM mfa_challenges
		WHERE project_id = ? AND token_hash = ?`, projectID, tokenHash))
	return c, s.wrap(err, "get MFA challenge")
}

// FailMFAChallenge counts a wrong answer and kills the challenge at its limit, in one statement.
func (s *Store) FailMFAChallenge(ctx context.Context, projectID, id string) (store.MFAChallenge, error) {
	c, err := scanMFAChallenge(s.writeRow(ctx, `UPDATE mfa_challenges SET attempts = attempts + 1,
		status = CASE WHEN attempts + 1 >= max_attempts THEN ? ELSE status END
		WHERE project_id = ? AND id = ? AND status = ?
		RETURNING `+mfaChallengeColumns, store.MFAChallengeDead, projectID, id, store.MFAChallengePending))
	return c, s.wrap(err, "count a failed answer to MFA challenge %s", id)
}

// CompleteMFAChallenge is one UPDATE holding every condition, so a challenge completes once.
func (s *Store) CompleteMFAChallenge(ctx context.Context, projectID, id string, at time.Time) (store.MFAChallenge, error) {
	c, err := scanMFAChallenge(s.writeRow(ctx, `UPDATE mfa_challenges SET status = ?, completed_at = ?
		WHERE project_id = ? AND id = ? AND status = ? AND expires_at > ?
		RETURNING `+mfaChallengeColumns,
		store.MFAChallengeCompleted, toMicros(at), projectID, id, store.MFAChallengePending, toMicros(at)))
	return c, s.wrap(err, "complete MFA challenge %s", id)
}

func scanMFAChallenge(sc scanner) (store.MFAChallenge, error) {
	var c store.MFAChallenge
	var amr string
	var created, expires int64
	var completed sql.NullInt64
	if err := sc.Scan(&c.ID, &c.ProjectID, &c.UserID, &c.TokenHash, &c.ConnectionType, &amr, &c.Attempts,
		&c.MaxAttempts, &c.Status, &created, &expires, &completed); err != nil {
		return store.MFAChallenge{}, err
	}
	var err error
	if c.AMR, err = stringsFromJSON(amr); err != nil {
		return store.MFAChallenge{}, err
	}
	c.CreatedAt, c.ExpiresAt, c.CompletedAt = fromMicros(created), fromMicros(expires), fromNullMicros(completed)
	return c, nil
}
