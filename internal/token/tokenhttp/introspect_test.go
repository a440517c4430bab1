package tokenhttp_test

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
	"github.com/latchkey-dev/latchkey/internal/token"
)

const introspectPath = "/api/v1/oauth2/introspection"
const revokePath = "/api/v1/oauth2/revoke"

// inactive is RFC 7662's whole answer for a token that is not active.
const inactive = `{"active":false}`

// TestIntrospection checks RFC 7662 for both kinds of token: active ones of the authenticated
// project come with their claims; everything else (another project's, garbage, expired,
// spent, of an ended session) is {"active":false}; and introspecting spends nothing.
func TestIntrospection(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newServer(t, st)
		a, b := s.client("Acme"), s.client("Other")
		u := s.user(a)
		const scope = "openid email offline_access"
		tok := s.start(a, token.Grant{UserID: u.ID, ConnectionType: "EmailOTP", AMR: []string{"otp"}, Scope: scope})
		ask := func(c client, raw string, header bool) answer {
			form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
			if header {
				return s.do(http.MethodPost, introspectPath, form, basic(c))
			}
			form.Set("client_id", c.project.ClientID)
			form.Set("client_secret", c.secret)
			return s.do(http.MethodPost, introspectPath, form, nil)
		}

		got := ask(a, tok.AccessToken, true)
		wantStatus(t, got, http.StatusOK, "introspect an active access token")
		c := tok.Claims
		want := map[string]any{"active": true, "scope": scope, "client_id": a.project.ClientID, "sub": u.ID,
			"exp": float64(c.ExpiresAt.Unix()), "iat": float64(c.IssuedAt.Unix()), "nbf": float64(c.NotBefore.Unix()),
			"sid": tok.Session.ID, "token_type": "Bearer", "iss": "https://auth.example.com",
			"aud": []any{a.project.ClientID}, "jti": c.ID, "amr": []any{"otp"}}
		if m := got.json(t); !reflect.DeepEqual(m, want) {
			t.Errorf("introspection of an access token:\n\tgot  %v\n\twant %v", m, want)
		}
		if got.header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", got.header.Get("Cache-Control"))
		}

		// The refresh token, with form authentication; introspected twice, it is not spent.
		for range 2 {
			got = ask(a, tok.RefreshToken, false)
			wantStatus(t, got, http.StatusOK, "introspect an active refresh token")
			m := got.json(t)
			if m["active"] != true || m["token_type"] != "refresh_token" || m["sid"] != tok.Session.ID || m["sub"] != u.ID ||
				m["scope"] != scope || m["client_id"] != a.project.ClientID {
				t.Errorf("introspection of a refresh token: %v", m)
			}
		}
		s.advance(time.Minute)
		next, err := s.stack.Sessions.Refresh(t.Context(), a.project, tok.RefreshToken, audit.Meta{})
		if err != nil {
			t.Fatalf("refresh after introspection: %v (introspection must not spend the token)", err)
		}

		// The machine token of the project is active and has no session.
		got = ask(a, s.machineToken(a), true)
		if m := got.json(t); m["active"] != true || m["sub"] != a.project.ClientID || m["sid"] != nil {
			t.Errorf("introspection of a client_credentials token: %v", m)
		}

		for _, tc := range []struct {
			name string
			c    client
			raw  string
		}{
			{"another project's access token", b, next.AccessToken},
			{"another project's refresh token", b, next.RefreshToken},
			{"garbage", a, "not-a-token"},
			{"an unknown refresh token", a, "rt_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
			{"a spent refresh token", a, tok.RefreshToken},
		} {
			got := ask(tc.c, tc.raw, true)
			wantStatus(t, got, http.StatusOK, tc.name)
			if string(got.body) != inactive+"\n" && string(got.body) != inactive {
				t.Errorf("%s: body %s, want %s", tc.name, got.body, inactive)
			}
		}
		// The spent token above was only read: reuse detection has not fired, the family lives.
		s.wantSessionActive(a, tok.Session.ID, true, "after introspecting a spent refresh token")

		// Expired access token: inactive; the refresh token of the same session still active.
		s.advance(16 * time.Minute)
		if m := ask(a, next.AccessToken, true).json(t); m["active"] != false {
			t.Errorf("an expired access token: %v", m)
		}
		if m := ask(a, next.RefreshToken, true).json(t); m["active"] != true {
			t.Errorf("the live refresh token: %v", m)
		}
		// An ended session: its refresh token is inactive too.
		if err := s.stack.Sessions.RevokeSession(t.Context(), a.project.ID, u.ID, tok.Session.ID, "logout", audit.Meta{}); err != nil {
			t.Fatal(err)
		}
		if m := ask(a, next.RefreshToken, true).json(t); m["active"] != false {
			t.Errorf("the refresh token of a revoked session: %v", m)
		}
	})
}

