package login

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	lg "github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/mfa"
	"github.com/latchkey-dev/latchkey/internal/oidcprovider"
	"github.com/latchkey-dev/latchkey/internal/passkey"
	"github.com/latchkey-dev/latchkey/internal/passwordauth"
	"github.com/latchkey-dev/latchkey/internal/passwordless"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
)

//go:embed templates/*.html assets/* catalog/*.json
var files embed.FS

// Authorizations is the OpenID Provider's side of the page (oidcprovider): the pending
// authorization request a browser was sent here for, the account the browser is already
// signed in with, its approval once a login finished, or its denial when the user declines
// consent (Deny returns the callback URL that tells the
// client access_denied). binding is the value of the request's binding cookie
// (oidcprovider.BindingCookieName(id)); a request whose binding does not match is refused, so
// that a leaked request id gives nothing.
type Authorizations interface {
	Pending(ctx context.Context, id, binding string) (oidcprovider.PendingLogin, error)
	Approve(ctx context.Context, id, binding string, a oidcprovider.Approval) (oidcprovider.Approved, error)
	Deny(ctx context.Context, id, binding string) (redirectURL string, err error)
	// SignedInAs is the account the browser (browserSession, the provider's browser-session
	// cookie) is signed in to the request's project with, for prompt=select_account's
	// "Continue as".
	SignedInAs(ctx context.Context, id, binding, browserSession string) (oidcprovider.SignedIn, bool, error)
}

// Projects finds projects and reads their settings (project.Service).
type Projects interface {
	ProjectByClientID(ctx context.Context, clientID string) (store.Project, error)
	Settings(p store.Project) (project.Settings, error)
}

// Passwordless runs magic links, email codes and SMS codes (passwordless.Service).
type Passwordless interface {
	Send(ctx context.Context, p store.Project, r passwordless.SendRequest) (string, error)
	Resend(ctx context.Context, p store.Project, channels []passwordless.Channel, state, ip string) error
	VerifyCodeDevice(ctx context.Context, p store.Project, channels []passwordless.Channel, state, code, device string, meta audit.Meta) (lg.Result, error)
	Status(ctx context.Context, p store.Project, state string, meta audit.Meta) (lg.Result, error)
}

// Flows reads a passwordless flow without changing it (store.Flows): the page shows the tries
// left and the resend countdown, and the magic-link wait screen learns that the link was
// clicked without collecting the login, which in legacy mode belongs to the application.
type Flows interface {
	GetFlow(ctx context.Context, projectID, id string) (store.Flow, error)
}

// Passwords runs password logins, sign-ups and resets (passwordauth.Service).
type Passwords interface {
	LoginDevice(ctx context.Context, p store.Project, email, pw, device string, meta audit.Meta) (lg.Result, error)
	SignUp(ctx context.Context, p store.Project, in passwordauth.Signup, meta audit.Meta) (lg.Result, error)
	SendReset(ctx context.Context, p store.Project, email, redirectURL, ip string) error
}

// Passkeys runs WebAuthn ceremonies (passkey.Service): logins, and the registration the page
// offers after a code or link login.
type Passkeys interface {
	BeginLogin(ctx context.Context, p store.Project, identifier string) (passkey.Options, error)
	FinishLogin(ctx context.Context, p store.Project, authCode string, response []byte, meta audit.Meta) (lg.Result, error)
	BeginRegistration(ctx context.Context, p store.Project, userID string, signedIn time.Time) (passkey.Options, error)
	FinishRegistration(ctx context.Context, p store.Project, userID, authCode string, response []byte) (store.Passkey, error)
	List(ctx context.Context, p store.Project, userID string) ([]store.Passkey, error)
}

// MFA answers the mfa_required challenge of a login, and enrolls an authenticator app when
// the policy requires a second factor the user does not have (mfa.Service).
type MFA interface {
	TokenSubject(ctx context.Context, p store.Project, token string) (mfa.Subject, error)
	Authenticators(ctx context.Context, sub mfa.Subject) ([]mfa.Authenticator, error)
	Initiate(ctx context.Context, p store.Project, mfaToken, authenticatorType, channel, ip string) (mfa.Initiated, error)
	Validate(ctx context.Context, p store.Project, a mfa.Answer, meta audit.Meta) (lg.Result, error)
	Enroll(ctx context.Context, sub mfa.Subject, types []string) (mfa.Enrolled, error)
	QRCode(ctx context.Context, sub mfa.Subject, factorID string) ([]byte, error)
}

// Directory reads a signed-in user and their memberships, for the organization picker and for
// the login result of an approval that waited for a screen (directory.Service).
type Directory interface {
	GetUser(ctx context.Context, projectID, id string) (directory.User, error)
	ListUserOrganizations(ctx context.Context, projectID, userID string) ([]directory.UserOrganization, error)
}

// Sessions reads the session a finished login started (store.Sessions).
type Sessions interface {
	GetSession(ctx context.Context, projectID, id string) (store.Session, error)
}

// Sealer seals the page's per-attempt state into its cookie (secretbox.Keyring).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}

// BotGate is the project's bot check (protecthttp.Handler.Gate): it reads the answer from the
// request's X-Altcha, X-Captcha-Token and X-Latchkey-Honeypot headers, and the project from its
// context (httpserver.WithProject). The page copies its form fields into those headers.
type BotGate func(r *http.Request) (*http.Request, error)

// Deps are the page's dependencies. Passkeys, MFA and Passwords may be nil (the methods they
// serve are then never offered); the rest are required.
type Deps struct {
	Authorizations Authorizations
	Projects       Projects
	Passwordless   Passwordless
	Flows          Flows
	Passwords      Passwords
	Passkeys       Passkeys
	MFA            MFA
	Directory      Directory
	Sessions       Sessions
	Sealer         Sealer
	BotCheck       BotGate
	// PublicURL is the URL browsers reach the server at.
	PublicURL string
	// SecureCookies marks every cookie Secure and gives it the __Host- prefix: set it over https,
	// and on loopback, where browsers treat http as a secure context and accept both (the
	// provider's binding and browser-session cookies are __Host- ones whatever the scheme).
	SecureCookies bool
	Now           func() time.Time
}

// Handler serves the hosted login page.
type Handler struct {
	d      Deps
	secure bool
	pages  *pages
	assets fs.FS
}

// New returns the page's handler. It fails only if the embedded templates or catalogs are
// broken, which the package's tests catch.
func New(d Deps) (*Handler, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	p, err := loadPages()
	if err != nil {
		return nil, err
	}
	assets, err := fs.Sub(files, "assets")
	if err != nil {
		return nil, fmt.Errorf("login page assets: %w", err)
	}
	return &Handler{d: d, secure: d.SecureCookies || strings.HasPrefix(strings.ToLower(strings.TrimSpace(d.PublicURL)), "https://"),
		pages: p, assets: assets}, nil
}

// Mount registers the page's routes. All are Public: the page names its project through the
// authorization request (or, in legacy mode, client_id), and checks it itself.
func (h *Handler) Mount(rt *httpserver.Router) {
	rt.Handle("GET /login", httpserver.Public, h.show)
	rt.Handle("POST /login", httpserver.Public, h.post)
	rt.Handle("GET /login/status", httpserver.Public, h.status)
	rt.Handle("POST /login/passkey/begin", httpserver.Public, h.passkeyBegin)
	rt.Handle("POST /login/passkey/finish", httpserver.Public, h.passkeyFinish)
	rt.Handle("GET /login/assets/{file}", httpserver.Public, h.asset)
}
