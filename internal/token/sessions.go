package token

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Policy is a project's token and session settings.
type Policy struct {
	Algorithm       Algorithm
	AccessTTL       time.Duration
	RefreshTTL      time.Duration
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
}

// Access is what a user may do in an organization, for the access token's claims.
type Access struct {
	Roles       []string // role slugs
	Permissions []string // permission slugs
}

// AccessSource resolves a user's role and permission slugs in an organization (directory).
type AccessSource interface {
	MemberAccess(ctx context.Context, projectID, userID, orgID string) (roles, permissions []string, err error)
}

// ProjectLookup finds a project by client id (project.Service).
type ProjectLookup interface {
	ProjectByClientID(ctx context.Context, clientID string) (store.Project, error)
}

// SessionStore is the part of the store the session service uses. InTx hands fn the whole
// store (see store.Store.InTx); code here uses tx only through SessionStore.
type SessionStore interface {
	store.Sessions
	store.RefreshTokens
	store.AuditEvents
	InTx(ctx context.Context, fn func(tx store.Store) error) error
}

// ServiceDeps are the session service's dependencies.
type ServiceDeps struct {
	Store    SessionStore
	Projects ProjectLookup
	Keys     *KeyManager
	Access   AccessSource
	// Policy reads a project's token settings.
	Policy func(p store.Project) (Policy, error)
	Issuer string // the server's public URL
	IDs    *ident.Generator
	Now    func() time.Time
	Rand   io.Reader
	Log    *slog.Logger
}

// Service starts sessions, issues and refreshes tokens, and checks bearer tokens against
// live sessions.
type Service struct {
	store    SessionStore
	projects ProjectLookup
	keys     *KeyManager
	access   AccessSource
	policy   func(store.Project) (Policy, error)
	issuer   string
	ids      *ident.Generator
	now      func() time.Time
	rand     io.Reader
	log      *slog.Logger
}

