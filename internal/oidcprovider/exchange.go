package oidcprovider

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// CodeRequest is a token request with grant_type=authorization_code, from a client the token
// endpoint already authenticated (or, for a public client, identified).
type CodeRequest struct {
	Code         string
	RedirectURI  string
	CodeVerifier string
}

// TokenResponse is what the token endpoint answers (RFC 6749 §5.1, OIDC Core §3.1.3.3).
type TokenResponse struct {
	AccessToken  string
	RefreshToken string // "" without offline_access
	IDToken      string // "" without openid
	ExpiresIn    int
	Scope        string
}

var (
	errUnknownRequest = failure.New(failure.NotFound, "auth_request_not_found", "the authorization request does not exist")
	errExpiredRequest = failure.New(failure.Invalid, "auth_request_expired", "the authorization request has expired; start again from the application")
)

// PublicClient returns the project of a client that authenticates with nothing but its id
// (token_endpoint_auth_method none). Any other client must send its secret: invalid_client.
func (p *Provider) PublicClient(ctx context.Context, clientID string) (store.Project, error) {
	c, err := p.storage.client(ctx, clientID)
	if err != nil {
		return store.Project{}, errInvalidClient()
	}
	if c.AuthMethod() != oidc.AuthMethodNone {
		return store.Project{}, errInvalidClient()
	}
	return c.Project, nil
}

// ExchangeCode redeems an authorization code for project's client. op checks the code, PKCE,
// the client and the redirect_uri; then one transaction starts a new token session for the
// client and consumes the code, so that of any number of concurrent exchanges exactly one wins.
// The new session's parent is the login session that approved the request (see EndSession).
// A reuse revokes the winner's session. The id_token is op's, signed with the project's key.
func (p *Provider) ExchangeCode(ctx context.Context, project store.Project, req CodeRequest, meta audit.Meta) (TokenResponse, error) {
	if req.Code == "" {
		return TokenResponse{}, invalidRequest("code is required")
	}
	if len(req.CodeVerifier) > 128 || len(req.RedirectURI) > 2048 {
		return TokenResponse{}, invalidRequest("code_verifier or redirect_uri is too long")
	}
	c, err := p.storage.clientOf(project)
	if err != nil {
		return TokenResponse{}, err
	}
	ctx = withClient(withAuthenticated(withProject(p.WithIssuer(ctx), project), project.ClientID), c)
	tr := &oidc.AccessTokenRequest{Code: req.Code, RedirectURI: req.RedirectURI, ClientID: project.ClientID,
		CodeVerifier: req.CodeVerifier}
	ar, oc, err := op.ValidateAccessTokenRequest(ctx, tr, p.Provider)
	if err != nil {
		return TokenResponse{}, fromOIDC(err)
	}
	a, ok := ar.(authRequest)
	client, ok2 := oc.(*Client)
	if !ok || !ok2 || a.r.ProjectID != project.ID {
		return TokenResponse{}, errInvalidGrant("the code was not issued to this client")
	}
	starter, err := p.storage.sessions.PrepareSession(ctx, project) // outside the transaction: see token
	if err != nil {
		return TokenResponse{}, err
	}
	scope := strings.Join(a.r.Scopes, " ")
	now := p.clock()
	var tokens token.Tokens
	var reused *store.OIDCCode
	err = p.storage.store.InTx(ctx, func(tx store.Store) error {
		var err error
		tokens, err = starter.Start(ctx, tx, token.Grant{UserID: a.r.UserID, OrganizationID: a.r.OrganizationID,
			ConnectionType: a.r.ConnectionType, AMR: a.r.AMR, Meta: meta, Scope: scope,
			NoRefreshToken: !slices.Contains(a.r.Scopes, oidc.ScopeOfflineAccess),
			// The login's session, which the browser session hangs on: logout with this
			// session's id_token_hint follows the link to end single sign-on.
			ParentSessionID: a.r.SessionID})
		if err != nil {
			return err
		}
		code, err := tx.ConsumeOIDCCode(ctx, project.ID, hashOf(req.Code), tokens.Session.ID, now)
		switch {
		case errors.Is(err, store.ErrReused):
			reused = &code
			return errRollback
		case errors.Is(err, store.ErrNotFound):
			return errInvalidGrant("the code is not valid")
		case err != nil:
			return fmt.Errorf("consume code: %w", err)
		}
		if !now.Before(code.ExpiresAt) {
			return errInvalidGrant("the code has expired")
		}
		return nil
	})
	if reused != nil {
		if err := p.codeReused(ctx, *reused); err != nil {
			return TokenResponse{}, err
		}
		return TokenResponse{}, errInvalidGrant("the code was already used; the tokens it gave have been revoked")
	}
	if err != nil {
		return TokenResponse{}, err
	}
	out := TokenResponse{AccessToken: tokens.AccessToken, RefreshToken: tokens.RefreshToken, ExpiresIn: tokens.ExpiresIn, Scope: scope}
	if slices.Contains(a.r.Scopes, oidc.ScopeOpenID) {
		idr := idTokenRequest{IDTokenRequest: a, sessionID: tokens.Session.ID, orgID: a.r.OrganizationID}
		out.IDToken, err = op.CreateIDToken(ctx, p.issuer, nonceRequest{idr}, client.IDTokenLifetime(), tokens.AccessToken, req.Code, p.storage, client)
		if err != nil {
			return TokenResponse{}, fmt.Errorf("create id_token: %w", err)
		}
	}
	return out, nil
}

// nonceRequest is an idTokenRequest that op also reads as an op.AuthRequest, which is how op
// finds the nonce of an id_token.
type nonceRequest struct{ idTokenRequest }

func (n nonceRequest) GetID() string                         { return n.auth().GetID() }
func (n nonceRequest) GetACR() string                        { return "" }
func (n nonceRequest) GetCodeChallenge() *oidc.CodeChallenge { return nil }
func (n nonceRequest) GetRedirectURI() string                { return n.auth().GetRedirectURI() }
func (n nonceRequest) GetResponseType() oidc.ResponseType    { return oidc.ResponseTypeCode }
func (n nonceRequest) GetResponseMode() oidc.ResponseMode    { return n.auth().GetResponseMode() }
func (n nonceRequest) GetState() string                      { return n.auth().GetState() }
func (n nonceRequest) Done() bool                            { return true }
func (n nonceRequest) auth() authRequest {
	a, _ := n.IDTokenRequest.(authRequest)
	return a
}

// errRollback undoes the exchange's transaction when the code turned out to be spent.
var errRollback = errors.New("oidcprovider: code reused; roll back")

// codeReused revokes the session the code's first exchange started and records the reuse
// (RFC 6749 §4.1.2: the code leaked). It commits on its own: the refusal must not undo it.
func (p *Provider) codeReused(ctx context.Context, c store.OIDCCode) error {
	now := p.clock()
	err := p.storage.store.InTx(ctx, func(tx store.Store) error {
		detail := map[string]any{"request_id": c.RequestID}
		var userID string
		if c.SessionID != "" {
			sess, err := tx.GetSession(ctx, c.ProjectID, c.SessionID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("get session %s: %w", c.SessionID, err)
			}
			userID = sess.UserID
			revokeErr := tx.RevokeSession(ctx, c.ProjectID, c.SessionID, now, "authorization_code_reused")
			if revokeErr != nil && !errors.Is(revokeErr, store.ErrNotFound) {
				return fmt.Errorf("revoke session %s: %w", c.SessionID, revokeErr)
			}
			detail["session_already_revoked"] = revokeErr != nil
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{ID: p.ids.New(), ProjectID: c.ProjectID, Type: "authorization_code.reused",
			UserID: userID, SessionID: c.SessionID, Detail: detail, CreatedAt: now})
	})
	if err != nil {
		return fmt.Errorf("revoke the session of a reused code: %w", err)
	}
	p.log.WarnContext(ctx, "authorization code reused; session revoked", "project_id", c.ProjectID, "session_id", c.SessionID)
	return nil
}

// Refresh rotates a refresh token through login.Service.Refresh (token.Service's one rotation
// and reuse path behind the wrong-token throttle, shared with /api/v1/accesstoken/refresh) and adds a new id_token when the session was
// granted openid. scope, when sent, must not widen the grant (RFC 6749 §6).
func (p *Provider) Refresh(ctx context.Context, project store.Project, refreshToken, scope string, meta audit.Meta) (TokenResponse, error) {
	if refreshToken == "" {
		return TokenResponse{}, invalidRequest("refresh_token is required")
	}
	res, err := p.storage.refresher.Refresh(ctx, project, refreshToken, meta)
	tokens := res.Tokens
	if err != nil {
		var fe *failure.Error
		if errors.As(err, &fe) && fe.Code == "invalid_grant" {
			return TokenResponse{}, errInvalidGrant(fe.Description)
		}
		return TokenResponse{}, err
	}
	granted := strings.Fields(tokens.Session.Scope)
	for _, s := range strings.Fields(scope) {
		if !slices.Contains(granted, s) {
			return TokenResponse{}, failure.New(failure.Invalid, "invalid_scope", "scope %q was not granted", s)
		}
	}
	out := TokenResponse{AccessToken: tokens.AccessToken, RefreshToken: tokens.RefreshToken, ExpiresIn: tokens.ExpiresIn,
		Scope: tokens.Session.Scope}
	if slices.Contains(granted, oidc.ScopeOpenID) {
		client, err := p.storage.clientOf(project)
		if err != nil {
			return TokenResponse{}, err
		}
		ctx = withProject(p.WithIssuer(ctx), project)
		r := idTokenRequest{IDTokenRequest: sessionGrant{s: tokens.Session, clientID: project.ClientID, scopes: granted},
			sessionID: tokens.Session.ID, orgID: tokens.Session.OrganizationID}
		out.IDToken, err = op.CreateIDToken(ctx, p.issuer, r, client.IDTokenLifetime(), tokens.AccessToken, "", p.storage, client)
		if err != nil {
			return TokenResponse{}, fmt.Errorf("create id_token: %w", err)
		}
	}
	return out, nil
}

// sessionGrant is a refreshed session as op.IDTokenRequest.
type sessionGrant struct {
	s        store.Session
	clientID string
	scopes   []string
}

func (g sessionGrant) GetAMR() []string       { return g.s.AMR }
func (g sessionGrant) GetAudience() []string  { return []string{g.clientID} }
func (g sessionGrant) GetAuthTime() time.Time { return g.s.CreatedAt }
func (g sessionGrant) GetClientID() string    { return g.clientID }
func (g sessionGrant) GetScopes() []string    { return g.scopes }
func (g sessionGrant) GetSubject() string     { return g.s.UserID }

// fromOIDC turns op's *oidc.Error into the failure the one error mapping writes, in RFC 6749's
// shape: invalid_client is 401, server_error a 500, every other error 400.
func fromOIDC(err error) error {
	var fe *failure.Error
	if errors.As(err, &fe) {
		return err
	}
	e := oidc.DefaultToServerError(err, "server error")
	switch e.ErrorType {
	case oidc.ServerError:
		return fmt.Errorf("oidc: %w", err)
	case oidc.InvalidClient:
		return errInvalidClient()
	}
	desc := e.Description
	if desc == "" {
		desc = string(e.ErrorType)
	}
	return failure.New(failure.Invalid, string(e.ErrorType), "%s", desc)
}

func errInvalidGrant(why string) error {
	return failure.New(failure.Invalid, "invalid_grant", "%s", why)
}

func errInvalidClient() error {
	return failure.New(failure.Unauthenticated, "invalid_client", "client authentication failed")
}

func invalidRequest(why string) error {
	return failure.New(failure.Invalid, "invalid_request", "%s", why)
}
