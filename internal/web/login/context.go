package login

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/oidcprovider"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// maxFormBytes bounds a form post: the largest is a passkey's attestation, a few kilobytes.
const maxFormBytes = 64 << 10

// pageContext is what a request of the page is for: an authorization request (OIDC mode) or a
// project and registered redirect URI (legacy mode).
type pageContext struct {
	legacy bool
	// request and binding are the authorization request and the browser's binding cookie; in
	// legacy mode binding is the page's own CSRF cookie.
	request  string
	binding  string
	pending  oidcprovider.PendingLogin
	project  store.Project
	settings project.Settings
	// clientID and redirect are legacy mode's parameters.
	clientID string
	redirect string
	// json marks a call from the page's script: answers are JSON, not redirects.
	json bool
}

// key names the attempt: one per authorization request, or per legacy app and redirect URI.
func (c *pageContext) key() string {
	if c.legacy {
		return "legacy\x00" + c.project.ID + "\x00" + c.redirect
	}
	return "oidc\x00" + c.request
}

// redirectURI is where the login ends: the client's registered redirect URI.
func (c *pageContext) redirectURI() string {
	if c.legacy {
		return c.redirect
	}
	return c.pending.RedirectURI
}

// pageURL is the page's own address for this request.
func (c *pageContext) pageURL() string {
	if c.legacy {
		return "/login?" + url.Values{"client_id": {c.clientID}, "redirect_uri": {c.redirect}}.Encode()
	}
	return "/login?" + url.Values{"authRequest": {c.request}}.Encode()
}

// fatalError is a request the page cannot serve at all: its status and the error code its page
// explains.
type fatalError struct {
	status int
	code   string
}

func (f *fatalError) Error() string { return f.code }

func fatalf(status int, code string) *fatalError { return &fatalError{status: status, code: code} }

// resolve finds what the request is for. A request without a valid authorization request and
// binding, or in legacy mode with an unknown client or an unregistered redirect URI, is a
// fatalError; other errors are the server's.
func (h *Handler) resolve(w http.ResponseWriter, r *http.Request) (*pageContext, error) {
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
	q := r.URL.Query()
	if r.Method == http.MethodPost && isForm(r) {
		if err := r.ParseForm(); err != nil {
			return nil, fatalf(http.StatusBadRequest, "bad_request")
		}
		q = r.Form
	}
	ctx := r.Context()
	if id := strings.TrimSpace(q.Get("authRequest")); id != "" {
		c := &pageContext{request: id}
		ck, err := r.Cookie(oidcprovider.BindingCookieName(id))
		if err != nil || ck.Value == "" {
			// No binding: another browser's request, or cookies are off.
			return nil, fatalf(http.StatusBadRequest, "wrong_browser")
		}
		c.binding = ck.Value
		c.pending, err = h.d.Authorizations.Pending(ctx, id, c.binding)
		if err != nil {
			if fe, ok := failure.As(err); ok && fe.Kind != failure.Internal && fe.Kind != failure.Unavailable {
				return nil, fatalf(http.StatusBadRequest, "request_expired")
			}
			if errors.Is(err, store.ErrNotFound) {
				return nil, fatalf(http.StatusBadRequest, "request_expired")
			}
			return nil, err
		}
		c.project = c.pending.Project
		if c.settings, err = h.d.Projects.Settings(c.project); err != nil {
			return nil, err
		}
		return c, nil
	}
	clientID, redirect := strings.TrimSpace(q.Get("client_id")), q.Get("redirect_uri")
	if clientID == "" {
		return nil, fatalf(http.StatusBadRequest, "bad_request")
	}
	c := &pageContext{legacy: true, clientID: clientID, redirect: redirect}
	p, err := h.d.Projects.ProjectByClientID(ctx, clientID)
	if err != nil {
		if fe, ok := failure.As(err); ok && fe.Kind != failure.Internal {
			return nil, fatalf(http.StatusBadRequest, "unknown_client")
		}
		return nil, err
	}
	c.project = p
	if c.settings, err = h.d.Projects.Settings(p); err != nil {
		return nil, err
	}
	// Exact match only: anything looser would send a login to whoever names their own URL.
	if redirect == "" || !slices.Contains(c.settings.RedirectURIs, redirect) {
		return c, fatalf(http.StatusBadRequest, "redirect_uri_not_registered")
	}
	if ck, err := r.Cookie(h.cookieName(legacyCSRFCookie)); err == nil && len(ck.Value) >= 32 {
		c.binding = ck.Value
	} else if r.Method == http.MethodGet {
		// First visit: the attempt is bound to this new cookie. A post without it is refused
		// (its attempt would not open).
		c.binding = randomToken()
		http.SetCookie(w, &http.Cookie{Name: h.cookieName(legacyCSRFCookie), Value: c.binding, Path: "/", HttpOnly: true,
			Secure: h.secure, SameSite: http.SameSiteLaxMode, MaxAge: int(attemptTTL.Seconds())})
	}
	return c, nil
}

func isForm(r *http.Request) bool {
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	return strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "multipart/form-data")
}
