package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/oidcprovider"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestOIDCSingleSignOn: once the page signed the browser in, a second authorization of the
// project (prompt=none included) gets a code without the page, for the same user; max_age=0 and
// prompt=login send it to the page again; a browser session whose token session was revoked
// is no sign-in; and a request id is worth nothing without its browser's binding cookie.
func TestOIDCSingleSignOn(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newOIDCWorld(t, st, "")
		res := w.signIn("ada@example.com")
		id, _ := w.startAuthorize(w.authorizeURL(nil, testVerifier))
		w.approve(id, res, false)

		for _, extra := range []url.Values{nil, {"prompt": {"none"}}, {"max_age": {"3600"}}} {
			_, at := w.startAuthorize(w.authorizeURL(extra, testVerifier))
			if at == nil || at.Query().Get("code") == "" {
				t.Fatalf("%v: went to %v, want a code without the page", extra, at)
			}
			r := w.token("", w.exchangeForm(at.Query().Get("code"), testVerifier), nil)
			w.want(r, 200, "")
			if sub := claimsOf(t, r.body["id_token"].(string))["sub"]; sub != res.User.ID {
				t.Fatalf("single sign-on as %v, want %s", sub, res.User.ID)
			}
		}
		for _, extra := range []url.Values{{"max_age": {"0"}}, {"prompt": {"login"}}} {
			if id, at := w.startAuthorize(w.authorizeURL(extra, testVerifier)); id == "" || at != nil {
				t.Fatalf("%v: went to %v, want the login page", extra, at)
			}
		}

		// The request id alone, in a browser without the binding cookie, goes nowhere.
		id, _ = w.startAuthorize(w.authorizeURL(url.Values{"prompt": {"login"}}, testVerifier))
		stranger := &http.Client{Transport: w.browser.Transport, CheckRedirect: w.browser.CheckRedirect}
		for _, p := range []string{"/v1/authorize/resume?id=" + id, "/v1/authorize/callback?id=" + id} {
			resp, err := stranger.Get(w.srv.URL + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" {
				t.Errorf("%s without the binding cookie: %d %q, want 403 without a redirect", p, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		if _, err := w.a.OIDC().Approve(t.Context(), id, "forged", approvalOf(res, false)); err == nil {
			t.Error("approved with a forged binding")
		}

		// Ending the login's session ends single sign-on.
		w.want(w.call("POST", "/api/v1/auth/logout", "", bearer(res.Tokens.AccessToken)), 200, "")
		_, at := w.startAuthorize(w.authorizeURL(url.Values{"prompt": {"none"}}, testVerifier))
		if at == nil || at.Query().Get("error") != "login_required" {
			t.Fatalf("prompt=none after the session ended went to %v, want login_required", at)
		}
	})
}

// TestOIDCFormPost: response_mode=form_post answers the callback with a page that posts the
// code and state to the redirect_uri under a strict CSP (a nonce'd script, form-action the
// client's origin only).
func TestOIDCFormPost(t *testing.T) {
	w := newOIDCWorld(t, testdb.SQLite(t), "")
	res := w.signIn("ada@example.com")
	id, _ := w.startAuthorize(w.authorizeURL(url.Values{"response_mode": {"form_post"}}, testVerifier))
	a, err := w.a.OIDC().Approve(t.Context(), id, w.cookie(oidcprovider.BindingCookieName(id)), approvalOf(res, false))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := w.get(a.RedirectURL)
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.Contains(body, `action="`+oidcRedirect+`"`) || !strings.Contains(body, `name="code"`) ||
		!strings.Contains(body, `value="st"`) || !strings.Contains(csp, "form-action https://rp.example") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("%d CSP %q\n%s", resp.StatusCode, csp, body)
	}
}

