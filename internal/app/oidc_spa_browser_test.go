package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/mfa/mfatest"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testclock"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// The SPA tests prove issue 15's pieces together in headless Chromium: a single-page app
// (testdata/spa, oidc-client-ts as its documentation uses it) on its own loopback origin, under
// a strict CSP, signs in through /v1/authorize and the hosted login page (/login) as a public
// client with PKCE, and signs out by RP-initiated logout. Latchkey runs on http://localhost:A,
// the app on http://localhost:B: both localhost, so that the passkey RP id (localhost) covers
// the page, and two origins, so that every call the app makes to Latchkey is a CORS call.

const spaFixture = "testdata/spa"

// oidcClientTS is the path of oidc-client-ts's browser build, installed in tools/oidc-rp by
// scripts/node-deps.sh (never committed), at the version tools/oidc-rp/package.json pins.
// Without it the test is skipped, and under CI=true failed.
func oidcClientTS(t *testing.T) string {
	t.Helper()
	rp := filepath.Join("..", "..", "tools", "oidc-rp")
	pkg := filepath.Join(rp, "node_modules", "oidc-client-ts")
	var pinned struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if b, err := os.ReadFile(filepath.Join(rp, "package.json")); err != nil || json.Unmarshal(b, &pinned) != nil ||
		pinned.Dependencies["oidc-client-ts"] == "" {
		t.Fatalf("read the pinned oidc-client-ts version from %s/package.json: %v", rp, err)
	}
	var installed struct {
		Version string `json:"version"`
	}
	b, err := os.ReadFile(filepath.Join(pkg, "package.json"))
	if err == nil {
		err = json.Unmarshal(b, &installed)
	}
	if err == nil && installed.Version != pinned.Dependencies["oidc-client-ts"] {
		err = fmt.Errorf("version %s is installed, package.json pins %s", installed.Version, pinned.Dependencies["oidc-client-ts"])
	}
	lib := filepath.Join(pkg, "dist", "browser", "oidc-client-ts.min.js")
	if err == nil {
		_, err = os.Stat(lib)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("oidc-client-ts is not installed (%v); CI=true requires the SPA test: run scripts/node-deps.sh", err)
		}
		t.Skipf("oidc-client-ts is not installed (%v; scripts/node-deps.sh installs it); skipping the SPA test", err)
	}
	return lib
}

// spaApp is the single-page app of a test: its origin and the URIs it registered.
type spaApp struct {
	base, redirectURI, postLogoutURI string
}

