package tokenhttp_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// formBasic is HTTP Basic client authentication as RFC 6749 §2.3.1 defines it and
// openid-client (oauth4webapi) sends it: the client id and the secret each
// application/x-www-form-urlencoded before they are joined, so that "_" is "%5F" and "-" is
// "%2D" (both occur in Latchkey's ids and secrets).
func formBasic(c client) map[string]string {
	enc := func(s string) string {
		return strings.NewReplacer("-", "%2D", "_", "%5F", ".", "%2E", "~", "%7E").Replace(url.QueryEscape(s))
	}
	raw := enc(c.project.ClientID) + ":" + enc(c.secret)
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(raw))}
}

// TestBasicCredentialsAreFormDecoded checks that the OAuth endpoints decode Basic credentials
// as RFC 6749 §2.3.1 says (form-urlencoded, then Base64), at the token, introspection and
// revocation endpoints alike; a credential that does not decode is the one invalid_client.
func TestBasicCredentialsAreFormDecoded(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newServer(t, st)
		a := s.client("Acme")
		if !strings.ContainsAny(a.project.ClientID+a.secret, "_-") {
			t.Fatalf("client id and secret have no character that form encoding changes; the test proves nothing")
		}
		got := s.do(http.MethodPost, "/api/v1/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, formBasic(a))
		wantStatus(t, got, http.StatusOK, "client_credentials with form-encoded Basic credentials")

		tok := s.start(a, token.Grant{UserID: s.user(a).ID, ConnectionType: "EmailOTP", Scope: "openid"})
		got = s.do(http.MethodPost, introspectPath, url.Values{"token": {tok.AccessToken}}, formBasic(a))
		wantStatus(t, got, http.StatusOK, "introspection with form-encoded Basic credentials")
		if got.json(t)["active"] != true {
			t.Errorf("introspection with form-encoded Basic credentials: %s, want the token active", got.body)
		}
		got = s.do(http.MethodPost, revokePath, url.Values{"token": {tok.RefreshToken}}, formBasic(a))
		wantStatus(t, got, http.StatusOK, "revocation with form-encoded Basic credentials")
		s.wantSessionActive(a, tok.Session.ID, false, "after revoking with form-encoded Basic credentials")

		// Plain Basic (Go's SetBasicAuth, curl -u) keeps working: the ids and secrets have no
		// character that decoding changes.
		got = s.do(http.MethodPost, "/api/v1/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic(a))
		wantStatus(t, got, http.StatusOK, "client_credentials with plain Basic credentials")

		bad := "Basic " + base64.StdEncoding.EncodeToString([]byte(a.project.ClientID+":%zz"))
		for _, path := range []string{"/api/v1/oauth2/token", introspectPath, revokePath} {
			form := url.Values{"grant_type": {"client_credentials"}, "token": {tok.AccessToken}}
			wantOAuthError(t, s.do(http.MethodPost, path, form, map[string]string{"Authorization": bad}),
				http.StatusUnauthorized, "invalid_client", path+" with a Basic secret that does not form-decode")
		}
	})
}