// TestIntrospectionAndRevocationNeedTheClient checks client authentication on both routes:
// missing, wrong or another client's credentials are the one 401 invalid_client with a Basic
// challenge, and malformed requests are 400 invalid_request, in the OAuth shape.
func TestIntrospectionAndRevocationNeedTheClient(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newServer(t, st)
		a, b := s.client("Acme"), s.client("Other")
		tok := s.start(a, token.Grant{UserID: s.user(a).ID, ConnectionType: "EmailOTP", Scope: "openid"})
		for _, path := range []string{introspectPath, revokePath} {
			form := url.Values{"token": {tok.RefreshToken}}
			wrong := client{project: a.project, secret: b.secret}
			for name, header := range map[string]map[string]string{
				"no credentials":          nil,
				"a wrong secret":          basic(client{project: a.project, secret: "sk_wrong"}),
				"another client's secret": basic(wrong),
				"a bearer token":          bearer(tok.AccessToken),
			} {
				got := s.do(http.MethodPost, path, form, header)
				wantOAuthError(t, got, http.StatusUnauthorized, "invalid_client", path+" with "+name)
				if got.header.Get("WWW-Authenticate") != `Basic realm="latchkey"` {
					t.Errorf("%s with %s: WWW-Authenticate %q", path, name, got.header.Get("WWW-Authenticate"))
				}
			}
			both := url.Values{"token": {tok.RefreshToken}, "client_secret": {a.secret}}
			wantOAuthError(t, s.do(http.MethodPost, path, both, basic(a)), http.StatusBadRequest, "invalid_request",
				path+" with Basic and client_secret")
			wantOAuthError(t, s.do(http.MethodPost, path, url.Values{}, basic(a)), http.StatusBadRequest, "invalid_request",
				path+" without token")
			wantOAuthError(t, s.do(http.MethodPost, path+"?client_secret="+a.secret, form, basic(a)), http.StatusBadRequest,
				"invalid_request", path+" with the secret in the URL")
		}
		// None of that revoked anything.
		s.wantSessionActive(a, tok.Session.ID, true, "after the refused requests")
	})
}

