package login_test

import (
	"encoding/base64"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/mfa/mfatest"
	"github.com/latchkey-dev/latchkey/internal/oidcprovider"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

const email = "ada@example.com"

// approvedTo checks that p ended the login: a 303 to the provider's callback for id, with the
// browser session cookie set as the provider asked.
func approvedTo(t *testing.T, b *browser, p page, id string) {
	t.Helper()
	if p.status != http.StatusSeeOther || p.location != appCallback+id {
		t.Fatalf("want a 303 to %s, got %d to %q:\n%s", appCallback+id, p.status, p.location, p.body)
	}
	var set string
	for _, c := range p.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, oidcprovider.BrowserSessionCookie+"=") {
			set = c
		}
	}
	if !strings.HasPrefix(set, oidcprovider.BrowserSessionCookie+"=bs_"+id+";") || !strings.Contains(set, "HttpOnly") ||
		!strings.Contains(set, "SameSite=Lax") || !strings.Contains(set, "Path=/") || !strings.Contains(set, "Expires=") {
		t.Errorf("browser session cookie: %q", set)
	}
}

func TestEmailCodeSignInWithoutJavaScript(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, `{"protect":{"bot_check":"off"}}`)
		u := s.user(t, email)
		b := s.request("ar1", []string{"openid", "email"}, nil)

		p := b.open("/login")
		wantScreen(t, p, "identifier")
		csp := p.header.Get("Content-Security-Policy")
		if strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "script-src 'self'") ||
			!strings.Contains(csp, "form-action 'self' https://app.acme.test") {
			t.Errorf("CSP %q", csp)
		}
		if !strings.Contains(p.body, `<html lang="en">`) || !strings.Contains(p.body, `autocomplete="username webauthn"`) {
			t.Errorf("identifier page:\n%s", p.body)
		}
		nonce := regexp.MustCompile(`'nonce-([^']+)'`).FindStringSubmatch(csp)
		if nonce == nil || !strings.Contains(p.body, `<style nonce="`+nonce[1]+`">:root{--brand:#4f46e5}</style>`) {
			t.Errorf("no branding style with the CSP's nonce (%q):\n%s", csp, p.body)
		}

		p = b.step("identify", url.Values{"identifier": {email}})
		wantScreen(t, p, "methods")
		p = b.step("send", url.Values{"channel": {"email_otp"}})
		wantScreen(t, p, "code")
		if !strings.Contains(p.body, "Tries left: 5.") {
			t.Errorf("code screen without the tries left:\n%s", p.body)
		}

		// A wrong code stays on the screen with the tries left, tied to the field.
		p = b.submit("verify_code", url.Values{"code": {"000000"}})
		if p.status != http.StatusUnauthorized || screen(p.body) != "code" || !strings.Contains(p.body, "Tries left: 4") ||
			!strings.Contains(p.body, `aria-invalid="true"`) {
			t.Fatalf("wrong code: %d\n%s", p.status, p.body)
		}

		// Right code: the passkey offer (the user has none), skipped, then the approval.
		p = b.step("verify_code", url.Values{"code": {s.code(t, email)}})
		wantScreen(t, p, "passkey_offer")
		if len(s.provider.approvals()) != 0 {
			t.Fatal("approved before the offer was answered")
		}
		approvedTo(t, b, b.submit("skip_passkey", nil), "ar1")

		got := s.provider.approvals()
		if len(got) != 1 || got[0].binding != "binding-ar1" {
			t.Fatalf("approvals %+v", got)
		}
		res := got[0].a.Result
		if !res.Authenticated || res.User.ID != u.ID || res.Tokens.Session.UserID != u.ID ||
			res.Tokens.Session.ConnectionType != login.EmailOTP || got[0].a.Consented {
			t.Errorf("approved %+v", got[0].a)
		}
		// The attempt is over: its cookie is gone.
		for _, c := range b.client.Jar.Cookies(mustURL(t, s.srv.URL)) {
			if strings.HasPrefix(c.Name, "lk_login_") {
				t.Errorf("attempt cookie %s left behind", c.Name)
			}
		}
	})
}

