package oidcprovider

import (
	"time"

	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Cookie names of the OpenID Provider. All are `__Host-` cookies: Path=/, no Domain, and
// Secure whenever the public URL is https.
const (
	// BindingCookiePrefix starts the name of every binding cookie (see BindingCookieName).
	BindingCookiePrefix = "__Host-lk_ar_"
	// BrowserSessionCookie is the hosted page's sign-in of the browser (single sign-on).
	BrowserSessionCookie = "__Host-lk_session"
)

// bindingNameChars is how much of the request id names its binding cookie: 32 bits, so two
// requests a browser has open at once practically never share a cookie, in a short name.
const bindingNameChars = 8

// BindingCookieName is the name of the cookie that carries the random value whose hash the
// authorization request requestID keeps, set with the redirect to the login page, so that only
// the browser that started a request can finish it. Each request has its own cookie (a second
// authorization in another tab must not overwrite the first's binding), named by a prefix of
// its id: the id travels in URLs anyway, so the name tells nothing secret. Each lives for the
// request's lifetime, so a browser holds only the few started in the last RequestLifetime.
// An id that is not one of ours (ids are lowercase hex) gives a name no cookie is ever set
// under, so a forged id finds no binding.
func BindingCookieName(requestID string) string {
	if len(requestID) < bindingNameChars {
		return BindingCookiePrefix
	}
	p := requestID[:bindingNameChars]
	for i := range len(p) {
		if c := p[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return BindingCookiePrefix
		}
	}
	return BindingCookiePrefix + p
}

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
