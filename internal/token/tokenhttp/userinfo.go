package tokenhttp

import (
	"errors"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// userinfo is OpenID Connect's UserInfo endpoint (Core §5.3): the claims about the token's
// user that the token's scope grants. The token is our at+jwt, checked as on every User route
// (its session must be active), taken from the Authorization header or, on a POST, from the
// form field access_token (RFC 6750 §2.2); never from the query (§2.3), which ends up in logs.
//
// Which claims: sub always; email → email, email_verified; profile → name, given_name,
// family_name, updated_at; phone → phone_number, phone_number_verified; organization →
// org_id, org_name; roles → roles, permissions (in the session's organization). The verified
// flags are our own state, never a provider's. A token with a scope but without openid is
// refused (403 insufficient_scope): userinfo is an OpenID Connect resource. A token of the
// API's own logins has no scope at all; it was never narrowed to one, so it gets every claim,
// as its login result already showed the same user in full.
func (h Handler) userinfo(w http.ResponseWriter, r *http.Request) error {
	raw, err := userinfoToken(w, r)
	if err != nil {
		return err
	}
	clientID, err := httpserver.ClientIDOf(r)
	if err != nil {
		return err
	}
	c, err := h.Sessions.AuthenticateBearer(r.Context(), clientID, raw)
	if err != nil {
		return err
	}
	scopes, everything := strings.Fields(c.Claims.Scope), c.Claims.Scope == ""
	if c.Machine() || (!everything && !slices.Contains(scopes, oidc.ScopeOpenID)) {
		// RFC 6750 §3.1: the token is valid but does not reach this resource.
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="openid"`)
		if c.Machine() {
			return failure.New(failure.Forbidden, "insufficient_scope", "userinfo takes a user's access token, not a client_credentials token")
		}
		return failure.New(failure.Forbidden, "insufficient_scope", "the access token was not granted the openid scope")
	}
	u, err := h.Users.GetUser(r.Context(), c.Project.ID, c.Claims.Subject)
	if errors.Is(err, store.ErrNotFound) || failure.IsKind(err, failure.NotFound) {
		// The user went after the token was checked: its sessions went with it.
		return failure.New(failure.Unauthenticated, "invalid_token", "the session has ended")
	}
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	httpserver.WriteJSON(w, http.StatusOK, userInfo(u, c, scopes, everything))
	return nil
}

// userinfoToken reads the bearer token of a userinfo request: the Authorization header or, on
// a form POST, access_token; using both, or the query, is invalid_request (RFC 6750 §2).
func userinfoToken(w http.ResponseWriter, r *http.Request) (string, error) {
	if r.URL.Query().Has("access_token") {
		return "", failure.New(failure.Invalid, "invalid_request", "send the access token in the Authorization header, not the URL")
	}
	raw := httpserver.BearerOf(r)
	if r.Method == http.MethodPost {
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" {
			r.Body = http.MaxBytesReader(w, r.Body, httpserver.MaxBodyBytes)
			if err := r.ParseForm(); err != nil {
				return "", failure.New(failure.Invalid, "invalid_request", "the body must be a form (application/x-www-form-urlencoded)")
			}
			if form := r.PostForm.Get("access_token"); form != "" {
				if raw != "" || r.Header.Get("Authorization") != "" {
					return "", failure.New(failure.Invalid, "invalid_request", "send the access token once: in the Authorization header or the form, not both")
				}
				raw = form
			}
		}
	}
	if raw == "" {
		return "", failure.New(failure.Unauthenticated, "missing_token", "an access token is required (Authorization: Bearer <token>)")
	}
	return raw, nil
}

// userInfo builds the claims of u that scopes grant (every claim when everything).
func userInfo(u directory.User, c token.Caller, scopes []string, everything bool) *oidc.UserInfo {
	granted := func(s string) bool { return everything || slices.Contains(scopes, s) }
	ui := &oidc.UserInfo{Subject: u.ID}
	if granted(oidc.ScopeEmail) && u.Email != "" {
		ui.Email = u.Email
		// The library's Bool drops false (omitempty); a client must still see "not verified".
		ui.AppendClaims("email_verified", u.EmailVerified)
	}
	if granted(oidc.ScopeProfile) {
		ui.GivenName, ui.FamilyName = u.FirstName, u.LastName
		ui.Name = strings.TrimSpace(u.FirstName + " " + u.LastName)
		ui.UpdatedAt = oidc.FromTime(u.UpdatedAt)
	}
	if granted(oidc.ScopePhone) && u.Phone != "" {
		ui.PhoneNumber = u.Phone
		ui.AppendClaims("phone_number_verified", u.PhoneVerified)
	}
	orgID := c.Session.OrganizationID
	var tenant *directory.Tenant
	for i := range u.Tenants {
		if u.Tenants[i].OrganizationID == orgID {
			tenant = &u.Tenants[i]
		}
	}
	if granted("organization") && orgID != "" {
		ui.AppendClaims("org_id", orgID)
		if tenant != nil {
			ui.AppendClaims("org_name", tenant.OrganizationName)
		}
	}
	if granted("roles") {
		// Read now, not from the token: a role taken away shows at once here.
		roles, perms := []string{}, []string{}
		if tenant != nil && orgID != "" {
			for _, role := range tenant.Roles {
				roles = append(roles, role.Slug)
				perms = append(perms, role.Permissions...)
			}
		}
		slices.Sort(roles)
		slices.Sort(perms)
		ui.AppendClaims("roles", slices.Compact(roles))
		ui.AppendClaims("permissions", slices.Compact(perms))
	}
	return ui
}
