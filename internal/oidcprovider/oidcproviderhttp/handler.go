// Package oidcproviderhttp serves the OpenID Provider's browser and discovery routes:
// authorize (with its resume and callback steps), discovery and RP-initiated logout. The token
// endpoint stays tokenhttp's dispatcher, which calls the provider for the grants it owns.
package oidcproviderhttp

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/oidcprovider"
)

// Handler serves the provider's routes.
type Handler struct {
	Provider *oidcprovider.Provider
	// SecureCookies marks the provider's cookies Secure: set it when the public URL is https.
	SecureCookies bool
}

// maxFormBytes bounds an authorize or logout request body: they carry a few short parameters.
const maxFormBytes = 64 << 10

// Mount registers the routes on rt.
func (h Handler) Mount(rt *httpserver.Router) {
	for _, p := range []string{"/v1/authorize", "/oidc/authorize", "/oauth2/authorize"} {
		rt.Handle("GET "+p, httpserver.Public, browser(h.authorize))
		rt.Handle("POST "+p, httpserver.Public, browser(h.authorize))
	}
	rt.Handle("GET "+oidcprovider.ResumePath, httpserver.Public, browser(h.resume))
	rt.Handle("GET "+oidcprovider.CallbackPath, httpserver.Public, browser(h.callback))
	for _, p := range []string{"/.well-known/openid-configuration", "/v1/.well-known/openid-configuration",
		"/oidc/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		rt.Handle("GET "+p, httpserver.Public, h.discovery)
	}
	for _, p := range []string{"/v1/logout", "/oidc/logout"} {
		rt.Handle("GET "+p, httpserver.Public, browser(h.logout))
		rt.Handle("POST "+p, httpserver.Public, browser(h.logout))
	}
}

// badLink is the page of an authorization request that cannot go back to the client.
var badLink = httpserver.ErrorPage{Title: "This sign-in link is not valid"}

// blockedPage is the page of a request from an address the project blocks.
var blockedPage = httpserver.ErrorPage{Title: "Sign-in is not available from this network",
	Message: "The application does not accept sign-ins from your network address."}

// authorize checks the client and its redirect_uri itself, and the IP's budget of
// authorization requests, so that those errors are a page and never a redirect, binds the request to the browser with a cookie, and lets op parse,
// validate (Provider.ValidateAuthRequest), store and redirect to the resume route.
func (h Handler) authorize(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return httpserver.AsPage(failure.New(failure.Invalid, "invalid_request", "the request could not be read"), badLink)
	}
	a, err := h.Provider.StartAuthorization(r.Context(), r.Form, httpserver.ClientIP(r))
	if fe, ok := failure.As(err); ok && fe.Code == "ip_blocked" {
		return httpserver.AsPage(err, blockedPage) // the link is fine: the address is not
	} else if err != nil {
		return httpserver.AsPage(err, badLink)
	}
	h.setCookie(w, oidcprovider.BindingCookieName(a.RequestID), a.Binding, oidcprovider.RequestLifetime)
	op.Authorize(w, r.WithContext(a.Context), h.Provider)
	return nil
}

// resume is the client's LoginURL: single sign-on straight to the callback, an error for
// prompt=none back to the client, or the hosted login page.
func (h Handler) resume(w http.ResponseWriter, r *http.Request) error {
	id := r.URL.Query().Get("id")
	res, err := h.Provider.Resume(r.Context(), id, cookie(r, oidcprovider.BindingCookieName(id)),
		cookie(r, oidcprovider.BrowserSessionCookie))
	if err != nil {
		return httpserver.AsPage(err, badLink)
	}
	if res.Error != nil {
		op.AuthRequestError(w, r.WithContext(h.Provider.WithIssuer(r.Context())), res.Request, res.Error, h.Provider)
		return nil
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, res.RedirectURL, http.StatusFound)
	return nil
}

// callback answers the client, to the browser that started the request: with the code of an
// approved request, or with access_denied for one the user declined (OIDC Core §3.1.2.6); by
// redirect, or for response_mode=form_post with a self-posting form.
func (h Handler) callback(w http.ResponseWriter, r *http.Request) error {
	id := r.URL.Query().Get("id")
	if err := h.Provider.CheckCallback(r.Context(), id, cookie(r, oidcprovider.BindingCookieName(id))); err != nil {
		return httpserver.AsPage(err, badLink)
	}
	ctx := h.Provider.WithIssuer(r.Context())
	ar, err := h.Provider.Storage().AuthRequestByID(ctx, id)
	if err != nil {
		return httpserver.AsPage(err, badLink)
	}
	if refusal := h.Provider.Refusal(ar); refusal != nil {
		h.setCookie(w, oidcprovider.BindingCookieName(id), "", -1) // answered: the binding is spent
		w.Header().Set("Cache-Control", "no-store")
		if ar.GetResponseMode() != oidc.ResponseModeFormPost {
			op.AuthRequestError(w, r.WithContext(ctx), ar, refusal, h.Provider)
			return nil
		}
		// op's AuthRequestError redirects with the query whatever the response mode; the
		// Form Post Response Mode answers errors by form_post too. op encodes the error's
		// parameters (error, error_description, state) as it would for its redirect.
		refusal.State = ar.GetState()
		params := url.Values{}
		if err := h.Provider.Encoder().Encode(refusal, params); err != nil {
			return err
		}
		return h.formPost(w, r, ar.GetRedirectURI(), params)
	}
	if !ar.Done() {
		return httpserver.AsPage(failure.New(failure.Conflict, "auth_request_pending", "the sign-in has not finished"), badLink)
	}
	h.setCookie(w, oidcprovider.BindingCookieName(id), "", -1) // the request is answered: the binding is spent
	w.Header().Set("Cache-Control", "no-store")
	if ar.GetResponseMode() != oidc.ResponseModeFormPost {
		op.AuthorizeCallback(w, r.WithContext(ctx), h.Provider)
		return nil
	}
	// op's own form_post page submits with an inline event handler, which the strict CSP
	// blocks: ours runs a nonce'd script, and has a button for browsers without JavaScript.
	payload, err := op.BuildAuthResponseCodeResponsePayload(ctx, ar, h.Provider)
	if err != nil {
		return httpserver.AsPage(failure.New(failure.Invalid, "invalid_request", "the sign-in cannot be answered again"), badLink)
	}
	params := url.Values{"code": {payload.Code}}
	if payload.State != "" {
		params.Set("state", payload.State)
	}
	return h.formPost(w, r, ar.GetRedirectURI(), params)
}

