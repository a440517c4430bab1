package app_test

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/oidcprovider"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// pageFieldRE finds the hidden fields the hosted page's forms carry (csrf, authRequest).
var pageFieldRE = regexp.MustCompile(`<input type="hidden" name="(csrf|authRequest)" value="([^"]*)"`)

// pageStep posts one form of the hosted login page as a browser without JavaScript would:
// the hidden fields of the page last shown (body), the action and fields. It returns the
// answer, unfollowed.
func (w *oidcWorld) pageStep(body, action string, fields url.Values) (*http.Response, string) {
	w.t.Helper()
	form := url.Values{"action": {action}}
	for _, m := range pageFieldRE.FindAllStringSubmatch(body, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if form.Get("csrf") == "" {
		w.t.Fatalf("no csrf field on the page:\n%s", body)
	}
	for k, v := range fields {
		form[k] = v
	}
	resp, err := w.browser.PostForm(w.srv.URL+oidcprovider.LoginPagePath, form)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	return resp, string(b)
}

// pageStepBack posts a step that leads back to the page (303) and opens it.
func (w *oidcWorld) pageStepBack(body, action string, fields url.Values) string {
	w.t.Helper()
	loc := w.location(w.pageStep(body, action, fields))
	if !strings.HasPrefix(loc.Path, oidcprovider.LoginPagePath) {
		w.t.Fatalf("%s went to %s, want the page", action, loc)
	}
	_, next := w.get(loc.String())
	return next
}

// consentScreen signs email in on the real hosted page of a third-party project with an email
// code, up to the consent screen, for the authorization request id, and returns that screen.
func (w *oidcWorld) consentScreen(id, email string) string {
	w.t.Helper()
	_, p := w.get(w.srv.URL + oidcprovider.LoginPagePath + "?authRequest=" + id)
	p = w.pageStepBack(p, "identify", url.Values{"identifier": {email}})
	p = w.pageStepBack(p, "send", url.Values{"channel": {"email_otp"}})
	p = w.pageStepBack(p, "verify_code", url.Values{"code": {w.lastCode(email)}})
	if p = w.skipPasskeyOffer(p); !strings.Contains(p, `name="decision"`) {
		w.t.Fatalf("want the consent screen:\n%s", p)
	}
	return p
}

// skipPasskeyOffer declines the "save a passkey" screen when the page shows it.
func (w *oidcWorld) skipPasskeyOffer(p string) string {
	w.t.Helper()
	if strings.Contains(p, `value="skip_passkey"`) {
		return w.pageStepBack(p, "skip_passkey", nil)
	}
	return p
}

// TestOIDCConsentDenied: declining consent on the hosted page answers the client (OIDC Core
// §3.1.2.6): the page 303s to the callback, which redirects to the redirect_uri with
// error=access_denied and the request's state, and no code; the request is then answered, so
// it can be neither approved nor denied again, and its callback is spent. With
// response_mode=form_post the refusal is posted, under the strict CSP. A denial needs the
// browser's binding, as an approval does.
func TestOIDCConsentDenied(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newOIDCWorld(t, st, `{"first_party":false}`)
		const email = "ada@example.com"
		id, _ := w.startAuthorize(w.authorizeURL(nil, testVerifier))
		binding := w.cookie(oidcprovider.BindingCookieName(id))
		p := w.consentScreen(id, email)

		resp, body := w.pageStep(p, "consent", url.Values{"decision": {"deny"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("deny: %d %s, want a 303 to the callback", resp.StatusCode, body)
		}
		cb := w.location(resp, body)
		if cb.Path != oidcprovider.CallbackPath {
			t.Fatalf("deny went to %s, want the callback", cb)
		}
		if w.cookie(oidcprovider.BrowserSessionCookie) != "" {
			t.Error("declining consent signed the browser in")
		}
		at := w.location(w.get(cb.String()))
		q := at.Query()
		if !strings.HasPrefix(at.String(), oidcRedirect+"?") || q.Get("error") != "access_denied" || q.Get("state") != "st" ||
			q.Get("code") != "" {
			t.Fatalf("the denied callback went to %s, want %s?error=access_denied&state=st", at, oidcRedirect)
		}

		// Answered: no approval, no second denial, and the callback is spent with its binding.
		res := w.signIn("bob@example.com") // a login of its own: the page's code for ada is spent
		if _, err := w.a.OIDC().Approve(t.Context(), id, binding, approvalOf(res, true)); err == nil {
			t.Error("a denied request was approved afterwards")
		}
		if _, err := w.a.OIDC().Deny(t.Context(), id, binding); err == nil {
			t.Error("a denied request was denied twice")
		}
		if resp, body := w.get(cb.String()); resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" {
			t.Errorf("the callback again: %d %q %s, want 403 without a redirect", resp.StatusCode, resp.Header.Get("Location"), body)
		}

		// Only the browser that started a request may deny it; an approved one cannot be.
		id2, _ := w.startAuthorize(w.authorizeURL(nil, testVerifier))
		if _, err := w.a.OIDC().Deny(t.Context(), id2, "forged"); err == nil {
			t.Error("denied with a forged binding")
		}
		if q := w.approve(id2, res, true); q.Get("code") == "" {
			t.Fatalf("approval after the refused forged denial: %v", q)
		}
		if _, err := w.a.OIDC().Deny(t.Context(), id2, w.cookie(oidcprovider.BindingCookieName(id2))); err == nil {
			t.Error("an approved request was denied")
		}

		// form_post: the refusal is posted to the redirect_uri.
		id3, _ := w.startAuthorize(w.authorizeURL(url.Values{"response_mode": {"form_post"}, "state": {"s3"}}, testVerifier))
		to, err := w.a.OIDC().Deny(t.Context(), id3, w.cookie(oidcprovider.BindingCookieName(id3)))
		if err != nil {
			t.Fatal(err)
		}
		resp, body = w.get(to)
		csp := resp.Header.Get("Content-Security-Policy")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `action="`+oidcRedirect+`"`) ||
			!strings.Contains(body, `name="error" value="access_denied"`) || !strings.Contains(body, `name="state" value="s3"`) ||
			strings.Contains(body, `name="code"`) || !strings.Contains(csp, "form-action https://rp.example") || strings.Contains(csp, "unsafe-inline") {
			t.Fatalf("form_post denial: %d CSP %q\n%s", resp.StatusCode, csp, body)
		}
	})
}

