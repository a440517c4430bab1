package store

import (
	"context"
	"time"
)

// OIDCAuthRequest is one OpenID Connect authorization request, from the moment the authorize
// endpoint accepted it until its code was exchanged or it expired. Its ID travels in the login
// page's URL, so it is 128 random bits (hex), never a time-prefixed ident id; BrowserBinding
// ties it to the browser that started it, so a leaked id is worth nothing elsewhere.
type OIDCAuthRequest struct {
	ID          string
	ProjectID   string
	ClientID    string
	RedirectURI string
	Scopes      []string
	State       string
	Nonce       string
	// ResponseMode is "query" or "form_post" ("" reads as query).
	ResponseMode        string
	CodeChallenge       string
	CodeChallengeMethod string   // "S256" or ""
	Prompt              []string // none, login, consent, select_account, create
	MaxAge              *int     // seconds; nil when the client sent none
	LoginHint           string
	UILocales           []string
	// Extensions are Latchkey's own parameters: organization, connection, provider,
	// screen_hint. Only non-empty values are kept.
	Extensions map[string]string
	// BrowserBinding is the SHA-256 of the random value of the cookie set with the redirect to
	// the login page.
	BrowserBinding []byte

	// What the login that approved the request recorded; zero until then.
	UserID         string
	SessionID      string // the token session the login started (the browser session's)
	OrganizationID string
	ConnectionType string
	AMR            []string
	AuthTime       *time.Time
	DoneAt         *time.Time
	// DeniedAt is when the user declined the request (the consent screen's "Deny"). A request
	// is answered once: approved (DoneAt) or denied, never both, and a denied one is answered
	// to the client with access_denied (OIDC Core §3.1.2.6).
	DeniedAt *time.Time

	CreatedAt time.Time
	ExpiresAt time.Time
}

// Done reports whether a login approved the request.
func (r OIDCAuthRequest) Done() bool { return r.DoneAt != nil }

// Denied reports whether the user declined the request.
func (r OIDCAuthRequest) Denied() bool { return r.DeniedAt != nil }

// Answered reports whether the request was approved or denied: either way no login may
// answer it again.
func (r OIDCAuthRequest) Answered() bool { return r.Done() || r.Denied() }

// OIDCApproval is what a finished login writes on the authorization request it answers.
type OIDCApproval struct {
	UserID         string
	SessionID      string
	OrganizationID string
	ConnectionType string
	AMR            []string
	AuthTime       time.Time
	At             time.Time // DoneAt
}

// OIDCCode is an authorization code, kept only as its SHA-256 hash. It is single-use:
// ConsumeOIDCCode spends it, and the session its exchange started is recorded so that a
// second exchange can revoke it (RFC 6749 §4.1.2).
type OIDCCode struct {
	Hash       []byte
	ProjectID  string
	RequestID  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	ConsumedAt *time.Time
	SessionID  string // set by the consuming exchange: the token session it started
}

// BrowserSession is the hosted login page's sign-in of one browser: a `__Host-` cookie whose
// SHA-256 is TokenHash, linked to the token session (SessionID) the login started, so that
// ending that session ends single sign-on too.
type BrowserSession struct {
	ID             string
	ProjectID      string
	TokenHash      []byte
	UserID         string
	SessionID      string
	OrganizationID string
	ConnectionType string
	AMR            []string
	AuthTime       time.Time
	CreatedAt      time.Time
	LastSeenAt     time.Time
	ExpiresAt      time.Time
	RevokedAt      *time.Time
}

// Active reports whether the browser session may be used at `at` (its token session is the
// caller's to check).
func (b BrowserSession) Active(at time.Time) bool {
	return b.RevokedAt == nil && at.Before(b.ExpiresAt)
}

// OIDCRequests stores the OpenID Provider's authorization requests, codes and browser sessions.
type OIDCRequests interface {
	// CreateOIDCAuthRequest: ErrNotFound if the project does not exist; ErrConflict on a
	// duplicate id.
	CreateOIDCAuthRequest(ctx context.Context, r OIDCAuthRequest) error
	// GetOIDCAuthRequest finds a request by its random id, whatever its project (the protocol
	// library looks requests up by id alone). ErrNotFound if there is none; expiry is the
	// caller's to check.
	GetOIDCAuthRequest(ctx context.Context, id string) (OIDCAuthRequest, error)
	// ApproveOIDCAuthRequest records the login that answers the request, once: ErrNotFound if
	// the project has no such request, ErrConflict if it was already approved or denied.
	ApproveOIDCAuthRequest(ctx context.Context, projectID, id string, a OIDCApproval) error
	// DenyOIDCAuthRequest records that the user declined the request at `at`, once and
	// atomically with respect to ApproveOIDCAuthRequest: ErrNotFound if the project has no
	// such request, ErrConflict if it was already approved or denied.
	DenyOIDCAuthRequest(ctx context.Context, projectID, id string, at time.Time) error

	// SaveOIDCCode: ErrNotFound if the request is not in the project; ErrConflict on a
	// duplicate hash.
	SaveOIDCCode(ctx context.Context, c OIDCCode) error
	// GetOIDCCode finds a code by its hash, whatever its project. ErrNotFound if none.
	GetOIDCCode(ctx context.Context, hash []byte) (OIDCCode, error)
	// ConsumeOIDCCode marks the code consumed at `at` by the exchange that starts sessionID,
	// and returns it, in one atomic statement: of any number of concurrent callers exactly one
	// succeeds. A code already consumed is returned (with the SessionID of the exchange that
	// won) with ErrReused; ErrNotFound if the project has no code with that hash. Expiry is
	// the caller's to check.
	ConsumeOIDCCode(ctx context.Context, projectID string, hash []byte, sessionID string, at time.Time) (OIDCCode, error)

	// CreateBrowserSession: ErrNotFound if the project or the token session does not exist;
	// ErrConflict on a duplicate id or token hash.
	CreateBrowserSession(ctx context.Context, b BrowserSession) error
	// GetBrowserSession finds the project's browser session by its token's hash, active or
	// not. ErrNotFound if none.
	GetBrowserSession(ctx context.Context, projectID string, tokenHash []byte) (BrowserSession, error)
	// TouchBrowserSession sets LastSeenAt of an unrevoked session. ErrNotFound if there is
	// no such unrevoked session.
	TouchBrowserSession(ctx context.Context, projectID, id string, at time.Time) error
	// RevokeBrowserSession ends it. ErrNotFound if it does not exist or is already revoked.
	RevokeBrowserSession(ctx context.Context, projectID, id string, at time.Time) error
}
