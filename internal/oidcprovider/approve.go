package oidcprovider

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// extensionParams are Latchkey's own authorization parameters, kept for the login page.
var extensionParams = []string{"organization", "connection", "provider", "screen_hint"}

// Authorization is what the authorize route needs before it hands a request to op.
type Authorization struct {
	// Context is the request's context with the issuer and what op's Storage will need.
	Context context.Context
	// RequestID is the id the request will be stored under: its binding cookie is
	// BindingCookieName(RequestID).
	RequestID string
	// Binding is the raw value of the binding cookie to set on the response.
	Binding string
	// Project is the client's project.
	Project store.Project
}

// StartAuthorization checks what must never be answered with a redirect: the client must
// exist and the redirect_uri must be one of its registered ones, exactly. The error is then
// invalid_request (the route shows it as a page). Otherwise it makes the browser binding that
// the request will be stored with. form is the request's parsed query and body, ip the
// client's address. A request from a blocked IP, or one past its IP's hourly budget of
// authorization requests (Deps.Budget), is refused here too, before anything is stored: a
// 403 ip_blocked or 429 too_many_requests with Retry-After, also a page and never a redirect,
// because it is not the client's error.
func (p *Provider) StartAuthorization(ctx context.Context, form url.Values, ip string) (Authorization, error) {
	clientID, redirect := form.Get("client_id"), form.Get("redirect_uri")
	if clientID == "" {
		return Authorization{}, failure.New(failure.Invalid, "invalid_request", "client_id is required")
	}
	c, err := p.storage.client(ctx, clientID)
	if err != nil {
		var fe *failure.Error
		if errors.As(err, &fe) && fe.Kind != failure.Internal {
			return Authorization{}, failure.New(failure.Invalid, "invalid_client", "the application (client_id) is not known")
		}
		return Authorization{}, err
	}
	if redirect == "" || !slices.Contains(c.RedirectURIs(), redirect) {
		return Authorization{}, failure.New(failure.Invalid, "invalid_redirect_uri",
			"the redirect_uri is not registered for this application")
	}
	// Counted only once the client and redirect_uri are known good: the counters are the
	// client's project's, and a request refused above stores nothing.
	if p.budget != nil {
		if err := p.budget.AllowAuthorization(ctx, c.Project, ip); err != nil {
			return Authorization{}, err
		}
	}
	binding, err := p.randomToken(32)
	if err != nil {
		return Authorization{}, err
	}
	// The id is chosen here, not when op stores the request, because the binding cookie set
	// before op answers is named after it.
	id, err := p.newRequestID()
	if err != nil {
		return Authorization{}, err
	}
	x := extras{requestID: id, binding: hashOf(binding), requestURI: form.Get("request_uri") != "", extensions: map[string]string{}}
	for _, k := range extensionParams {
		if v := form.Get(k); v != "" && len(v) <= maxParam {
			x.extensions[k] = v
		}
	}
	ctx = withClient(context.WithValue(p.WithIssuer(ctx), extrasKey{}, x), c)
	return Authorization{Context: ctx, RequestID: id, Binding: binding, Project: c.Project}, nil
}

// pending finds the request id names and checks that the browser presenting binding started
// it, that it has not expired and that it was not answered yet (approved, or denied).
func (p *Provider) pending(ctx context.Context, id, binding string) (store.OIDCAuthRequest, error) {
	r, err := p.storage.request(ctx, id)
	if err != nil {
		return store.OIDCAuthRequest{}, err
	}
	if err := checkBinding(r, binding); err != nil {
		return store.OIDCAuthRequest{}, err
	}
	if r.Answered() {
		return store.OIDCAuthRequest{}, errAnswered()
	}
	return r, nil
}

// errAnswered refuses a request that was already approved or denied: it is answered once. A
// new value each time, so that no caller can change another's.
func errAnswered() error {
	return failure.New(failure.Conflict, "auth_request_done", "this sign-in was already completed")
}

func checkBinding(r store.OIDCAuthRequest, binding string) error {
	if binding == "" || subtle.ConstantTimeCompare(hashOf(binding), r.BrowserBinding) != 1 {
		return failure.New(failure.Forbidden, "auth_request_binding",
			"this sign-in was started in another browser; start again from the application")
	}
	return nil
}

