package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// The OpenID Provider's tables (migration 0019). Authorization request ids and code and
// browser-session hashes stay out of every error: the first travels in the login page's URL,
// the others are the lookup keys of live secrets.

const oidcAuthRequestColumns = `id, project_id, client_id, redirect_uri, scopes_json, state, nonce, response_mode,
	code_challenge, code_challenge_method, prompt_json, max_age, login_hint, ui_locales_json, extensions_json,
	browser_binding, user_id, session_id, organization_id, connection_type, amr_json, auth_time, done_at,
	denied_at, created_at, expires_at`

// CreateOIDCAuthRequest stores a new authorization request; ErrNotFound when its project does
// not exist, ErrConflict when its id is taken.
func (s *Store) CreateOIDCAuthRequest(ctx context.Context, r store.OIDCAuthRequest) error {
	docs, err := encodeStrings(r.Scopes, r.Prompt, r.UILocales, r.AMR)
	if err != nil {
		return fmt.Errorf("create authorization request: %w", err)
	}
	ext, err := extensionsJSON(r.Extensions)
	if err != nil {
		return fmt.Errorf("create authorization request: %w", err)
	}
	var maxAge any
	if r.MaxAge != nil {
		maxAge = int64(*r.MaxAge)
	}
	binding := r.BrowserBinding
	if binding == nil {
		binding = []byte{} // NOT NULL: no binding is an empty one, never a missing one
	}
	err = s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO oidc_auth_requests (`+oidcAuthRequestColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.ProjectID, r.ClientID, r.RedirectURI, docs[0], r.State, r.Nonce, r.ResponseMode,
			r.CodeChallenge, r.CodeChallengeMethod, docs[1], maxAge, r.LoginHint, docs[2], ext,
			binding, r.UserID, r.SessionID, r.OrganizationID, r.ConnectionType, docs[3],
			toNullMicros(r.AuthTime), toNullMicros(r.DoneAt), toNullMicros(r.DeniedAt), toMicros(r.CreatedAt), toMicros(r.ExpiresAt))
		return err
	})
	return s.wrap(err, "create authorization request")
}

// GetOIDCAuthRequest finds an authorization request by its random id, in any project.
func (s *Store) GetOIDCAuthRequest(ctx context.Context, id string) (store.OIDCAuthRequest, error) {
	r, err := scanOIDCAuthRequest(s.queryRow(ctx, `SELECT `+oidcAuthRequestColumns+` FROM oidc_auth_requests WHERE id = ?`, id))
	if err != nil {
		return store.OIDCAuthRequest{}, s.wrap(err, "get authorization request")
	}
	return r, nil
}

// ApproveOIDCAuthRequest records the login that answers a request. One UPDATE whose WHERE
// clause requires the request unanswered (neither approved nor denied), so two logins racing
// to answer one request, or a login racing the user's denial, cannot both write: the loser
// finds the row answered and gets ErrConflict.
func (s *Store) ApproveOIDCAuthRequest(ctx context.Context, projectID, id string, a store.OIDCApproval) error {
	amr, err := stringsJSON(a.AMR)
	if err != nil {
		return fmt.Errorf("approve authorization request: %w", err)
	}
	n, err := s.execAffected(ctx, `UPDATE oidc_auth_requests
		SET user_id = ?, session_id = ?, organization_id = ?, connection_type = ?, amr_json = ?, auth_time = ?, done_at = ?
		WHERE project_id = ? AND id = ? AND done_at IS NULL AND denied_at IS NULL`,
		a.UserID, a.SessionID, a.OrganizationID, a.ConnectionType, amr, toMicros(a.AuthTime), toMicros(a.At),
		projectID, id)
	if err != nil {
		return s.wrap(err, "approve authorization request")
	}
	return s.answered(ctx, n, projectID, id, "approve authorization request")
}

// DenyOIDCAuthRequest records the user's refusal with the same guard as the approval, so of a
// denial and an approval racing for one request exactly one is written.
func (s *Store) DenyOIDCAuthRequest(ctx context.Context, projectID, id string, at time.Time) error {
	n, err := s.execAffected(ctx, `UPDATE oidc_auth_requests SET denied_at = ?
		WHERE project_id = ? AND id = ? AND done_at IS NULL AND denied_at IS NULL`, toMicros(at), projectID, id)
	if err != nil {
		return s.wrap(err, "deny authorization request")
	}
	return s.answered(ctx, n, projectID, id, "deny authorization request")
}

// answered turns the row count of a guarded answer (approval or denial) into its error: nil
// when the row changed, else ErrNotFound when the project has no such request and ErrConflict
// when it was already answered.
func (s *Store) answered(ctx context.Context, n int64, projectID, id, what string) error {
	if n == 1 {
		return nil
	}
	// Read through the writer, so that inside a transaction the read sees the transaction.
	var one int
	err := s.writeRow(ctx, `SELECT 1 FROM oidc_auth_requests WHERE project_id = ? AND id = ?`, projectID, id).Scan(&one)
	if err != nil {
		return s.wrap(err, "%s", what)
	}
	return fmt.Errorf("%s: already answered: %w", what, store.ErrConflict)
}

func scanOIDCAuthRequest(sc scanner) (store.OIDCAuthRequest, error) {
	var r store.OIDCAuthRequest
	var scopes, prompt, locales, ext, amr string
	var maxAge, authTime, done, denied sql.NullInt64
	var created, expires int64
	if err := sc.Scan(&r.ID, &r.ProjectID, &r.ClientID, &r.RedirectURI, &scopes, &r.State, &r.Nonce, &r.ResponseMode,
		&r.CodeChallenge, &r.CodeChallengeMethod, &prompt, &maxAge, &r.LoginHint, &locales, &ext,
		&r.BrowserBinding, &r.UserID, &r.SessionID, &r.OrganizationID, &r.ConnectionType, &amr, &authTime, &done,
		&denied, &created, &expires); err != nil {
		return store.OIDCAuthRequest{}, err
	}
	var err error
	for _, d := range []struct {
		dst *[]string
		src string
	}{{&r.Scopes, scopes}, {&r.Prompt, prompt}, {&r.UILocales, locales}, {&r.AMR, amr}} {
		if *d.dst, err = stringsFromJSON(d.src); err != nil {
			return store.OIDCAuthRequest{}, fmt.Errorf("authorization request: %w", err)
		}
	}
	if r.Extensions, err = extensionsFromJSON(ext); err != nil {
		return store.OIDCAuthRequest{}, fmt.Errorf("authorization request: %w", err)
	}
	if maxAge.Valid {
		v := int(maxAge.Int64)
		r.MaxAge = &v
	}
	r.AuthTime, r.DoneAt, r.DeniedAt = fromNullMicros(authTime), fromNullMicros(done), fromNullMicros(denied)
	r.CreatedAt, r.ExpiresAt = fromMicros(created), fromMicros(expires)
	return r, nil
}

// encodeStrings encodes each list with stringsJSON.
func encodeStrings(lists ...[]string) ([]string, error) {
	out := make([]string, len(lists))
	for i, l := range lists {
		var err error
		if out[i], err = stringsJSON(l); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// extensionsJSON encodes the request's extensions, leaving out empty values (the contract
// keeps only non-empty ones, so "" and absent read back the same).
func extensionsJSON(m map[string]string) (string, error) {
	kept := make(map[string]string, len(m))
	for k, v := range m {
		if v != "" {
			kept[k] = v
		}
	}
	b, err := json.Marshal(kept)
	if err != nil {
		return "", fmt.Errorf("encode extensions: %w", err)
	}
	return string(b), nil
}

// extensionsFromJSON decodes the extensions; the map is never nil.
func extensionsFromJSON(s string) (map[string]string, error) {
	m := map[string]string{}
	if s == "" {
		return m, nil
	}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode extensions: %w", err)
	}
	if m == nil {
		m = map[string]string{}
	}
	return m, nil
}

const oidcCodeColumns = `code_hash, project_id, request_id, created_at, expires_at, consumed_at, session_id`

// SaveOIDCCode stores an authorization code's hash; ErrNotFound when its request is not in its
// project, ErrConflict when the hash is taken.
func (s *Store) SaveOIDCCode(ctx context.Context, c store.OIDCCode) error {
	err := s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO oidc_codes (`+oidcCodeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			c.Hash, c.ProjectID, c.RequestID, toMicros(c.CreatedAt), toMicros(c.ExpiresAt), toNullMicros(c.ConsumedAt), c.SessionID)
		return err
	})
	return s.wrap(err, "save authorization code")
}

