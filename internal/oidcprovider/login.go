package oidcprovider

import (
	"time"

	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Cookie names of the OpenID Provider. Both are `__Host-` cookies: Path=/, no Domain, and
// Secure whenever the public URL is https.
const (
	// BindingCookie carries the random value whose hash an authorization request keeps, set
	// with the redirect to the login page: only the browser that started a request can finish it.
	BindingCookie = "__Host-lk_ar"
	// BrowserSessionCookie is the hosted page's sign-in of the browser (single sign-on).
	BrowserSessionCookie = "__Host-lk_session"
)

// PendingLogin is an authorization request waiting for the hosted login page: what the page
// needs to know to show the right screens, and nothing it could leak.
type PendingLogin struct {
	ID          string
	Project     store.Project
	RedirectURI string
	Scopes      []string
	Prompt      []string
	LoginHint   string
	UILocales   []string
	// Extensions are organization, connection, provider and screen_hint when sent.
	Extensions map[string]string
	ExpiresAt  time.Time
}

// Approval is what the page submits when a login finished for a pending request.
type Approval struct {
	// Result is the finished login (Authenticated, with its session).
	Result login.Result
	// OrganizationID is the organization the user picked, "" to keep the login's.
	OrganizationID string
	// Consented is set when the user accepted the consent screen of a third-party project.
	Consented bool
}

// Approved tells the page where to send the browser, and the browser session to set.
type Approved struct {
	// RedirectURL is the authorization callback, which answers the client with a code.
	RedirectURL string
	// BrowserSession is the raw value of BrowserSessionCookie, valid until BrowserExpires.
	BrowserSession string
	BrowserExpires time.Time
}
