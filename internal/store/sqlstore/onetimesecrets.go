package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

const oneTimeSecretColumns = `id, project_id, purpose, hash, subject, payload, created_at, expires_at, consumed_at`

// CreateOneTimeSecret stores sec; ErrConflict when its id, or its hash for its purpose in the
// project, is taken; ErrNotFound when its project does not exist.
func (s *Store) CreateOneTimeSecret(ctx context.Context, sec store.OneTimeSecret) error {
	err := s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO one_time_secrets (`+oneTimeSecretColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sec.ID, sec.ProjectID, sec.Purpose, sec.Hash, sec.Subject, docText(sec.Payload),
			toMicros(sec.CreatedAt), toMicros(sec.ExpiresAt), toNullMicros(sec.ConsumedAt))
		return err
	})
	return s.wrap(err, "create one-time secret %s (%s)", sec.ID, sec.Purpose)
}

// ConsumeOneTimeSecret marks the secret used at now and returns it. It is one UPDATE whose
// WHERE clause requires the secret to be unused and unexpired, so of any number of concurrent
// callers exactly one changes the row: on SQLite writes are serialised; on PostgreSQL the
// losers wait for the winner's row lock, re-check the WHERE clause against the committed row
// and match nothing. ErrNotFound when no such usable secret exists.
func (s *Store) ConsumeOneTimeSecret(ctx context.Context, projectID, purpose string, hash []byte, now time.Time) (store.OneTimeSecret, error) {
	var sec store.OneTimeSecret
	var payload string
	var created, expires int64
	var consumed sql.NullInt64
	err := s.writeRow(ctx, `UPDATE one_time_secrets SET consumed_at = ?
		WHERE project_id = ? AND purpose = ? AND hash = ? AND consumed_at IS NULL AND expires_at > ?
		RETURNING `+oneTimeSecretColumns,
		toMicros(now), projectID, purpose, hash, toMicros(now)).
		Scan(&sec.ID, &sec.ProjectID, &sec.Purpose, &sec.Hash, &sec.Subject, &payload, &created, &expires, &consumed)
	if err != nil {
		// The hash stays out of the error: it is the lookup key of a live secret.
		return store.OneTimeSecret{}, s.wrap(err, "consume one-time secret (%s)", purpose)
	}
	sec.Payload = docBytes(payload)
	sec.CreatedAt = fromMicros(created)
	sec.ExpiresAt = fromMicros(expires)
	sec.ConsumedAt = fromNullMicros(consumed)
	return sec, nil
}

// ConsumeSubjectSecrets spends the subject's unused secrets of the purpose.
func (s *Store) ConsumeSubjectSecrets(ctx context.Context, projectID, purpose, subject string, now time.Time) (int, error) {
	var n int64
	err := s.guarded(ctx, func(s *Store) error {
		var err error
		n, err = s.execAffected(ctx, `UPDATE one_time_secrets SET consumed_at = ?
			WHERE project_id = ? AND purpose = ? AND subject = ? AND consumed_at IS NULL`,
			toMicros(now), projectID, purpose, subject)
		return err
	})
	return int(n), s.wrap(err, "consume one-time secrets (%s)", purpose)
}
