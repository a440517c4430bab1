package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

const mfaFactorColumns = `id, project_id, user_id, type, secret, confirmed, last_used_step, created_at,
	confirmed_at, last_used_at`

// CreateMFAFactor stores f: ErrNotFound when its user is not in the project.
func (s *Store) CreateMFAFactor(ctx context.Context, f store.MFAFactor) error {
	err := s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO mfa_factors (`+mfaFactorColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			f.ID, f.ProjectID, f.UserID, f.Type, nonNilBytes(f.Secret), f.Confirmed, f.LastUsedStep,
			toMicros(f.CreatedAt), toNullMicros(f.ConfirmedAt), toNullMicros(f.LastUsedAt))
		return err
	})
	return s.wrap(err, "create mfa factor %s", f.ID)
}

// GetMFAFactor returns one of the user's factors.
func (s *Store) GetMFAFactor(ctx context.Context, projectID, userID, id string) (store.MFAFactor, error) {
	f, err := scanMFAFactor(s.queryRow(ctx, `SELECT `+mfaFactorColumns+` FROM mfa_factors
		WHERE project_id = ? AND user_id = ? AND id = ?`, projectID, userID, id))
	return f, s.wrap(err, "get mfa factor %s", id)
}

// ListMFAFactors returns the user's factors, oldest first.
func (s *Store) ListMFAFactors(ctx context.Context, projectID, userID string) ([]store.MFAFactor, error) {
	rows, err := s.query(ctx, `SELECT `+mfaFactorColumns+` FROM mfa_factors
		WHERE project_id = ? AND user_id = ? ORDER BY created_at, id`, projectID, userID)
	if err != nil {
		return nil, s.wrap(err, "list mfa factors of user %s", userID)
	}
	out, err := collect(rows, scanMFAFactor)
	return out, s.wrap(err, "list mfa factors of user %s", userID)
}

// ConfirmMFAFactor is one UPDATE whose WHERE clause holds every condition, so of two
// confirmations racing only one succeeds.
func (s *Store) ConfirmMFAFactor(ctx context.Context, projectID, userID, id string, step int64, at time.Time) (store.MFAFactor, error) {
	f, err := scanMFAFactor(s.writeRow(ctx, `UPDATE mfa_factors
		SET confirmed = ?, last_used_step = ?, confirmed_at = ?, last_used_at = ?
		WHERE project_id = ? AND user_id = ? AND id = ? AND confirmed = ? AND last_used_step < ?
		RETURNING `+mfaFactorColumns,
		true, step, toMicros(at), toMicros(at), projectID, userID, id, false, step))
	if errors.Is(err, sql.ErrNoRows) {
		err = s.whyNotUsed(ctx, projectID, userID, id, false)
	}
	return f, s.wrap(err, "confirm mfa factor %s", id)
}

// UseMFAFactorStep is one UPDATE conditioned on the last step used, so a step is accepted
// once however many callers present it at the same time: the database serialises the
// updates of the row, and every one after the first finds the condition false.
func (s *Store) UseMFAFactorStep(ctx context.Context, projectID, userID, id string, step int64, at time.Time) (store.MFAFactor, error) {
	f, err := scanMFAFactor(s.writeRow(ctx, `UPDATE mfa_factors SET last_used_step = ?, last_used_at = ?
		WHERE project_id = ? AND user_id = ? AND id = ? AND confirmed = ? AND last_used_step < ?
		RETURNING `+mfaFactorColumns,
		step, toMicros(at), projectID, userID, id, true, step))
	if errors.Is(err, sql.ErrNoRows) {
		err = s.whyNotUsed(ctx, projectID, userID, id, true)
	}
	return f, s.wrap(err, "use a step of mfa factor %s", id)
}

// whyNotUsed tells why a conditioned update of a factor changed nothing. It only classifies
// a refusal already decided by the update, so reading after it cannot let a step through.
func (s *Store) whyNotUsed(ctx context.Context, projectID, userID, id string, wantConfirmed bool) error {
	var confirmed bool
	err := s.writeRow(ctx, `SELECT confirmed FROM mfa_factors WHERE project_id = ? AND user_id = ? AND id = ?`,
		projectID, userID, id).Scan(&confirmed)
	switch {
	case err != nil:
		return err // sql.ErrNoRows: no such factor
	case wantConfirmed && !confirmed:
		return store.ErrNotFound // an unconfirmed factor has no steps to use
	case !wantConfirmed && confirmed:
		return store.ErrConflict // confirmed already
	}
	return store.ErrReused
}

// DeleteMFAFactor removes one of the user's factors.
func (s *Store) DeleteMFAFactor(ctx context.Context, projectID, userID, id string) error {
	err := mustAffect(s.execAffected(ctx, `DELETE FROM mfa_factors WHERE project_id = ? AND user_id = ? AND id = ?`,
		projectID, userID, id))
	return s.wrap(err, "delete mfa factor %s", id)
}

func scanMFAFactor(sc scanner) (store.MFAFactor, error) {
	var f store.MFAFactor
	var created int64
	var confirmedAt, lastUsed sql.NullInt64
	if err := sc.Scan(&f.ID, &f.ProjectID, &f.UserID, &f.Type, &f.Secret, &f.Confirmed, &f.LastUsedStep, &created,
		&confirmedAt, &lastUsed); err != nil {
		return store.MFAFactor{}, err
	}
	f.CreatedAt, f.ConfirmedAt, f.LastUsedAt = fromMicros(created), fromNullMicros(confirmedAt), fromNullMicros(lastUsed)
	return f, nil
}
