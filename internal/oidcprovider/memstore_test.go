package oidcprovider

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// memStorage is the spike's op.Storage: one map per table the real store will need
// (oidc_auth_requests, oidc_codes, sessions and refresh tokens), guarded by one mutex that
// stands for a database transaction. The real one is written over internal/store.
type memStorage struct {
	mu       sync.Mutex
	key      *rsa.PrivateKey
	clients  map[string]*spikeClient
	requests map[string]*authRequest // by id
	codes    map[string]*codeRow     // by code
	access   map[string]*accessRow   // by token id
	refresh  map[string]*refreshRow  // by refresh token
	users    map[string]userRow
}

type userRow struct {
	email         string
	emailVerified bool
	orgID         string
	roles         []string
}

type codeRow struct {
	requestID string
	consumed  bool
	family    string // the session the first exchange started; revoked on reuse
}

type accessRow struct {
	subject, clientID, family string
	scopes                    []string
	revoked                   bool
}

type refreshRow struct {
	req    *authRequest
	family string
	used   bool
}

// families maps a session ("family") to whether it was revoked.
var errRevoked = errors.New("token revoked")

func newMemStorage() *memStorage {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return &memStorage{
		key:      k,
		clients:  map[string]*spikeClient{},
		requests: map[string]*authRequest{},
		codes:    map[string]*codeRow{},
		access:   map[string]*accessRow{},
		refresh:  map[string]*refreshRow{},
		users:    map[string]userRow{},
	}
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// authRequest is op.AuthRequest over one row of the future oidc_auth_requests table.
type authRequest struct {
	id, clientID, redirectURI, state, nonce, subject string
	scopes                                           []string
	challenge                                        *oidc.CodeChallenge
	responseMode                                     oidc.ResponseMode
	authTime                                         time.Time
	amr                                              []string
	done                                             bool
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return a.amr }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return oidc.ResponseTypeCode }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

// approve is what the hosted login page does when a login finishes: it binds the user to
// the auth request (in the real store, in the login's own transaction).
func (s *memStorage) approve(id, subject string, amr []string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.requests[id]
	if !ok {
		return errors.New("no such auth request")
	}
	a.subject, a.amr, a.authTime, a.done = subject, amr, at, true
	return nil
}

// --- op.AuthStorage ---

func (s *memStorage) CreateAuthRequest(_ context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &authRequest{
		id: randomID(), clientID: r.ClientID, redirectURI: r.RedirectURI, state: r.State,
		nonce: r.Nonce, scopes: r.Scopes, responseMode: r.ResponseMode,
	}
	if r.CodeChallenge != "" {
		a.challenge = &oidc.CodeChallenge{Challenge: r.CodeChallenge, Method: r.CodeChallengeMethod}
	}
	s.requests[a.id] = a
	return a, nil
}

func (s *memStorage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.requests[id]
	if !ok {
		return nil, errors.New("no such auth request")
	}
	return a, nil
}

// AuthRequestByCode only reads: the code is consumed where tokens are created, in one
// transaction with them. A code seen a second time revokes what the first exchange got.
func (s *memStorage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.codes[code]
	if !ok {
		return nil, errors.New("no such code")
	}
	if c.consumed {
		s.revokeFamilyLocked(c.family)
		return nil, errors.New("code reused")
	}
	return s.requests[c.requestID], nil
}

func (s *memStorage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = &codeRow{requestID: id}
	return nil
}

// DeleteAuthRequest is what op calls after minting; the code is consumed earlier, where the
// tokens are made, so the row stays for reuse detection until the sweeper removes it.
func (s *memStorage) DeleteAuthRequest(context.Context, string) error { return nil }

// consumeCodeLocked is the hook that makes exactly one exchange win: a conditional update
// (UPDATE oidc_codes SET consumed_at = now WHERE code_hash = $1 AND consumed_at IS NULL)
// in the transaction that also starts the session.
func (s *memStorage) consumeCodeLocked(requestID, family string) error {
	for _, c := range s.codes {
		if c.requestID != requestID {
			continue
		}
		if c.consumed {
			s.revokeFamilyLocked(c.family)
			return oidc.ErrInvalidGrant().WithDescription("code already used")
		}
		c.consumed, c.family = true, family
		return nil
	}
	return oidc.ErrInvalidGrant().WithDescription("invalid code")
}

func (s *memStorage) revokeFamilyLocked(family string) {
	for _, a := range s.access {
		if a.family == family {
			a.revoked = true
		}
	}
	for _, r := range s.refresh {
		if r.family == family {
			r.used = true
		}
	}
}

func (s *memStorage) newAccessLocked(subject, clientID, family string, scopes []string) (string, time.Time) {
	id := randomID()
	s.access[id] = &accessRow{subject: subject, clientID: clientID, family: family, scopes: scopes}
	return id, time.Now().Add(5 * time.Minute)
}

