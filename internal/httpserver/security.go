package httpserver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// Security headers.
//
// SecureHeaders gives every response the headers that cost nothing to send and close whole
// classes of attack: nosniff, no referrer, no framing, and HSTS where the browser reached us
// over TLS. HTML pages additionally get a Content-Security-Policy with default-src 'none' and a
// per-request nonce (CSPNonce, SetPageHeaders), and Cross-Origin-Opener-Policy: same-origin.
// Cache-Control stays with each handler: only it knows whether its answer may be kept.
const (
	// hstsValue makes browsers use HTTPS for two years, subdomains included (RFC 6797).
	hstsValue = "max-age=63072000; includeSubDomains"
	// apiCSP is the policy of every response that is not an HTML page and set none: such a
	// response, opened as a document, may load and run nothing and cannot be framed (OWASP REST
	// Security Cheat Sheet).
	apiCSP = "default-src 'none'; frame-ancestors 'none'"
	// fallbackPageCSP is the policy of an HTML page whose handler set none: no script at all,
	// only the page's own inline stylesheet. Pages should call SetPageHeaders instead, which
	// replaces 'unsafe-inline' with the request's nonce.
	fallbackPageCSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

// SecureHeaders returns h with the security headers of every response. publicURL is the URL
// browsers reach the server at. Put it outside Wrap: it passes on a request with a new context,
// and Wrap labels its metrics with the pattern the router records on the request it is given.
//
// HSTS is sent when the request arrived over TLS (serve --tls-cert) or when the public URL is
// https: behind a TLS-terminating proxy the connection to us is plain HTTP, but the browser's
// is not, and the public URL is the operator's statement of what the browser sees. Browsers
// ignore HSTS received over plain HTTP (RFC 6797 §8.1), so a health check that reaches the
// server directly does no harm. It is never sent for localhost: HSTS is per host, not per
// port, and would force HTTPS on every other development server on the machine. Browsers
// ignore it for IP addresses on their own (§8.1.1).
func SecureHeaders(h http.Handler, publicURL string) http.Handler {
	httpsPublic := strings.HasPrefix(strings.ToLower(strings.TrimSpace(publicURL)), "https://")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		// no-referrer rather than strict-origin-when-cross-origin: the hosted pages carry
		// secrets in their URLs (magic links) and load nothing from other origins, so the
		// Referer header could only leak; nothing this server serves needs one.
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		if (r.TLS != nil || httpsPublic) && !isLocalhost(r.Host) {
			hd.Set("Strict-Transport-Security", hstsValue)
		}
		sw := &securityWriter{ResponseWriter: w}
		// Deferred so that a response the handler never wrote still gets a policy.
		defer sw.finish()
		h.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), nonceKey{}, &nonce{})))
	})
}

// isLocalhost reports whether host (a Host header, perhaps with a port) is localhost or a name
// under .localhost (RFC 6761).
func isLocalhost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// securityWriter adds the headers that depend on what the handler answered, just before the
// header is sent.
type securityWriter struct {
	http.ResponseWriter
	done bool
}

func (s *securityWriter) WriteHeader(status int) {
	s.finish()
	s.ResponseWriter.WriteHeader(status)
}

func (s *securityWriter) Write(b []byte) (int, error) {
	s.finish()
	return s.ResponseWriter.Write(b)
}

