package login_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/browsertest"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/mfa/mfatest"
	"github.com/latchkey-dev/latchkey/internal/oidcprovider"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// cspViolations reads a page's CSP violations (browsertest.CSPReports).
const cspViolations = browsertest.CSPReports

// TestScreensInChromium walks every screen of the page in headless Chromium, in English and in
// German, with JavaScript on: the proof of work solved by the worker, an email code, TOTP
// enrolment, a passkey saved on the offer, the organization picker, consent, the magic-link wait
// screen continuing by itself, the password and sign-up screens, and a passkey sign-in by
// autofill and by button with a virtual authenticator. Each screen has zero CSP violations and
// console errors, and is kept as a screenshot.
func TestScreensInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// localhost: a WebAuthn RP id cannot be an IP address, and it is a secure context.
	base := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	s := newSiteAt(t, testdb.SQLite(t), `{"protect":{"bot_check":"always"},"login_methods":{"password":true,"phone_otp":true},
		"mfa":{"policy":"required","factors":["otp"]},"oidc":{"first_party":false},
		"branding":{"display_name":"Acme Cloud","primary_color":"#0f766e"}}`, ln, base)

	b := newChrome(t, ctx, chromium)
	if _, err := chromedp.Call(b.ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		b.fatalf("WebAuthn.enable: %v", err)
	}
	if _, err := chromedp.Call(b.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{Protocol: webauthn.AuthenticatorProtocolCtap2,
			Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
			IsUserVerified: true, AutomaticPresenceSimulation: true},
	}); err != nil {
		b.fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}

	for _, lang := range []string{"en", "de"} {
		mail := lang + "@example.com"
		u := s.user(t, mail)
		for _, name := range []string{"Alpha", "Beta"} {
			name += " " + lang
			o, err := s.Directory.CreateOrganization(ctx, audit.Actor{Kind: audit.ActorCLI}, s.p.ID, directory.OrganizationInput{Name: &name})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Directory.AddMembers(ctx, audit.Actor{Kind: audit.ActorCLI}, s.p.ID, o.ID, []string{u.ID}); err != nil {
				t.Fatal(err)
			}
		}
		scopes := []string{"openid", "email", "profile", "organization"}
		shot := func(screen string) { b.check(lang, screen) }

		// 1. Email code, TOTP enrolment, the passkey offer, organization, consent.
		id := "a-" + lang
		b.start(s, id, lang, scopes)
		b.do("open the page", chromedp.Navigate(base+"/login?authRequest="+id))
		b.waitScreen("identifier")
		shot("identifier")
		b.do("type the email", chromedp.SendKeys(chromedp.ID("identifier"), mail), chromedp.Click(chromedp.CSS("main form button[type=submit]")))
		b.waitScreen("methods")
		shot("methods")
		b.do("email me a code", chromedp.Click(chromedp.ID("send-email-otp")))
		b.waitScreen("code")
		shot("code")
		b.do("enter the code", chromedp.SendKeys(chromedp.ID("code"), s.code(t, mail)), chromedp.Click(chromedp.ID("verify-code")))
		b.waitScreen("mfa_enroll")
		shot("mfa_enroll")
		secret := b.text("the TOTP secret", chromedp.ID("otp-secret"))
		b.do("enter the app's code", chromedp.SendKeys(chromedp.ID("mfa-code"), mfatest.Code(t, secret, s.Clock.Now())),
			chromedp.Click(chromedp.ID("mfa-verify")))
		b.waitScreen("passkey_offer")
		shot("passkey_offer")
		b.do("save a passkey", chromedp.WaitVisible(chromedp.ID("passkey-save")), chromedp.Click(chromedp.ID("passkey-save")))
		b.waitScreen("organization")
		shot("organization")
		b.do("pick an organization", chromedp.Click(chromedp.ID("org-continue")))
		b.waitScreen("consent")
		shot("consent")
		b.do("allow", chromedp.Click(chromedp.ID("consent-allow")))
		b.waitDone(id)
		if pks, err := s.passkeys.List(ctx, s.p, u.ID); err != nil || len(pks) != 1 {
			b.fatalf("passkeys after the offer: %v, %v", pks, err)
		}

		// 2. Password, reset, sign-up screens; the magic-link wait screen continuing by itself;
		// the MFA challenge with the enrolled app.
		s.Clock.Advance(time.Minute)
		id = "b-" + lang
		b.start(s, id, lang, scopes)
		b.noAutofill()
		b.do("open the page", chromedp.Navigate(base+"/login?authRequest="+id))
		b.waitScreen("identifier")
		b.do("type the email", chromedp.SendKeys(chromedp.ID("identifier"), mail), chromedp.Click(chromedp.CSS("main form button[type=submit]")))
		b.waitScreen("methods")
		b.do("sign up instead", chromedp.Click(chromedp.ID("sign-up")))
		b.waitScreen("signup")
		shot("signup")
		b.do("back", chromedp.Click(chromedp.ID("back")))
		b.waitScreen("identifier")
		b.do("type the email", chromedp.SendKeys(chromedp.ID("identifier"), mail), chromedp.Click(chromedp.CSS("main form button[type=submit]")))
		b.waitScreen("methods")
		b.do("use a password", chromedp.Click(chromedp.ID("use-password")))
		b.waitScreen("password")
		shot("password")
		b.do("forgot it", chromedp.Click(chromedp.ID("forgot")))
		b.waitScreen("reset_sent")
		shot("reset_sent")
		b.do("back", chromedp.Click(chromedp.ID("back")))
		b.waitScreen("identifier")
		b.do("type the email", chromedp.SendKeys(chromedp.ID("identifier"), mail), chromedp.Click(chromedp.CSS("main form button[type=submit]")))
		b.waitScreen("methods")
		b.do("email me a link", chromedp.Click(chromedp.ID("send-magic-link")))
		b.waitScreen("wait")
		shot("wait")
		s.clickLink(t, mail)
		b.waitScreen("mfa") // the script's poll noticed the click
		shot("mfa")
		b.do("enter the app's code", chromedp.SendKeys(chromedp.ID("mfa-code"), mfatest.Code(t, secret, s.Clock.Now())),
			chromedp.Click(chromedp.ID("mfa-verify")))
		b.waitScreen("organization")
		b.do("pick an organization", chromedp.Click(chromedp.ID("org-continue")))
		b.waitScreen("consent")
		b.do("allow", chromedp.Click(chromedp.ID("consent-allow")))
		b.waitDone(id)

		// 3. The passkey by button (no autofill in this tab), from the methods screen.
		id = "c-" + lang
		b.start(s, id, lang, scopes)
		s.setHint(id, mail)
		b.noAutofill()
		b.do("open the page", chromedp.Navigate(base+"/login?authRequest="+id))
		b.waitScreen("methods")
		b.do("sign in with the passkey", chromedp.WaitVisible(chromedp.ID("passkey-login")), chromedp.Click(chromedp.ID("passkey-login")))
		b.waitScreen("organization")
		b.do("pick an organization", chromedp.Click(chromedp.ID("org-continue")))
		b.waitScreen("consent")
		b.do("allow", chromedp.Click(chromedp.ID("consent-allow")))
		b.waitDone(id)

		// 4. The error page of an unknown request.
		b.do("open an unknown request", chromedp.Navigate(base+"/login?authRequest=unknown&lang="+lang))
		b.waitScreen("error")
		b.check(lang, "error", "status of 400")
	}

	// 5. The passkey by autofill: the identifier field's conditional request, which the
	// virtual authenticator answers at once with a discoverable credential. Two users saved
	// one each; Chromium picks one, and the approval names it.
	id := "d"
	b.start(s, id, "en", []string{"openid"})
	b.autofill()
	b.do("open the page", chromedp.Navigate(base+"/login?authRequest="+id))
	b.waitScreen("consent") // a third-party project: signed in by the passkey, then asked
	b.do("allow", chromedp.Click(chromedp.ID("consent-allow")))
	b.waitDone(id)
	a := s.provider.approvals()
	last := a[len(a)-1]
	if last.id != id || last.a.Result.Tokens.Session.ConnectionType != "Passkey" {
		t.Errorf("autofill approval %+v", last)
	}

	// 6. SSOJet's legacy widget mode: a magic link, the wait screen's poll, and the return to
	// the application with ?state=, which then collects the tokens itself.
	s.p = s.Project(t, fmt.Sprintf(`{"protect":{"bot_check":"off"},"redirect_uris":[%q]}`, base+"/done"))
	legacy := base + "/login?" + url.Values{"client_id": {s.p.ClientID}, "redirect_uri": {base + "/done"}}.Encode()
	b.do("open the legacy page", chromedp.Navigate(legacy))
	b.waitScreen("identifier")
	b.do("type the email", chromedp.SendKeys(chromedp.ID("identifier"), "legacy@example.com"),
		chromedp.Click(chromedp.CSS("main form button[type=submit]")))
	b.waitScreen("methods")
	b.do("email me a link", chromedp.Click(chromedp.ID("send-magic-link")))
	b.waitScreen("wait")
	b.check("en", "legacy-wait")
	s.clickLink(t, "legacy@example.com")
	b.poll("back at the application with the state", `location.pathname === "/done" && new URLSearchParams(location.search).get("state")`)
	state, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`new URLSearchParams(location.search).get("state")`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.pwless.Status(ctx, s.p, state, audit.Meta{})
	if err != nil || !res.Authenticated || res.User.Email != "legacy@example.com" {
		t.Errorf("magic-link/status?state=%s: %+v, %v", state, res, err)
	}
	b.check("en", "legacy-done")
}