// GetOIDCCode finds a code by its hash, in any project.
func (s *Store) GetOIDCCode(ctx context.Context, hash []byte) (store.OIDCCode, error) {
	c, err := scanOIDCCode(s.queryRow(ctx, `SELECT `+oidcCodeColumns+` FROM oidc_codes WHERE code_hash = ?`, hash))
	if err != nil {
		return store.OIDCCode{}, s.wrap(err, "get authorization code")
	}
	return c, nil
}

// ConsumeOIDCCode spends the code in one UPDATE whose WHERE clause requires it unconsumed, so
// of concurrent callers exactly one changes the row: on SQLite writes are serialised; on
// PostgreSQL the losers wait for the winner's row lock, re-check the WHERE clause against the
// committed row and match nothing (see ConsumeOneTimeSecret). The losers, and any later
// caller, read the spent row, with the winner's session, and get ErrReused.
func (s *Store) ConsumeOIDCCode(ctx context.Context, projectID string, hash []byte, sessionID string, at time.Time) (store.OIDCCode, error) {
	c, err := scanOIDCCode(s.writeRow(ctx, `UPDATE oidc_codes SET consumed_at = ?, session_id = ?
		WHERE project_id = ? AND code_hash = ? AND consumed_at IS NULL
		RETURNING `+oidcCodeColumns, toMicros(at), sessionID, projectID, hash))
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return store.OIDCCode{}, s.wrap(err, "consume authorization code")
	}
	// Through the writer: after the winner committed (PostgreSQL) or in the caller's
	// transaction, this read sees the spent row.
	c, err = scanOIDCCode(s.writeRow(ctx, `SELECT `+oidcCodeColumns+` FROM oidc_codes
		WHERE project_id = ? AND code_hash = ?`, projectID, hash))
	if err != nil {
		return store.OIDCCode{}, s.wrap(err, "consume authorization code")
	}
	return c, fmt.Errorf("consume authorization code of session %s: %w", c.SessionID, store.ErrReused)
}

