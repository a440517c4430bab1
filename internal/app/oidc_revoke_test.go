package app_test

import (
	"net/url"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestOIDCPublicClientRevokes: an SPA (token_endpoint_auth_method none) has no secret, and RFC
// 7009 §5 lets it revoke its own tokens by naming itself; its sign-out ends the session. A
// confidential client naming itself without its secret is refused, and revokes nothing.
func TestOIDCPublicClientRevokes(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newOIDCWorld(t, st, "")
		r := w.token("", w.exchangeForm(w.code("ada@example.com", testVerifier), testVerifier), nil)
		w.want(r, 200, "")
		refresh, access := r.body["refresh_token"].(string), r.body["access_token"].(string)

		w.patchOIDC(`{"token_endpoint_auth_method":"client_secret_basic"}`)
		nameOnly := url.Values{"token": {refresh}, "client_id": {w.clientID()}}
		if r := w.token("/api/v1/oauth2/revoke", nameOnly, nil); r.status != 401 || r.body["error"] != "invalid_client" {
			t.Fatalf("a confidential client without its secret revoked: %d %s", r.status, r.raw)
		}
		if w.statusOf(access) != 200 {
			t.Fatal("a refused revocation ended the session")
		}

		w.patchOIDC(`{"token_endpoint_auth_method":"none"}`)
		w.want(w.token("/api/v1/oauth2/revoke", nameOnly, nil), 200, "")
		if got := w.statusOf(access); got != 401 {
			t.Fatalf("after the public client revoked its refresh token, its access token answers %d", got)
		}
		refreshForm := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {w.clientID()}}
		if r := w.token("", refreshForm, nil); r.status != 400 || r.body["error"] != "invalid_grant" {
			t.Fatalf("a revoked refresh token refreshed: %d %s", r.status, r.raw)
		}
	})
}