// TestRevocation checks RFC 7009: a refresh token ends its family (its session), without
// being spent; an access token ends its session; both write an audit event; an unknown token
// or another project's is 200 and revokes nothing; a machine token cannot be revoked.
func TestRevocation(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newServer(t, st)
		a, b := s.client("Acme"), s.client("Other")
		u := s.user(a)
		grant := token.Grant{UserID: u.ID, ConnectionType: "EmailOTP", Scope: "openid offline_access"}
		revoke := func(c client, raw string) answer {
			return s.do(http.MethodPost, revokePath, url.Values{"token": {raw}, "token_type_hint": {"refresh_token"}}, basic(c))
		}

		// Another project's client, and unknown tokens: 200, nothing revoked.
		tok := s.start(a, grant)
		for name, raw := range map[string]string{"B revoking A's refresh token": tok.RefreshToken,
			"B revoking A's access token": tok.AccessToken} {
			got := revoke(b, raw)
			wantStatus(t, got, http.StatusOK, name)
		}
		wantStatus(t, revoke(a, "rt_unknown"), http.StatusOK, "an unknown refresh token")
		wantStatus(t, revoke(a, "garbage"), http.StatusOK, "garbage")
		s.wantSessionActive(a, tok.Session.ID, true, "after revocations of other clients and unknown tokens")

		// The refresh token: the family ends, and the token itself was not spent.
		got := revoke(a, tok.RefreshToken)
		wantStatus(t, got, http.StatusOK, "revoke a refresh token")
		if len(got.body) != 0 {
			t.Errorf("revocation body %q, want none", got.body)
		}
		s.wantSessionActive(a, tok.Session.ID, false, "after revoking its refresh token")
		hash := sha256.Sum256([]byte(tok.RefreshToken))
		rt, err := st.GetRefreshToken(t.Context(), a.project.ID, hash[:])
		if err != nil {
			t.Fatal(err)
		}
		if rt.UsedAt != nil {
			t.Errorf("revocation spent the refresh token (used at %v)", rt.UsedAt)
		}
		if a := s.do(http.MethodGet, "/api/v1/userinfo", nil, bearer(tok.AccessToken)); a.status != http.StatusUnauthorized {
			t.Errorf("the access token of the revoked family: status %d, want 401", a.status)
		}
		if _, err := s.stack.Sessions.Refresh(t.Context(), a.project, tok.RefreshToken, audit.Meta{}); err == nil {
			t.Error("the revoked refresh token still refreshes")
		}
		// Revoking it again is still 200.
		wantStatus(t, revoke(a, tok.RefreshToken), http.StatusOK, "revoke a refresh token twice")

		// The access token ends its session.
		second := s.start(a, grant)
		wantStatus(t, revoke(a, second.AccessToken), http.StatusOK, "revoke an access token")
		s.wantSessionActive(a, second.Session.ID, false, "after revoking its access token")
		if _, err := s.stack.Sessions.Refresh(t.Context(), a.project, second.RefreshToken, audit.Meta{}); err == nil {
			t.Error("the refresh token of a session revoked by its access token still refreshes")
		}

		// Each revocation is in the audit log, once.
		events, err := st.ListAuditEvents(t.Context(), a.project.ID, store.AuditFilter{}, 100, "")
		if err != nil {
			t.Fatal(err)
		}
		reasons := map[string]string{}
		for _, e := range events {
			if e.Type == "session.revoked" {
				if _, dup := reasons[e.SessionID]; dup {
					t.Errorf("session %s has two session.revoked events", e.SessionID)
				}
				reasons[e.SessionID], _ = e.Detail["reason"].(string)
			}
		}
		wantReasons := map[string]string{tok.Session.ID: token.ReasonRefreshTokenRevoked, second.Session.ID: token.ReasonAccessTokenRevoked}
		if !reflect.DeepEqual(reasons, wantReasons) {
			t.Errorf("session.revoked events by session = %v, want %v", reasons, wantReasons)
		}

		// A client_credentials token has no session to end.
		wantOAuthError(t, revoke(a, s.machineToken(a)), http.StatusBadRequest, "unsupported_token_type", "revoke a machine token")
	})
}

// TestWrongClientSecretsAreThrottled checks that introspection and revocation check client
// secrets through the throttled path: past the project's limit of wrong secrets from one
// address, even the right secret is refused (429) until the window passes.
func TestWrongClientSecretsAreThrottled(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newServer(t, st)
		a := s.client("Acme")
		if _, err := s.stack.Projects.Update(t.Context(), audit.Actor{Kind: audit.ActorCLI}, a.project.ID,
			project.Update{Settings: []byte(`{"protect":{"ip_failures_per_hour":10}}`)}); err != nil {
			t.Fatal(err)
		}
		form := url.Values{"token": {"garbage"}}
		wrong := basic(client{project: a.project, secret: "sk_0000000000000000000000000000000000000000000"})
		for i := range 10 {
			path := []string{introspectPath, revokePath}[i%2]
			wantOAuthError(t, s.do(http.MethodPost, path, form, wrong), http.StatusUnauthorized, "invalid_client",
				fmt.Sprintf("wrong secret %d", i+1))
		}
		for _, path := range []string{introspectPath, revokePath} {
			got := s.do(http.MethodPost, path, form, basic(a))
			wantStatus(t, got, http.StatusTooManyRequests, path+" with the right secret past the limit")
			if got.header.Get("Retry-After") == "" {
				t.Errorf("%s: 429 without Retry-After", path)
			}
		}
		s.advance(time.Hour + time.Minute)
		wantStatus(t, s.do(http.MethodPost, introspectPath, form, basic(a)), http.StatusOK, "the right secret after the window")
	})
}
