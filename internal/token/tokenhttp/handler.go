package tokenhttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/login/loginhttp"
	"github.com/latchkey-dev/latchkey/internal/oidcprovider"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// Secrets authenticates a client secret (project.Service).
type Secrets interface {
	AuthenticateSecret(ctx context.Context, clientID, secret string) (store.Project, error)
}

// Users reads users (directory.Service).
type Users interface {
	GetUser(ctx context.Context, projectID, id string) (directory.User, error)
}

// Handler serves the token routes.
type Handler struct {
	Sessions *token.Service
	Keys     *token.KeyManager
	Login    *login.Service
	Users    Users
	Secrets  Secrets
	// OIDC serves the authorization_code and refresh_token grants (oidcprovider.Provider); nil
	// leaves only client_credentials.
	OIDC OIDC
	// Origins returns the browser origins a project allows. The token endpoint answers CORS for
	// the client it authenticated itself: a browser client (an SPA) names itself in the form
	// body, where the router's CORS does not look.
	Origins func(ctx context.Context, p store.Project) ([]string, error)
	Log     *slog.Logger
}

// OIDC is the OpenID Provider's part of the token endpoint (oidcprovider.Provider).
type OIDC interface {
	PublicClient(ctx context.Context, clientID string) (store.Project, error)
	ExchangeCode(ctx context.Context, project store.Project, req oidcprovider.CodeRequest, meta audit.Meta) (oidcprovider.TokenResponse, error)
	Refresh(ctx context.Context, project store.Project, refreshToken, scope string, meta audit.Meta) (oidcprovider.TokenResponse, error)
}

// Mount registers the routes on rt.
func (h Handler) Mount(rt *httpserver.Router) {
	rt.Handle("GET /api/v1/.well-known/jwks.json", httpserver.OptionalClientID, h.jwks)
	rt.Handle("GET /.well-known/jwks.json", httpserver.OptionalClientID, h.jwks)
	rt.Handle("GET /oidc/.well-known/jwks.json", httpserver.OptionalClientID, h.jwks)
	rt.Handle("GET /api/v1/accesstoken/refresh", httpserver.ClientID, h.refresh)
	rt.Handle("POST /api/v1/accesstoken/refresh", httpserver.ClientID, h.refresh)
	// One token endpoint; the aliases are where OAuth libraries look for it by default.
	for _, p := range []string{"/api/v1/oauth2/token", "/oidc/token", "/oauth2/token", "/oauth/token", "/token"} {
		rt.Handle("POST "+p, httpserver.Public, h.oauthToken)
	}
	rt.Handle("POST /api/v1/oauth2/introspection", httpserver.Public, h.introspect)
	rt.Handle("POST /api/v1/oauth2/revoke", httpserver.Public, h.revoke)
	// userinfo's URL comes from discovery, so a browser client's preflight cannot name its
	// project: BearerPreflight allows it, and the answer goes only to the token's project's
	// allowed origins.
	rt.Handle("GET /api/v1/userinfo", httpserver.Public, h.userinfo, httpserver.BearerPreflight)
	rt.Handle("POST /api/v1/userinfo", httpserver.Public, h.userinfo, httpserver.BearerPreflight)
	rt.Handle("GET /oidc/userinfo", httpserver.Public, h.userinfo, httpserver.BearerPreflight)
	rt.Handle("POST /oidc/userinfo", httpserver.Public, h.userinfo, httpserver.BearerPreflight)
	rt.Handle("GET /api/v1/auth/status", httpserver.User, h.status)
	rt.Handle("GET /api/v1/auth/sessions", httpserver.User, h.mySessions)
	rt.Handle("DELETE /api/v1/auth/sessions/{id}", httpserver.User, h.revokeMySession)
	rt.Handle("POST /api/v1/auth/logout", httpserver.User, h.logout)
	rt.Handle("GET /api/v1/users/{id}/sessions", httpserver.Secret, h.userSessions)
	rt.Handle("DELETE /api/v1/users/{id}/sessions", httpserver.Secret, h.revokeUserSessions)
}

