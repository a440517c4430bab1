package tokenhttp_test

import (
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// TestUserinfoClaimsByScope checks that userinfo answers with exactly the claims each scope
// grants, with the verified flags from our own state (false included), the organization and
// the roles read from the directory, and every claim for the API's own logins (no scope).
func TestUserinfoClaimsByScope(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newServer(t, st)
		c := s.client("Acme")
		u := s.user(c)
		ctx := t.Context()
		org, err := s.stack.Directory.CreateOrganization(ctx, audit.Actor{Kind: audit.ActorCLI}, c.project.ID,
			directory.OrganizationInput{Name: ptr("Engines Ltd")})
		if err != nil {
			t.Fatal(err)
		}
		now := s.stack.Clock.Now()
		perm := store.Permission{ID: ident.NewGenerator().New(), ProjectID: c.project.ID, Name: "Read", Slug: "engines:read",
			CreatedAt: now, UpdatedAt: now}
		if err := st.CreatePermission(ctx, perm); err != nil {
			t.Fatal(err)
		}
		role := store.Role{ID: ident.NewGenerator().New(), ProjectID: c.project.ID, Name: "Analyst", Slug: "analyst",
			PermissionIDs: []string{perm.ID}, Active: true, CreatedAt: now, UpdatedAt: now}
		if err := st.CreateRole(ctx, role); err != nil {
			t.Fatal(err)
		}
		if err := st.SetMemberRoles(ctx, c.project.ID, org.ID, u.ID, []string{role.ID}, now); err != nil {
			t.Fatal(err)
		}
		updatedAt := float64(u.UpdatedAt.Unix())

		all := map[string]any{
			"sub": u.ID, "email": "ada@example.com", "email_verified": false,
			"name": "Ada Lovelace", "given_name": "Ada", "family_name": "Lovelace", "updated_at": updatedAt,
			"phone_number": "+15555550100", "phone_number_verified": false,
			"org_id": org.ID, "org_name": "Engines Ltd",
			"roles": []any{"analyst"}, "permissions": []any{"engines:read"},
		}
		pick := func(keys ...string) map[string]any {
			out := map[string]any{}
			for _, k := range append(keys, "sub") {
				out[k] = all[k]
			}
			return out
		}
		cases := []struct {
			scope string
			want  map[string]any
		}{
			{"openid", pick()},
			{"openid email", pick("email", "email_verified")},
			{"openid profile", pick("name", "given_name", "family_name", "updated_at")},
			{"openid phone", pick("phone_number", "phone_number_verified")},
			{"openid organization", pick("org_id", "org_name")},
			{"openid roles", pick("roles", "permissions")},
			{"openid email profile phone organization roles offline_access", all},
			{"", all}, // the API's own logins were never narrowed to a scope
		}
		for _, tc := range cases {
			tok := s.start(c, token.Grant{UserID: u.ID, OrganizationID: org.ID, ConnectionType: "EmailOTP", AMR: []string{"otp"},
				Scope: tc.scope})
			for _, path := range []string{"/api/v1/userinfo", "/oidc/userinfo"} {
				a := s.do(http.MethodGet, path, nil, bearer(tok.AccessToken))
				wantStatus(t, a, http.StatusOK, "GET "+path+" with scope "+tc.scope)
				if got := a.json(t); !reflect.DeepEqual(got, tc.want) {
					t.Errorf("GET %s with scope %q:\n\tgot  %v\n\twant %v", path, tc.scope, got, tc.want)
				}
				if a.header.Get("Cache-Control") != "no-store" {
					t.Errorf("GET %s: Cache-Control %q, want no-store", path, a.header.Get("Cache-Control"))
				}
			}
		}

		// A verified email reads as verified: the flag follows our state.
		if _, err := s.stack.Directory.UpdateUser(ctx, audit.Actor{Kind: audit.ActorCLI}, c.project.ID, u.ID,
			directory.UserInput{EmailVerified: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		tok := s.start(c, token.Grant{UserID: u.ID, ConnectionType: "EmailOTP", Scope: "openid email organization roles"})
		got := s.do(http.MethodGet, "/api/v1/userinfo", nil, bearer(tok.AccessToken)).json(t)
		if got["email_verified"] != true {
			t.Errorf("email_verified after verification = %v, want true", got["email_verified"])
		}
		// Without an organization in the session: no org claims, empty role lists.
		if _, ok := got["org_id"]; ok || !reflect.DeepEqual(got["roles"], []any{}) || !reflect.DeepEqual(got["permissions"], []any{}) {
			t.Errorf("userinfo of a session without organization: %v", got)
		}
	})
}

// TestUserinfoTokenPlacesAndRefusals checks where the token may be (header, or the POST form
// of RFC 6750 §2.2, never the URL or two places at once) and every refusal with its
// WWW-Authenticate challenge.
func TestUserinfoTokenPlacesAndRefusals(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newServer(t, st)
		c := s.client("Acme")
		u := s.user(c)
		tok := s.start(c, token.Grant{UserID: u.ID, ConnectionType: "EmailOTP", Scope: "openid email"})

		a := s.do(http.MethodPost, "/api/v1/userinfo", url.Values{"access_token": {tok.AccessToken}}, nil)
		wantStatus(t, a, http.StatusOK, "POST with the token in the form")
		if a.json(t)["email"] != "ada@example.com" {
			t.Errorf("POST form userinfo = %s", a.body)
		}
		a = s.do(http.MethodPost, "/oidc/userinfo", nil, bearer(tok.AccessToken))
		wantStatus(t, a, http.StatusOK, "POST with the token in the header")

		a = s.do(http.MethodPost, "/api/v1/userinfo", url.Values{"access_token": {tok.AccessToken}}, bearer(tok.AccessToken))
		wantStatus(t, a, http.StatusBadRequest, "the token in the header and the form")
		a = s.do(http.MethodGet, "/api/v1/userinfo?access_token="+url.QueryEscape(tok.AccessToken), nil, nil)
		wantStatus(t, a, http.StatusBadRequest, "the token in the URL")

		challenge := `Bearer error="invalid_token"`
		for _, tc := range []struct {
			name   string
			header map[string]string
		}{
			{"no token", nil},
			{"garbage", bearer("not-a-token")},
			{"a forged JWT", bearer("eyJhbGciOiJub25lIn0.eyJjbGllbnRfaWQiOiJ4In0.")},
		} {
			a := s.do(http.MethodGet, "/api/v1/userinfo", nil, tc.header)
			wantStatus(t, a, http.StatusUnauthorized, tc.name)
			if got := a.header.Get("WWW-Authenticate"); got != challenge {
				t.Errorf("%s: WWW-Authenticate %q, want %q", tc.name, got, challenge)
			}
		}

		// No openid in the scope, or a machine token: valid, but not for this resource.
		noOpenID := s.start(c, token.Grant{UserID: u.ID, ConnectionType: "EmailOTP", Scope: "email profile"})
		for name, raw := range map[string]string{"no openid": noOpenID.AccessToken, "machine token": s.machineToken(c)} {
			a := s.do(http.MethodGet, "/api/v1/userinfo", nil, bearer(raw))
			wantStatus(t, a, http.StatusForbidden, name)
			if got := a.json(t)["error_code"]; got != "insufficient_scope" {
				t.Errorf("%s: error_code %v, want insufficient_scope", name, got)
			}
			if got := a.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="insufficient_scope"`) {
				t.Errorf("%s: WWW-Authenticate %q, want insufficient_scope", name, got)
			}
		}

		// A token of another project is refused when the request names this one.
		other := s.client("Other")
		a = s.do(http.MethodGet, "/api/v1/userinfo?client_id="+other.project.ClientID, nil, bearer(tok.AccessToken))
		wantStatus(t, a, http.StatusUnauthorized, "a token of another client than client_id")

		// A revoked session's token stops at once, and an expired token too.
		if err := s.stack.Sessions.RevokeSession(t.Context(), c.project.ID, u.ID, tok.Session.ID, "logout", audit.Meta{}); err != nil {
			t.Fatal(err)
		}
		a = s.do(http.MethodGet, "/api/v1/userinfo", nil, bearer(tok.AccessToken))
		wantStatus(t, a, http.StatusUnauthorized, "the token of a revoked session")
		fresh := s.start(c, token.Grant{UserID: u.ID, ConnectionType: "EmailOTP", Scope: "openid"})
		s.advance(16 * time.Minute)
		a = s.do(http.MethodGet, "/api/v1/userinfo", nil, bearer(fresh.AccessToken))
		wantStatus(t, a, http.StatusUnauthorized, "an expired token")
		if !slices.Contains([]string{challenge}, a.header.Get("WWW-Authenticate")) {
			t.Errorf("expired token: WWW-Authenticate %q", a.header.Get("WWW-Authenticate"))
		}
	})
}
