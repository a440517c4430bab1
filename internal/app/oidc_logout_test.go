package app_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestOIDCServerSideLogoutEndsSSO: RP-initiated logout sent by the application's server (an
// id_token_hint and no browser cookie, as zitadel's rp.EndSession does) ends the hint's session
// and the login session it came from, so the browser's single sign-on is over (prompt=none
// answers login_required), with one session.revoked event for each. Another session started
// from the same single sign-on keeps working: RP-Initiated Logout ends the OP's session and the
// requesting RP's, and tells others only through front- or back-channel logout.
func TestOIDCServerSideLogoutEndsSSO(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newOIDCWorld(t, st, "")
		res := w.signIn("ada@example.com")
		id, _ := w.startAuthorize(w.authorizeURL(nil, testVerifier))
		q := w.approve(id, res, false)
		first := w.token("", w.exchangeForm(q.Get("code"), testVerifier), nil)
		w.want(first, 200, "")
		hint := first.body["id_token"].(string)
		sid, _ := claimsOf(t, hint)["sid"].(string)

		// A second authorization in the same browser is single sign-on: another session.
		_, at := w.startAuthorize(w.authorizeURL(url.Values{"prompt": {"none"}}, testVerifier))
		if at == nil || at.Query().Get("code") == "" {
			t.Fatalf("single sign-on went to %v, want a code", at)
		}
		sibling := w.token("", w.exchangeForm(at.Query().Get("code"), testVerifier), nil)
		w.want(sibling, 200, "")

		// The application's server: no cookie jar, the browser's cookies never reach us.
		server := &http.Client{Transport: w.browser.Transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := server.PostForm(w.srv.URL+"/v1/logout", url.Values{"id_token_hint": {hint},
			"post_logout_redirect_uri": {oidcGoodbye}, "state": {"bye"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther ||
			loc == nil || loc.Scheme+"://"+loc.Host+loc.Path != oidcGoodbye || loc.Query().Get("state") != "bye" {
			t.Fatalf("server-side logout: %d Location=%q, want a redirect to %s with the state", resp.StatusCode, resp.Header.Get("Location"), oidcGoodbye)
		}

		if got := w.statusOf(first.body["access_token"].(string)); got != http.StatusUnauthorized {
			t.Errorf("the hint's session after logout: %d, want 401", got)
		}
		if got := w.statusOf(res.Tokens.AccessToken); got != http.StatusUnauthorized {
			t.Errorf("the login session (single sign-on) after logout: %d, want 401", got)
		}
		if got := w.statusOf(sibling.body["access_token"].(string)); got != http.StatusOK {
			t.Errorf("another session of the same single sign-on after logout: %d, want 200 (not revoked)", got)
		}
		r := w.token("", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.body["refresh_token"].(string)},
			"client_id": {w.clientID()}}, nil)
		w.want(r, 400, "invalid_grant")

		_, at = w.startAuthorize(w.authorizeURL(url.Values{"prompt": {"none"}}, testVerifier))
		if at == nil || at.Query().Get("error") != "login_required" || at.Query().Has("code") {
			t.Fatalf("prompt=none after server-side logout went to %v, want login_required", at)
		}

		revoked := map[string]bool{}
		for _, e := range w.auditEvents("session.revoked") {
			if e.Detail["reason"] == "oidc_logout" {
				revoked[e.SessionID] = true
			}
		}
		if len(revoked) != 2 || !revoked[sid] || !revoked[res.Tokens.Session.ID] {
			t.Errorf("session.revoked (oidc_logout) events for %v, want exactly the hint's %s and the login's %s",
				revoked, sid, res.Tokens.Session.ID)
		}

		// The same logout again finds nothing left to end and writes nothing.
		resp, err = server.PostForm(w.srv.URL+"/v1/logout", url.Values{"id_token_hint": {hint}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("a repeated logout: %d, want the signed-out page", resp.StatusCode)
		}
		if n := len(w.auditEvents("session.revoked")); n != 2 {
			t.Errorf("%d session.revoked events after a repeated logout, want 2", n)
		}
	})
}
