package token

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// This file answers what an OAuth client asks about a token it holds: is it active (RFC 7662
// introspection) and revoke it (RFC 7009). Both take either kind of token, tell them apart by
// their form (refresh tokens carry refreshTokenPrefix, access tokens are JWTs), and never
// spend a refresh token: only Refresh rotates a family.

// Token types of an Introspection.
const (
	TypeAccessToken  = "access_token"
	TypeRefreshToken = "refresh_token"
)

// maxRefreshTokenBytes bounds what is hashed and looked up as a refresh token; real ones are
// 46 bytes.
const maxRefreshTokenBytes = 128

// Introspection is what Introspect found out about a token.
type Introspection struct {
	// Active is true only for a token of the project that would be accepted now: an access
	// token that verifies with an active session (or a machine token), or a refresh token that
	// is unused, unexpired and of an active session.
	Active bool
	Type   string // TypeAccessToken or TypeRefreshToken; "" when not Active
	// Claims are an active access token's verified claims.
	Claims AccessClaims
	// Session is the token's session; zero for machine tokens and inactive tokens.
	Session store.Session
	// RefreshToken is an active refresh token's record.
	RefreshToken store.RefreshToken
}

// Introspect tells whether raw is an active token of the project. Anything else (another
// project's token, an unknown, expired, spent or malformed one, a token of an ended session)
// is simply not active: the answer says nothing about why, so that introspection cannot be
// used to probe other projects' tokens. Only a failure to find out is an error.
func (s *Service) Introspect(ctx context.Context, project store.Project, raw string) (Introspection, error) {
	if strings.HasPrefix(raw, refreshTokenPrefix) {
		return s.introspectRefreshToken(ctx, project, raw)
	}
	c, err := s.Authenticate(ctx, project, raw)
	if err != nil {
		if isRefusal(err) {
			return Introspection{}, nil
		}
		return Introspection{}, err
	}
	return Introspection{Active: true, Type: TypeAccessToken, Claims: c.Claims, Session: c.Session}, nil
}

func (s *Service) introspectRefreshToken(ctx context.Context, project store.Project, raw string) (Introspection, error) {
	rt, sess, err := s.findRefreshToken(ctx, project, raw)
	if err != nil || rt.ID == "" {
		return Introspection{}, err
	}
	now := s.clock()
	if rt.UsedAt != nil || !now.Before(rt.ExpiresAt) || !sess.Active(now) {
		return Introspection{}, nil
	}
	return Introspection{Active: true, Type: TypeRefreshToken, Session: sess, RefreshToken: rt}, nil
}

// findRefreshToken reads the project's refresh token raw and its session, spending nothing. A
// token the project does not have gives zero records and no error.
func (s *Service) findRefreshToken(ctx context.Context, project store.Project, raw string) (store.RefreshToken, store.Session, error) {
	if len(raw) > maxRefreshTokenBytes {
		return store.RefreshToken{}, store.Session{}, nil
	}
	rt, err := s.store.GetRefreshToken(ctx, project.ID, hashToken(raw))
	if errors.Is(err, store.ErrNotFound) {
		return store.RefreshToken{}, store.Session{}, nil
	}
	if err != nil {
		return store.RefreshToken{}, store.Session{}, fmt.Errorf("get refresh token: %w", err)
	}
	sess, err := s.store.GetSession(ctx, project.ID, rt.SessionID)
	if errors.Is(err, store.ErrNotFound) {
		return store.RefreshToken{}, store.Session{}, nil
	}
	if err != nil {
		return store.RefreshToken{}, store.Session{}, fmt.Errorf("get session %s: %w", rt.SessionID, err)
	}
	return rt, sess, nil
}

// Revocation reasons, as session.revoked audit events record them.
const (
	ReasonRefreshTokenRevoked = "refresh_token_revoked"
	ReasonAccessTokenRevoked  = "access_token_revoked"
)

// RevokeToken revokes raw, a token the project's client holds (RFC 7009): a refresh token
// ends its family, that is its session (RevokeRefreshToken); an access token ends its session.
// A token the project does not have, or one already dead, is no error: RFC 7009 §2.2 answers
// 200 whether or not there was anything to revoke, so the answer leaks nothing either.
// A machine (client_credentials) token cannot be revoked, having no session:
// unsupported_token_type.
func (s *Service) RevokeToken(ctx context.Context, project store.Project, raw string, meta audit.Meta) error {
	if strings.HasPrefix(raw, refreshTokenPrefix) {
		_, err := s.RevokeRefreshToken(ctx, project, raw, meta)
		return err
	}
	c, err := s.Authenticate(ctx, project, raw)
	if err != nil {
		if isRefusal(err) {
			return nil
		}
		return err
	}
	if c.Machine() {
		return failure.New(failure.Invalid, "unsupported_token_type",
			"a client_credentials token cannot be revoked; it ends when it expires")
	}
	_, err = s.endSession(ctx, project, c.Session, ReasonAccessTokenRevoked, meta)
	return err
}

// RevokeRefreshToken ends the session (the refresh token family) of the project's refresh
// token raw, used or not, without spending it, and writes a session.revoked audit event. It
// reports whether a session was ended: false for a token the project does not have or whose
// session had already ended.
func (s *Service) RevokeRefreshToken(ctx context.Context, project store.Project, raw string, meta audit.Meta) (bool, error) {
	rt, sess, err := s.findRefreshToken(ctx, project, raw)
	if err != nil || rt.ID == "" {
		return false, err
	}
	return s.endSession(ctx, project, sess, ReasonRefreshTokenRevoked, meta)
}

// endSession revokes sess through RevokeSession (one transaction with its audit event),
// reporting false when it had already ended.
func (s *Service) endSession(ctx context.Context, project store.Project, sess store.Session, reason string, meta audit.Meta) (bool, error) {
	err := s.RevokeSession(ctx, project.ID, sess.UserID, sess.ID, reason, meta)
	if fe, ok := failure.As(err); ok && fe.Code == "session_not_found" {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	s.log.InfoContext(ctx, "session revoked by its client", "project_id", project.ID, "session_id", sess.ID, "reason", reason)
	return true, nil
}

// isRefusal reports whether err is Authenticate refusing the token (the token's fault), as
// opposed to failing to check it.
func isRefusal(err error) bool {
	fe, ok := failure.As(err)
	return ok && fe.Kind == failure.Unauthenticated
}
