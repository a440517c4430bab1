package oidcprovider

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// Lifetimes of the provider's one-time state.
const (
	// RequestLifetime is how long an authorization request waits for its login.
	RequestLifetime = 10 * time.Minute
	// CodeLifetime is how long an authorization code may be exchanged (RFC 6749 §4.1.2
	// recommends at most ten minutes; a client exchanges it at once).
	CodeLifetime = 60 * time.Second
)

// Paths the provider advertises and sends browsers to, relative to the issuer.
const (
	AuthorizePath     = "/v1/authorize"
	ResumePath        = "/v1/authorize/resume"
	CallbackPath      = "/v1/authorize/callback"
	TokenPath         = "/api/v1/oauth2/token"
	UserinfoPath      = "/api/v1/userinfo"
	IntrospectionPath = "/api/v1/oauth2/introspection"
	RevocationPath    = "/api/v1/oauth2/revoke"
	EndSessionPath    = "/v1/logout"
	JWKSPath          = "/.well-known/jwks.json"
	// LoginPagePath is the hosted login page (internal/web/login), which takes ?authRequest=<id>.
	LoginPagePath = "/login"
)

// Latchkey's own scopes, besides OpenID Connect's openid, profile, email, phone and
// offline_access.
const (
	ScopeOrganization = "organization"
	ScopeRoles        = "roles"
)

// SupportedScopes are every scope a client may be granted (project.OIDCScopes, which the
// settings' allowed_scopes are checked against); any other is dropped.
var SupportedScopes = project.OIDCScopes

// Store is the part of the store the provider uses. InTx hands fn the whole store, which the
// code exchange passes on to token.SessionStarter.Start (token.SessionStore).
type Store interface {
	store.OIDCRequests
	store.Projects
	store.Sessions
	store.AuditEvents
	InTx(ctx context.Context, fn func(tx store.Store) error) error
}

// Projects finds projects and reads their settings (project.Service).
type Projects interface {
	ProjectByClientID(ctx context.Context, clientID string) (store.Project, error)
	Settings(p store.Project) (project.Settings, error)
}

// Sessions starts token sessions (token.Service): the one session model.
type Sessions interface {
	PrepareSession(ctx context.Context, project store.Project) (*token.SessionStarter, error)
}

// Refresher rotates refresh tokens (login.Service): token.Service.Refresh, the one rotation and
// reuse path, behind the throttle of an IP that presents wrong refresh tokens.
type Refresher interface {
	Refresh(ctx context.Context, project store.Project, refreshToken string, meta audit.Meta) (login.Result, error)
}

// Users reads the user behind a grant (directory.Service), for the id_token's claims.
type Users interface {
	GetUser(ctx context.Context, projectID, id string) (directory.User, error)
}

// Budget bounds the new authorization requests one IP may start (protect.Engine): each is a
// stored row, so without it one address could fill the table.
type Budget interface {
	AllowAuthorization(ctx context.Context, p store.Project, ip string) error
}

// Deps are the provider's dependencies.
type Deps struct {
	Store     Store
	Projects  Projects
	Sessions  Sessions
	Refresher Refresher
	Keys      *token.KeyManager
	// Policy reads a project's token settings: the id_token is signed with the project's key of
	// its algorithm, as its access tokens are.
	Policy func(p store.Project) (token.Policy, error)
	Users  Users
	Access token.AccessSource
	// Budget counts each new authorization request against its IP's hourly budget; nil counts
	// nothing (internal/app always sets it).
	Budget Budget
	// Issuer is the public URL: static, so that a forged Host or X-Forwarded-Host never
	// changes what discovery or a token says.
	Issuer string
	// CodeKey (32 bytes) derives authorization codes from request ids. Every instance must
	// have the same one (derive it from the master key), so that any instance redeems a code
	// another issued.
	CodeKey []byte
	IDs     *ident.Generator
	Now     func() time.Time
	Rand    io.Reader
	Log     *slog.Logger
}