// TestOIDCUnverifiedClaims: a user whose email and phone are not verified (a password sign-up,
// and a phone number set through the management API) signs in with a password on the real
// hosted page, and the id_token and userinfo both say email_verified:false and
// phone_number_verified:false rather than leaving the claims out, which a client would read as
// "unknown" at best.
func TestOIDCUnverifiedClaims(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newOIDCWorld(t, st, "")
		w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"login_methods":{"password":true}}}`, w.secret()), 200, "")
		const email, pw = "ada@example.com", "correct horse battery staple"
		up := w.call("POST", "/api/v1/auth/password/signup", fmt.Sprintf(`{"email":%q,"password":%q}`, email, pw), w.cid())
		w.want(up, 200, "")
		userID := up.body["profile"].(map[string]any)["id"].(string)
		w.want(w.call("PUT", "/api/v1/users/"+userID, `{"phone":"+14155552671"}`, w.secret()), 200, "")

		id, _ := w.startAuthorize(w.authorizeURL(url.Values{"scope": {"openid email phone"}}, testVerifier))
		_, p := w.get(w.srv.URL + oidcprovider.LoginPagePath + "?authRequest=" + id)
		p = w.pageStepBack(p, "identify", url.Values{"identifier": {email}})
		p = w.pageStepBack(p, "password_screen", nil)
		cb := w.location(w.pageStep(p, "password", url.Values{"password": {pw}}))
		at := w.location(w.get(cb.String()))
		code := at.Query().Get("code")
		if code == "" {
			t.Fatalf("the password login went to %s, want a code", at)
		}
		tok := w.token("", w.exchangeForm(code, testVerifier), nil)
		w.want(tok, 200, "")
		claims := claimsOf(t, tok.body["id_token"].(string))
		ui := w.call("GET", "/api/v1/userinfo", "", bearer(tok.body["access_token"].(string)))
		w.want(ui, 200, "")
		for what, c := range map[string]map[string]any{"id_token": claims, "userinfo": ui.body} {
			if c["sub"] != userID || c["email"] != email || c["phone_number"] != "+14155552671" {
				t.Errorf("%s: %v, want the user's sub, email and phone_number", what, c)
			}
			for _, k := range []string{"email_verified", "phone_number_verified"} {
				if v, ok := c[k]; !ok || v != false {
					t.Errorf("%s: %s = %v (present %v), want false", what, k, v, ok)
				}
			}
		}
	})
}

// TestOIDCSelectAccount: prompt=select_account asks the OP to let the user pick the account
// (OIDC Core §3.1.2.1). With one browser session per project, that is the hosted page even for
// a signed-in browser: the identifier screen, where the user may sign in as another account,
// whose code and id_token the client then gets, or "Continue as" the account the browser is
// signed in with, without a new login; single sign-on without the prompt answers as the
// account the browser holds.
func TestOIDCSelectAccount(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newOIDCWorld(t, st, "")
		ada := w.signIn("ada@example.com")
		id, _ := w.startAuthorize(w.authorizeURL(nil, testVerifier))
		w.approve(id, ada, false)

		id, at := w.startAuthorize(w.authorizeURL(url.Values{"prompt": {"select_account"}}, testVerifier))
		if id == "" || at != nil {
			t.Fatalf("prompt=select_account with a signed-in browser went to %v, want the login page", at)
		}
		resp, p := w.get(w.srv.URL + oidcprovider.LoginPagePath + "?authRequest=" + id)
		if resp.StatusCode != http.StatusOK || !strings.Contains(p, `name="identifier"`) {
			t.Fatalf("the page for prompt=select_account: %d, want the identifier screen:\n%s", resp.StatusCode, p)
		}
		const bob = "bob@example.com"
		p = w.pageStepBack(p, "identify", url.Values{"identifier": {bob}})
		p = w.pageStepBack(p, "send", url.Values{"channel": {"email_otp"}})
		resp, body := w.pageStep(p, "verify_code", url.Values{"code": {w.lastCode(bob)}})
		loc := w.location(resp, body)
		if strings.HasPrefix(loc.Path, oidcprovider.LoginPagePath) {
			_, p = w.get(loc.String())
			if !strings.Contains(p, `value="skip_passkey"`) {
				t.Fatalf("after the code: want the callback or the passkey offer:\n%s", p)
			}
			loc = w.location(w.pageStep(p, "skip_passkey", nil))
		}
		at = w.location(w.get(loc.String()))
		if at.Query().Get("code") == "" || at.Query().Get("state") != "st" {
			t.Fatalf("the chosen account's login went to %s, want a code", at)
		}
		tok := w.token("", w.exchangeForm(at.Query().Get("code"), testVerifier), nil)
		w.want(tok, 200, "")
		c := claimsOf(t, tok.body["id_token"].(string))
		if c["sub"] == ada.User.ID || c["email"] != bob {
			t.Fatalf("id_token for the chosen account: sub %v email %v, want bob's", c["sub"], c["email"])
		}

		// The page offers the account the browser now holds; choosing it needs no new login.
		id, _ = w.startAuthorize(w.authorizeURL(url.Values{"prompt": {"select_account"}, "state": {"s2"}}, testVerifier))
		_, p = w.get(w.srv.URL + oidcprovider.LoginPagePath + "?authRequest=" + id)
		if !strings.Contains(p, "Continue as "+bob) {
			t.Fatalf("want Continue as %s on the page:\n%s", bob, p)
		}
		at = w.location(w.get(w.location(w.pageStep(p, "continue_as", nil)).String()))
		if at.Query().Get("code") == "" || at.Query().Get("state") != "s2" {
			t.Fatalf("Continue as went to %s, want a code", at)
		}
		tok = w.token("", w.exchangeForm(at.Query().Get("code"), testVerifier), nil)
		w.want(tok, 200, "")
		if got := claimsOf(t, tok.body["id_token"].(string))["email"]; got != bob {
			t.Errorf("Continue as %s: id_token email %v", bob, got)
		}

		// Without the prompt, single sign-on answers as the account the browser now holds.
		_, at = w.startAuthorize(w.authorizeURL(nil, testVerifier))
		if at == nil || at.Query().Get("code") == "" {
			t.Fatalf("single sign-on went to %v, want a code", at)
		}
		tok = w.token("", w.exchangeForm(at.Query().Get("code"), testVerifier), nil)
		w.want(tok, 200, "")
		if got := claimsOf(t, tok.body["id_token"].(string))["email"]; got != bob {
			t.Errorf("single sign-on after choosing bob: email %v", got)
		}
	})
}