// Pending returns the authorization request the hosted login page shows. binding is the value
// of the request's binding cookie (BindingCookieName): only the browser that started the request may continue it.
func (p *Provider) Pending(ctx context.Context, id, binding string) (PendingLogin, error) {
	r, err := p.pending(ctx, id, binding)
	if err != nil {
		return PendingLogin{}, err
	}
	proj, err := p.storage.store.GetProject(ctx, r.ProjectID)
	if err != nil {
		return PendingLogin{}, fmt.Errorf("get project %s: %w", r.ProjectID, err)
	}
	return PendingLogin{ID: r.ID, Project: proj, RedirectURI: r.RedirectURI, Scopes: r.Scopes, Prompt: r.Prompt,
		LoginHint: r.LoginHint, UILocales: r.UILocales, Extensions: r.Extensions, ExpiresAt: r.ExpiresAt}, nil
}

// Approve answers a pending request with a finished login: it records the login on the
// request and signs the browser in (a browser session linked to the login's token session,
// for single sign-on), in one transaction, and returns the callback URL, which answers the
// client with a code. A third-party project's request needs the user's consent.
func (p *Provider) Approve(ctx context.Context, id, binding string, a Approval) (Approved, error) {
	r, err := p.pending(ctx, id, binding)
	if err != nil {
		return Approved{}, err
	}
	sess := a.Result.Tokens.Session
	if !a.Result.Authenticated || sess.ID == "" || sess.ProjectID != r.ProjectID || sess.UserID == "" {
		return Approved{}, failure.New(failure.Invalid, "login_incomplete", "the login has not finished")
	}
	c, err := p.clientOfProject(ctx, r.ProjectID)
	if err != nil {
		return Approved{}, err
	}
	if !c.FirstParty() && !a.Consented {
		return Approved{}, failure.New(failure.Invalid, "consent_required", "the user must consent to share their account with this application")
	}
	org := sess.OrganizationID
	if a.OrganizationID != "" && a.OrganizationID != org {
		if err := p.checkMember(ctx, r.ProjectID, sess.UserID, a.OrganizationID); err != nil {
			return Approved{}, err
		}
		org = a.OrganizationID
	}
	raw, err := p.randomToken(32)
	if err != nil {
		return Approved{}, err
	}
	now := p.clock()
	authTime := sess.CreatedAt
	if authTime.IsZero() {
		authTime = now
	}
	bs := store.BrowserSession{ID: p.ids.New(), ProjectID: r.ProjectID, TokenHash: hashOf(raw), UserID: sess.UserID,
		SessionID: sess.ID, OrganizationID: org, ConnectionType: sess.ConnectionType, AMR: nonNil(sess.AMR),
		AuthTime: authTime, CreatedAt: now, LastSeenAt: now, ExpiresAt: sess.ExpiresAt}
	if !now.Before(bs.ExpiresAt) {
		return Approved{}, failure.New(failure.Invalid, "login_incomplete", "the login's session has ended")
	}
	err = p.storage.store.InTx(ctx, func(tx store.Store) error {
		if err := p.approve(ctx, tx, r, bs, now); err != nil {
			return err
		}
		if err := tx.CreateBrowserSession(ctx, bs); err != nil {
			return fmt.Errorf("create browser session: %w", err)
		}
		return nil
	})
	if err != nil {
		return Approved{}, err
	}
	return Approved{RedirectURL: p.callbackURL(r.ID), BrowserSession: raw, BrowserExpires: bs.ExpiresAt}, nil
}

// Deny answers a pending request with the user's refusal (the consent screen's "Deny"). The
// request is marked answered in the store, so no login can approve it afterwards (nor it be
// denied twice), and the returned URL is its callback, which tells the client access_denied
// with its state (OIDC Core §3.1.2.6) in the response mode the client asked for. As for an
// approval, only the browser that started the request (binding) may answer it.
func (p *Provider) Deny(ctx context.Context, id, binding string) (string, error) {
	r, err := p.pending(ctx, id, binding)
	if err != nil {
		return "", err
	}
	err = p.storage.store.DenyOIDCAuthRequest(ctx, r.ProjectID, r.ID, p.clock())
	if errors.Is(err, store.ErrConflict) {
		return "", errAnswered() // an approval (another tab) won the race
	}
	if err != nil {
		return "", fmt.Errorf("deny authorization request: %w", err)
	}
	return p.callbackURL(r.ID), nil
}

