package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

const mfaChallengeColumns = `id, project_id, user_id, organization_id, token_hash, connection_type, amr, attempts,
	max_attempts, status, created_at, expires_at, completed_at, last_failed_at,
	oob_channel, oob_code_hash, oob_secret_hash, oob_sends, oob_sent_at`

// CreateMFAChallenge stores c; ErrNotFound when its user does not exist.
func (s *Store) CreateMFAChallenge(ctx context.Context, c store.MFAChallenge) error {
	amr, err := stringsJSON(c.AMR)
	if err != nil {
		return s.wrap(err, "create MFA challenge %s", c.ID)
	}
	err = s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO mfa_challenges (`+mfaChallengeColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.ProjectID, c.UserID, c.OrganizationID, c.TokenHash, c.ConnectionType, amr, c.Attempts,
			c.MaxAttempts, c.Status, toMicros(c.CreatedAt), toMicros(c.ExpiresAt), toNullMicros(c.CompletedAt),
			toNullMicros(c.LastFailedAt), c.OOBChannel, c.OOBCodeHash, c.OOBSecretHash, c.OOBSends,
			toNullMicros(c.OOBSentAt))
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
func (s *Store) FailMFAChallenge(ctx context.Context, projectID, id string, at time.Time) (store.MFAChallenge, error) {
	c, err := scanMFAChallenge(s.writeRow(ctx, `UPDATE mfa_challenges SET attempts = attempts + 1, last_failed_at = ?,
		status = CASE WHEN attempts + 1 >= max_attempts THEN ? ELSE status END
		WHERE project_id = ? AND id = ? AND status = ?
		RETURNING `+mfaChallengeColumns, toMicros(at), store.MFAChallengeDead, projectID, id, store.MFAChallengePending))
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

// SetMFAChallengeOOB is one UPDATE holding the send limits, so concurrent sends cannot exceed
// them; when it matches no row, a second read tells a refused send from a dead challenge.
func (s *Store) SetMFAChallengeOOB(ctx context.Context, projectID, id string, send store.OOBSend) (store.MFAChallenge, error) {
	at := toMicros(send.At)
	c, err := scanMFAChallenge(s.writeRow(ctx, `UPDATE mfa_challenges
		SET oob_channel = ?, oob_code_hash = ?, oob_secret_hash = ?, oob_sends = oob_sends + 1, oob_sent_at = ?
		WHERE project_id = ? AND id = ? AND status = ? AND expires_at > ?
			AND oob_sends < ? AND (oob_sent_at IS NULL OR oob_sent_at <= ?)
		RETURNING `+mfaChallengeColumns,
		send.Channel, send.CodeHash, send.SecretHash, at, projectID, id, store.MFAChallengePending, at,
		send.MaxSends, toMicros(send.NotAfterLast)))
	if errors.Is(err, sql.ErrNoRows) {
		var n int
		switch err := s.queryRow(ctx, `SELECT COUNT(*) FROM mfa_challenges
			WHERE project_id = ? AND id = ? AND status = ? AND expires_at > ?`,
			projectID, id, store.MFAChallengePending, at).Scan(&n); {
		case err != nil:
			return store.MFAChallenge{}, s.wrap(err, "send a code for MFA challenge %s", id)
		case n > 0:
			return store.MFAChallenge{}, store.ErrConflict
		}
	}
	return c, s.wrap(err, "send a code for MFA challenge %s", id)
}

// CountMFAFailures sums the attempts of the user's challenges that failed within the window.
func (s *Store) CountMFAFailures(ctx context.Context, projectID, userID string, since time.Time) (int, *time.Time, error) {
	var n int
	var oldest sql.NullInt64
	err := s.queryRow(ctx, `SELECT COALESCE(SUM(attempts), 0), MIN(last_failed_at) FROM mfa_challenges
		WHERE project_id = ? AND user_id = ? AND last_failed_at > ?`,
		projectID, userID, toMicros(since)).Scan(&n, &oldest)
	if err != nil {
		return 0, nil, s.wrap(err, "count MFA failures of user %s", userID)
	}
	return n, fromNullMicros(oldest), nil
}

func scanMFAChallenge(sc scanner) (store.MFAChallenge, error) {
	var c store.MFAChallenge
	var amr string
	var created, expires int64
	var completed, failed, sent sql.NullInt64
	if err := sc.Scan(&c.ID, &c.ProjectID, &c.UserID, &c.OrganizationID, &c.TokenHash, &c.ConnectionType, &amr,
		&c.Attempts, &c.MaxAttempts, &c.Status, &created, &expires, &completed, &failed,
		&c.OOBChannel, &c.OOBCodeHash, &c.OOBSecretHash, &c.OOBSends, &sent); err != nil {
		return store.MFAChallenge{}, err
	}
	var err error
	if c.AMR, err = stringsFromJSON(amr); err != nil {
		return store.MFAChallenge{}, err
	}
	c.CreatedAt, c.ExpiresAt, c.CompletedAt = fromMicros(created), fromMicros(expires), fromNullMicros(completed)
	c.LastFailedAt, c.OOBSentAt = fromNullMicros(failed), fromNullMicros(sent)
	return c, nil
}