func TestMagicLinkWaitsAndContinues(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, `{"protect":{"bot_check":"off"},"login_methods":{"passkey":false}}`)
		s.user(t, email)
		b := s.request("ar2", []string{"openid"}, func(pl *oidcprovider.PendingLogin) { pl.LoginHint = email })

		p := b.open("/login")
		wantScreen(t, p, "methods") // login_hint skips the identifier
		p = b.step("send", url.Values{"channel": {"magic_link"}})
		wantScreen(t, p, "wait")
		if !strings.Contains(p.body, `<noscript><meta http-equiv="refresh" content="5"></noscript>`) {
			t.Errorf("the wait screen does not reload without JavaScript:\n%s", p.body)
		}
		if st := b.open("/login/status"); st.status != 200 || !strings.Contains(st.body, `"reload":false`) {
			t.Errorf("status before the click: %d %s", st.status, st.body)
		}
		wantScreen(t, b.open("/login"), "wait")

		if to := s.clickLink(t, email); to != "" {
			t.Errorf("the link's landing redirects to %q, want its own page", to)
		}
		if st := b.open("/login/status"); !strings.Contains(st.body, `"reload":true`) {
			t.Errorf("status after the click: %s", st.body)
		}
		approvedTo(t, b, b.open("/login"), "ar2")
		if a := s.provider.approvals(); len(a) != 1 || a[0].a.Result.Tokens.Session.ConnectionType != login.MagicLink {
			t.Errorf("approvals %+v", a)
		}
	})
}

func TestPasswordSignUpAndSignIn(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, `{"protect":{"bot_check":"off"},"login_methods":{"password":true}}`)
		const pw = "correct horse battery staple"
		b := s.request("ar3", []string{"openid"}, nil)
		b.open("/login")
		wantScreen(t, b.step("identify", url.Values{"identifier": {email}}), "methods")
		wantScreen(t, b.step("signup_screen", nil), "signup")
		approvedTo(t, b, b.submit("signup", url.Values{"email": {email}, "password": {pw}}), "ar3")

		b = s.request("ar4", []string{"openid"}, nil)
		b.open("/login")
		b.step("identify", url.Values{"identifier": {email}})
		wantScreen(t, b.step("password_screen", nil), "password")
		p := b.submit("password", url.Values{"password": {"wrong password!"}})
		if p.status != http.StatusUnauthorized || screen(p.body) != "password" || !strings.Contains(p.body, "The email or password is wrong.") {
			t.Fatalf("wrong password: %d\n%s", p.status, p.body)
		}
		approvedTo(t, b, b.submit("password", url.Values{"password": {pw}}), "ar4")
		a := s.provider.approvals()
		if len(a) != 2 || a[1].a.Result.User.Email != email || a[1].a.Result.Tokens.Session.ConnectionType != login.Password {
			t.Errorf("approvals %+v", a)
		}
	})
}

func TestSMSCode(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, `{"protect":{"bot_check":"off"},"login_methods":{"phone_otp":true,"passkey":false}}`)
		const phone = "+14155550123"
		b := s.request("ar5", []string{"openid", "phone"}, nil)
		b.open("/login")
		b.step("identify", url.Values{"identifier": {phone}})
		p := b.step("send", url.Values{"channel": {"phone_otp"}})
		wantScreen(t, p, "code")
		if !strings.Contains(html.UnescapeString(p.body), "We texted a code to "+phone) {
			t.Errorf("code screen:\n%s", p.body)
		}
		approvedTo(t, b, b.submit("verify_code", url.Values{"code": {s.code(t, phone)}}), "ar5")
		if a := s.provider.approvals(); len(a) != 1 || a[0].a.Result.User.Phone != phone {
			t.Errorf("approvals %+v", a)
		}
	})
}

