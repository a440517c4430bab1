package store

import (
	"context"
	"time"
)

// SigningKey is a project's JWT signing key. The private half is kept only sealed (a
// secretbox ciphertext of its PKCS#8 form).
type SigningKey struct {
	ID          string // the JWT kid
	ProjectID   string
	Algorithm   string // RS256, ES256 or EdDSA
	PrivateKey  []byte // sealed
	PublicJWK   []byte
	CreatedAt   time.Time  // published from then on
	ActivatesAt time.Time  // signs from then on: later than CreatedAt when it replaces a key
	RetiresAt   *time.Time // unpublished from then on; nil while it may still sign
}

// SigningKeys stores signing keys.
type SigningKeys interface {
	// CreateSigningKey: ErrConflict on a duplicate id; ErrNotFound if the project does not exist.
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// ListSigningKeys returns the project's keys not retired at `at`, ordered by ActivatesAt
	// then id: the published set.
	ListSigningKeys(ctx context.Context, projectID string, at time.Time) ([]SigningKey, error)
	// ListPublishedSigningKeys returns every project's keys not retired at `at`, ordered by
	// ActivatesAt then id: the union that a verifier which names no project fetches.
	ListPublishedSigningKeys(ctx context.Context, at time.Time) ([]SigningKey, error)
	// RetireSigningKeys makes every key of the project except keepID retire at `at`, unless it
	// already retires earlier.
	RetireSigningKeys(ctx context.Context, projectID, keepID string, at time.Time) error
}

// SealedSecrets lets a master-key rotation reach every sealed value the store keeps.
type SealedSecrets interface {
	// RewrapSealed calls rewrap on every sealed value in the store and saves the result when
	// rewrap reports a change. Each value is saved only if it is still the one rewrap saw, so a
	// concurrent writer is never overwritten. It returns how many values changed.
	// The key check is rewrapped with the rest but not counted: it is not a secret.
	RewrapSealed(ctx context.Context, rewrap func(sealed []byte) ([]byte, bool, error)) (int, error)
	// KeyCheck returns the database's key check: a known value sealed with the master key at
	// first start, which tells whether a key ring is the one the database was sealed with.
	// ErrNotFound before one was written.
	KeyCheck(ctx context.Context) ([]byte, error)
	// AddKeyCheck stores sealed as the key check unless there is one, and returns the one
	// stored: of concurrent first starts, all check the same value.
	AddKeyCheck(ctx context.Context, sealed []byte, at time.Time) ([]byte, error)
	// AnySealed returns one sealed value the store keeps (not the key check), whichever it
	// finds first: ErrNotFound when it keeps none. It tells whether a database that predates
	// its key check was sealed with a given ring.
	AnySealed(ctx context.Context) ([]byte, error)
}

// Session is one login of a user: every token issued for that login belongs to it, and
// revoking it ends them all.
type Session struct {
	ID             string
	ProjectID      string
	UserID         string
	OrganizationID string // the active organization; "" for none
	ConnectionType string // how the user logged in, e.g. "EmailOTP"
	AMR            []string
	// Scope is the space-separated OAuth scope an OpenID Connect client was granted; every
	// access token of the session carries it. "" for the API's own logins.
	Scope string
	// ParentID is the login session whose single sign-on this session came from: the hosted
	// login page's session (the one its browser session is linked to) for a session an OpenID
	// Connect code exchange started; "" otherwise. RP-initiated logout with an id_token_hint
	// ends the parent too, which is how a logout that reaches us without the browser's cookie
	// (an application's server calling end_session) still ends single sign-on.
	ParentID      string
	IPAddress     string
	UserAgent     string
	CreatedAt     time.Time
	LastSeenAt    time.Time
	IdleExpiresAt time.Time // ends unless used again before then
	ExpiresAt     time.Time // ends then whatever happens
	RevokedAt     *time.Time
	RevokeReason  string
}

// Active reports whether the session may be used at `at`.
func (s Session) Active(at time.Time) bool {
	return s.RevokedAt == nil && at.Before(s.IdleExpiresAt) && at.Before(s.ExpiresAt)
}

// Sessions stores sessions.
type Sessions interface {
	// CreateSession: ErrNotFound if the user is not in the project; ErrConflict on a duplicate id.
	CreateSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, projectID, id string) (Session, error)
	// ListUserSessions returns the user's sessions active at `at`, newest first.
	ListUserSessions(ctx context.Context, projectID, userID string, at time.Time) ([]Session, error)
	// TouchSession records use of a session active at lastSeen: LastSeenAt = lastSeen and
	// IdleExpiresAt = idleExpires. ErrNotFound if no such session is active.
	TouchSession(ctx context.Context, projectID, id string, lastSeen, idleExpires time.Time) error
	// RevokeSession ends the session. ErrNotFound if it does not exist or is already revoked.
	RevokeSession(ctx context.Context, projectID, id string, at time.Time, reason string) error
	// RevokeUserSessions ends every unrevoked session of the user and returns how many.
	RevokeUserSessions(ctx context.Context, projectID, userID string, at time.Time, reason string) (int, error)
}

// RefreshToken is a single-use refresh token of a session, kept only as its SHA-256 hash.
type RefreshToken struct {
	ID        string
	ProjectID string
	SessionID string
	Hash      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// RefreshTokens stores refresh tokens and spends them atomically.
type RefreshTokens interface {
	// CreateRefreshToken: ErrNotFound if the session is not in the project; ErrConflict on a
	// duplicate id or hash.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// UseRefreshToken marks the token used at `at` and returns it, in one atomic statement: of
	// any number of concurrent callers exactly one succeeds. A token that was already used is
	// returned with ErrReused (so its session can be revoked); ErrNotFound if the project has no
	// token with that hash. Expiry is the caller's to check.
	UseRefreshToken(ctx context.Context, projectID string, hash []byte, at time.Time) (RefreshToken, error)
	// GetRefreshToken finds the project's token by its hash without spending it, used or not
	// (introspection and revocation read a token; only a refresh may spend it). ErrNotFound if
	// the project has no token with that hash.
	GetRefreshToken(ctx context.Context, projectID string, hash []byte) (RefreshToken, error)
}

// AuditEvent records a security-relevant event of a project.
type AuditEvent struct {
	ID        string
	ProjectID string
	Type      string // e.g. "refresh_token.reused"
	UserID    string // "" when no user is involved; kept after the user is deleted
	SessionID string
	IPAddress string
	UserAgent string
	Detail    map[string]any
	CreatedAt time.Time
	// OrganizationID is the organization the event concerns; "" for none.
	OrganizationID string
}

// AuditFilter narrows an audit listing. Empty fields do not filter.
type AuditFilter struct {
	Type   string
	UserID string
	// TypePrefix keeps events whose type starts with it, such as "mfa.".
	TypePrefix     string
	OrganizationID string
	// From and To keep events created at or after From and before To; zero times do not filter.
	From, To time.Time
}

// AuditEvents stores audit events.
type AuditEvents interface {
	// AddAuditEvent stores e and, in the same transaction, queues a WebhookDelivery of it for
	// every enabled webhook of the project whose Events match its type (see EventPatterns).
	// ErrNotFound if the project does not exist.
	AddAuditEvent(ctx context.Context, e AuditEvent) error
	// ListAuditEvents returns events newest first, by (created_at, id) descending: at most
	// limit rows (zero or less: all) that come after the event with id before in that order
	// ("" for the newest; an id that is no event of the project gives none).
	ListAuditEvents(ctx context.Context, projectID string, f AuditFilter, limit int, before string) ([]AuditEvent, error)
}
