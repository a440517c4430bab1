package oidcprovider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// Storage is op.Storage over Latchkey's store, token and directory services. op uses it for
// what it checks (clients, authorization requests, codes) and for the id_token (signing key,
// claims); the methods through which op would mint tokens itself are never reached, because
// internal/token mints every access and refresh token.
type Storage struct {
	p         *Provider
	store     Store
	projects  Projects
	sessions  Sessions
	refresher Refresher
	keys      *token.KeyManager
	policy    func(store.Project) (token.Policy, error)
	users     Users
	access    token.AccessSource
}

var (
	_ op.Storage                   = (*Storage)(nil)
	_ op.CanSetUserinfoFromRequest = (*Storage)(nil)
)

// errNotReached marks the op.Storage methods through which op would mint tokens itself.
var errNotReached = errors.New("oidcprovider: not reached: tokens are minted by internal/token")

// authRequest is op.AuthRequest over one stored authorization request.
type authRequest struct{ r store.OIDCAuthRequest }

var _ op.AuthRequest = authRequest{}

func (a authRequest) GetID() string         { return a.r.ID }
func (a authRequest) GetACR() string        { return "" }
func (a authRequest) GetAMR() []string      { return a.r.AMR }
func (a authRequest) GetAudience() []string { return []string{a.r.ClientID} }
func (a authRequest) GetAuthTime() time.Time {
	if a.r.AuthTime == nil {
		return time.Time{}
	}
	return *a.r.AuthTime
}
func (a authRequest) GetClientID() string { return a.r.ClientID }
func (a authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.r.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.r.CodeChallenge, Method: oidc.CodeChallengeMethod(a.r.CodeChallengeMethod)}
}
func (a authRequest) GetNonce() string                   { return a.r.Nonce }
func (a authRequest) GetRedirectURI() string             { return a.r.RedirectURI }
func (a authRequest) GetResponseType() oidc.ResponseType { return oidc.ResponseTypeCode }
func (a authRequest) GetResponseMode() oidc.ResponseMode {
	if a.r.ResponseMode == string(oidc.ResponseModeFormPost) {
		return oidc.ResponseModeFormPost
	}
	return oidc.ResponseModeQuery
}
func (a authRequest) GetScopes() []string { return a.r.Scopes }
func (a authRequest) GetState() string    { return a.r.State }
func (a authRequest) GetSubject() string  { return a.r.UserID }
func (a authRequest) Done() bool          { return a.r.Done() }

// idTokenRequest is what an id_token is made from: the approved request of a code exchange, or
// a refreshed session, with the token session it belongs to (the sid claim).
type idTokenRequest struct {
	op.IDTokenRequest
	sessionID string
	orgID     string
}

func (r idTokenRequest) latchkey() idTokenRequest { return r }

// GetNonce passes the request's nonce on (op reads it from an op.AuthRequest only).
func (r idTokenRequest) GetNonce() string {
	if a, ok := r.IDTokenRequest.(authRequest); ok {
		return a.GetNonce()
	}
	return ""
}

// --- op.AuthStorage ---

// CreateAuthRequest stores the validated request, bound to the browser by the cookie the
// authorize route set. The id is 128 random bits: it travels in the login page's URL.
func (s *Storage) CreateAuthRequest(ctx context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, err := s.client(ctx, r.ClientID)
	if err != nil {
		return nil, err
	}
	x := extrasFrom(ctx)
	if len(x.binding) == 0 || x.requestID == "" {
		return nil, errors.New("oidcprovider: authorization request without a browser binding")
	}
	now := s.p.clock()
	row := store.OIDCAuthRequest{
		ID: x.requestID, ProjectID: c.Project.ID, ClientID: r.ClientID, RedirectURI: r.RedirectURI,
		Scopes: slices.Clone([]string(r.Scopes)), State: r.State, Nonce: r.Nonce, ResponseMode: string(r.ResponseMode),
		CodeChallenge: r.CodeChallenge, CodeChallengeMethod: string(r.CodeChallengeMethod),
		Prompt: slices.Clone([]string(r.Prompt)), LoginHint: r.LoginHint, Extensions: x.extensions,
		BrowserBinding: x.binding, CreatedAt: now, ExpiresAt: now.Add(RequestLifetime),
	}
	if r.MaxAge != nil {
		m := int(min(*r.MaxAge, uint(maxMaxAge)))
		row.MaxAge = &m
	}
	for _, t := range r.UILocales {
		row.UILocales = append(row.UILocales, t.String())
	}
	if row.Extensions == nil {
		row.Extensions = map[string]string{}
	}
	if err := s.store.CreateOIDCAuthRequest(ctx, row); err != nil {
		return nil, fmt.Errorf("create authorization request: %w", err)
	}
	return authRequest{row}, nil
}

// maxMaxAge caps max_age (seconds) at ten years: it is compared with durations, never stored
// as more.
const maxMaxAge = 10 * 365 * 24 * 3600

// AuthRequestByID finds an unexpired request.
func (s *Storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	r, err := s.request(ctx, id)
	if err != nil {
		return nil, err
	}
	return authRequest{r}, nil
}