func scanOIDCCode(sc scanner) (store.OIDCCode, error) {
	var c store.OIDCCode
	var created, expires int64
	var consumed sql.NullInt64
	if err := sc.Scan(&c.Hash, &c.ProjectID, &c.RequestID, &created, &expires, &consumed, &c.SessionID); err != nil {
		return store.OIDCCode{}, err
	}
	c.CreatedAt, c.ExpiresAt, c.ConsumedAt = fromMicros(created), fromMicros(expires), fromNullMicros(consumed)
	return c, nil
}

const browserSessionColumns = `id, project_id, token_hash, user_id, session_id, organization_id, connection_type, amr_json,
	auth_time, created_at, last_seen_at, expires_at, revoked_at`

// CreateBrowserSession stores a browser session; ErrNotFound when its token session is not in
// its project, ErrConflict when its id or token hash is taken.
func (s *Store) CreateBrowserSession(ctx context.Context, b store.BrowserSession) error {
	amr, err := stringsJSON(b.AMR)
	if err != nil {
		return fmt.Errorf("create browser session %s: %w", b.ID, err)
	}
	err = s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO oidc_browser_sessions (`+browserSessionColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			b.ID, b.ProjectID, b.TokenHash, b.UserID, b.SessionID, b.OrganizationID, b.ConnectionType, amr,
			toMicros(b.AuthTime), toMicros(b.CreatedAt), toMicros(b.LastSeenAt), toMicros(b.ExpiresAt), toNullMicros(b.RevokedAt))
		return err
	})
	return s.wrap(err, "create browser session %s", b.ID)
}

// GetBrowserSession finds the project's browser session by its token's hash, active or not.
func (s *Store) GetBrowserSession(ctx context.Context, projectID string, tokenHash []byte) (store.BrowserSession, error) {
	b, err := scanBrowserSession(s.queryRow(ctx, `SELECT `+browserSessionColumns+` FROM oidc_browser_sessions
		WHERE project_id = ? AND token_hash = ?`, projectID, tokenHash))
	if err != nil {
		return store.BrowserSession{}, s.wrap(err, "get browser session")
	}
	return b, nil
}

// TouchBrowserSession sets LastSeenAt of an unrevoked browser session.
func (s *Store) TouchBrowserSession(ctx context.Context, projectID, id string, at time.Time) error {
	err := mustAffect(s.execAffected(ctx, `UPDATE oidc_browser_sessions SET last_seen_at = ?
		WHERE project_id = ? AND id = ? AND revoked_at IS NULL`, toMicros(at), projectID, id))
	return s.wrap(err, "touch browser session %s", id)
}

// RevokeBrowserSession ends a browser session that is not yet revoked.
func (s *Store) RevokeBrowserSession(ctx context.Context, projectID, id string, at time.Time) error {
	err := mustAffect(s.execAffected(ctx, `UPDATE oidc_browser_sessions SET revoked_at = ?
		WHERE project_id = ? AND id = ? AND revoked_at IS NULL`, toMicros(at), projectID, id))
	return s.wrap(err, "revoke browser session %s", id)
}

func scanBrowserSession(sc scanner) (store.BrowserSession, error) {
	var b store.BrowserSession
	var amr string
	var authTime, created, seen, expires int64
	var revoked sql.NullInt64
	if err := sc.Scan(&b.ID, &b.ProjectID, &b.TokenHash, &b.UserID, &b.SessionID, &b.OrganizationID, &b.ConnectionType, &amr,
		&authTime, &created, &seen, &expires, &revoked); err != nil {
		return store.BrowserSession{}, err
	}
	var err error
	if b.AMR, err = stringsFromJSON(amr); err != nil {
		return store.BrowserSession{}, fmt.Errorf("browser session %s amr: %w", b.ID, err)
	}
	b.AuthTime, b.CreatedAt, b.LastSeenAt, b.ExpiresAt = fromMicros(authTime), fromMicros(created), fromMicros(seen), fromMicros(expires)
	b.RevokedAt = fromNullMicros(revoked)
	return b, nil
}