func TestMFAEnrolmentWithTOTP(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, `{"protect":{"bot_check":"off"},"login_methods":{"passkey":false},"mfa":{"policy":"required","factors":["otp"]}}`)
		u := s.user(t, email)
		b := s.request("ar6", []string{"openid"}, nil)
		b.open("/login")
		b.step("identify", url.Values{"identifier": {email}})
		b.step("send", url.Values{"channel": {"email_otp"}})
		p := b.step("verify_code", url.Values{"code": {s.code(t, email)}})
		wantScreen(t, p, "mfa_enroll")
		m := regexp.MustCompile(`src="data:image/png;base64,([^"]+)"`).FindStringSubmatch(p.body)
		if m == nil {
			t.Fatalf("no QR code:\n%s", p.body)
		}
		png, err := base64.StdEncoding.DecodeString(html.UnescapeString(m[1]))
		if err != nil {
			t.Fatal(err)
		}
		otpURL, err := url.Parse(mfatest.DecodeQR(t, png))
		if err != nil {
			t.Fatal(err)
		}
		secret := otpURL.Query().Get("secret")
		if secret == "" || !strings.Contains(p.body, secret) {
			t.Errorf("QR %s; the page does not show its secret for typing in", otpURL)
		}
		if len(s.provider.approvals()) != 0 {
			t.Fatal("approved before the second factor")
		}
		p = b.submit("mfa_verify", url.Values{"factor": {"otp"}, "code": {"000000"}})
		if p.status != http.StatusUnauthorized || screen(p.body) != "mfa_enroll" {
			t.Fatalf("wrong TOTP: %d\n%s", p.status, p.body)
		}
		approvedTo(t, b, b.submit("mfa_verify", url.Values{"factor": {"otp"}, "code": {mfatest.Code(t, secret, s.Clock.Now())}}), "ar6")
		a := s.provider.approvals()
		if len(a) != 1 || a[0].a.Result.User.ID != u.ID || !strings.Contains(strings.Join(a[0].a.Result.Tokens.Session.AMR, " "), "otp") {
			t.Errorf("approvals %+v", a)
		}

		// The next login answers the challenge with the enrolled app.
		s.Clock.Advance(60e9)
		b = s.request("ar7", []string{"openid"}, nil)
		b.open("/login")
		b.step("identify", url.Values{"identifier": {email}})
		b.step("send", url.Values{"channel": {"email_otp"}})
		p = b.step("verify_code", url.Values{"code": {s.code(t, email)}})
		wantScreen(t, p, "mfa")
		approvedTo(t, b, b.submit("mfa_verify", url.Values{"factor": {"otp"}, "code": {mfatest.Code(t, secret, s.Clock.Now())}}), "ar7")
	})
}

func TestLegacyWidgetModeReturnsState(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, `{"protect":{"bot_check":"off"}}`)
		s.user(t, email)
		b := s.browser()
		b.query = url.Values{"client_id": {s.p.ClientID}, "redirect_uri": {"https://app.acme.test/done"}}
		p := b.open("/login")
		wantScreen(t, p, "identifier")
		p = b.step("identify", url.Values{"identifier": {email}})
		wantScreen(t, p, "methods")
		if strings.Contains(p.body, `value="email_otp"`) || !strings.Contains(p.body, `value="magic_link"`) {
			t.Errorf("legacy mode offers:\n%s", p.body)
		}
		wantScreen(t, b.step("send", url.Values{"channel": {"magic_link"}}), "wait")

		// The link, opened anywhere, returns to the application with the state...
		to := s.clickLink(t, email)
		if !strings.HasPrefix(to, "https://app.acme.test/done?state=") {
			t.Fatalf("the link goes to %q", to)
		}
		state := strings.TrimPrefix(to, "https://app.acme.test/done?state=")
		// ...and so does the waiting page.
		p = b.open("/login")
		if p.status != http.StatusSeeOther || p.location != to {
			t.Fatalf("the waiting page: %d to %q", p.status, p.location)
		}
		// The application collects the tokens itself, as with SSOJet's widget.
		res, err := s.pwless.Status(t.Context(), s.p, state, audit.Meta{})
		if err != nil || !res.Authenticated || res.Tokens.AccessToken == "" {
			t.Fatalf("magic-link/status: %+v, %v", res, err)
		}
		if len(s.provider.approvals()) != 0 {
			t.Error("legacy mode approved an OIDC request")
		}
	})
}