func (s *securityWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// finish gives a response without a Content-Security-Policy the default one for its kind, makes
// sure every policy forbids framing, and isolates HTML pages from their opener.
func (s *securityWriter) finish() {
	if s.done {
		return
	}
	s.done = true
	h := s.Header()
	html := isHTML(h.Get("Content-Type"))
	switch csp := h.Get("Content-Security-Policy"); {
	case csp == "" && html:
		h.Set("Content-Security-Policy", fallbackPageCSP)
	case csp == "":
		h.Set("Content-Security-Policy", apiCSP)
	case !hasDirective(csp, "frame-ancestors"):
		h.Set("Content-Security-Policy", csp+"; frame-ancestors 'none'")
	}
	if html && h.Get("Cross-Origin-Opener-Policy") == "" {
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
	}
}

func isHTML(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "text/html" || mt == "application/xhtml+xml"
}

func hasDirective(csp, name string) bool {
	for _, d := range strings.Split(csp, ";") {
		if f := strings.Fields(d); len(f) > 0 && strings.EqualFold(f[0], name) {
			return true
		}
	}
	return false
}

type nonceKey struct{}

// nonce is a request's CSP nonce, made on first use: most responses are JSON and need none.
type nonce struct {
	once  sync.Once
	value string
}

// CSPNonce returns the Content-Security-Policy nonce of the request ctx belongs to: 128 random
// bits, base64url, the same for every call while SecureHeaders serves that request, so that a
// page's header and its <script nonce> and <style nonce> attributes agree. Outside SecureHeaders
// each call returns a fresh nonce; use the value SetPageHeaders returns there.
func CSPNonce(ctx context.Context) string {
	n, ok := ctx.Value(nonceKey{}).(*nonce)
	if !ok {
		return newNonce()
	}
	n.once.Do(func() { n.value = newNonce() })
	return n.value
}

func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	// URL-safe and unpadded: valid in CSP, and html/template leaves it as it is in attributes.
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// NonceSource stands, in a PagePolicy's source lists, for the request's nonce ('nonce-...').
const NonceSource = "'nonce'"

// PagePolicy is the Content-Security-Policy of an HTML page. Everything starts from
// default-src 'none'; each field lists the sources one directive allows (NonceSource for the
// request's nonce); an empty field leaves its directive to default-src. base-uri 'none' and
// frame-ancestors 'none' are always added, and form-action is 'none' unless FormAction says
// otherwise.
type PagePolicy struct {
	Script     []string
	Style      []string
	Connect    []string
	Img        []string
	FormAction []string
}

func (p PagePolicy) usesNonce() bool {
	for _, list := range [][]string{p.Script, p.Style, p.Connect, p.Img, p.FormAction} {
		if slices.Contains(list, NonceSource) {
			return true
		}
	}
	return false
}

// CSP renders the policy with nonce.
func (p PagePolicy) CSP(nonce string) string {
	var b strings.Builder
	b.WriteString("default-src 'none'")
	add := func(name string, sources []string) {
		if len(sources) == 0 {
			return
		}
		b.WriteString("; " + name)
		for _, s := range sources {
			if s == NonceSource {
				s = "'nonce-" + nonce + "'"
			}
			b.WriteString(" " + s)
		}
	}
	add("script-src", p.Script)
	add("style-src", p.Style)
	add("connect-src", p.Connect)
	add("img-src", p.Img)
	add("base-uri", []string{"'none'"})
	if len(p.FormAction) == 0 {
		add("form-action", []string{"'none'"})
	} else {
		add("form-action", p.FormAction)
	}
	add("frame-ancestors", []string{"'none'"})
	return b.String()
}

// SetPageHeaders sets the headers of an HTML page: its content type, its policy with the
// request's nonce, no framing and no opener. It returns the nonce for the page's <script> and
// <style> elements ("" when the policy uses none). Cache-Control is the caller's; a page with a
// nonce must not be cached (no-store), or a stored copy would reuse it.
func SetPageHeaders(w http.ResponseWriter, r *http.Request, p PagePolicy) string {
	var n string
	if p.usesNonce() {
		n = CSPNonce(r.Context())
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", p.CSP(n))
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	return n
}

// CORS.
//
// Browsers call the client-side API (the routes that take a client id or a user's token) from
// the origins each project lists in allowed_origins. The rules:
//   - Secret routes (management, with the project secret) never answer CORS: a browser must
//     never hold the secret, so no page may be allowed to use one.
//   - A response carries Access-Control-Allow-Origin only when the request's Origin is one of
//     the allowed origins of the project the request names, echoed exactly, never "*". The
//     project is the one the router resolved, else the one the client id (query client_id or
//     x-client-id) names, else the one whose client_id an access token claims: the claim is read
//     without checking the signature, which is safe because it only picks whose origin list to
//     consult; the route still refuses a token it cannot verify, and a response is exposed only
//     to pages of the project the request itself names.
//   - No Access-Control-Allow-Credentials: the API uses no cookies; tokens travel in the
//     Authorization header, which a page sets itself.
//   - A preflight (OPTIONS) carries neither x-client-id nor Authorization, so it can name its
//     project only with the client_id query parameter, which every client route accepts. A
//     preflight that names none, an unknown one, or a project that does not list the origin is
//     answered 204 without CORS headers, and the browser does not send the request: browser
//     clients must put client_id in the query string of cross-origin calls that need a
//     preflight. Allowing any origin on preflights alone would let every site make its
//     visitors' browsers send JSON requests to the API (spending their IPs' rate limits).
//     The one exception is BearerPreflight routes (userinfo): see bearerOnlyPreflight.
//   - Every response of a CORS route varies by Origin, allowed or not, so that a cache never
//     serves one origin's answer to another.

// OriginsFunc returns the browser origins a project allows (lower case scheme://host[:port]).
type OriginsFunc func(ctx context.Context, p store.Project) ([]string, error)

// corsAllowHeaders are the request headers a browser client may send: its credentials, the
// answers to a bot check on sign-up and send routes (protecthttp's X-Altcha, X-Captcha-Token
// and X-Latchkey-Honeypot) and its device token (Latchkey-Device, from an earlier password
// sign-in). Never X-Client-Secret, nor Latchkey-Forwarded-For, which only a server with the
// secret may send.
const corsAllowHeaders = "Authorization, Content-Type, X-Client-Id, X-Altcha, X-Captcha-Token, X-Latchkey-Honeypot, Latchkey-Device"

// corsExposeHeaders are the response headers a browser client may read besides the safelisted
// ones: throttling, the request id to report, why a token was refused, and the device token a
// password sign-in issues.
const corsExposeHeaders = "Retry-After, WWW-Authenticate, X-Request-Id, Latchkey-Device"

// corsMaxAge is how long (seconds) a browser may reuse a preflight: short, so that an origin
// removed from a project stops working soon.
const corsMaxAge = "600"

// UseCORS turns on CORS for every route except Secret ones, allowing the origins that origins
// returns for the request's project.
func (rt *Router) UseCORS(origins OriginsFunc) { rt.origins = origins }

// corsResponse sets the CORS headers of a response to a request of a CORS route; ctx is the
// request's context after authorization (it may hold the project).
func (rt *Router) corsResponse(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	if rt.origins == nil {
		return
	}
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	p, ok := ctx.Value(projectKey{}).(store.Project)
	if !ok {
		id, _ := clientIDFrom(r)
		if id == "" {
			id = unverifiedClientID(bearerFrom(r))
		}
		if id == "" {
			return
		}
		var err error
		if p, err = rt.auth.ProjectByClientID(ctx, id); err != nil {
			return
		}
	}
	if !rt.originAllowed(ctx, p, origin) {
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Access-Control-Expose-Headers", corsExposeHeaders)
}

// options answers an OPTIONS request that no route takes: 204 with the path's methods, and, for
// a CORS preflight of a CORS route from an allowed origin, the CORS headers. allow is the
// path's methods as ServeMux lists them.
func (rt *Router) options(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow+", OPTIONS")
	origin, method := r.Header.Get("Origin"), r.Header.Get("Access-Control-Request-Method")
	if origin != "" && method != "" && rt.origins != nil {
		probe := r.Clone(r.Context())
		probe.Method = method
		if _, pattern := rt.mux.Handler(probe); pattern != "" && rt.bearerPreflight[pattern] {
			rt.bearerOnlyPreflight(w, origin, method)
		} else if pattern != "" && rt.corsRoutes[pattern] {
			rt.preflight(w, r, origin, method)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rt *Router) preflight(w http.ResponseWriter, r *http.Request, origin, method string) {
	h := w.Header()
	h.Add("Vary", "Origin")
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	id := strings.TrimSpace(r.URL.Query().Get("client_id"))
	if id == "" {
		return
	}
	p, err := rt.auth.ProjectByClientID(r.Context(), id)
	if err != nil || !rt.originAllowed(r.Context(), p, origin) {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", method)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
}

// bearerAllowHeaders are the request headers a BearerPreflight route's preflight allows: the
// token, and the content type of a form POST that carries none of the others.
const bearerAllowHeaders = "Authorization, Content-Type"

// bearerOnlyPreflight answers the preflight of a BearerPreflight route from any serialized
// origin. This lets a page send only what it could send without CORS (any page may already make
// a simple request to the route) plus its own bearer token: a forged or foreign token is
// refused by the route, its answer is readable only by the token's project's allowed origins
// (corsResponse), and no credentials are allowed, so a page never rides on a browser's cookies.
func (rt *Router) bearerOnlyPreflight(w http.ResponseWriter, origin, method string) {
	h := w.Header()
	h.Add("Vary", "Origin")
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	if !serializedOrigin(origin) {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", method)
	h.Set("Access-Control-Allow-Headers", bearerAllowHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
}

// serializedOrigin reports whether origin is an http(s) origin as a browser sends it: not
// "null", no path.
func serializedOrigin(origin string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && (u.Scheme == "https" || u.Scheme == "http") && u.Path == "" &&
		u.RawQuery == "" && u.Fragment == "" && u.User == nil
}

func (rt *Router) originAllowed(ctx context.Context, p store.Project, origin string) bool {
	if !serializedOrigin(origin) {
		return false // "null" and anything else that is not a serialized origin
	}
	allowed, err := rt.origins(ctx, p)
	if err != nil {
		return false
	}
	return slices.Contains(allowed, strings.ToLower(origin))
}

// unverifiedClientID returns the client_id claim of a JWT without checking it, or "". See the
// CORS rules above for why that is enough here; it must never be used to authorize anything.
func unverifiedClientID(raw string) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || len(parts[1]) > 8<<10 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		ClientID string `json:"client_id"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return ""
	}
	return c.ClientID
}