// Provider is the OpenID Provider: op's Provider (so it is the op.Authorizer that op.Authorize,
// op.AuthorizeCallback and op.AuthRequestError take) with Latchkey's authorization checks
// (ValidateAuthRequest), its code derivation (Crypto), and the flows of the token endpoint,
// the hosted login page and logout.
type Provider struct {
	*op.Provider
	storage *Storage
	budget  Budget
	issuer  string
	codeKey []byte
	ids     *ident.Generator
	now     func() time.Time
	rand    io.Reader
	log     *slog.Logger
}

// New returns the provider.
func New(d Deps) (*Provider, error) {
	if len(d.CodeKey) < 32 {
		return nil, errors.New("oidcprovider: the code key must be 32 bytes")
	}
	issuer := strings.TrimRight(d.Issuer, "/")
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("oidcprovider: issuer %q is not an absolute URL", d.Issuer)
	}
	p := &Provider{budget: d.Budget, issuer: issuer, codeKey: d.CodeKey, ids: d.IDs, now: d.Now, rand: d.Rand, log: d.Log}
	if p.ids == nil {
		p.ids = ident.NewGenerator()
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.rand == nil {
		p.rand = rand.Reader
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.storage = &Storage{p: p, store: d.Store, projects: d.Projects, sessions: d.Sessions, refresher: d.Refresher, keys: d.Keys, policy: d.Policy,
		users: d.Users, access: d.Access}

	cfg := &op.Config{CodeMethodS256: true, AuthMethodPost: true, GrantTypeRefreshToken: true,
		SupportedScopes: SupportedScopes, DefaultLogoutRedirectURI: issuer + EndSessionPath}
	// op's own crypto is never used (Crypto below derives codes); the key only satisfies it.
	copy(cfg.CryptoKey[:], d.CodeKey)
	opts := []op.Option{
		op.WithCustomAuthEndpoint(op.NewEndpoint(AuthorizePath)),
		op.WithCustomTokenEndpoint(op.NewEndpoint(TokenPath)),
		op.WithCustomUserinfoEndpoint(op.NewEndpoint(UserinfoPath)),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint(IntrospectionPath)),
		op.WithCustomRevocationEndpoint(op.NewEndpoint(RevocationPath)),
		op.WithCustomEndSessionEndpoint(op.NewEndpoint(EndSessionPath)),
		op.WithCustomKeysEndpoint(op.NewEndpoint(JWKSPath)),
		op.WithIDTokenHintKeySet(hintKeySet{projects: d.Projects, keys: d.Keys}),
	}
	if u.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure()) // development on http://localhost only
	}
	p.Provider, err = op.NewProvider(cfg, p.storage, op.StaticIssuer(issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("oidcprovider: %w", err)
	}
	return p, nil
}

// Issuer is the provider's static issuer, the public URL.
func (p *Provider) Issuer() string { return p.issuer }

// WithIssuer returns ctx with the issuer op reads (op.IssuerFromContext): every op function the
// routes call needs it.
func (p *Provider) WithIssuer(ctx context.Context) context.Context {
	return op.ContextWithIssuer(ctx, p.issuer)
}