func TestRefusedWithoutBindingOrCSRF(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, `{"protect":{"bot_check":"off"}}`)
		s.user(t, email)
		b := s.request("ar8", []string{"openid"}, nil)
		b.open("/login")
		wantScreen(t, b.step("identify", url.Values{"identifier": {email}}), "methods")
		before := s.outboxSize(t)
		methods := b.last

		// A forged form: no CSRF token.
		p := b.post(url.Values{"authRequest": {"ar8"}, "action": {"send"}, "channel": {"email_otp"}})
		if p.status != http.StatusForbidden || p.location != "" || !strings.Contains(p.body, "csrf") {
			t.Errorf("no CSRF token: %d %q\n%s", p.status, p.location, p.body)
		}
		b.last = methods
		p = b.submit("send", url.Values{"channel": {"email_otp"}, "csrf": {"forged"}})
		if p.status != http.StatusForbidden {
			t.Errorf("wrong CSRF token: %d", p.status)
		}

		// Another browser with the right token but not the binding: refused too.
		other := s.browser()
		other.last = methods
		p = other.submit("send", url.Values{"channel": {"email_otp"}})
		if p.status != http.StatusBadRequest || p.location != "" || !strings.Contains(p.body, "wrong_browser") {
			t.Errorf("no binding cookie: %d %q\n%s", p.status, p.location, p.body)
		}
		other.setCookie(oidcprovider.BindingCookieName("ar8"), "another binding")
		other.last = methods
		p = other.submit("send", url.Values{"channel": {"email_otp"}})
		if p.status != http.StatusBadRequest || p.location != "" || !strings.Contains(p.body, "request_expired") {
			t.Errorf("wrong binding: %d %q\n%s", p.status, p.location, p.body)
		}
		if got := s.outboxSize(t); got != before {
			t.Errorf("refused posts queued %d messages", got-before)
		}
		if len(s.provider.approvals()) != 0 {
			t.Error("approved")
		}
		// The real browser still can.
		b.last = methods
		wantScreen(t, b.step("send", url.Values{"channel": {"email_otp"}}), "code")
	})
}

func TestErrorPagesNeverRedirect(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, "")
		b := s.browser()
		for name, q := range map[string]string{
			"unregistered redirect_uri":  "client_id=" + s.p.ClientID + "&redirect_uri=https://evil.test/cb",
			"prefix of a registered one": "client_id=" + s.p.ClientID + "&redirect_uri=https://app.acme.test/done/x",
			"unknown client":             "client_id=lk_nope&redirect_uri=https://app.acme.test/done",
			"unknown request":            "authRequest=nope",
			"nothing":                    "",
		} {
			p := b.open("/login?" + q)
			if p.status != http.StatusBadRequest || p.location != "" || screen(p.body) != "error" ||
				strings.Contains(p.body, "evil.test") || strings.Contains(p.body, "<form") {
				t.Errorf("%s: %d %q\n%s", name, p.status, p.location, p.body)
			}
			if csp := p.header.Get("Content-Security-Policy"); strings.Contains(csp, "evil.test") {
				t.Errorf("%s: CSP %q", name, csp)
			}
		}
	})
}

func TestLanguages(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, "")
		b := s.request("ar9", []string{"openid"}, nil)
		b.lang = "de-DE,de;q=0.9,en;q=0.5"
		if p := b.open("/login"); !strings.Contains(p.body, `<html lang="de">`) || !strings.Contains(p.body, "Anmelden") {
			t.Errorf("Accept-Language de:\n%s", p.body)
		}
		b = s.request("ar10", []string{"openid"}, func(pl *oidcprovider.PendingLogin) { pl.UILocales = []string{"fr", "de"} })
		b.lang = "en"
		if p := b.open("/login"); !strings.Contains(p.body, `<html lang="de">`) {
			t.Errorf("ui_locales fr de:\n%s", p.body)
		}
		if p := b.open("/login?authRequest=ar10&lang=en"); !strings.Contains(p.body, `<html lang="en">`) {
			t.Errorf("lang=en:\n%s", p.body)
		}
		// The project's locales limit the choice.
		s.p = s.Project(t, `{"oidc":{"locales":["en"]}}`)
		b = s.request("ar11", []string{"openid"}, func(pl *oidcprovider.PendingLogin) { pl.UILocales = []string{"de"} })
		b.lang = "de"
		if p := b.open("/login"); !strings.Contains(p.body, `<html lang="en">`) {
			t.Errorf("locales [en]:\n%s", p.body)
		}
	})
}