// exchangeCode stands for the token service starting a session from a code: the code is
// consumed and the tokens recorded in one step (one transaction in the real store).
func (s *memStorage) exchangeCode(a *authRequest) (accessID, refresh string, exp time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	family := randomID()
	if err := s.consumeCodeLocked(a.id, family); err != nil {
		return "", "", time.Time{}, err
	}
	accessID, exp = s.newAccessLocked(a.subject, a.clientID, family, a.scopes)
	if slices.Contains(a.scopes, oidc.ScopeOfflineAccess) {
		refresh = "rt_" + randomID()
		s.refresh[refresh] = &refreshRow{req: a, family: family}
	}
	return accessID, refresh, exp, nil
}

// rotateRefresh stands for token.Service.Refresh: the presented token is spent in the step
// that issues the next one, and a spent token revokes its whole family.
func (s *memStorage) rotateRefresh(clientID, rt string) (a *authRequest, accessID, next string, exp time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	row, ok := s.refresh[rt]
	switch {
	case !ok || row.req.clientID != clientID:
		return nil, "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	case row.used:
		s.revokeFamilyLocked(row.family)
		return nil, "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token reused")
	}
	row.used = true
	accessID, exp = s.newAccessLocked(row.req.subject, row.req.clientID, row.family, row.req.scopes)
	next = "rt_" + randomID()
	s.refresh[next] = &refreshRow{req: row.req, family: row.family}
	return row.req, accessID, next, exp, nil
}

// errNotReached marks the op.Storage methods through which op would mint tokens itself: our
// token endpoint mints with our own token service and asks op only for the id_token.
var errNotReached = errors.New("not reached: tokens are minted by the token service")

func (s *memStorage) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return "", time.Time{}, errNotReached
}

func (s *memStorage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errNotReached
}

func (s *memStorage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, errNotReached
}

func (s *memStorage) TerminateSession(context.Context, string, string) error { return nil }

func (s *memStorage) RevokeToken(context.Context, string, string, string) *oidc.Error { return nil }

func (s *memStorage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *memStorage) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{s.key}, nil
}

func (s *memStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *memStorage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.key}}, nil
}

type signingKey struct{ k *rsa.PrivateKey }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.k }
func (k signingKey) ID() string                                  { return "spike-key" }

type publicKey struct{ k *rsa.PrivateKey }

func (k publicKey) ID() string                         { return "spike-key" }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.k.PublicKey }

// --- op.OPStorage ---

func (s *memStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, errors.New("no such client")
	}
	return c, nil
}

func (s *memStorage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.clients[id]
	if !ok || c.secret == "" || c.secret != secret {
		return errors.New("invalid client")
	}
	return nil
}

func (s *memStorage) SetUserinfoFromScopes(_ context.Context, ui *oidc.UserInfo, userID, _ string, scopes []string) error {
	u, ok := s.users[userID]
	if !ok {
		return errors.New("no such user")
	}
	ui.Subject = userID
	if slices.Contains(scopes, oidc.ScopeEmail) {
		ui.Email, ui.EmailVerified = u.email, oidc.Bool(u.emailVerified)
	}
	if slices.Contains(scopes, "organization") && u.orgID != "" {
		ui.AppendClaims("org_id", u.orgID)
	}
	if slices.Contains(scopes, "roles") {
		ui.AppendClaims("roles", u.roles)
	}
	return nil
}

func (s *memStorage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, _ string) error {
	s.mu.Lock()
	a, ok := s.access[tokenID]
	s.mu.Unlock()
	if !ok || a.revoked || a.subject != subject {
		return errRevoked
	}
	return s.SetUserinfoFromScopes(ctx, ui, subject, a.clientID, a.scopes)
}

func (s *memStorage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("spike: no introspection")
}

func (s *memStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *memStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("spike: no JWT profile")
}

func (s *memStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("spike: no JWT profile")
}

func (s *memStorage) Health(context.Context) error { return nil }

// spikeClient is op.Client over what a project's settings hold.
type spikeClient struct {
	id, secret   string
	redirectURIs []string
	loginURL     string
}

func (c *spikeClient) GetID() string                    { return c.id }
func (c *spikeClient) RedirectURIs() []string           { return c.redirectURIs }
func (c *spikeClient) PostLogoutRedirectURIs() []string { return nil }
func (c *spikeClient) ApplicationType() op.ApplicationType {
	return op.ApplicationTypeWeb
}
func (c *spikeClient) AuthMethod() oidc.AuthMethod {
	if c.secret == "" {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}
func (c *spikeClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *spikeClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *spikeClient) LoginURL(id string) string            { return c.loginURL + "?id=" + id }
func (c *spikeClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *spikeClient) IDTokenLifetime() time.Duration       { return time.Hour }
func (c *spikeClient) DevMode() bool                        { return false }
func (c *spikeClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *spikeClient) ClockSkew() time.Duration             { return 0 }
func (c *spikeClient) IsScopeAllowed(scope string) bool {
	return scope == "organization" || scope == "roles"
}
func (c *spikeClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *spikeClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