// TestOIDCLogoutPages: RP-initiated logout never redirects to an unregistered URI (a page
// instead), answers a signed-out page without one, and ends the browser's session.
func TestOIDCLogoutPages(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newOIDCWorld(t, st, "")
		code := w.code("ada@example.com", testVerifier)
		r := w.token("", w.exchangeForm(code, testVerifier), nil)
		w.want(r, 200, "")
		hint := r.body["id_token"].(string)

		for name, q := range map[string]url.Values{
			"unregistered post_logout_redirect_uri": {"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/bye"}},
			"a forged id_token_hint":                {"id_token_hint": {hint[:len(hint)-4] + "AAAA"}, "post_logout_redirect_uri": {oidcGoodbye}},
			"a redirect without a client":           {"post_logout_redirect_uri": {oidcGoodbye}},
			"an unknown client":                     {"client_id": {"cli_000000000000000000000000"}, "post_logout_redirect_uri": {oidcGoodbye}},
		} {
			resp, body := w.get(w.srv.URL + "/oidc/logout?" + q.Encode())
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(body, "<html") {
				t.Errorf("%s: %d Location=%q, want a 400 page without a redirect", name, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		if got := w.statusOf(r.body["access_token"].(string)); got != http.StatusOK {
			t.Fatalf("a refused logout ended the session: %d", got)
		}

		resp, err := w.browser.PostForm(w.srv.URL+"/v1/logout", url.Values{"client_id": {w.clientID()}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("logout without a redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		_, at := w.startAuthorize(w.authorizeURL(url.Values{"prompt": {"none"}}, testVerifier))
		if at == nil || at.Query().Get("error") != "login_required" {
			t.Fatalf("prompt=none after logout went to %v, want login_required", at)
		}
	})
}

// TestOIDCCookies: the binding cookie is a __Host- cookie: Path=/, no Domain, HttpOnly,
// SameSite=Lax, Secure (loopback counts as a secure context for browsers), named after its
// request, living as long as the request.
func TestOIDCCookies(t *testing.T) {
	w := newOIDCWorld(t, testdb.SQLite(t), "")
	resp, body := w.get(w.authorizeURL(nil, testVerifier))
	id := w.location(resp, body).Query().Get("id")
	want := oidcprovider.BindingCookieName(id)
	if len(id) != 32 || want != "__Host-lk_ar_"+id[:8] {
		t.Fatalf("request id %q gives the binding cookie name %q", id, want)
	}
	var found bool
	for _, c := range resp.Cookies() {
		if !strings.HasPrefix(c.Name, oidcprovider.BindingCookiePrefix) {
			continue
		}
		if c.Name != want {
			t.Errorf("binding cookie %q, want %q", c.Name, want)
		}
		found = true
		if c.Path != "/" || c.Domain != "" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || !c.Secure || c.MaxAge != 600 || len(c.Value) < 40 {
			t.Errorf("binding cookie %+v", c)
		}
	}
	if !found {
		t.Fatal("no binding cookie")
	}
}

// TestOIDCTwoTabs: two authorizations started in one browser (one cookie jar), as two tabs of
// the application would, each keep their own binding cookie: both logins finish, in either
// order, with their own codes and states, and each code gives its own session.
func TestOIDCTwoTabs(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newOIDCWorld(t, st, "")
		res := w.signIn("ada@example.com")
		first, _ := w.startAuthorize(w.authorizeURL(url.Values{"state": {"tab1"}, "prompt": {"login"}}, testVerifier))
		second, _ := w.startAuthorize(w.authorizeURL(url.Values{"state": {"tab2"}, "prompt": {"login"}}, testVerifier))
		if first == "" || second == "" || first == second {
			t.Fatalf("request ids %q and %q, want two pending requests", first, second)
		}
		if w.cookie(oidcprovider.BindingCookieName(first)) == "" || w.cookie(oidcprovider.BindingCookieName(second)) == "" {
			t.Fatal("the second authorization replaced the first's binding cookie")
		}

		// The first tab finishes last: the second's callback must not spend its binding.
		q2 := w.approve(second, res, false)
		q1 := w.approve(first, res, false)
		if q1.Get("state") != "tab1" || q2.Get("state") != "tab2" || q1.Get("code") == "" || q2.Get("code") == "" || q1.Get("code") == q2.Get("code") {
			t.Fatalf("callbacks %v and %v, want each tab's state with its own code", q1, q2)
		}
		sids := map[string]bool{}
		for _, q := range []url.Values{q1, q2} {
			r := w.token("", w.exchangeForm(q.Get("code"), testVerifier), nil)
			w.want(r, 200, "")
			sids[claimsOf(t, r.body["id_token"].(string))["sid"].(string)] = true
		}
		if len(sids) != 2 {
			t.Errorf("the two codes gave sessions %v, want two", sids)
		}
		// Each callback cleared its own binding, and only its own.
		if w.cookie(oidcprovider.BindingCookieName(first)) != "" || w.cookie(oidcprovider.BindingCookieName(second)) != "" {
			t.Error("a binding cookie outlived its request's callback")
		}
	})
}