func TestOrganizationPickerAndConsent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, `{"protect":{"bot_check":"off"},"login_methods":{"passkey":false},"oidc":{"first_party":false}}`)
		u := s.user(t, email)
		var orgs []string
		for _, name := range []string{"Alpha", "Beta"} {
			o, err := s.Directory.CreateOrganization(t.Context(), audit.Actor{Kind: audit.ActorCLI}, s.p.ID, directory.OrganizationInput{Name: &name})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Directory.AddMembers(t.Context(), audit.Actor{Kind: audit.ActorCLI}, s.p.ID, o.ID, []string{u.ID}); err != nil {
				t.Fatal(err)
			}
			orgs = append(orgs, o.ID)
		}
		b := s.request("ar12", []string{"openid", "email", "organization"}, nil)
		b.open("/login")
		b.step("identify", url.Values{"identifier": {email}})
		b.step("send", url.Values{"channel": {"email_otp"}})
		p := b.step("verify_code", url.Values{"code": {s.code(t, email)}})
		wantScreen(t, p, "organization")
		if !strings.Contains(p.body, "Alpha") || !strings.Contains(p.body, "Beta") {
			t.Errorf("picker:\n%s", p.body)
		}
		p = b.submit("organization", url.Values{"organization": {"not-mine"}})
		if p.status != http.StatusBadRequest || screen(p.body) != "organization" {
			t.Errorf("a foreign organization: %d", p.status)
		}
		p = b.step("organization", url.Values{"organization": {orgs[1]}})
		wantScreen(t, p, "consent")
		if !strings.Contains(p.body, "See your email address") || !strings.Contains(p.body, "See your organization") {
			t.Errorf("consent:\n%s", p.body)
		}
		approvedTo(t, b, b.submit("consent", url.Values{"decision": {"allow"}}), "ar12")
		a := s.provider.approvals()
		if len(a) != 1 || a[0].a.OrganizationID != orgs[1] || !a[0].a.Consented || a[0].a.Result.User.ID != u.ID ||
			a[0].a.Result.Tokens.Session.ID == "" {
			t.Errorf("approvals %+v", a)
		}
	})
}

// TestConsentDenied: declining consent hands the request to the provider's Deny and sends the
// browser (303) to the callback it returns, which tells the client access_denied; nothing is
// approved, no browser session is set, and the request cannot be answered again from the page.
// An unknown decision is refused without answering the request.
func TestConsentDenied(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, `{"protect":{"bot_check":"off"},"login_methods":{"passkey":false},"oidc":{"first_party":false}}`)
		s.user(t, email)
		b := s.request("ar21", []string{"openid", "email"}, nil)
		b.open("/login")
		b.step("identify", url.Values{"identifier": {email}})
		b.step("send", url.Values{"channel": {"email_otp"}})
		p := b.step("verify_code", url.Values{"code": {s.code(t, email)}})
		wantScreen(t, p, "consent")

		if p := b.submit("consent", url.Values{"decision": {"maybe"}}); p.status != http.StatusBadRequest || len(s.provider.denials()) != 0 {
			t.Fatalf("an unknown decision: %d, denials %v", p.status, s.provider.denials())
		}
		p = b.submit("consent", url.Values{"decision": {"deny"}})
		if p.status != http.StatusSeeOther || p.location != appCallback+"ar21&denied" {
			t.Fatalf("deny: want a 303 to the provider's callback, got %d to %q:\n%s", p.status, p.location, p.body)
		}
		for _, c := range p.header.Values("Set-Cookie") {
			if strings.HasPrefix(c, oidcprovider.BrowserSessionCookie+"=") {
				t.Errorf("a denial signed the browser in: %q", c)
			}
		}
		if d := s.provider.denials(); len(d) != 1 || d[0] != "ar21" || len(s.provider.approvals()) != 0 {
			t.Errorf("denials %v, approvals %+v", d, s.provider.approvals())
		}
		// The request is answered: the page cannot continue it.
		if p := b.open("/login"); p.status != http.StatusBadRequest {
			t.Errorf("the page after the denial: %d, want 400", p.status)
		}
	})
}

