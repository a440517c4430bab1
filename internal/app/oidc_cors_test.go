package app_test

import (
	"net/http"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestOIDCBrowserClientCORS checks, over real HTTP on SQLite and PostgreSQL, the CORS answers a
// browser client (an SPA on its own origin, such as oidc-client-ts) needs from the provider:
// the discovery document and its jwks_uri readable from any origin; the token endpoint's answer, and userinfo's
// preflight and answer, readable from the project's allowed origin only where a project is
// named (a preflight cannot name one: userinfo's URL comes from discovery).
func TestOIDCBrowserClientCORS(t *testing.T) {
	const spa, other = "http://localhost:5173", "https://evil.example"
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newOIDCWorld(t, st, "")
		w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"allowed_origins":["`+spa+`"]}}`, w.secret()), 200, "")

		for _, path := range []string{"/.well-known/openid-configuration", "/v1/.well-known/openid-configuration"} {
			r := w.call("GET", path, "", map[string]string{"Origin": other})
			if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != "*" ||
				r.header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("GET %s from %s: %d %v, want 200 readable by any origin, no credentials", path, other, r.status, r.header)
			}
		}

		// The discovery document's jwks_uri (every project's keys): public, for any origin.
		if r := w.call("GET", "/.well-known/jwks.json", "", map[string]string{"Origin": other}); r.status != http.StatusOK ||
			r.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("GET /.well-known/jwks.json from %s: %d %v, want 200 readable by any origin", other, r.status, r.header)
		}
		// A project's own set (client_id in the query) is for its allowed origins, as before.
		for origin, want := range map[string]string{spa: spa, other: ""} {
			r := w.call("GET", "/.well-known/jwks.json?client_id="+w.clientID(), "", map[string]string{"Origin": origin})
			if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != want {
				t.Errorf("GET the project's JWKS from %s: %d ACAO %q, want %q", origin, r.status, r.header.Get("Access-Control-Allow-Origin"), want)
			}
		}

		verifier := "spa-verifier-0123456789-0123456789-0123456789"
		code := w.code("ada@example.com", verifier)
		tok := w.token("", w.exchangeForm(code, verifier), map[string]string{"Origin": spa})
		if tok.status != http.StatusOK || tok.header.Get("Access-Control-Allow-Origin") != spa {
			t.Fatalf("token exchange from %s: %d %v %s", spa, tok.status, tok.header, tok.raw)
		}
		access, _ := tok.body["access_token"].(string)

		for _, origin := range []string{spa, other} {
			pre := w.call("OPTIONS", "/api/v1/userinfo", "", map[string]string{"Origin": origin,
				"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"})
			if pre.status != http.StatusNoContent || pre.header.Get("Access-Control-Allow-Origin") != origin ||
				pre.header.Get("Access-Control-Allow-Headers") != "Authorization, Content-Type" {
				t.Errorf("userinfo preflight from %s: %d %v, want the bearer header allowed", origin, pre.status, pre.header)
			}
		}
		for origin, want := range map[string]string{spa: spa, other: ""} {
			r := w.call("GET", "/api/v1/userinfo", "", map[string]string{"Origin": origin, "Authorization": "Bearer " + access})
			if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != want || r.body["sub"] == nil {
				t.Errorf("userinfo from %s: %d ACAO %q %s, want 200 with ACAO %q", origin, r.status,
					r.header.Get("Access-Control-Allow-Origin"), r.raw, want)
			}
		}
	})
}