// startSPA serves the fixture on its own loopback origin with the strict policy its header
// comment names: only its own scripts, fetches only from itself and Latchkey (auth), no inline
// script or style, Trusted Types required. config is /config.json; /legacy-done is a page with
// no script at all where SSOJet's legacy widget mode returns (the test then calls the API from
// it, as the app's own code would).
func startSPA(t *testing.T, auth string, config func(s *spaApp) map[string]string) *spaApp {
	t.Helper()
	lib := oidcClientTS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &spaApp{base: fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)}
	s.redirectURI, s.postLogoutURI = s.base+"/callback", s.base+"/"
	cfg, err := json.Marshal(config(s))
	if err != nil {
		t.Fatal(err)
	}
	csp := "default-src 'none'; script-src 'self'; connect-src 'self' " + auth + "; style-src 'self'; img-src 'self'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'"
	file := func(path, ctype string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("serve %s: %v", path, err)
				http.Error(w, "missing", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Security-Policy", csp)
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write(b)
		}
	}
	page := file(filepath.Join(spaFixture, "index.html"), "text/html; charset=utf-8")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", page)
	mux.HandleFunc("GET /callback", page)
	mux.HandleFunc("GET /spa.js", file(filepath.Join(spaFixture, "spa.js"), "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /favicon.svg", file(filepath.Join(spaFixture, "favicon.svg"), "image/svg+xml"))
	mux.HandleFunc("GET /vendor/oidc-client-ts.js", file(lib, "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /config.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(cfg)
	})
	mux.HandleFunc("GET /legacy-done", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Acme</title>` +
			`<link rel="icon" href="/favicon.svg" type="image/svg+xml"></head><body><h1>Back at Acme</h1></body></html>`))
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return s
}

// startClockedBrowserApp is startBrowserApp with the server's clock in the test's hand, so
// that the TOTP codes the test computes are for the server's time, whatever the machine's speed.
func startClockedBrowserApp(t *testing.T, st *sqlstore.Store, clock *testclock.Clock) (*app.App, string, *mailTrap, *requestLog) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	mail := &mailTrap{ch: make(chan notify.Message, 16)}
	a, err := app.NewWithStore(st, app.WithPublicURL(base), app.WithClock(clock.Now),
		app.WithSenders(map[notify.Channel]notify.Sender{notify.Email: mail}))
	if err != nil {
		t.Fatal(err)
	}
	reqs := &requestLog{}
	srv := httptest.NewUnstartedServer(reqs.wrap(a.Handler()))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	workerCtx, stopWorker := context.WithCancel(context.Background())
	workerDone := make(chan struct{})
	go func() { defer close(workerDone); a.Worker().Run(workerCtx) }()
	t.Cleanup(func() { stopWorker(); <-workerDone })
	return a, base, mail, reqs
}

// until evaluates cond on the page again and again until it holds. It survives the navigations
// of a sign-in (chromedp.Poll gives up when the page goes away under it), and fails at once when
// the login page shows an error or the SPA reports one.
func (b *chromiumTest) until(what, cond string) {
	b.t.Helper()
	expr := `(() => {
		const m = document.querySelector("#message.error");
		if (m && m.textContent) return "error: " + m.textContent;
		const s = document.getElementById("status");
		if (s && s.textContent === "error") return "error: " + document.getElementById("result").textContent;
		return (` + cond + `) ? "ok" : false;
	})()`
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) && b.ctx.Err() == nil {
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
		time.Sleep(50 * time.Millisecond) // polling the page, not timing anything
	}
	b.fatalf("wait until %s: timed out (last error %v)", what, last)
}

// screen waits for the login page's screen name.
func (b *chromiumTest) screen(name string) {
	b.t.Helper()
	b.until("the login page's "+name+" screen", fmt.Sprintf(
		`document.readyState === "complete" && location.pathname === "/login" && document.querySelector("main")?.dataset.screen === %q`, name))
}

// spaSays waits until the SPA's #status is status.
func (b *chromiumTest) spaSays(s *spaApp, status string) {
	b.t.Helper()
	b.until("the app says "+status, fmt.Sprintf(`location.origin === %q && document.readyState === "complete" &&
		document.getElementById("status")?.textContent === %q`, s.base, status))
}

// spaResult is what the SPA shows in #result.
type spaResult struct {
	SignedIn      bool           `json:"signed_in"`
	SignedOut     bool           `json:"signed_out"`
	IDTokenClaims map[string]any `json:"id_token_claims"`
	Claims        map[string]any `json:"claims"`
	AccessToken   bool           `json:"access_token_present"`
	RefreshToken  bool           `json:"refresh_token_present"`
	TokenType     string         `json:"token_type"`
	Scope         string         `json:"scope"`
}

func (b *chromiumTest) spaResult() spaResult {
	b.t.Helper()
	raw := b.jsString(`document.getElementById("result").textContent`)
	var r spaResult
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		b.fatalf("#result %q: %v", raw, err)
	}
	return r
}

// screenCheck is a screen on the way: no CSP violation (the ReportingObserver's and, on the
// SPA, its own securitypolicyviolation listener's), no console message but the allowed ones,
// the page's language, and a screenshot.
func (b *chromiumTest) screenCheck(lang, name string, allowed ...string) {
	b.t.Helper()
	reports, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](cspReports))
	if err != nil || len(reports) != 0 {
		b.t.Errorf("%s %s: CSP reports %q (%v), want none", lang, name, reports, err)
	}
	if own := b.jsString(`document.getElementById("violations")?.textContent ?? "[]"`); own != "[]" {
		b.t.Errorf("%s %s: the page's securitypolicyviolation listener saw %s, want none", lang, name, own)
	}
	if strings.HasPrefix(name, "login-") {
		if got := b.jsString(`document.documentElement.lang`); got != lang {
			b.t.Errorf("%s %s: <html lang=%q>, want %q", lang, name, got, lang)
		}
	}
	b.expectConsole(lang+" "+name, allowed...)
	b.screenshot("spa-" + name + "-" + lang + ".png")
}

// spaAutofill turns the identifier field's passkey autofill (conditional mediation) off or on
// for the pages the tab opens next: on, Chromium's virtual authenticator answers it at once.
type spaAutofill struct {
	b      *chromiumTest
	script cdppage.ScriptIdentifier
}

func (f *spaAutofill) set(on bool) {
	f.b.t.Helper()
	if f.script != "" {
		if _, err := chromedp.Call(f.b.ctx, cdppage.RemoveScriptToEvaluateOnNewDocument,
			cdppage.RemoveScriptToEvaluateOnNewDocumentParams{Identifier: f.script}); err != nil {
			f.b.fatalf("remove the no-autofill script: %v", err)
		}
		f.script = ""
	}
	if on {
		return
	}
	res, err := chromedp.Call(f.b.ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
		Source: `if (window.PublicKeyCredential) PublicKeyCredential.isConditionalMediationAvailable = async () => false;`})
	if err != nil {
		f.b.fatalf("add the no-autofill script: %v", err)
	}
	f.script = res.Identifier
}

// TestOIDCSPAInChromium signs in to the SPA fixture (oidc-client-ts, public client, PKCE) in
// headless Chromium, once in English and once in German (ui_locales=de): with an email code
// (saving a passkey on the page's offer), with that passkey by autofill and by the button, and,
// once the project requires MFA, with a new user's email code and TOTP enrolment. Each time the
// SPA shows the id_token's claims for the right user, and each sign-out is RP-initiated logout
// back to the SPA's post-logout URI with its state. Every screen has no CSP violation and no
// console error, and is kept as a screenshot.
func TestOIDCSPAInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	oidcClientTS(t)
	for _, lang := range []string{"en", "de"} {
		t.Run(lang, func(t *testing.T) { spaSignIns(t, chromium, lang) })
	}
}

func spaSignIns(t *testing.T, chromium, lang string) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	clock := testclock.New(time.Now().UTC().Truncate(time.Second))
	// English on SQLite, German on PostgreSQL (skipped without it, outside CI).
	st := testdb.SQLite(t)
	if lang == "de" {
		st = testdb.Postgres(t)
	}
	a, base, mail, reqs := startClockedBrowserApp(t, st, clock)
	clientID, secret := widgetProject(t, ctx, a)
	pid := mustProject(t, ctx, a, clientID)
	spa := startSPA(t, base, func(s *spaApp) map[string]string {
		return map[string]string{"authority": base, "client_id": clientID, "redirect_uri": s.redirectURI,
			"post_logout_redirect_uri": s.postLogoutURI, "scope": "openid profile email", "ui_locales": lang}
	})
	// The project's bot check stays at its default (risk): the page solves what it is asked.
	patchSettings(t, base, secret, fmt.Sprintf(`{"allowed_origins":[%q],"redirect_uris":[%q],
		"oidc":{"token_endpoint_auth_method":"none","post_logout_redirect_uris":[%q]}}`, spa.base, spa.redirectURI, spa.postLogoutURI))

	b := newChromiumTest(t, ctx, chromium, reqs)
	if _, err := chromedp.Call(b.ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		b.fatalf("WebAuthn.enable: %v", err)
	}
	authenticator, err := chromedp.Call(b.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{Protocol: webauthn.AuthenticatorProtocolCtap2,
			Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
			IsUserVerified: true, AutomaticPresenceSimulation: true},
	})
	if err != nil {
		b.fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	autofill := &spaAutofill{b: b}
	email := "ada-" + lang + "@example.com"

	// signedIn checks what the SPA shows after a sign-in: the id_token's claims of the user
	// with email, verified, and the access token it holds.
	// The amr values RFC 8176 names for each way in: an emailed one-time code; a passkey that
	// verified its user (two factors in one); a code and an authenticator app.
	emailAMR, passkeyAMR, totpAMR := []string{"otp", "email"}, []string{"pk", "mfa"}, []string{"otp", "email", "mfa"}
	signedIn := func(how, email string, amr []string) string {
		t.Helper()
		b.spaSays(spa, "signed in")
		r := b.spaResult()
		u, err := a.Directory().GetUserByEmail(ctx, pid, email)
		if err != nil {
			b.fatalf("%s: the user %s: %v", how, email, err)
		}
		c := r.IDTokenClaims
		if !r.SignedIn || c["sub"] != u.ID || c["email"] != email || c["email_verified"] != true || c["iss"] != base ||
			c["aud"] != clientID && !slices.Contains(anySlice(c["aud"]), any(clientID)) {
			t.Errorf("%s: id_token claims %v, want sub %s, email %s verified, iss %s, aud %s", how, c, u.ID, email, base, clientID)
		}
		if got := anySlice(c["amr"]); !slices.Equal(sortedStrings(got), sortedStrings(anyOf(amr))) {
			t.Errorf("%s: id_token amr %v, want %v", how, got, amr)
		}
		if r.Claims["email"] != email || r.Claims["sub"] != u.ID {
			t.Errorf("%s: the profile oidc-client-ts built (id_token and userinfo) is %v, want %s", how, r.Claims, email)
		}
		// A first-party project grants offline_access by default: a refresh token comes too.
		if !r.AccessToken || r.TokenType != "Bearer" || !r.RefreshToken {
			t.Errorf("%s: access token present %v, type %q, refresh token present %v; want a Bearer token and a refresh token",
				how, r.AccessToken, r.TokenType, r.RefreshToken)
		}
		if b.jsString(`location.pathname`) != "/" || b.jsString(`location.search`) != "" {
			t.Errorf("%s: the address bar still holds the callback's parameters: %s", how, b.jsString(`location.href`))
		}
		return u.ID
	}
	// held is the access token oidc-client-ts keeps in sessionStorage (for the server's
	// check, never printed).
	held := func() string {
		t.Helper()
		return b.jsString(fmt.Sprintf(`JSON.parse(sessionStorage.getItem(%q) || "{}").access_token || ""`,
			"oidc.user:"+base+":"+clientID))
	}
	signOut := func(step string) {
		t.Helper()
		access := held()
		if access == "" {
			b.fatalf("%s: the app holds no access token before signing out", step)
		}
		logouts := len(reqs.matching("GET", "/v1/logout"))
		b.do("sign out", chromedp.WaitVisible(chromedp.ID("signout")), chromedp.Click(chromedp.ID("signout")))
		b.spaSays(spa, "signed out")
		if r := b.spaResult(); !r.SignedOut {
			t.Errorf("%s: after logout #result is %+v, want signed_out (the state matched)", step, r)
		}
		if got := reqs.matching("GET", "/v1/logout")[logouts:]; len(got) != 1 || got[0].status != http.StatusFound ||
			!strings.Contains(got[0].query, "id_token_hint=") || !strings.Contains(got[0].query, "state=") {
			t.Errorf("%s: logout requests %+v, want one redirect with id_token_hint and state", step, got)
		}
		// The id_token_hint's session ended with the logout: its access token is refused.
		if status, _ := call(t, "GET", base+"/api/v1/auth/status?client_id="+clientID, "",
			map[string]string{"Authorization": "Bearer " + access}); status != http.StatusUnauthorized {
			t.Errorf("%s: the signed-out session's access token answers %d at /api/v1/auth/status, want 401", step, status)
		}
		b.screenCheck(lang, step)
	}
	signInClick := func() {
		t.Helper()
		b.do("open the app", chromedp.Navigate(spa.base+"/"))
		b.spaSays(spa, "signed out")
		b.do("sign in", chromedp.WaitEnabled(chromedp.ID("signin")), chromedp.Click(chromedp.ID("signin")))
	}

	// 1. An email code through the hosted page, saving a passkey on the offer.
	autofill.set(false) // no passkey yet; the field's request would only wait
	b.do("open the app", chromedp.Navigate(spa.base+"/"))
	b.spaSays(spa, "signed out")
	b.screenCheck(lang, "app-signed-out")
	b.do("sign in", chromedp.WaitEnabled(chromedp.ID("signin")), chromedp.Click(chromedp.ID("signin")))
	b.screen("identifier")
	b.screenCheck(lang, "login-identifier")
	b.do("type the email", chromedp.SendKeys(chromedp.ID("identifier"), email), chromedp.Click(chromedp.CSS("main form button[type=submit]")))
	b.screen("methods")
	b.screenCheck(lang, "login-methods")
	b.do("email me a code", chromedp.Click(chromedp.ID("send-email-otp")))
	b.screen("code")
	b.screenCheck(lang, "login-code")
	b.do("enter the code", chromedp.SendKeys(chromedp.ID("code"), b.codeFrom(mail, email)), chromedp.Click(chromedp.ID("verify-code")))
	b.screen("passkey_offer")
	b.screenCheck(lang, "login-passkey-offer")
	b.do("save a passkey", chromedp.WaitVisible(chromedp.ID("passkey-save")), chromedp.Click(chromedp.ID("passkey-save")))
	uid := signedIn("the email code", email, emailAMR)
	b.screenCheck(lang, "app-signed-in")
	pks, err := a.Store().ListPasskeys(ctx, pid, uid)
	if err != nil || len(pks) != 1 {
		b.fatalf("passkeys after the offer: %d, %v; want 1", len(pks), err)
	}
	creds, err := chromedp.Call(b.ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams(authenticator))
	if err != nil || len(creds.Credentials) != 1 || !creds.Credentials[0].IsResidentCredential {
		b.fatalf("the authenticator holds %+v (%v), want one discoverable credential", creds, err)
	}
	// The public client's code went to the token endpoint with its verifier, from the SPA's
	// origin; userinfo was read with the access token.
	if tokens := reqs.matching("POST", "/api/v1/oauth2/token"); len(tokens) == 0 || tokens[len(tokens)-1].status != http.StatusOK {
		t.Errorf("token requests %+v, want the code exchanged", tokens)
	}
	// The app refreshes from its origin with the rotating refresh token (a public client: its
	// id, no secret), and reads the answer (CORS).
	refreshed, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(async () => {
		const key = %q;
		const user = JSON.parse(sessionStorage.getItem(key));
		const old = user.refresh_token;
		const res = await fetch(%q, {method: "POST", body: new URLSearchParams({grant_type: "refresh_token",
			refresh_token: user.refresh_token, client_id: %q})});
		const body = await res.json();
		if (res.ok) {
			// Keep what the rotation issued, as oidc-client-ts would: the old refresh token is spent.
			user.access_token = body.access_token; user.refresh_token = body.refresh_token; user.id_token = body.id_token;
			sessionStorage.setItem(key, JSON.stringify(user));
		}
		return [res.status, typeof body.access_token, typeof body.refresh_token, typeof body.id_token,
			body.refresh_token !== old ? "rotated" : "same"].join(" ");
	})()`, "oidc.user:"+base+":"+clientID, base+"/api/v1/oauth2/token", clientID), chromedp.EvalAwaitPromise))
	if err != nil || refreshed != "200 string string string rotated" {
		t.Errorf("refresh from the app's origin: %q (%v), want 200 with a new access, refresh and id token", refreshed, err)
	}
	signOut("app-signed-out-after-code")

	// 2. The passkey by autofill: the identifier field's conditional request, answered at once.
	autofill.set(true)
	posts := len(reqs.matching("POST", "/login"))
	signInClick()
	signedIn("the passkey by autofill", email, passkeyAMR)
	if n := len(reqs.matching("POST", "/login")) - posts; n != 0 {
		t.Errorf("the autofill sign-in posted %d forms to /login, want none (no identifier typed)", n)
	}
	b.screenCheck(lang, "app-signed-in-autofill")
	signOut("app-signed-out-after-autofill")

	// 3. The passkey by the button on the methods screen.
	autofill.set(false)
	signInClick()
	b.screen("identifier")
	b.do("type the email", chromedp.SendKeys(chromedp.ID("identifier"), email), chromedp.Click(chromedp.CSS("main form button[type=submit]")))
	b.screen("methods")
	b.screenCheck(lang, "login-methods-passkey")
	b.do("sign in with the passkey", chromedp.WaitVisible(chromedp.ID("passkey-login")), chromedp.Click(chromedp.ID("passkey-login")))
	signedIn("the passkey button", email, passkeyAMR)
	signOut("app-signed-out-after-button")

	// 4. The project requires MFA: a new user enrols an authenticator app (the code computed
	// by mfatest for the server's clock), declines the passkey offer, and is signed in.
	patchSettings(t, base, secret, `{"mfa":{"policy":"required","factors":["otp"]}}`)
	second := "bob-" + lang + "@example.com"
	signInClick()
	b.screen("identifier")
	b.do("type the email", chromedp.SendKeys(chromedp.ID("identifier"), second), chromedp.Click(chromedp.CSS("main form button[type=submit]")))
	b.screen("methods")
	b.do("email me a code", chromedp.Click(chromedp.ID("send-email-otp")))
	b.screen("code")
	b.do("enter the code", chromedp.SendKeys(chromedp.ID("code"), b.codeFrom(mail, second)), chromedp.Click(chromedp.ID("verify-code")))
	b.screen("mfa_enroll")
	b.screenCheck(lang, "login-mfa-enroll")
	totp := b.text("the TOTP secret", chromedp.CSS("#otp-secret"))
	b.do("enter the app's code", chromedp.SendKeys(chromedp.ID("mfa-code"), mfatest.Code(t, totp, clock.Now())),
		chromedp.Click(chromedp.ID("mfa-verify")))
	b.screen("passkey_offer")
	b.screenCheck(lang, "login-passkey-offer-mfa")
	b.do("not now", chromedp.Click(chromedp.ID("passkey-skip")))
	bob := signedIn("email code and TOTP", second, totpAMR)
	b.screenCheck(lang, "app-signed-in-mfa")
	factors, err := a.MFA().UserAuthenticators(ctx, mustProjectRecord(t, ctx, a, clientID), bob)
	if err != nil || len(factors) == 0 {
		t.Errorf("the new user's factors: %+v, %v; want the enrolled authenticator app", factors, err)
	}
	signOut("app-signed-out-after-mfa")
}

