package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

const flowColumns = `id, project_id, channel, destination, secret_hash, redirect_url, user_id, status, attempts,
	max_attempts, resends, created_at, sent_at, expires_at, verified_at, collected_at`

// CreateFlow stores f; ErrNotFound when its project does not exist.
func (s *Store) CreateFlow(ctx context.Context, f store.Flow) error {
	err := s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO flows (`+flowColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			f.ID, f.ProjectID, f.Channel, f.Destination, f.SecretHash, f.RedirectURL, f.UserID, f.Status, f.Attempts,
			f.MaxAttempts, f.Resends, toMicros(f.CreatedAt), toMicros(f.SentAt), toMicros(f.ExpiresAt),
			toNullMicros(f.VerifiedAt), toNullMicros(f.CollectedAt))
		return err
	})
	return s.wrap(err, "create flow %s", f.ID)
}

// GetFlow returns the project's flow with id.
func (s *Store) GetFlow(ctx context.Context, projectID, id string) (store.Flow, error) {
	f, err := scanFlow(s.queryRow(ctx, `SELECT `+flowColumns+` FROM flows WHERE project_id = ? AND id = ?`, projectID, id))
	return f, s.wrap(err, "get flow %s", id)
}

// VerifyFlow is one UPDATE whose WHERE clause holds every condition, so of concurrent callers
// with the right secret exactly one gets the row.
func (s *Store) VerifyFlow(ctx context.Context, projectID, id string, hash []byte, at time.Time) (store.Flow, error) {
	f, err := scanFlow(s.writeRow(ctx, `UPDATE flows SET status = ?, verified_at = ?
		WHERE project_id = ? AND id = ? AND status = ? AND expires_at > ? AND secret_hash = ?
		RETURNING `+flowColumns,
		store.FlowVerified, toMicros(at), projectID, id, store.FlowPending, toMicros(at), hash))
	return f, s.wrap(err, "verify flow %s", id)
}

// FailFlowAttempt counts a wrong secret and kills the flow at its limit, in one statement.
func (s *Store) FailFlowAttempt(ctx context.Context, projectID, id string) (store.Flow, error) {
	f, err := scanFlow(s.writeRow(ctx, `UPDATE flows SET attempts = attempts + 1,
		status = CASE WHEN attempts + 1 >= max_attempts THEN ? ELSE status END
		WHERE project_id = ? AND id = ? AND status = ?
		RETURNING `+flowColumns, store.FlowDead, projectID, id, store.FlowPending))
	return f, s.wrap(err, "count a failed attempt of flow %s", id)
}

// ResendFlow replaces the secret when the resend limits allow it.
func (s *Store) ResendFlow(ctx context.Context, projectID, id string, hash []byte, sentAt, expires, notAfter time.Time, maxResends int) (store.Flow, error) {
	f, err := scanFlow(s.writeRow(ctx, `UPDATE flows SET secret_hash = ?, sent_at = ?, expires_at = ?, resends = resends + 1
		WHERE project_id = ? AND id = ? AND status = ? AND resends < ? AND sent_at <= ?
		RETURNING `+flowColumns,
		hash, toMicros(sentAt), toMicros(expires), projectID, id, store.FlowPending, maxResends, toMicros(notAfter)))
	return f, s.wrap(err, "resend flow %s", id)
}

// SetFlowUser records the flow's user.
func (s *Store) SetFlowUser(ctx context.Context, projectID, id, userID string) error {
	err := mustAffect(s.execAffected(ctx, `UPDATE flows SET user_id = ? WHERE project_id = ? AND id = ?`, userID, projectID, id))
	return s.wrap(err, "set the user of flow %s", id)
}

// CollectFlow hands out a verified flow's result once.
func (s *Store) CollectFlow(ctx context.Context, projectID, id string, at time.Time) (store.Flow, error) {
	f, err := scanFlow(s.writeRow(ctx, `UPDATE flows SET status = ?, collected_at = ?
		WHERE project_id = ? AND id = ? AND status = ?
		RETURNING `+flowColumns, store.FlowCollected, toMicros(at), projectID, id, store.FlowVerified))
	return f, s.wrap(err, "collect flow %s", id)
}

func scanFlow(sc scanner) (store.Flow, error) {
	var f store.Flow
	var created, sent, expires int64
	var verified, collected sql.NullInt64
	if err := sc.Scan(&f.ID, &f.ProjectID, &f.Channel, &f.Destination, &f.SecretHash, &f.RedirectURL, &f.UserID, &f.Status,
		&f.Attempts, &f.MaxAttempts, &f.Resends, &created, &sent, &expires, &verified, &collected); err != nil {
		return store.Flow{}, err
	}
	f.CreatedAt, f.SentAt, f.ExpiresAt = fromMicros(created), fromMicros(sent), fromMicros(expires)
	f.VerifiedAt, f.CollectedAt = fromNullMicros(verified), fromNullMicros(collected)
	return f, nil
}
