package tokenhttp

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// introspect is token introspection (RFC 7662) for the project's own clients: a resource
// server of the project asks whether a token is active. The answer for anything but an
// active token of the authenticating project is {"active":false}, whatever the reason, so
// that it says nothing about other projects' tokens. Errors are in the OAuth shape.
func (h Handler) introspect(w http.ResponseWriter, r *http.Request) error {
	if err := h.introspection(w, r); err != nil {
		httpserver.WriteOAuthError(w, r, h.Log, err)
	}
	return nil
}

func (h Handler) introspection(w http.ResponseWriter, r *http.Request) error {
	project, form, err := h.authenticatedForm(w, r, false)
	if err != nil {
		return err
	}
	raw, err := tokenField(form)
	if err != nil {
		return err
	}
	in, err := h.Sessions.Introspect(r.Context(), project, raw)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	httpserver.WriteJSON(w, http.StatusOK, introspectionBody(project, h.Sessions.Issuer(), in))
	return nil
}

// introspectionBody is RFC 7662 §2.2's answer. token_type is "Bearer" for access tokens (RFC
// 6749 §7.1's type, as RFC 7662 defines it) and "refresh_token" for refresh tokens, which
// have no such type; sid names the session both belong to.
func introspectionBody(project store.Project, issuer string, in token.Introspection) *oidc.IntrospectionResponse {
	if !in.Active {
		return &oidc.IntrospectionResponse{}
	}
	out := &oidc.IntrospectionResponse{Active: true, ClientID: project.ClientID, Issuer: issuer}
	switch in.Type {
	case token.TypeAccessToken:
		c := in.Claims
		out.TokenType = "Bearer"
		out.Scope = strings.Fields(c.Scope)
		out.Subject, out.Audience, out.JWTID = c.Subject, c.Audience, c.ID
		out.Expiration, out.IssuedAt = oidc.FromTime(c.ExpiresAt), oidc.FromTime(c.IssuedAt)
		out.NotBefore = oidc.FromTime(c.NotBefore)
		out.AuthenticationMethodsReferences = c.AMR
		if c.SessionID != "" {
			out.Claims = map[string]any{"sid": c.SessionID}
		}
	case token.TypeRefreshToken:
		rt, sess := in.RefreshToken, in.Session
		out.TokenType = token.TypeRefreshToken
		out.Scope = strings.Fields(sess.Scope)
		out.Subject, out.Audience = sess.UserID, []string{project.ClientID}
		out.Expiration, out.IssuedAt = oidc.FromTime(rt.ExpiresAt), oidc.FromTime(rt.CreatedAt)
		out.Claims = map[string]any{"sid": sess.ID}
	}
	return out
}

// revoke is token revocation (RFC 7009): an access token ends its session; a refresh token
// ends its family, which is its session, so every token of that login stops working. It
// answers 200 with an empty body whether or not there was anything to revoke (an unknown
// token, another project's, one already dead: §2.2), so that it cannot be used to probe
// tokens. Errors are in the OAuth shape.
func (h Handler) revoke(w http.ResponseWriter, r *http.Request) error {
	if err := h.revocation(w, r); err != nil {
		httpserver.WriteOAuthError(w, r, h.Log, err)
	}
	return nil
}

func (h Handler) revocation(w http.ResponseWriter, r *http.Request) error {
	project, form, err := h.authenticatedForm(w, r, true)
	if err != nil {
		return err
	}
	raw, err := tokenField(form)
	if err != nil {
		return err
	}
	if err := h.Sessions.RevokeToken(r.Context(), project, raw, httpserver.Meta(r)); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return nil
}

// maxTokenField bounds the token a client may send: our access tokens are a few KiB at most.
const maxTokenField = 16 << 10

// tokenField reads RFC 7662's and RFC 7009's token parameter. token_type_hint is not needed:
// refresh tokens and access tokens are told apart by their form, and RFC 7009 §2.1 lets the
// server look further than the hint, so any hint is accepted and none changes the answer.
func tokenField(form url.Values) (string, error) {
	raw := form.Get("token")
	if raw == "" {
		return "", failure.InvalidField("invalid_request", "token", "is required")
	}
	if len(raw) > maxTokenField {
		return "", failure.InvalidField("invalid_request", "token", "is too long")
	}
	return raw, nil
}

// authenticatedForm parses a form POST and authenticates its client the way the token endpoint
// does: HTTP Basic or client_id and client_secret in the form, never both and never the secret in
// the URL, through tokenClient (throttled; every failure of the credentials is the one 401
// invalid_client, so that the answer tells an attacker nothing). publicOK lets a public client
// (token_endpoint_auth_method none) name itself by client_id alone: RFC 7009 §5 lets it revoke
// its own tokens, which is what an SPA's sign-out does.
func (h Handler) authenticatedForm(w http.ResponseWriter, r *http.Request, publicOK bool) (store.Project, url.Values, error) {
	r.Body = http.MaxBytesReader(w, r.Body, httpserver.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return store.Project{}, nil, failure.New(failure.TooLarge, "request_too_large", "request body is larger than 1 MiB")
		}
		return store.Project{}, nil, failure.New(failure.Invalid, "invalid_request", "the body must be a form (application/x-www-form-urlencoded)")
	}
	if q := r.URL.Query(); q.Has("client_secret") || q.Has("token") {
		return store.Project{}, nil, failure.New(failure.Invalid, "invalid_request", "client_secret and token must not be sent in the URL")
	}
	clientID, secret, basic, err := basicAuth(r)
	if err != nil {
		return store.Project{}, nil, err
	}
	if basic && r.PostForm.Get("client_secret") != "" {
		return store.Project{}, nil, failure.New(failure.Invalid, "invalid_request", "use one client authentication method, not two")
	}
	if !basic {
		clientID, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	project, err := h.tokenClient(r, clientID, secret, publicOK && h.OIDC != nil)
	if err != nil {
		return store.Project{}, nil, err
	}
	return project, r.PostForm, nil
}