// anySlice is v as a slice, when it is one (a JSON array).
func anySlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// mustProjectRecord is the project with clientID.
func mustProjectRecord(t *testing.T, ctx context.Context, a *app.App, clientID string) store.Project {
	t.Helper()
	p, err := a.Projects().ProjectByClientID(ctx, clientID)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// anyOf is s as JSON decodes an array.
func anyOf(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// sortedStrings is v's string values, sorted (amr is a set).
func sortedStrings(v []any) []string {
	var out []string
	for _, x := range v {
		out = append(out, fmt.Sprint(x))
	}
	slices.Sort(out)
	return out
}

// linkFrom waits for the email to `to` and returns the magic link in it.
func (b *chromiumTest) linkFrom(mail *mailTrap, to string) string {
	b.t.Helper()
	for {
		select {
		case m := <-mail.ch:
			if m.To != to {
				continue
			}
			link := magicLinkRE.FindString(m.Text)
			if link == "" {
				b.fatalf("no magic link in the email to %s", to)
			}
			return link
		case <-b.ctx.Done():
			b.fatalf("no email to %s: %v", to, b.ctx.Err())
		}
	}
}

// TestLegacyWidgetModeInChromium runs SSOJet's legacy widget mode, /login?client_id&redirect_uri,
// in headless Chromium, in English and in German: a magic link asked for on the hosted page and
// opened elsewhere (another device), the wait screen noticing it by itself, the return to the
// app's redirect_uri with ?state=, and the app's own page then collecting the login result
// from magic-link/status?state= across origins (CORS), once.
func TestLegacyWidgetModeInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	oidcClientTS(t) // the app's origin is the SPA fixture's server
	for _, lang := range []string{"en", "de"} {
		t.Run(lang, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			st := testdb.SQLite(t)
			if lang == "de" {
				st = testdb.Postgres(t)
			}
			a, base, mail, reqs := startClockedBrowserApp(t, st, testclock.New(time.Now().UTC().Truncate(time.Second)))
			clientID, secret := widgetProject(t, ctx, a)
			app := startSPA(t, base, func(*spaApp) map[string]string { return map[string]string{} })
			done := app.base + "/legacy-done"
			patchSettings(t, base, secret, fmt.Sprintf(`{"allowed_origins":[%q],"redirect_uris":[%q],"protect":{"bot_check":"off"}}`,
				app.base, done))
			b := newChromiumTest(t, ctx, chromium, reqs)
			email := "legacy-" + lang + "@example.com"

			b.do("open the legacy page", chromedp.Navigate(base+"/login?"+url.Values{"client_id": {clientID}, "redirect_uri": {done},
				"lang": {lang}}.Encode()))
			b.screen("identifier")
			b.screenCheck(lang, "login-legacy-identifier")
			b.do("type the email", chromedp.SendKeys(chromedp.ID("identifier"), email), chromedp.Click(chromedp.CSS("main form button[type=submit]")))
			b.screen("methods")
			b.screenCheck(lang, "login-legacy-methods")
			if got := b.jsString(`String(document.getElementById("send-email-otp") === null && document.getElementById("passkey-login") === null)`); got != "true" {
				t.Errorf("legacy mode offers more than the magic link (email code or passkey button present)")
			}
			b.do("email me a link", chromedp.Click(chromedp.ID("send-magic-link")))
			b.screen("wait")
			b.screenCheck(lang, "login-legacy-wait")

			// The link, opened on another device: the browser's wait screen notices by itself.
			link := b.linkFrom(mail, email)
			if status, body := call(t, "GET", link, "", nil); status != http.StatusOK {
				t.Fatalf("open the magic link elsewhere: %d %s", status, body)
			}
			b.until("back at the app with the state", fmt.Sprintf(`location.origin === %q && location.pathname === "/legacy-done" &&
				new URLSearchParams(location.search).get("state")`, app.base))
			b.screenCheck(lang, "app-legacy-done")

			// The app's code collects the login from its own origin: once.
			collected, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](fmt.Sprintf(`(async () => {
				const state = new URLSearchParams(location.search).get("state");
				const url = %q + "/api/v1/auth/passwordless/magic-link/status?" + new URLSearchParams({client_id: %q, state});
				const first = await fetch(url, {headers: {Accept: "application/json"}});
				const body = await first.json();
				const again = await fetch(url, {headers: {Accept: "application/json"}});
				const second = await again.json();
				return [String(first.status), String(body.authenticated), body.user?.email ?? "", body.access_token ?? "",
					String(again.status), String(second.authenticated)];
			})()`, base, clientID), chromedp.EvalAwaitPromise))
			if err != nil || len(collected) != 6 {
				b.fatalf("collect the login from the app's page: %v", err)
			}
			if collected[0] != "200" || collected[1] != "true" || collected[2] != email || collected[3] == "" {
				t.Errorf("magic-link/status from the app: status %s, authenticated %s, email %q, access token %d bytes; want 200, true, %s, a token",
					collected[0], collected[1], collected[2], len(collected[3]), email)
			} else {
				b.checkToken(base, clientID, collected[3], email)
			}
			// Collected once: afterwards the flow is gone (404 flow_not_found), never the tokens again.
			if collected[4] != "404" || collected[5] == "true" {
				t.Errorf("magic-link/status asked again: status %s, authenticated %s; want 404, no login", collected[4], collected[5])
			}
			b.screenCheck(lang, "app-legacy-collected", statusLine(http.StatusNotFound))
		})
	}
}