func (s *Storage) request(ctx context.Context, id string) (store.OIDCAuthRequest, error) {
	if len(id) != 32 {
		return store.OIDCAuthRequest{}, errUnknownRequest
	}
	r, err := s.store.GetOIDCAuthRequest(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.OIDCAuthRequest{}, errUnknownRequest
	}
	if err != nil {
		return store.OIDCAuthRequest{}, fmt.Errorf("get authorization request: %w", err)
	}
	if !s.p.clock().Before(r.ExpiresAt) {
		return store.OIDCAuthRequest{}, errExpiredRequest
	}
	return r, nil
}

// AuthRequestByCode only reads: the code is consumed where the session is started, in one
// transaction with it (ExchangeCode). A code already consumed is a reuse: the session its
// first exchange started is revoked before the refusal.
func (s *Storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	if code == "" || len(code) > 256 {
		return nil, errors.New("malformed code")
	}
	c, err := s.store.GetOIDCCode(ctx, hashOf(code))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errors.New("unknown code")
	}
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	if c.ConsumedAt != nil {
		if err := s.p.codeReused(ctx, c); err != nil {
			return nil, oidc.ErrServerError().WithParent(err)
		}
		return nil, errors.New("code already used")
	}
	if !s.p.clock().Before(c.ExpiresAt) {
		return nil, errors.New("code expired")
	}
	r, err := s.store.GetOIDCAuthRequest(ctx, c.RequestID)
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	if !r.Done() {
		return nil, errors.New("request not approved")
	}
	return authRequest{r}, nil
}

// SaveAuthCode stores the code's hash. The code is derived from the request (Provider.Crypto),
// so a callback loaded twice saves it twice: the second time is no new code, and a code
// already spent is not handed out again.
func (s *Storage) SaveAuthCode(ctx context.Context, id, code string) error {
	r, err := s.request(ctx, id)
	if err != nil {
		return err
	}
	now := s.p.clock()
	err = s.store.SaveOIDCCode(ctx, store.OIDCCode{Hash: hashOf(code), ProjectID: r.ProjectID, RequestID: r.ID,
		CreatedAt: now, ExpiresAt: now.Add(CodeLifetime)})
	if errors.Is(err, store.ErrConflict) {
		c, err := s.store.GetOIDCCode(ctx, hashOf(code))
		if err != nil {
			return fmt.Errorf("get code: %w", err)
		}
		if c.ConsumedAt != nil {
			return oidc.ErrInvalidRequest().WithDescription("this authorization request was already answered")
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("save code: %w", err)
	}
	return nil
}

// DeleteAuthRequest does nothing: op calls it after minting, and the request stays for reuse
// detection until the sweeper removes it.
func (s *Storage) DeleteAuthRequest(context.Context, string) error { return nil }

// CreateAccessToken is not reached (internal/token mints).
func (s *Storage) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return "", time.Time{}, errNotReached
}

// CreateAccessAndRefreshTokens is not reached (internal/token mints).
func (s *Storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errNotReached
}

// TokenRequestByRefreshToken is not reached (token.Service.Refresh rotates).
func (s *Storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, errNotReached
}

// TerminateSession is not reached: logout is Provider.EndSession.
func (s *Storage) TerminateSession(context.Context, string, string) error { return errNotReached }

// RevokeToken is not reached: revocation is tokenhttp's.
func (s *Storage) RevokeToken(context.Context, string, string, string) *oidc.Error {
	return &oidc.Error{ErrorType: "unsupported_token_type", Description: "revocation is served by the token endpoint's routes"}
}

// GetRefreshTokenInfo is not reached: revocation is tokenhttp's.
func (s *Storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

// SigningKey is the current key of the project in the context: an id_token is signed like the
// project's access tokens, and the union JWKS publishes the key.
func (s *Storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	p, ok := projectFrom(ctx)
	if !ok {
		return nil, errors.New("oidcprovider: no project in the context to sign for")
	}
	pol, err := s.policy(p)
	if err != nil {
		return nil, err
	}
	k, err := s.keys.Signer(ctx, p.ID, pol.Algorithm)
	if err != nil {
		return nil, err
	}
	return signingKey{k}, nil
}

// SignatureAlgorithms are those a project may sign with.
func (s *Storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}, nil
}

// KeySet is not served by op: /.well-known/jwks.json is tokenhttp's union of every project's
// keys.
func (s *Storage) KeySet(context.Context) ([]op.Key, error) { return nil, nil }

type signingKey struct{ k token.SigningKey }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm {
	return jose.SignatureAlgorithm(k.k.Algorithm)
}
func (k signingKey) Key() any   { return k.k.Private }
func (k signingKey) ID() string { return k.k.ID }

// --- op.OPStorage ---

// GetClientByClientID returns the project as a Client.
func (s *Storage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	return s.client(ctx, clientID)
}

// AuthorizeClientIDSecret accepts only the client the token endpoint already authenticated
// through the throttled secret check: a second check would count every attempt twice.
func (s *Storage) AuthorizeClientIDSecret(ctx context.Context, clientID, _ string) error {
	if id := authenticated(ctx); id != "" && id == clientID {
		return nil
	}
	return errors.New("client not authenticated")
}

