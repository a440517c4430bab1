package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

const sessionColumns = `id, project_id, user_id, organization_id, connection_type, amr_json, scope, parent_id, ip_address, user_agent,
	created_at, last_seen_at, idle_expires_at, expires_at, revoked_at, revoke_reason`

// CreateSession stores sess; ErrNotFound when its user is not in its project.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	amr, err := stringsJSON(sess.AMR)
	if err != nil {
		return fmt.Errorf("create session %s: %w", sess.ID, err)
	}
	err = s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sess.ID, sess.ProjectID, sess.UserID, sess.OrganizationID, sess.ConnectionType, amr, sess.Scope, sess.ParentID, sess.IPAddress, sess.UserAgent,
			toMicros(sess.CreatedAt), toMicros(sess.LastSeenAt), toMicros(sess.IdleExpiresAt), toMicros(sess.ExpiresAt),
			toNullMicros(sess.RevokedAt), sess.RevokeReason)
		return err
	})
	return s.wrap(err, "create session %s", sess.ID)
}

// GetSession returns the session of the project with id, active or not.
func (s *Store) GetSession(ctx context.Context, projectID, id string) (store.Session, error) {
	sess, err := scanSession(s.queryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE project_id = ? AND id = ?`, projectID, id))
	if err != nil {
		return store.Session{}, s.wrap(err, "get session %s", id)
	}
	return sess, nil
}

// ListUserSessions returns the user's sessions active at `at`, newest first.
func (s *Store) ListUserSessions(ctx context.Context, projectID, userID string, at time.Time) ([]store.Session, error) {
	rows, err := s.query(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE project_id = ? AND user_id = ? AND revoked_at IS NULL AND idle_expires_at > ? AND expires_at > ?
		ORDER BY id DESC`, projectID, userID, toMicros(at), toMicros(at))
	if err != nil {
		return nil, s.wrap(err, "list sessions of user %s", userID)
	}
	out, err := collect(rows, scanSession)
	return out, s.wrap(err, "list sessions of user %s", userID)
}

// TouchSession records use of a session that is active at lastSeen.
func (s *Store) TouchSession(ctx context.Context, projectID, id string, lastSeen, idleExpires time.Time) error {
	err := mustAffect(s.execAffected(ctx, `UPDATE sessions SET last_seen_at = ?, idle_expires_at = ?
		WHERE project_id = ? AND id = ? AND revoked_at IS NULL AND idle_expires_at > ? AND expires_at > ?`,
		toMicros(lastSeen), toMicros(idleExpires), projectID, id, toMicros(lastSeen), toMicros(lastSeen)))
	return s.wrap(err, "touch session %s", id)
}

// RevokeSession ends a session that is not yet revoked.
func (s *Store) RevokeSession(ctx context.Context, projectID, id string, at time.Time, reason string) error {
	err := mustAffect(s.execAffected(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = ?
		WHERE project_id = ? AND id = ? AND revoked_at IS NULL`, toMicros(at), reason, projectID, id))
	return s.wrap(err, "revoke session %s", id)
}

// RevokeUserSessions ends every unrevoked session of the user.
func (s *Store) RevokeUserSessions(ctx context.Context, projectID, userID string, at time.Time, reason string) (int, error) {
	n, err := s.execAffected(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = ?
		WHERE project_id = ? AND user_id = ? AND revoked_at IS NULL`, toMicros(at), reason, projectID, userID)
	return int(n), s.wrap(err, "revoke sessions of user %s", userID)
}

func scanSession(sc scanner) (store.Session, error) {
	var sess store.Session
	var amr string
	var created, seen, idle, expires int64
	var revoked sql.NullInt64
	if err := sc.Scan(&sess.ID, &sess.ProjectID, &sess.UserID, &sess.OrganizationID, &sess.ConnectionType, &amr, &sess.Scope, &sess.ParentID,
		&sess.IPAddress, &sess.UserAgent, &created, &seen, &idle, &expires, &revoked, &sess.RevokeReason); err != nil {
		return store.Session{}, err
	}
	var err error
	if sess.AMR, err = stringsFromJSON(amr); err != nil {
		return store.Session{}, fmt.Errorf("session %s amr: %w", sess.ID, err)
	}
	sess.CreatedAt, sess.LastSeenAt = fromMicros(created), fromMicros(seen)
	sess.IdleExpiresAt, sess.ExpiresAt = fromMicros(idle), fromMicros(expires)
	sess.RevokedAt = fromNullMicros(revoked)
	return sess, nil
}

const refreshTokenColumns = `id, project_id, session_id, hash, created_at, expires_at, used_at`

// CreateRefreshToken stores t; ErrNotFound when its session is not in its project.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	err := s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO refresh_tokens (`+refreshTokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.ProjectID, t.SessionID, t.Hash, toMicros(t.CreatedAt), toMicros(t.ExpiresAt), toNullMicros(t.UsedAt))
		return err
	})
	return s.wrap(err, "create refresh token %s", t.ID)
}

// UseRefreshToken spends the token in one UPDATE whose WHERE clause requires it unused, so of
// concurrent callers exactly one changes the row (see ConsumeOneTimeSecret for why this holds
// on both backends). The losers, and any later caller, read the spent row and get ErrReused.
func (s *Store) UseRefreshToken(ctx context.Context, projectID string, hash []byte, at time.Time) (store.RefreshToken, error) {
	t, err := scanRefreshToken(s.writeRow(ctx, `UPDATE refresh_tokens SET used_at = ?
		WHERE project_id = ? AND hash = ? AND used_at IS NULL
		RETURNING `+refreshTokenColumns, toMicros(at), projectID, hash))
	if err == nil {
		return t, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		// The hash stays out of errors: it is the lookup key of a live token.
		return store.RefreshToken{}, s.wrap(err, "use refresh token")
	}
	t, err = scanRefreshToken(s.writeRow(ctx, `SELECT `+refreshTokenColumns+` FROM refresh_tokens
		WHERE project_id = ? AND hash = ?`, projectID, hash))
	if err != nil {
		return store.RefreshToken{}, s.wrap(err, "use refresh token")
	}
	return t, fmt.Errorf("use refresh token %s: %w", t.ID, store.ErrReused)
}

// GetRefreshToken reads the project's token with that hash, spending nothing.
func (s *Store) GetRefreshToken(ctx context.Context, projectID string, hash []byte) (store.RefreshToken, error) {
	t, err := scanRefreshToken(s.queryRow(ctx, `SELECT `+refreshTokenColumns+` FROM refresh_tokens
		WHERE project_id = ? AND hash = ?`, projectID, hash))
	if err != nil {
		// The hash stays out of errors: it is the lookup key of a live token.
		return store.RefreshToken{}, s.wrap(err, "get refresh token")
	}
	return t, nil
}

func scanRefreshToken(sc scanner) (store.RefreshToken, error) {
	var t store.RefreshToken
	var created, expires int64
	var used sql.NullInt64
	if err := sc.Scan(&t.ID, &t.ProjectID, &t.SessionID, &t.Hash, &created, &expires, &used); err != nil {
		return store.RefreshToken{}, err
	}
	t.CreatedAt, t.ExpiresAt, t.UsedAt = fromMicros(created), fromMicros(expires), fromNullMicros(used)
	return t, nil
}