// TestSelectAccountContinueAs: for prompt=select_account the identifier screen offers the
// account the browser is signed in with ("Continue as"), and choosing it approves the request
// with that account's session, without a new login; signing in as someone else stays open. A
// request without the prompt shows no offer, and "continue_as" is refused for it, as it is
// once the browser's sign-in has ended.
func TestSelectAccountContinueAs(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, `{"protect":{"bot_check":"off"},"login_methods":{"passkey":false}}`)
		u := s.user(t, email)
		b := s.request("ar30", []string{"openid", "email"}, nil)
		b.open("/login")
		b.step("identify", url.Values{"identifier": {email}})
		b.step("send", url.Values{"channel": {"email_otp"}})
		approvedTo(t, b, b.submit("verify_code", url.Values{"code": {s.code(t, email)}}), "ar30")
		first := s.provider.approvals()[0].a.Result.Tokens.Session
		s.provider.mu.Lock()
		s.provider.signedIn["bs_ar30"] = oidcprovider.SignedIn{UserID: u.ID, SessionID: first.ID, ConnectionType: first.ConnectionType}
		s.provider.mu.Unlock()

		plain := s.request("ar31", []string{"openid", "email"}, nil)
		plain.setCookie(oidcprovider.BrowserSessionCookie, "bs_ar30")
		if p := plain.open("/login"); strings.Contains(p.body, "continue_as") {
			t.Errorf("a request without prompt=select_account offers Continue as:\n%s", p.body)
		}
		if p := plain.submit("continue_as", nil); p.status != http.StatusBadRequest || len(s.provider.approvals()) != 1 {
			t.Errorf("continue_as without prompt=select_account: %d, approvals %d", p.status, len(s.provider.approvals()))
		}

		pick := func(pl *oidcprovider.PendingLogin) { pl.Prompt = []string{"select_account"} }
		b = s.request("ar32", []string{"openid", "email"}, pick)
		b.setCookie(oidcprovider.BrowserSessionCookie, "bs_ar30")
		p := b.open("/login")
		wantScreen(t, p, "identifier")
		if !strings.Contains(p.body, "Continue as "+email) || !strings.Contains(p.body, `name="identifier"`) {
			t.Fatalf("want Continue as %s beside the identifier field:\n%s", email, p.body)
		}
		approvedTo(t, b, b.submit("continue_as", nil), "ar32")
		a := s.provider.approvals()
		if len(a) != 2 || a[1].id != "ar32" || a[1].a.Result.User.ID != u.ID || a[1].a.Result.Tokens.Session.ID != first.ID {
			t.Errorf("approvals %+v, want ar32 with the signed-in account's session", a)
		}

		// The sign-in ended: no offer, and a stale form is refused on the screen.
		b = s.request("ar33", []string{"openid", "email"}, pick)
		b.setCookie(oidcprovider.BrowserSessionCookie, "bs_ar30")
		b.open("/login")
		s.provider.mu.Lock()
		delete(s.provider.signedIn, "bs_ar30")
		s.provider.mu.Unlock()
		if p := b.submit("continue_as", nil); p.status != http.StatusBadRequest || screen(p.body) != "identifier" ||
			strings.Contains(p.body, "continue_as") || len(s.provider.approvals()) != 2 {
			t.Errorf("continue_as after the sign-in ended: %d screen %q, approvals %d", p.status, screen(p.body), len(s.provider.approvals()))
		}
	})
}

// TestNamedOrganization: the organization an authorization request names (the organization
// extension) becomes the session's when the user belongs to it, without the picker; one the
// user does not belong to is never used, and the picker asks instead.
func TestNamedOrganization(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, `{"protect":{"bot_check":"off"},"login_methods":{"passkey":false}}`)
		u := s.user(t, email)
		var orgs []string
		for _, name := range []string{"Alpha", "Beta", "Gamma"} {
			o, err := s.Directory.CreateOrganization(t.Context(), audit.Actor{Kind: audit.ActorCLI}, s.p.ID, directory.OrganizationInput{Name: &name})
			if err != nil {
				t.Fatal(err)
			}
			if name != "Gamma" {
				if _, err := s.Directory.AddMembers(t.Context(), audit.Actor{Kind: audit.ActorCLI}, s.p.ID, o.ID, []string{u.ID}); err != nil {
					t.Fatal(err)
				}
			}
			orgs = append(orgs, o.ID)
		}
		signIn := func(id, org string) (*browser, page) {
			t.Helper()
			b := s.request(id, []string{"openid", "email", "organization"}, func(pl *oidcprovider.PendingLogin) {
				pl.Extensions = map[string]string{"organization": org}
			})
			b.open("/login")
			b.step("identify", url.Values{"identifier": {email}})
			b.step("send", url.Values{"channel": {"email_otp"}})
			s.Clock.Advance(time.Minute) // a new code for each sign-in
			return b, b.submit("verify_code", url.Values{"code": {s.code(t, email)}})
		}
		_, p := signIn("ar-named", orgs[1])
		approvedTo(t, nil, p, "ar-named")
		// Only the organizations are printed: an approval holds tokens, which are never logged.
		if a := s.provider.approvals(); len(a) != 1 || a[0].a.OrganizationID != orgs[1] {
			var got []string
			for _, x := range a {
				got = append(got, x.a.OrganizationID)
			}
			t.Errorf("approvals of a request naming the user's organization %s: organizations %q, want just it", orgs[1], got)
		}
		if b, p := signIn("ar-foreign", orgs[2]); screen(b.follow(p).body) != "organization" {
			t.Errorf("a request naming an organization the user is not in: %d %q, want the picker", p.status, screen(p.body))
		}
	})
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