// NewService returns a session service.
func NewService(d ServiceDeps) *Service {
	s := &Service{store: d.Store, projects: d.Projects, keys: d.Keys, access: d.Access, policy: d.Policy, issuer: strings.TrimRight(d.Issuer, "/"),
		ids: d.IDs, now: d.Now, rand: d.Rand, log: d.Log}
	if s.ids == nil {
		s.ids = ident.NewGenerator()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Issuer is the iss of every token this service mints.
func (s *Service) Issuer() string { return s.issuer }

// Grant is a completed login, from which a SessionStarter makes a session.
type Grant struct {
	UserID         string
	OrganizationID string // "" for none
	ConnectionType string
	AMR            []string
	Meta           audit.Meta
	// Scope is the OAuth scope granted to an OpenID Connect client ("" for the API's own
	// logins); the session keeps it and every access token carries it.
	Scope string
	// NoRefreshToken starts a session without a refresh token (an OpenID Connect grant
	// without offline_access).
	NoRefreshToken bool
	// ParentSessionID is the login session whose single sign-on this grant came from (an
	// OpenID Connect code exchange names the hosted page's session); the new session keeps it
	// as store.Session.ParentID so that RP-initiated logout can end single sign-on. "" for none.
	ParentSessionID string
}

// Tokens are the tokens of a session.
type Tokens struct {
	AccessToken  string
	RefreshToken string // "" for machine tokens
	ExpiresAt    time.Time
	ExpiresIn    int // seconds
	Session      store.Session
	Claims       AccessClaims
}

// refreshTokenPrefix marks Latchkey refresh tokens, so that a leaked one is recognisable
// (secret scanners) and never mistaken for a client secret.
const refreshTokenPrefix = "rt_"

// SessionStarter starts sessions of one project. It holds the signing key and policy, fetched
// before the caller's transaction begins: getting a key may create or rotate one, which is a
// write, and on SQLite's single writer it would wait forever for the transaction it is in.
type SessionStarter struct {
	s       *Service
	project store.Project
	policy  Policy
	key     SigningKey
}

// PrepareSession returns a starter for the project's sessions. Call it outside any transaction.
func (s *Service) PrepareSession(ctx context.Context, project store.Project) (*SessionStarter, error) {
	p, key, err := s.signing(ctx, project)
	if err != nil {
		return nil, err
	}
	return &SessionStarter{s: s, project: project, policy: p, key: key}, nil
}

// Start creates a session for g with its first refresh token (none when g.NoRefreshToken),
// writing through st (a transaction of the caller's, so that a login commits as one unit), and
// mints its access token, which carries g.Scope as its scope claim.
func (st *SessionStarter) Start(ctx context.Context, tx SessionStore, g Grant) (Tokens, error) {
	s, p := st.s, st.policy
	now := s.clock()
	sess := store.Session{
		ID: s.ids.New(), ProjectID: st.project.ID, UserID: g.UserID, OrganizationID: g.OrganizationID,
		ConnectionType: g.ConnectionType, AMR: nonNil(g.AMR), Scope: g.Scope, ParentID: g.ParentSessionID,
		IPAddress: g.Meta.IPAddress, UserAgent: g.Meta.UserAgent,
		CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(p.AbsoluteTimeout),
	}
	sess.IdleExpiresAt = p.idleUntil(now, sess)
	if err := tx.CreateSession(ctx, sess); err != nil {
		return Tokens{}, fmt.Errorf("create session: %w", err)
	}
	var refresh string // stays "" for a grant without offline_access: no family to rotate
	if !g.NoRefreshToken {
		var err error
		if refresh, err = s.newRefreshToken(ctx, tx, sess, p, now); err != nil {
			return Tokens{}, err
		}
	}
	out, err := s.mintForSession(ctx, st.project, p, st.key, sess, now)
	if err != nil {
		return Tokens{}, err
	}
	out.RefreshToken = refresh
	return out, nil
}

// signing returns the project's policy and the key it signs with now.
func (s *Service) signing(ctx context.Context, project store.Project) (Policy, SigningKey, error) {
	p, err := s.policy(project)
	if err != nil {
		return Policy{}, SigningKey{}, err
	}
	key, err := s.keys.Signer(ctx, project.ID, p.Algorithm)
	if err != nil {
		return Policy{}, SigningKey{}, err
	}
	return p, key, nil
}

// Refresh spends refreshToken and returns a new pair for its session. A token that was
// already spent is a sign that it leaked: the whole session is revoked and an audit event
// written, and the caller (honest or not) must log in again.
func (s *Service) Refresh(ctx context.Context, project store.Project, refreshToken string, meta audit.Meta) (Tokens, error) {
	p, key, err := s.signing(ctx, project) // before the transaction: see SessionStarter
	if err != nil {
		return Tokens{}, err
	}
	if !strings.HasPrefix(refreshToken, refreshTokenPrefix) || len(refreshToken) > 128 {
		return Tokens{}, errInvalidGrant("the refresh token is not valid")
	}
	hash := hashToken(refreshToken)
	now := s.clock()
	var out Tokens
	var reused *store.RefreshToken
	err = s.store.InTx(ctx, func(tx store.Store) error {
		rt, err := tx.UseRefreshToken(ctx, project.ID, hash, now)
		switch {
		case errors.Is(err, store.ErrReused):
			reused = &rt
			return nil
		case errors.Is(err, store.ErrNotFound):
			return errInvalidGrant("the refresh token is not valid")
		case err != nil:
			return fmt.Errorf("use refresh token: %w", err)
		}
		if !now.Before(rt.ExpiresAt) {
			return errInvalidGrant("the refresh token has expired")
		}
		sess, err := tx.GetSession(ctx, project.ID, rt.SessionID)
		if err != nil {
			return fmt.Errorf("get session %s: %w", rt.SessionID, err)
		}
		if !sess.Active(now) {
			return errInvalidGrant("the session has ended")
		}
		idle := p.idleUntil(now, sess)
		if err := tx.TouchSession(ctx, project.ID, sess.ID, now, idle); err != nil {
			return fmt.Errorf("touch session %s: %w", sess.ID, err)
		}
		sess.LastSeenAt, sess.IdleExpiresAt = now, idle
		refresh, err := s.newRefreshToken(ctx, tx, sess, p, now)
		if err != nil {
			return err
		}
		if out, err = s.mintForSession(ctx, project, p, key, sess, now); err != nil {
			return err
		}
		out.RefreshToken = refresh
		return nil
	})
	if err != nil {
		return Tokens{}, err
	}
	if reused != nil {
		return Tokens{}, s.revokeReused(ctx, project, *reused, meta, now)
	}
	return out, nil
}

// revokeReused ends the session of a reused refresh token and records why. It commits on its
// own: the refusal must not undo it.
func (s *Service) revokeReused(ctx context.Context, project store.Project, rt store.RefreshToken, meta audit.Meta, now time.Time) error {
	err := s.store.InTx(ctx, func(tx store.Store) error {
		sess, err := tx.GetSession(ctx, project.ID, rt.SessionID)
		if err != nil {
			return fmt.Errorf("get session %s: %w", rt.SessionID, err)
		}
		revokeErr := tx.RevokeSession(ctx, project.ID, sess.ID, now, "refresh_token_reused")
		if revokeErr != nil && !errors.Is(revokeErr, store.ErrNotFound) {
			return fmt.Errorf("revoke session %s: %w", sess.ID, revokeErr)
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{
			ID: s.ids.New(), ProjectID: project.ID, Type: "refresh_token.reused",
			UserID: sess.UserID, SessionID: sess.ID, IPAddress: meta.IPAddress, UserAgent: meta.UserAgent,
			Detail:    map[string]any{"refresh_token_id": rt.ID, "session_already_revoked": revokeErr != nil},
			CreatedAt: now,
		})
	})
	if err != nil {
		return fmt.Errorf("revoke session of reused refresh token %s: %w", rt.ID, err)
	}
	s.log.WarnContext(ctx, "refresh token reused; session revoked",
		"project_id", project.ID, "session_id", rt.SessionID, "refresh_token_id", rt.ID)
	return errInvalidGrant("the refresh token was already used; the session has been ended")
}

// ClientCredentials mints a machine token for the project itself (no user, no session).
func (s *Service) ClientCredentials(ctx context.Context, project store.Project, scope string) (Tokens, error) {
	p, key, err := s.signing(ctx, project)
	if err != nil {
		return Tokens{}, err
	}
	now := s.clock()
	c := AccessClaims{
		Issuer: s.issuer, Subject: project.ClientID, Audience: []string{project.ClientID},
		IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(p.AccessTTL), ID: s.ids.New(),
		ClientID: project.ClientID, AuthorizedParty: project.ClientID,
		Scope: scope, GrantType: GrantClientCredentials,
	}
	return s.mint(key, c, store.Session{})
}

// GrantClientCredentials is the gty claim of machine tokens.
const GrantClientCredentials = "client_credentials"

func (s *Service) mintForSession(ctx context.Context, project store.Project, p Policy, key SigningKey, sess store.Session, now time.Time) (Tokens, error) {
	access := Access{}
	if sess.OrganizationID != "" {
		var err error
		if access.Roles, access.Permissions, err = s.access.MemberAccess(ctx, project.ID, sess.UserID, sess.OrganizationID); err != nil {
			return Tokens{}, fmt.Errorf("resolve access of user %s: %w", sess.UserID, err)
		}
	}
	exp := earliest(now.Add(p.AccessTTL), sess.ExpiresAt) // a token never outlives its session
	c := AccessClaims{
		Issuer: s.issuer, Subject: sess.UserID, Audience: []string{project.ClientID},
		IssuedAt: now, NotBefore: now, ExpiresAt: exp, ID: s.ids.New(),
		ClientID: project.ClientID, AuthorizedParty: project.ClientID, SessionID: sess.ID,
		AMR: nonNil(sess.AMR), OrgID: sess.OrganizationID, Scope: sess.Scope, // "" for the API's own logins
		Roles: nonNil(access.Roles), Permissions: nonNil(access.Permissions),
	}
	return s.mint(key, c, sess)
}

func (s *Service) mint(key SigningKey, c AccessClaims, sess store.Session) (Tokens, error) {
	raw, err := Mint(key, c)
	if err != nil {
		return Tokens{}, fmt.Errorf("mint access token: %w", err)
	}
	return Tokens{AccessToken: raw, ExpiresAt: c.ExpiresAt, ExpiresIn: int(c.ExpiresAt.Sub(c.IssuedAt).Seconds()),
		Session: sess, Claims: c}, nil
}

func (s *Service) newRefreshToken(ctx context.Context, st SessionStore, sess store.Session, p Policy, now time.Time) (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("read randomness: %w", err)
	}
	raw := refreshTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	exp := earliest(now.Add(p.RefreshTTL), sess.ExpiresAt)
	rt := store.RefreshToken{ID: s.ids.New(), ProjectID: sess.ProjectID, SessionID: sess.ID, Hash: hashToken(raw),
		CreatedAt: now, ExpiresAt: exp}
	if err := st.CreateRefreshToken(ctx, rt); err != nil {
		return "", fmt.Errorf("create refresh token: %w", err)
	}
	return raw, nil
}

// Caller is who made a request with a bearer access token.
type Caller struct {
	Project store.Project
	Claims  AccessClaims
	Session store.Session // zero for machine tokens
}

// Machine reports whether the caller is a client_credentials token rather than a user.
func (c Caller) Machine() bool { return c.Claims.GrantType == GrantClientCredentials }

// touchEvery is how stale a session's last-seen time may get before a request moves it: a
// write per request would cost more than the idle timeout's precision is worth.
const touchEvery = time.Minute

// Authenticate verifies an access token of the project and, for user tokens, that its session
// is still active: a revoked or expired session's tokens stop working at once, whatever their
// exp says.
func (s *Service) Authenticate(ctx context.Context, project store.Project, raw string) (Caller, error) {
	v := Verifier{Keys: s.keys.KeySet(project.ID), Issuer: s.issuer, Audience: project.ClientID, Now: s.now}
	c, err := v.Verify(ctx, raw)
	if err != nil {
		return Caller{}, err
	}
	if c.ClientID != project.ClientID {
		return Caller{}, errInvalidToken("the token was issued to another client")
	}
	if c.GrantType == GrantClientCredentials {
		if c.SessionID != "" || c.Subject != project.ClientID {
			return Caller{}, errInvalidToken("malformed machine token")
		}
		return Caller{Project: project, Claims: c}, nil
	}
	if c.SessionID == "" {
		return Caller{}, errInvalidToken("the token has no session")
	}
	sess, err := s.store.GetSession(ctx, project.ID, c.SessionID)
	if errors.Is(err, store.ErrNotFound) {
		return Caller{}, errInvalidToken("the session has ended")
	}
	if err != nil {
		return Caller{}, fmt.Errorf("get session %s: %w", c.SessionID, err)
	}
	now := s.clock()
	if !sess.Active(now) || sess.UserID != c.Subject {
		return Caller{}, errInvalidToken("the session has ended")
	}
	if now.Sub(sess.LastSeenAt) >= touchEvery {
		p, err := s.policy(project)
		if err != nil {
			return Caller{}, err
		}
		idle := p.idleUntil(now, sess)
		switch err := s.store.TouchSession(ctx, project.ID, sess.ID, now, idle); {
		case errors.Is(err, store.ErrNotFound):
			return Caller{}, errInvalidToken("the session has ended")
		case err != nil:
			return Caller{}, fmt.Errorf("touch session %s: %w", sess.ID, err)
		}
		sess.LastSeenAt, sess.IdleExpiresAt = now, idle
	}
	return Caller{Project: project, Claims: c, Session: sess}, nil
}

// AuthenticateBearer authenticates a request's access token. The project is the one the
// request names (clientID) or, without one, the one the token claims to be for; either way the
// token must then verify with that project's own keys and audience.
func (s *Service) AuthenticateBearer(ctx context.Context, clientID, raw string) (Caller, error) {
	claimed, err := peekClientID(raw)
	if err != nil {
		return Caller{}, err
	}
	if clientID == "" {
		clientID = claimed
	} else if clientID != claimed {
		return Caller{}, errInvalidToken("the token was issued to another client")
	}
	project, err := s.projects.ProjectByClientID(ctx, clientID)
	if err != nil {
		var fe *failure.Error
		if errors.As(err, &fe) && fe.Kind == failure.Unauthenticated {
			return Caller{}, errInvalidToken("the token's client is unknown")
		}
		return Caller{}, err
	}
	return s.Authenticate(ctx, project, raw)
}

// peekClientID reads the client_id claim of a token without verifying it, only to find the
// project whose keys must then verify it.
func peekClientID(raw string) (string, error) {
	parts := strings.Split(raw, ".")
	if len(raw) > maxTokenBytes || len(parts) != 3 {
		return "", errInvalidToken("the access token is malformed")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", errInvalidToken("the access token is malformed")
	}
	var c struct {
		ClientID string `json:"client_id"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.ClientID == "" {
		return "", errInvalidToken("the access token names no client")
	}
	return c.ClientID, nil
}

// maxTokenBytes bounds what is decoded before a token is verified.
const maxTokenBytes = 16 << 10

// ListSessions returns the user's active sessions, newest first.
func (s *Service) ListSessions(ctx context.Context, projectID, userID string) ([]store.Session, error) {
	out, err := s.store.ListUserSessions(ctx, projectID, userID, s.clock())
	if err != nil {
		return nil, fmt.Errorf("list sessions of user %s: %w", userID, err)
	}
	return out, nil
}

// RevokeSession ends one session of the user. Errors: session_not_found (404), also for a
// session of another user.
func (s *Service) RevokeSession(ctx context.Context, projectID, userID, sessionID, reason string, meta audit.Meta) error {
	now := s.clock()
	err := s.store.InTx(ctx, func(tx store.Store) error {
		sess, err := tx.GetSession(ctx, projectID, sessionID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && (sess.UserID != userID || !sess.Active(now))) {
			return failure.New(failure.NotFound, "session_not_found", "session not found")
		}
		if err != nil {
			return fmt.Errorf("get session %s: %w", sessionID, err)
		}
		if err := tx.RevokeSession(ctx, projectID, sessionID, now, reason); err != nil {
			return fmt.Errorf("revoke session %s: %w", sessionID, err)
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{ID: s.ids.New(), ProjectID: projectID, Type: "session.revoked",
			UserID: userID, SessionID: sessionID, IPAddress: meta.IPAddress, UserAgent: meta.UserAgent,
			Detail: map[string]any{"reason": reason}, CreatedAt: now})
	})
	if err != nil {
		return err
	}
	return nil
}

// RevokeUserSessions ends every session of the user and returns how many were active.
func (s *Service) RevokeUserSessions(ctx context.Context, projectID, userID, reason string, meta audit.Meta) (int, error) {
	var n int
	err := s.store.InTx(ctx, func(tx store.Store) error {
		var err error
		n, err = s.RevokeUserSessionsIn(ctx, tx, projectID, userID, reason, meta)
		return err
	})
	return n, err
}

// RevokeUserSessionsIn is RevokeUserSessions through tx, a transaction of the caller's, for a
// change that must end the sessions in its own commit (a password reset).
func (s *Service) RevokeUserSessionsIn(ctx context.Context, tx SessionStore, projectID, userID, reason string, meta audit.Meta) (int, error) {
	now := s.clock()
	n, err := tx.RevokeUserSessions(ctx, projectID, userID, now, reason)
	if err == nil {
		err = tx.AddAuditEvent(ctx, store.AuditEvent{ID: s.ids.New(), ProjectID: projectID, Type: "session.revoked_all",
			UserID: userID, IPAddress: meta.IPAddress, UserAgent: meta.UserAgent,
			Detail: map[string]any{"reason": reason, "count": n}, CreatedAt: now})
	}
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of user %s: %w", userID, err)
	}
	return n, nil
}

// idleUntil is when sess, used at now, ends unless it is used again: never after its absolute end.
func (p Policy) idleUntil(now time.Time, sess store.Session) time.Time {
	return earliest(now.Add(p.IdleTimeout), sess.ExpiresAt)
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func hashToken(raw string) []byte {
	h := sha256.Sum256([]byte(raw))
	return h[:]
}

func errInvalidGrant(why string) error {
	return failure.New(failure.Unauthenticated, "invalid_grant", "%s", why)
}

func errInvalidToken(why string) error {
	return failure.New(failure.Unauthenticated, "invalid_token", "%s", why)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