// formPost writes the page that posts params to the client's registered redirect URI action,
// under a CSP that lets the form go to that origin only.
func (h Handler) formPost(w http.ResponseWriter, r *http.Request, action string, params url.Values) error {
	target, err := url.Parse(action)
	if err != nil {
		return err
	}
	nonce := httpserver.SetPageHeaders(w, r, httpserver.PagePolicy{Script: []string{httpserver.NonceSource},
		FormAction: []string{target.Scheme + "://" + target.Host}})
	w.WriteHeader(http.StatusOK)
	return formPost.Execute(w, struct {
		Action string
		Params url.Values
		Nonce  string
	}{action, params, nonce})
}

var formPost = template.Must(template.New("form_post").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signing in…</title></head><body>
<form method="post" action="{{.Action}}">{{range $k, $vs := .Params}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">
{{end}}{{end}}<noscript><button type="submit">Continue</button></noscript></form>
<script nonce="{{.Nonce}}">document.forms[0].submit()</script></body></html>
`))

// discovery serves the provider's configuration; the issuer never depends on the request.
// Any origin may read it (Access-Control-Allow-Origin: *, without credentials): a browser
// client such as an SPA fetches it from its own origin before it knows anything else, the
// request names no project whose allowed origins could be consulted, and the document is the
// same public text for everyone.
func (h Handler) discovery(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Cache-Control", "public, max-age=300")
	httpserver.WriteJSON(w, http.StatusOK, h.Provider.Discovery(r.Context()))
	return nil
}

// logout is RP-initiated logout: it ends the browser's session and returns to a registered
// post_logout_redirect_uri, or shows the signed-out page.
func (h Handler) logout(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	req, err := op.ParseEndSessionRequest(r, h.Provider.Decoder())
	if err != nil {
		return httpserver.AsPage(failure.New(failure.Invalid, "invalid_request", "the logout request could not be read"), signOutFailed)
	}
	redirect, err := h.Provider.EndSession(r.Context(), req, cookie(r, oidcprovider.BrowserSessionCookie), httpserver.Meta(r))
	if err != nil {
		var fe *failure.Error
		if errors.As(err, &fe) && fe.Kind == failure.Unauthenticated {
			err = failure.New(failure.Invalid, "invalid_request", "the application (client_id) is not known")
		}
		return httpserver.AsPage(err, signOutFailed)
	}
	h.setCookie(w, oidcprovider.BrowserSessionCookie, "", -1)
	w.Header().Set("Cache-Control", "no-store")
	if redirect != "" {
		http.Redirect(w, r, redirect, http.StatusFound)
		return nil
	}
	httpserver.SetPageHeaders(w, r, httpserver.PagePolicy{})
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(signedOutPage))
	return nil
}

var signOutFailed = httpserver.ErrorPage{Title: "This sign-out link is not valid"}

const signedOutPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Signed out</title></head><body><h1>You are signed out</h1><p>You can close this window.</p></body></html>
`

// setCookie sets one of the provider's __Host- cookies (Path=/, no Domain, HttpOnly,
// SameSite=Lax so that it comes along on the top-level redirects back from the client); a
// negative life deletes it.
func (h Handler) setCookie(w http.ResponseWriter, name, value string, life time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: h.SecureCookies}
	if life < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(life.Seconds())
	}
	http.SetCookie(w, c)
}

// htmlRedirects gives every redirect a content type: net/http writes a small HTML body for a
// GET's redirect and none for a POST's, and op redirects for us; a redirect is then always an
// HTML answer, whatever the method.
type htmlRedirects struct{ http.ResponseWriter }

func (w htmlRedirects) WriteHeader(status int) {
	if status >= 300 && status < 400 && w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w htmlRedirects) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// browser wraps a route handler whose answers are for a browser.
func browser(h httpserver.HandlerFunc) httpserver.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error { return h(htmlRedirects{w}, r) }
}

func cookie(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}