// Refusal is the OAuth error the callback answers a denied request with, through
// op.AuthRequestError (or the form_post page): access_denied. It is nil for a request the user
// did not deny.
func (p *Provider) Refusal(ar op.AuthRequest) *oidc.Error {
	a, ok := ar.(authRequest)
	if !ok || !a.r.Denied() {
		return nil
	}
	return oidc.ErrAccessDenied().WithDescription("the user declined to sign in to the application")
}

// approve writes the browser session's login on the request.
func (p *Provider) approve(ctx context.Context, tx store.OIDCRequests, r store.OIDCAuthRequest, bs store.BrowserSession, now time.Time) error {
	err := tx.ApproveOIDCAuthRequest(ctx, r.ProjectID, r.ID, store.OIDCApproval{UserID: bs.UserID, SessionID: bs.SessionID,
		OrganizationID: bs.OrganizationID, ConnectionType: bs.ConnectionType, AMR: bs.AMR, AuthTime: bs.AuthTime, At: now})
	if errors.Is(err, store.ErrConflict) {
		return errAnswered()
	}
	if err != nil {
		return fmt.Errorf("approve authorization request: %w", err)
	}
	return nil
}

// checkMember refuses an organization the user is not an active member of: the page's pick
// becomes the token session's organization, and its roles the token's claims.
func (p *Provider) checkMember(ctx context.Context, projectID, userID, orgID string) error {
	u, err := p.storage.users.GetUser(ctx, projectID, userID)
	if err != nil {
		return err
	}
	for _, t := range u.Tenants {
		if t.OrganizationID == orgID && t.Active {
			return nil
		}
	}
	return failure.New(failure.Invalid, "organization_not_member", "the user is not a member of that organization")
}

func (p *Provider) clientOfProject(ctx context.Context, projectID string) (*Client, error) {
	proj, err := p.storage.store.GetProject(ctx, projectID)
	if err != nil {
		return nil, fmt.Errorf("get project %s: %w", projectID, err)
	}
	return p.storage.clientOf(proj)
}

// CheckCallback checks, for the callback route, that the browser presenting binding started
// the request: a leaked request id is worth nothing in another browser.
func (p *Provider) CheckCallback(ctx context.Context, id, binding string) error {
	r, err := p.storage.request(ctx, id)
	if err != nil {
		return err
	}
	return checkBinding(r, binding)
}

// Resumption is the resume route's decision for an authorization request.
type Resumption struct {
	// RedirectURL is where to send the browser: the callback (single sign-on) or the hosted
	// login page. Empty when Error is set.
	RedirectURL string
	// Error is an OAuth error to send back to the client's redirect_uri (op.AuthRequestError
	// with Request): login_required or consent_required for prompt=none.
	Error   *oidc.Error
	Request op.AuthRequest
}

// Resume decides what happens to a request the authorize endpoint accepted: a browser already
// signed in to the project (browserSession, the value of BrowserSessionCookie) whose session
// is live and recent enough for max_age is approved at once, without the page (single
// sign-on), unless prompt=login, prompt=create, prompt=select_account (one browser session per
// project: the user picks the account by signing in on the page, as another one if they like)
// or a third-party project needs consent; prompt=none then
// answers login_required or consent_required; anything else goes to the hosted page.
func (p *Provider) Resume(ctx context.Context, id, binding, browserSession string) (Resumption, error) {
	r, err := p.pending(ctx, id, binding)
	if err != nil {
		return Resumption{}, err
	}
	c, err := p.clientOfProject(ctx, r.ProjectID)
	if err != nil {
		return Resumption{}, err
	}
	now := p.clock()
	none := slices.Contains(r.Prompt, oidc.PromptNone)
	forceLogin := slices.Contains(r.Prompt, oidc.PromptLogin) || slices.Contains(r.Prompt, "create") ||
		slices.Contains(r.Prompt, oidc.PromptSelectAccount)
	bs, ok, err := p.browserSession(ctx, r.ProjectID, browserSession, now)
	if err != nil {
		return Resumption{}, err
	}
	ok = ok && recentEnough(r, bs, now)
	page := Resumption{RedirectURL: p.issuer + LoginPagePath + "?authRequest=" + url.QueryEscape(r.ID)}
	switch {
	case ok && !forceLogin && (c.FirstParty() && !slices.Contains(r.Prompt, oidc.PromptConsent)):
		// One commit: on SQLite's single writer each one costs a synced write.
		err := p.storage.store.InTx(ctx, func(tx store.Store) error {
			if err := p.approve(ctx, tx, r, bs, now); err != nil {
				return err
			}
			if err := tx.TouchBrowserSession(ctx, r.ProjectID, bs.ID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("touch browser session: %w", err)
			}
			return nil
		})
		if err != nil {
			return Resumption{}, err
		}
		return Resumption{RedirectURL: p.callbackURL(r.ID)}, nil
	case none && ok:
		return Resumption{Error: &oidc.Error{ErrorType: "consent_required", Description: "the user must consent on the login page"},
			Request: authRequest{r}}, nil
	case none:
		return Resumption{Error: oidc.ErrLoginRequired().WithDescription("the user is not signed in"), Request: authRequest{r}}, nil
	}
	return page, nil
}

// recentEnough reports whether the browser session's login satisfies the request's max_age: a
// login older than max_age (max_age=0: any) must be made again.
func recentEnough(r store.OIDCAuthRequest, bs store.BrowserSession, now time.Time) bool {
	return r.MaxAge == nil || now.Sub(bs.AuthTime) < time.Duration(*r.MaxAge)*time.Second
}

// SignedIn is the account a browser is signed in to a project with.
type SignedIn struct {
	UserID         string
	SessionID      string // the token session of the browser session's login
	ConnectionType string
}

// SignedInAs finds the account the browser is signed in to the pending request's project with
// (browserSession is the value of BrowserSessionCookie), when that sign-in is live and recent
// enough for the request's max_age: for prompt=select_account the hosted page offers it
// ("Continue as") beside signing in as another account. ok is false when there is none; the
// request must be pending and the browser's (binding), as for an approval.
func (p *Provider) SignedInAs(ctx context.Context, id, binding, browserSession string) (SignedIn, bool, error) {
	r, err := p.pending(ctx, id, binding)
	if err != nil {
		return SignedIn{}, false, err
	}
	now := p.clock()
	bs, ok, err := p.browserSession(ctx, r.ProjectID, browserSession, now)
	if err != nil || !ok || !recentEnough(r, bs, now) {
		return SignedIn{}, false, err
	}
	return SignedIn{UserID: bs.UserID, SessionID: bs.SessionID, ConnectionType: bs.ConnectionType}, true, nil
}

// browserSession finds the project's live browser session for the cookie value raw: not
// revoked, not expired, and its token session still active (ending that session ends single
// sign-on too).
func (p *Provider) browserSession(ctx context.Context, projectID, raw string, now time.Time) (store.BrowserSession, bool, error) {
	if raw == "" || len(raw) > 128 {
		return store.BrowserSession{}, false, nil
	}
	bs, err := p.storage.store.GetBrowserSession(ctx, projectID, hashOf(raw))
	if errors.Is(err, store.ErrNotFound) {
		return store.BrowserSession{}, false, nil
	}
	if err != nil {
		return store.BrowserSession{}, false, fmt.Errorf("get browser session: %w", err)
	}
	if !bs.Active(now) {
		return store.BrowserSession{}, false, nil
	}
	sess, err := p.storage.store.GetSession(ctx, projectID, bs.SessionID)
	if errors.Is(err, store.ErrNotFound) {
		return store.BrowserSession{}, false, nil
	}
	if err != nil {
		return store.BrowserSession{}, false, fmt.Errorf("get session %s: %w", bs.SessionID, err)
	}
	if !sess.Active(now) || sess.UserID != bs.UserID {
		return store.BrowserSession{}, false, nil
	}
	return bs, true, nil
}