// chromiumPath finds Chromium (browsertest.ChromiumPath).
func chromiumPath(t *testing.T) string { t.Helper(); return browsertest.ChromiumPath(t) }

// chrome is one headless Chromium tab and what its console said.
type chrome struct {
	t      *testing.T
	ctx    context.Context
	base   string
	script cdppage.ScriptIdentifier // the noAutofill script, when added
	tab    *browsertest.Tab
}

func newChrome(t *testing.T, ctx context.Context, chromium string) *chrome {
	t.Helper()
	tab := browsertest.Open(t, ctx, chromium, 800, 900)
	return &chrome{t: t, ctx: tab.Ctx, tab: tab}
}

// start makes a pending request in lang and gives the tab its binding cookie.
func (b *chrome) start(s *site, id, lang string, scopes []string) {
	b.t.Helper()
	binding := "binding-" + id
	s.provider.mu.Lock()
	s.provider.pending[id] = fakeRequest{binding: binding, login: oidcprovider.PendingLogin{ID: id, Project: s.p,
		RedirectURI: "https://app.acme.test/done", Scopes: scopes, UILocales: []string{lang}, ExpiresAt: s.Clock.Now().Add(time.Hour)}}
	s.provider.mu.Unlock()
	b.base = strings.Replace(s.srv.URL, "127.0.0.1", "localhost", 1)
	// As the provider sets it: a __Host- cookie, which Chromium accepts over http on localhost.
	secure, httpOnly := true, true
	if _, err := chromedp.Call(b.ctx, network.SetCookie, network.SetCookieParams{Name: oidcprovider.BindingCookieName(id), Value: binding,
		URL: b.base + "/", Path: "/", Secure: &secure, HTTPOnly: &httpOnly, SameSite: network.CookieSameSiteLax}); err != nil {
		b.fatalf("set the binding cookie: %v", err)
	}
}