// ValidateAuthRequest is op's AuthorizeValidator hook, which runs where op would run its own
// checks. It closes op's gaps: the redirect_uri is matched exactly first (nothing redirects to
// an unregistered one), then response types other than code, request objects (request and
// request_uri), PKCE missing for a public client and any method but S256 are refused with a
// redirect; unknown scopes are dropped, and first-party projects get offline_access by default.
func (p *Provider) ValidateAuthRequest(ctx context.Context, r *oidc.AuthRequest, s op.Storage, v *op.IDTokenHintVerifier) (string, error) {
	c, err := s.GetClientByClientID(ctx, r.ClientID)
	if err != nil {
		return "", oidc.ErrInvalidRequestRedirectURI().WithDescription("unknown client_id").WithParent(err)
	}
	client, ok := c.(*Client)
	if !ok {
		return "", oidc.ErrServerError()
	}
	if !slices.Contains(client.RedirectURIs(), r.RedirectURI) {
		return "", oidc.ErrInvalidRequestRedirectURI().WithDescription("redirect_uri is not registered for this client")
	}
	// From here on errors go back to the registered redirect_uri.
	if r.ResponseType != oidc.ResponseTypeCode {
		// Answer in the query, as for a code request: the client asked for what we never do.
		r.ResponseType = oidc.ResponseTypeCode
		return "", (&oidc.Error{ErrorType: "unsupported_response_type"}).WithDescription("only response_type=code is supported")
	}
	if r.ResponseMode != "" && r.ResponseMode != oidc.ResponseModeQuery && r.ResponseMode != oidc.ResponseModeFormPost {
		r.ResponseMode = oidc.ResponseModeQuery
		return "", oidc.ErrInvalidRequest().WithDescription("response_mode must be query or form_post")
	}
	x := extrasFrom(ctx)
	switch {
	case r.RequestParam != "" || x.requestURI:
		return "", oidc.ErrRequestNotSupported().WithDescription("request objects (request, request_uri) are not supported")
	case r.CodeChallenge == "" && client.AuthMethod() == oidc.AuthMethodNone:
		return "", oidc.ErrInvalidRequest().WithDescription("code_challenge with code_challenge_method=S256 is required")
	case r.CodeChallenge != "" && r.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return "", oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	case r.CodeChallenge != "" && !validChallenge(r.CodeChallenge):
		return "", oidc.ErrInvalidRequest().WithDescription("code_challenge must be 43 base64url characters (S256)")
	case len(r.State) > maxParam || len(r.Nonce) > maxParam || len(r.LoginHint) > maxParam:
		return "", oidc.ErrInvalidRequest().WithDescription("state, nonce and login_hint must be at most %d bytes", maxParam)
	case len(r.Scopes) > len(SupportedScopes)*4:
		return "", oidc.ErrInvalidScope().WithDescription("too many scopes")
	}
	sub, err := op.ValidateAuthRequestClient(ctx, r, client, v)
	if err != nil {
		return "", err
	}
	r.Scopes = client.grantScopes(r.Scopes)
	return sub, nil
}

// maxParam bounds the free-text parameters an authorization request stores.
const maxParam = 1024

// validChallenge reports whether c is an S256 challenge: the base64url SHA-256 of a verifier.
func validChallenge(c string) bool {
	b, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil && len(b) == sha256.Size
}

// Crypto replaces op's code encryption: a code is the HMAC of its request id under the code
// key, so one request has one code however often its callback is loaded, and the store keeps
// only the code's hash. op calls only Encrypt, when it mints a code.
func (p *Provider) Crypto() op.Crypto { return codeCrypto{key: p.codeKey} }

type codeCrypto struct{ key []byte }

func (c codeCrypto) Encrypt(requestID string) (string, error) {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("latchkey oidc code\x00" + requestID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
}

func (c codeCrypto) Decrypt(string) (string, error) {
	return "", errors.New("oidcprovider: codes are looked up by hash, never decrypted")
}

// callbackURL is where the login page sends the browser once the request is approved.
func (p *Provider) callbackURL(id string) string {
	return p.issuer + CallbackPath + "?id=" + url.QueryEscape(id)
}

func (p *Provider) clock() time.Time { return p.now().UTC().Truncate(time.Microsecond) }

// randomToken returns n random bytes, base64url.
func (p *Provider) randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(p.rand, b); err != nil {
		return "", fmt.Errorf("read randomness: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// newRequestID returns an authorization request id: 128 random bits, lowercase hex (it travels
// in the login page's URL and a prefix of it names the request's binding cookie).
func (p *Provider) newRequestID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(p.rand, b[:]); err != nil {
		return "", fmt.Errorf("read randomness: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func hashOf(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