// SetUserinfoFromScopes sets the standard claims the scopes ask for from the directory:
// email_verified is Latchkey's own state, never a provider's. The verified flags are also
// set as claims of their own: the library's oidc.Bool fields are omitempty, so a false one
// would be left out of the id_token, and a client must see "not verified", not nothing (its
// registered field, when true, wins the merge with the same value).
func (s *Storage) SetUserinfoFromScopes(ctx context.Context, ui *oidc.UserInfo, userID, _ string, scopes []string) error {
	p, ok := projectFrom(ctx)
	if !ok {
		return errors.New("oidcprovider: no project in the context")
	}
	u, err := s.users.GetUser(ctx, p.ID, userID)
	if err != nil {
		return err
	}
	ui.Subject = u.ID
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeEmail:
			if u.Email != "" {
				ui.Email, ui.EmailVerified = u.Email, oidc.Bool(u.EmailVerified)
				ui.AppendClaims("email_verified", u.EmailVerified)
			}
		case oidc.ScopeProfile:
			ui.GivenName, ui.FamilyName = u.FirstName, u.LastName
			ui.Name = strings.TrimSpace(u.FirstName + " " + u.LastName)
			ui.UpdatedAt = oidc.FromTime(u.UpdatedAt)
		case oidc.ScopePhone:
			if u.Phone != "" {
				ui.PhoneNumber, ui.PhoneNumberVerified = u.Phone, oidc.Bool(u.PhoneVerified)
				ui.AppendClaims("phone_number_verified", u.PhoneVerified)
			}
		}
	}
	return nil
}

// SetUserinfoFromRequest adds Latchkey's claims: sid (the token session, for logout), and the
// organization and its roles when those scopes were granted.
func (s *Storage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, request op.IDTokenRequest, scopes []string) error {
	l, ok := request.(interface{ latchkey() idTokenRequest })
	if !ok {
		return nil
	}
	r := l.latchkey()
	if r.sessionID != "" {
		ui.AppendClaims("sid", r.sessionID)
	}
	if r.orgID == "" {
		return nil
	}
	if slices.Contains(scopes, ScopeOrganization) {
		ui.AppendClaims("org_id", r.orgID)
	}
	if slices.Contains(scopes, ScopeRoles) {
		p, ok := projectFrom(ctx)
		if !ok {
			return errors.New("oidcprovider: no project in the context")
		}
		roles, perms, err := s.access.MemberAccess(ctx, p.ID, r.GetSubject(), r.orgID)
		if err != nil {
			return err
		}
		ui.AppendClaims("roles", nonNil(roles))
		ui.AppendClaims("permissions", nonNil(perms))
	}
	return nil
}

// SetUserinfoFromToken is not reached: userinfo is tokenhttp's, over our access tokens.
func (s *Storage) SetUserinfoFromToken(context.Context, *oidc.UserInfo, string, string, string) error {
	return errNotReached
}

// SetIntrospectionFromToken is not reached: introspection is tokenhttp's.
func (s *Storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errNotReached
}

// GetPrivateClaimsFromScopes adds nothing: access tokens are internal/token's.
func (s *Storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetKeyByIDAndClientID refuses: there is no private_key_jwt client authentication.
func (s *Storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("private_key_jwt is not supported")
}

// ValidateJWTProfileScopes refuses: there is no JWT bearer grant.
func (s *Storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("the JWT bearer grant is not supported")
}

// Health is answered by /readyz, not by op.
func (s *Storage) Health(context.Context) error { return nil }

// hintKeySet verifies an id_token_hint with the keys of the project it was issued to (its azp,
// else its audience), as issued by this provider.
type hintKeySet struct {
	projects Projects
	keys     *token.KeyManager
}

func (h hintKeySet) VerifySignature(ctx context.Context, jws *jose.JSONWebSignature) ([]byte, error) {
	if len(jws.Signatures) != 1 {
		return nil, errors.New("id_token_hint must have one signature")
	}
	var c struct {
		AZP string          `json:"azp"`
		Aud json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil {
		return nil, fmt.Errorf("id_token_hint payload: %w", err)
	}
	clientID := c.AZP
	if clientID == "" {
		var one string
		var many []string
		if json.Unmarshal(c.Aud, &one) == nil {
			clientID = one
		} else if json.Unmarshal(c.Aud, &many) == nil && len(many) == 1 {
			clientID = many[0]
		}
	}
	if clientID == "" {
		return nil, errors.New("id_token_hint names no client")
	}
	p, err := h.projects.ProjectByClientID(ctx, clientID)
	if err != nil {
		return nil, err
	}
	sig := jws.Signatures[0]
	k, err := h.keys.KeySet(p.ID).PublicKey(ctx, sig.Header.KeyID)
	if err != nil {
		return nil, err
	}
	if sig.Header.Algorithm != string(k.Algorithm) {
		return nil, errors.New("id_token_hint algorithm does not match its key")
	}
	return jws.Verify(k.Key)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