func (s *site) setHint(id, hint string) {
	s.provider.mu.Lock()
	defer s.provider.mu.Unlock()
	r := s.provider.pending[id]
	r.login.LoginHint = hint
	s.provider.pending[id] = r
}

// noAutofill makes the tab's pages see no conditional mediation, as a browser without passkey
// autofill: the virtual authenticator would otherwise answer the identifier field's request at
// once. autofill undoes it.
func (b *chrome) noAutofill() {
	b.t.Helper()
	b.autofillScript(`PublicKeyCredential.isConditionalMediationAvailable = async () => false;`)
}

func (b *chrome) autofill() { b.autofillScript(``) }

func (b *chrome) autofillScript(src string) {
	b.t.Helper()
	if b.script != "" {
		if _, err := chromedp.Call(b.ctx, cdppage.RemoveScriptToEvaluateOnNewDocument,
			cdppage.RemoveScriptToEvaluateOnNewDocumentParams{Identifier: b.script}); err != nil {
			b.fatalf("remove the script: %v", err)
		}
		b.script = ""
	}
	if src == "" {
		return
	}
	res, err := chromedp.Call(b.ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: src})
	if err != nil {
		b.fatalf("add the script: %v", err)
	}
	b.script = res.Identifier
}

func (b *chrome) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.fatalf("%s: %v", step, err)
	}
}

func (b *chrome) text(what string, sel chromedp.ID) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(sel))
	if err != nil {
		b.fatalf("read %s: %v", what, err)
	}
	return strings.TrimSpace(s)
}

func (b *chrome) poll(what, cond string) {
	b.t.Helper()
	expr := `(() => {
		const m = document.querySelector("#message.error");
		if (m && m.textContent) return "error: " + m.textContent;
		return (` + cond + `) ? "ok" : false;
	})()`
	// Evaluated again and again rather than with chromedp.Poll, which gives up when the page
	// navigates under it, as these pages do after every form.
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		got, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](expr))
		switch {
		case err != nil:
			last = err
		case got == "ok":
			return
		default:
			if s, ok := got.(string); ok && strings.HasPrefix(s, "error: ") {
				b.fatalf("wait until %s: the page says %q", what, s)
			}
		}
		if b.ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.fatalf("wait until %s: timed out (last error %v)", what, last)
}

func (b *chrome) waitScreen(screen string) {
	b.t.Helper()
	b.poll("screen "+screen, fmt.Sprintf(`document.readyState === "complete" && document.querySelector("main")?.dataset.screen === %q`, screen))
}

func (b *chrome) waitDone(id string) {
	b.t.Helper()
	b.poll("back at the application", fmt.Sprintf(`location.pathname === "/done" && location.search === "?id=%s"`, id))
}

// check fails on CSP violations and console messages (but allowed, such as an error page's own
// status), checks the page's language, and keeps a screenshot.
func (b *chrome) check(lang, screen string, allowed ...string) {
	b.t.Helper()
	violations, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](cspViolations))
	if err != nil || len(violations) != 0 {
		b.t.Errorf("%s %s: CSP violations %q (%v)", lang, screen, violations, err)
	}
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.documentElement.lang`))
	if err != nil || got != lang {
		b.t.Errorf("%s %s: <html lang=%q>", lang, screen, got)
	}
	console := b.tab.Unexpected(allowed...)
	if len(console) != 0 {
		b.t.Errorf("%s %s: console messages:\n%s", lang, screen, strings.Join(console, "\n"))
	}
	b.screenshot("login-" + screen + "-" + lang + ".png")
}

func (b *chrome) screenshot(name string) {
	b.t.Helper()
	browsertest.Screenshot(b.t, b.ctx, name)
}

func (b *chrome) fatalf(format string, args ...any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 5*time.Second)
	defer cancel()
	if body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`)); err == nil {
		b.t.Logf("page: %s", body)
	} else if !errors.Is(err, context.Canceled) {
		b.t.Logf("page: unreadable: %v", err)
	}
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		dir := os.Getenv("TEST_ARTIFACTS")
		if dir == "" {
			dir = b.t.TempDir()
		}
		path := filepath.Join(dir, "login-failure.png")
		if os.MkdirAll(dir, 0o755) == nil && os.WriteFile(path, png, 0o644) == nil {
			b.t.Logf("screenshot of the failure: %s", path)
		}
	}
	b.t.Logf("browser console:\n  %s", strings.Join(b.tab.Console(), "\n  "))
	b.t.Fatalf(format, args...)
}