// TestWidgetRedirectSignInInChromium completes the widget's redirect mode, in English and in
// German: the widget's button sends the browser to /v1/authorize, the hosted page signs the
// login_hint's user in with an email code, the browser comes back to the app's callback with a
// code and the widget's state, and the app's page, with the verifier the widget's
// takeAuthorization hands over, exchanges the code at the token endpoint across origins (a
// public client). The id_token carries the widget's nonce; the access token is the user's.
func TestWidgetRedirectSignInInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	for _, lang := range []string{"en", "de"} {
		t.Run(lang, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			st := testdb.SQLite(t)
			if lang == "de" {
				st = testdb.Postgres(t)
			}
			a, base, mail, reqs := startClockedBrowserApp(t, st, testclock.New(time.Now().UTC().Truncate(time.Second)))
			clientID, secret := widgetProject(t, ctx, a)
			host := startWidgetHost(t, base, clientID)
			callback := host.base + "/callback"
			patchSettings(t, base, secret, fmt.Sprintf(`{"allowed_origins":[%q],"redirect_uris":[%q],"protect":{"bot_check":"off"},
				"oidc":{"token_endpoint_auth_method":"none"}}`, host.base, callback))
			b := newChromiumTest(t, ctx, chromium, reqs)
			email := "widget-" + lang + "@example.com"

			q := url.Values{"mode": {"redirect"}, "lang": {lang}, "redirect-uri": {callback}, "login-hint": {email}}
			b.do("open the app's page", chromedp.Navigate(host.base+"/?"+q.Encode()))
			b.waitWidget("the widget renders", shadow+`.getElementById("continue") !== null`, false)
			b.screenCheck(lang, "widget-redirect-button")
			b.do("continue to sign in", chromedp.Evaluate[chromedp.Void](shadow+`.getElementById("continue").click()`))
			b.screen("methods") // the login_hint names the user
			b.screenCheck(lang, "login-widget-methods")
			b.do("email me a code", chromedp.Click(chromedp.ID("send-email-otp")))
			b.screen("code")
			b.screenCheck(lang, "login-widget-code")
			b.do("enter the code", chromedp.SendKeys(chromedp.ID("code"), b.codeFrom(mail, email)), chromedp.Click(chromedp.ID("verify-code")))
			b.screen("passkey_offer")
			b.screenCheck(lang, "login-widget-passkey-offer")
			b.do("not now", chromedp.Click(chromedp.ID("passkey-skip")))
			b.until("back at the app's callback with a code", fmt.Sprintf(`location.origin === %q && location.pathname === "/callback" &&
				new URLSearchParams(location.search).has("code") && document.readyState === "complete"`, host.base))
			b.cleanPage(lang + " the app's callback")
			b.screenshot("spa-widget-callback-" + lang + ".png")

			// The app's callback code: the saved request for this state, then the exchange.
			got, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](fmt.Sprintf(`(async () => {
				const params = new URLSearchParams(location.search);
				const { takeAuthorization } = await import(%[1]q + "/login/widget.js");
				const saved = takeAuthorization(params.get("state"));
				if (!saved) return ["no saved request for the state"];
				const res = await fetch(%[1]q + "/api/v1/oauth2/token", {method: "POST", body: new URLSearchParams({
					grant_type: "authorization_code", code: params.get("code"), redirect_uri: saved.redirect_uri,
					client_id: saved.client_id, code_verifier: saved.code_verifier})});
				const body = await res.json();
				return [String(res.status), saved.nonce, body.id_token ?? "", body.access_token ?? "", body.error ?? ""];
			})()`, base), chromedp.EvalAwaitPromise))
			if err != nil || len(got) != 5 {
				b.fatalf("the app's callback: %q, %v", got, err)
			}
			if got[0] != "200" || got[2] == "" || got[3] == "" {
				b.fatalf("the code exchange from the app's page: status %s, error %q, id_token %d bytes, access token %d bytes",
					got[0], got[4], len(got[2]), len(got[3]))
			}
			claims := claimsOf(t, got[2])
			u, err := a.Directory().GetUserByEmail(ctx, mustProject(t, ctx, a, clientID), email)
			if err != nil {
				t.Fatal(err)
			}
			if claims["nonce"] != got[1] || claims["sub"] != u.ID || claims["email"] != email || claims["email_verified"] != true {
				t.Errorf("id_token claims %v, want the widget's nonce and %s (%s), verified", claims, email, u.ID)
			}
			b.checkToken(base, clientID, got[3], email)
			b.cleanPage(lang + " the exchange")
		})
	}
}