// jwks serves the union of every project's published keys when the request names no client
// id: the set that verifiers configured with only the issuer fetch from discovery. Naming a
// client id (query or x-client-id header) narrows it to that project's keys, as before.
func (h Handler) jwks(w http.ResponseWriter, r *http.Request) error {
	var doc token.KeySetDocument
	var err error
	// Clients may cache a set as long as instances cache keys: a rotated-in key waits longer
	// than both before it signs. The set depends on the x-client-id header when the query does
	// not name the client, and every project shares the URL then: such an answer is the
	// client's own (private), since many shared caches ignore Vary, and every answer says it
	// varies with the header. The union depends on nothing the client sends and is public.
	scope := "public"
	if p, ok := httpserver.ProjectIfAny(r.Context()); ok {
		doc, err = h.Keys.ProjectJWKS(r.Context(), p.ID)
		if r.URL.Query().Get("client_id") == "" {
			scope = "private"
		}
	} else {
		doc, err = h.Keys.UnionJWKS(r.Context())
		// The union is the discovery document's jwks_uri: a browser client that checks
		// signatures itself fetches it before it names a project. Public keys, no credentials:
		// any origin may read them.
		w.Header().Set("Access-Control-Allow-Origin", "*")
	}
	if err != nil {
		return err
	}
	w.Header().Add("Vary", "X-Client-Id")
	w.Header().Set("Cache-Control", fmt.Sprintf("%s, max-age=%d", scope, int(h.Keys.CacheTTL().Seconds())))
	w.Header().Set("ETag", doc.ETag)
	if etagMatches(r.Header.Get("If-None-Match"), doc.ETag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Content-Length", strconv.Itoa(len(doc.Body)))
	_, _ = w.Write(doc.Body)
	return nil
}

// etagMatches applies If-None-Match (RFC 9110 13.1.2: weak comparison, "*" matches any
// current representation) to the strong tag etag.
func etagMatches(ifNoneMatch, etag string) bool {
	for _, t := range strings.Split(ifNoneMatch, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// refresh takes the refresh token from a POST form or JSON body (preferred) or, for SSOJet's
// GET, from the query; the access log never records query strings.
func (h Handler) refresh(w http.ResponseWriter, r *http.Request) error {
	raw := r.URL.Query().Get("refresh_token")
	if r.Method == http.MethodPost {
		v, err := postedValue(w, r, "refresh_token")
		if err != nil {
			return err
		}
		if v != "" {
			raw = v
		}
	}
	if raw == "" {
		return failure.InvalidField("invalid_request", "refresh_token", "is required")
	}
	res, err := h.Login.Refresh(r.Context(), httpserver.ProjectFrom(r.Context()), raw, httpserver.Meta(r))
	if err != nil {
		return err
	}
	loginhttp.Write(w, res)
	return nil
}

// oauthToken is the OAuth token endpoint (RFC 6749 §3.2), the one dispatcher on grant_type:
// client_credentials here, authorization_code and refresh_token through the OpenID Provider.
// Every answer is in RFC 6749's shapes so that OAuth and OIDC client libraries work unchanged.
func (h Handler) oauthToken(w http.ResponseWriter, r *http.Request) error {
	if err := h.token(w, r); err != nil {
		httpserver.WriteOAuthError(w, r, h.Log, err)
	}
	return nil
}

// tokenResponse is RFC 6749 §5.1's answer, with OIDC Core §3.1.3.3's id_token.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

func (h Handler) token(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, httpserver.MaxBodyBytes)
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		return failure.New(failure.Invalid, "invalid_request", "the body must be a form (application/x-www-form-urlencoded)")
	}
	if err := r.ParseForm(); err != nil {
		return failure.New(failure.Invalid, "invalid_request", "the body must be a form (application/x-www-form-urlencoded)")
	}
	if r.URL.Query().Has("client_secret") || r.URL.Query().Has("code") || r.URL.Query().Has("refresh_token") {
		return failure.New(failure.Invalid, "invalid_request", "credentials must not be sent in the URL")
	}
	for k, vs := range r.PostForm {
		if len(vs) > 1 {
			return failure.New(failure.Invalid, "invalid_request", "parameter %s is repeated", k) // RFC 6749 §3.2
		}
	}
	clientID, secret, basic, err := basicAuth(r)
	if err != nil {
		return err
	}
	if basic && (r.PostForm.Get("client_secret") != "" || (r.PostForm.Has("client_id") && r.PostForm.Get("client_id") != clientID)) {
		return failure.New(failure.Invalid, "invalid_request", "use one client authentication method, not two")
	}
	if !basic {
		clientID, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	grant := r.PostForm.Get("grant_type")
	switch grant {
	case "client_credentials", "authorization_code", "refresh_token":
	case "":
		return failure.New(failure.Invalid, "invalid_request", "grant_type is required")
	default:
		return failure.New(failure.Invalid, "unsupported_grant_type", "grant_type %q is not supported here", grant)
	}
	if grant != "client_credentials" && h.OIDC == nil {
		return failure.New(failure.Invalid, "unsupported_grant_type", "grant_type %q is not supported here", grant)
	}
	project, err := h.tokenClient(r, clientID, secret, grant != "client_credentials")
	if err != nil {
		return err
	}
	h.allowOrigin(w, r, project)
	var resp tokenResponse
	switch grant {
	case "client_credentials":
		t, err := h.Sessions.ClientCredentials(r.Context(), project, strings.TrimSpace(r.PostForm.Get("scope")))
		if err != nil {
			return err
		}
		resp = tokenResponse{AccessToken: t.AccessToken, ExpiresIn: t.ExpiresIn, Scope: t.Claims.Scope}
	case "authorization_code":
		t, err := h.OIDC.ExchangeCode(r.Context(), project, oidcprovider.CodeRequest{Code: r.PostForm.Get("code"),
			RedirectURI: r.PostForm.Get("redirect_uri"), CodeVerifier: r.PostForm.Get("code_verifier")}, httpserver.Meta(r))
		if err != nil {
			return err
		}
		resp = fromProvider(t)
	case "refresh_token":
		t, err := h.OIDC.Refresh(r.Context(), project, r.PostForm.Get("refresh_token"), r.PostForm.Get("scope"), httpserver.Meta(r))
		if err != nil {
			return err
		}
		resp = fromProvider(t)
	}
	resp.TokenType = "Bearer"
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	httpserver.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// allowOrigin lets the page that sent the request read the answer when its origin is one the
// client's project allows (exactly, never "*"; no credentials: the endpoint takes no cookies).
func (h Handler) allowOrigin(w http.ResponseWriter, r *http.Request, p store.Project) {
	origin := strings.ToLower(r.Header.Get("Origin"))
	if origin == "" || h.Origins == nil {
		return
	}
	allowed, err := h.Origins(r.Context(), p)
	if err == nil && slices.Contains(allowed, origin) {
		w.Header().Set("Access-Control-Allow-Origin", origin)
	}
}

func fromProvider(t oidcprovider.TokenResponse) tokenResponse {
	return tokenResponse{AccessToken: t.AccessToken, ExpiresIn: t.ExpiresIn, RefreshToken: t.RefreshToken, IDToken: t.IDToken, Scope: t.Scope}
}

// basicAuth reads HTTP Basic client authentication as RFC 6749 §2.3.1 defines it: the client
// id and secret are each application/x-www-form-urlencoded before Base64, and standard clients
// (openid-client, oauth4webapi) encode "_" and "-", which Latchkey's ids and secrets contain, so
// the raw values would never match. Credentials sent unencoded (curl -u, Go's SetBasicAuth)
// decode to themselves, as ids and secrets have no "%" or "+". A value that does not decode is
// the one invalid_client, like any other failed client authentication.
func basicAuth(r *http.Request) (clientID, secret string, ok bool, err error) {
	rawID, rawSecret, ok := r.BasicAuth()
	if !ok {
		return "", "", false, nil
	}
	clientID, err1 := url.QueryUnescape(rawID)
	secret, err2 := url.QueryUnescape(rawSecret)
	if err1 != nil || err2 != nil {
		return "", "", true, failure.New(failure.Unauthenticated, "invalid_client", "client authentication failed")
	}
	return clientID, secret, true, nil
}

// tokenClient authenticates the client first, before any grant is looked at: a secret
// through the throttled Secrets path (one 401 invalid_client whatever went wrong), or, for a
// user grant, a public client (token_endpoint_auth_method none) by its id alone.
func (h Handler) tokenClient(r *http.Request, clientID, secret string, userGrant bool) (store.Project, error) {
	if secret == "" && userGrant && clientID != "" {
		return h.OIDC.PublicClient(r.Context(), clientID)
	}
	if clientID == "" || secret == "" {
		return store.Project{}, failure.New(failure.Unauthenticated, "invalid_client", "client authentication failed")
	}
	project, err := h.Secrets.AuthenticateSecret(r.Context(), clientID, secret)
	if err != nil {
		var fe *failure.Error
		if errors.As(err, &fe) && (fe.Kind == failure.Unauthenticated || fe.Kind == failure.Forbidden) {
			return store.Project{}, failure.New(failure.Unauthenticated, "invalid_client", "client authentication failed")
		}
		return store.Project{}, err
	}
	return project, nil
}

func (h Handler) status(w http.ResponseWriter, r *http.Request) error {
	c, _ := httpserver.CallerFrom(r.Context())
	u, err := h.Users.GetUser(r.Context(), c.Project.ID, c.Claims.Subject)
	if err != nil {
		return err
	}
	body := loginhttp.NewBody(login.Result{Authenticated: true, User: u, Tokens: token.Tokens{Claims: c.Claims}})
	httpserver.WriteJSON(w, http.StatusOK, struct {
		Authenticated bool   `json:"authenticated"`
		User          any    `json:"user"`
		Profile       any    `json:"profile"`
		Session       sessID `json:"session"`
	}{true, body.User, body.Profile, sessID{ID: c.Session.ID, ExpiresAt: ts(c.Session.ExpiresAt),
		IdleExpiresAt: ts(c.Session.IdleExpiresAt)}})
	return nil
}

type sessID struct {
	ID            string `json:"id"`
	ExpiresAt     string `json:"expires_at"`
	IdleExpiresAt string `json:"idle_expires_at"`
}

func (h Handler) mySessions(w http.ResponseWriter, r *http.Request) error {
	c, _ := httpserver.CallerFrom(r.Context())
	ss, err := h.Sessions.ListSessions(r.Context(), c.Project.ID, c.Claims.Subject)
	if err != nil {
		return err
	}
	writeSessions(w, ss, c.Session.ID)
	return nil
}

func (h Handler) revokeMySession(w http.ResponseWriter, r *http.Request) error {
	c, _ := httpserver.CallerFrom(r.Context())
	if err := h.Sessions.RevokeSession(r.Context(), c.Project.ID, c.Claims.Subject, r.PathValue("id"), "user_revoked", httpserver.Meta(r)); err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, revoked{Revoked: 1})
	return nil
}

// logout ends the caller's session, or with ?all=true every session of the user.
func (h Handler) logout(w http.ResponseWriter, r *http.Request) error {
	c, _ := httpserver.CallerFrom(r.Context())
	all, err := boolQuery(r, "all")
	if err != nil {
		return err
	}
	n := 1
	if all {
		n, err = h.Sessions.RevokeUserSessions(r.Context(), c.Project.ID, c.Claims.Subject, "logout_all", httpserver.Meta(r))
	} else {
		err = h.Sessions.RevokeSession(r.Context(), c.Project.ID, c.Claims.Subject, c.Session.ID, "logout", httpserver.Meta(r))
	}
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, revoked{Revoked: n})
	return nil
}

func (h Handler) userSessions(w http.ResponseWriter, r *http.Request) error {
	p := httpserver.ProjectFrom(r.Context())
	u, err := h.Users.GetUser(r.Context(), p.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	ss, err := h.Sessions.ListSessions(r.Context(), p.ID, u.ID)
	if err != nil {
		return err
	}
	writeSessions(w, ss, "")
	return nil
}

func (h Handler) revokeUserSessions(w http.ResponseWriter, r *http.Request) error {
	p := httpserver.ProjectFrom(r.Context())
	u, err := h.Users.GetUser(r.Context(), p.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	n, err := h.Sessions.RevokeUserSessions(r.Context(), p.ID, u.ID, "admin_revoked", httpserver.Meta(r))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, revoked{Revoked: n})
	return nil
}

type revoked struct {
	Revoked int `json:"revoked"`
}

type sessionBody struct {
	ID             string   `json:"id"`
	UserID         string   `json:"user_id"`
	OrganizationID string   `json:"organization_id"`
	ConnectionType string   `json:"connection_type"`
	AMR            []string `json:"amr"`
	IPAddress      string   `json:"ip_address"`
	UserAgent      string   `json:"user_agent"`
	CreatedAt      string   `json:"created_at"`
	LastSeenAt     string   `json:"last_seen_at"`
	IdleExpiresAt  string   `json:"idle_expires_at"`
	ExpiresAt      string   `json:"expires_at"`
	Current        bool     `json:"current"`
}

func writeSessions(w http.ResponseWriter, ss []store.Session, current string) {
	out := make([]sessionBody, len(ss))
	for i, s := range ss {
		out[i] = sessionBody{ID: s.ID, UserID: s.UserID, OrganizationID: s.OrganizationID, ConnectionType: s.ConnectionType,
			AMR: s.AMR, IPAddress: s.IPAddress, UserAgent: s.UserAgent, CreatedAt: ts(s.CreatedAt), LastSeenAt: ts(s.LastSeenAt),
			IdleExpiresAt: ts(s.IdleExpiresAt), ExpiresAt: ts(s.ExpiresAt), Current: s.ID == current}
	}
	httpserver.WriteJSON(w, http.StatusOK, struct {
		Sessions []sessionBody `json:"sessions"`
	}{out})
}

// postedValue reads one field of a POST body, form-encoded or JSON.
func postedValue(w http.ResponseWriter, r *http.Request, name string) (string, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var body map[string]json.RawMessage
		if err := httpserver.DecodeJSON(w, r, &body); err != nil {
			return "", err
		}
		raw, ok := body[name]
		if !ok {
			return "", nil
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", failure.InvalidField("invalid_request", name, "must be a string")
		}
		return v, nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, httpserver.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return "", failure.New(failure.TooLarge, "request_too_large", "request body is larger than 1 MiB")
		}
		return "", failure.New(failure.Invalid, "invalid_request", "the body must be a form or JSON")
	}
	return r.PostForm.Get(name), nil
}

func boolQuery(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, failure.InvalidField("invalid_request", name, "must be true or false")
	}
	return b, nil
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }
