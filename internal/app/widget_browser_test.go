package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/project"
)

// The widget tests run Latchkey on one loopback origin (http://localhost:A, startBrowserApp)
// and an app's page that embeds <latchkey-login> on another (http://localhost:B, its own
// server), under a strict CSP: script-src is the page's nonce and the Latchkey origin, no
// 'unsafe-inline' anywhere. Both are localhost so that the passkey RP id (localhost) covers
// the app's origin, which the project lists in allowed_origins.

// shadow is the widget's shadow root, for the test's JavaScript.
const shadow = `document.querySelector("latchkey-login").shadowRoot`

// widgetHost is the app of the widget tests: its origin and the project it signs in to.
type widgetHost struct {
	base     string // http://localhost:B
	auth     string // Latchkey, http://localhost:A
	clientID string
}

// startWidgetHost serves the app's pages on their own origin: GET /?<attributes> renders a page
// with one <latchkey-login> whose attributes are the query's (plus the page's nonce), and
// /callback is where redirect mode comes back to.
func startWidgetHost(t *testing.T, auth, clientID string) *widgetHost {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &widgetHost{base: fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port), auth: auth, clientID: clientID}
	mux := http.NewServeMux()
	render := func(w http.ResponseWriter, r *http.Request, attrs map[string]string) {
		nonce := httpserver.CSPNonce(r.Context())
		// The policy a careful app sets: nothing runs but its own nonced scripts and Latchkey's
		// module, nothing is fetched but from Latchkey, and no inline style is allowed.
		csp := fmt.Sprintf("default-src 'none'; script-src 'nonce-%[1]s' %[2]s; connect-src %[2]s; style-src 'nonce-%[1]s'; "+
			"img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'", nonce, auth)
		if _, ok := attrs["pow-worker"]; ok {
			// The page that opts in to the widget's Blob worker allows exactly that.
			csp += "; worker-src blob:"
		}
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		page := struct {
			Nonce, Auth string
			Attrs       map[string]string
		}{nonce, auth, attrs}
		if err := widgetPage.Execute(w, page); err != nil {
			t.Errorf("render the widget's host page: %v", err)
		}
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		attrs := map[string]string{"client-id": clientID}
		for k, v := range r.URL.Query() {
			attrs[k] = v[0]
		}
		render(w, r, attrs)
	})
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) { render(w, r, nil) })
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	srv := httptest.NewUnstartedServer(httpserver.SecureHeaders(mux, h.base))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return h
}

// widgetPage records what the widget tells the page (its events, as the app would listen to
// them on document) and what the page's CSP blocked.
var widgetPage = template.Must(template.New("host").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Acme shop</title>
<script nonce="{{.Nonce}}">
window.events = [];
window.violations = [];
// Which workers the page's scripts start (the widget's proof-of-work solver may use one).
window.workers = [];
const PageWorker = window.Worker;
window.Worker = class extends PageWorker {
	constructor(url, opts) { super(url, opts); window.workers.push(new URL(url).protocol); }
};
document.addEventListener("securitypolicyviolation", (e) => window.violations.push(e.violatedDirective + " " + e.blockedURI));
for (const type of ["latchkey:login", "latchkey:error", "latchkey:mfa-required", "latchkey:redirect"]) {
	document.addEventListener(type, (e) => window.events.push({type, detail: e.detail, target: e.target.tagName}));
}
</script>
{{if index .Attrs "no-constructable"}}<script nonce="{{.Nonce}}">
// A browser without constructable stylesheets, for the widget's <style> fallback.
delete Document.prototype.adoptedStyleSheets;
</script>{{end}}
<style nonce="{{.Nonce}}">
body { font-family: system-ui, sans-serif; background: #f6f7fb; margin: 2rem; }
/* An app's own theme, through the widget's custom properties and parts. */
latchkey-login.themed { --latchkey-primary: #008000; --latchkey-radius: 0; }
latchkey-login.themed::part(button) { letter-spacing: 1px; }
</style>
<script type="module" nonce="{{.Nonce}}" src="{{.Auth}}/login/widget.js"></script>
</head>
<body>
<h1>Acme shop</h1>
{{with .Attrs}}<latchkey-login client-id="{{index . "client-id"}}" mode="{{index . "mode"}}" lang="{{index . "lang"}}"
	{{- with index . "methods"}} methods="{{.}}"{{end}}
	{{- with index . "redirect-uri"}} redirect-uri="{{.}}"{{end}}
	{{- with index . "organization"}} organization="{{.}}"{{end}}
	{{- with index . "login-hint"}} login-hint="{{.}}"{{end}}
	{{- if index . "pow-worker"}} pow-worker{{end}}
	{{- with index . "class"}} class="{{.}}"{{end}} nonce="{{$.Nonce}}"></latchkey-login>{{end}}
</body>
</html>
`))

// widgetProject creates the project of a widget test and lets the app's origin in.
func widgetProject(t *testing.T, ctx context.Context, a *app.App) (clientID, secret string) {
	t.Helper()
	iss, err := a.Projects().Create(ctx, project.NewProject{Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	return iss.Project.ClientID, iss.ClientSecret
}

func patchSettings(t *testing.T, base, secret, settings string) {
	t.Helper()
	status, body := call(t, "PATCH", base+"/api/v1/project", `{"settings":`+settings+`}`,
		map[string]string{"X-Client-Secret": secret, "Content-Type": "application/json"})
	if status != http.StatusOK {
		t.Fatalf("PATCH the project's settings %s: %d %s", settings, status, body)
	}
}

// widgetEvent is one event the page saw.
type widgetEvent struct {
	Type   string          `json:"type"`
	Target string          `json:"target"`
	Detail json.RawMessage `json:"detail"`
}

// String shows the event with its tokens redacted: test output is a log, and tokens are never
// logged.
func (e widgetEvent) String() string {
	var detail map[string]any
	if json.Unmarshal(e.Detail, &detail) != nil {
		return fmt.Sprintf("%s from %s: %s", e.Type, e.Target, e.Detail)
	}
	for _, k := range []string{"access_token", "refresh_token", "mfa_token", "oauth", "id_token"} {
		if _, ok := detail[k]; ok {
			detail[k] = "[redacted]"
		}
	}
	raw, _ := json.Marshal(detail)
	return fmt.Sprintf("%s from %s: %s", e.Type, e.Target, raw)
}

func (b *chromiumTest) widgetEvents() []widgetEvent {
	b.t.Helper()
	evs, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]widgetEvent](`window.events`))
	if err != nil {
		b.fatalf("read the page's events: %v", err)
	}
	return evs
}

// waitWidget waits until cond (JavaScript) holds on the page, and fails at once when the widget
// shows an error that the step does not expect.
func (b *chromiumTest) waitWidget(what, cond string, errorExpected bool) {
	b.t.Helper()
	expr := `(() => {
		const root = ` + shadow + `;
		const err = root && root.getElementById("error");
		if (!` + fmt.Sprint(errorExpected) + ` && err && !err.hidden && err.textContent) return "error: " + err.textContent;
		return (` + cond + `) ? "ok" : false;
	})()`
	got, err := chromedp.Run(b.ctx, chromedp.Poll[string](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	switch {
	case err != nil:
		// Where the focus is tells most keyboard failures apart.
		focus, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.activeElement.tagName + " / " + (`+shadow+`?.activeElement?.outerHTML ?? "none")`))
		b.t.Logf("focus: %s", focus)
		b.fatalf("wait until %s: %v", what, err)
	case got != "ok":
		b.fatalf("wait until %s: the widget says %q", what, got)
	}
}

// cleanPage checks that the page so far had no CSP violation (both as the ReportingObserver and
// as the page's own listener saw them) and no console message but the expected ones (the
// browser logs every answer of 4xx it fetched), then forgets the console.
func (b *chromiumTest) cleanPage(step string, expected ...string) {
	b.t.Helper()
	reports, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](cspReports))
	if err != nil || len(reports) != 0 {
		b.t.Errorf("%s: CSP reports %q (%v), want none", step, reports, err)
	}
	violations, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`window.violations || []`))
	if err != nil || len(violations) != 0 {
		b.t.Errorf("%s: CSP violations %q (%v), want none", step, violations, err)
	}
	b.expectConsole(step, expected...)
}

// expectConsole fails on any console line that contains none of expected, and clears it.
func (b *chromiumTest) expectConsole(step string, expected ...string) {
	b.t.Helper()
	for _, line := range b.tab.Unexpected(expected...) {
		b.t.Errorf("%s: console message %q, want none", step, line)
	}
}

// statusLine is the console line Chromium writes for a fetched answer of status.
func statusLine(status int) string {
	return fmt.Sprintf("the server responded with a status of %d", status)
}

// TestWidgetInlineInChromium embeds the widget in inline mode on the app's origin and signs in
// with it, by keyboard only: an email code (a wrong one first: the widget shows the error and
// fires latchkey:error, then the right one fires latchkey:login with tokens the server honours),
// a passkey (the virtual authenticator), and a magic link opened elsewhere while the bot check
// demands a proof of work, which the widget solves on the main thread. Each screen is checked
// for CSP violations and console errors, and kept as a screenshot, in English and German.
func TestWidgetInlineInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	a, base, mail, reqs := startBrowserApp(t)
	clientID, secret := widgetProject(t, ctx, a)
	host := startWidgetHost(t, base, clientID)
	patchSettings(t, base, secret, fmt.Sprintf(`{"allowed_origins":[%q]}`, host.base))
	pid := mustProject(t, ctx, a, clientID)

	b := newChromiumTest(t, ctx, chromium, reqs)
	tab := b.ctx
	if _, err := chromedp.Call(tab, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		b.fatalf("WebAuthn.enable: %v", err)
	}
	if _, err := chromedp.Call(tab, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
		},
	}); err != nil {
		b.fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}

	// 1. The page loads the module from Latchkey's origin and the element renders.
	const email = "ada@example.com"
	b.do("open the app's page", chromedp.Navigate(host.base+"/?mode=inline&methods=email-otp,passkey&lang=en"))
	b.waitWidget("the widget renders", shadow+`.getElementById("email") !== null`, false)
	if got := b.jsString(shadow + `.getElementById("send-code").textContent`); got != "Email me a code" {
		t.Errorf("English send button %q", got)
	}
	if got := b.jsString(`JSON.stringify(` + shadow + `.adoptedStyleSheets.length)`); got != "1" {
		t.Errorf("adopted stylesheets: %s, want the one constructed sheet", got)
	}
	scripts := reqs.matching("GET", "/login/widget.js")
	if len(scripts) != 1 || scripts[0].status != http.StatusOK {
		t.Errorf("widget.js requests %+v, want one answered 200", scripts)
	}
	b.cleanPage("the English form")
	b.screenshot("widget-en-email.png")

	// 2. Keyboard only: Tab reaches the email field first (the honeypot is out of the order),
	// Enter sends, and focus moves to the code field.
	b.do("tab into the widget", chromedp.KeyEvent(kb.Tab))
	b.waitWidget("the email field has focus", shadow+`.activeElement && `+shadow+`.activeElement.id === "email"`, false)
	b.do("type the email and press Enter", chromedp.KeyEvent(email), chromedp.KeyEvent(kb.Enter))
	code := b.codeFrom(mail, email)
	b.waitWidget("the code field has focus", `!`+shadow+`.getElementById("code-form").hidden && `+
		shadow+`.activeElement && `+shadow+`.activeElement.id === "code"`, false)
	if got := b.jsString(shadow + `.querySelector("[role=status]").textContent`); !strings.Contains(got, email) {
		t.Errorf("status after sending %q, want it to name %s", got, email)
	}

	// 3. A wrong code: the error is shown (and announced), the field is marked invalid, and
	// latchkey:error carries the server's code.
	wrong := []byte(code)
	for i := range wrong {
		wrong[i] = '0' + (wrong[i]-'0'+1)%10
	}
	b.do("type a wrong code", chromedp.KeyEvent(string(wrong)), chromedp.KeyEvent(kb.Enter))
	b.waitWidget("the error is shown", `!`+shadow+`.getElementById("error").hidden`, true)
	if got := b.jsString(shadow + `.getElementById("error").textContent`); got != "That code is not right. Check it and try again." {
		t.Errorf("error text %q", got)
	}
	if got := b.jsString(shadow + `.getElementById("code").getAttribute("aria-invalid")`); got != "true" {
		t.Errorf("the code field's aria-invalid is %q, want true", got)
	}
	evs := b.widgetEvents()
	if len(evs) != 1 || evs[0].Type != "latchkey:error" || evs[0].Target != "LATCHKEY-LOGIN" {
		b.fatalf("events after a wrong code: %+v, want one latchkey:error from the element", evs)
	}
	var failed struct{ Code, Message string }
	if err := json.Unmarshal(evs[0].Detail, &failed); err != nil || failed.Code != "invalid_code" || failed.Message == "" {
		t.Errorf("latchkey:error detail %s (%v), want code invalid_code and a message", evs[0].Detail, err)
	}
	b.cleanPage("the wrong code", statusLine(http.StatusUnauthorized))
	b.screenshot("widget-en-wrong-code.png")

	// 4. The right code: latchkey:login with the login result, whose access token the server
	// accepts as this user's.
	b.do("type the right code", chromedp.KeyEvent(code), chromedp.KeyEvent(kb.Enter))
	b.waitWidget("signed in", `window.events.some((e) => e.type === "latchkey:login")`, false)
	res := b.loginResult()
	if !res.Authenticated || res.User.Email != email || res.RefreshToken == "" || res.Profile.ConnectionType != login.EmailOTP {
		t.Errorf("latchkey:login detail %+v, want an authenticated %s by EmailOTP with a refresh token", res, email)
	}
	b.checkToken(base, clientID, res.AccessToken, email)
	b.cleanPage("signed in by email code")
	b.screenshot("widget-en-signed-in.png")

	// 5. Add a passkey for the user from the app's page (the app's own code, with the token the
	// widget handed over), so that the widget can then sign in with it.
	status, err := chromedp.Run(tab, chromedp.Evaluate[int](registerPasskeyJS(base, clientID, res.AccessToken), chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusCreated {
		b.fatalf("register a passkey from the app's page: %d %v", status, err)
	}

	// 6. A fresh page: sign in with the passkey, by keyboard (focus the button, press Enter).
	b.do("reload the page", chromedp.Navigate(host.base+"/?mode=inline&methods=passkey,email-otp&lang=en"))
	b.waitWidget("the widget renders", shadow+`.getElementById("passkey") !== null`, false)
	b.do("tab to the passkey button", chromedp.KeyEvent(kb.Tab))
	b.waitWidget("the passkey button has focus", shadow+`.activeElement && `+shadow+`.activeElement.id === "passkey"`, false)
	b.do("press Enter", chromedp.KeyEvent(kb.Enter))
	b.waitWidget("signed in by passkey", `window.events.some((e) => e.type === "latchkey:login")`, false)
	res = b.loginResult()
	if !res.Authenticated || res.User.Email != email || res.Profile.ConnectionType != login.Passkey {
		t.Errorf("latchkey:login detail after the passkey %+v, want %s by Passkey", res, email)
	}
	b.checkToken(base, clientID, res.AccessToken, email)
	for _, r := range reqs.matching("GET", "/api/v1/auth/passwordless/passkey/login") {
		if strings.Contains(r.query, "identifier=") {
			t.Errorf("the widget named the user when it asked for passkey options: ?%s", r.query)
		}
	}
	b.cleanPage("signed in by passkey")

	// 7. German, magic link, and a bot check that always asks for a proof of work: the widget
	// solves it without showing the person anything, then waits for the link, which is opened
	// elsewhere (here by the test's HTTP client, as on another device).
	patchSettings(t, base, secret, `{"protect":{"bot_check":"always"}}`)
	b.do("open the German page", chromedp.Navigate(host.base+"/?mode=inline&methods=magic-link,passkey&lang=de"))
	b.waitWidget("the widget renders", shadow+`.getElementById("send-link") !== null`, false)
	for id, want := range map[string]string{"send-link": "Link per E-Mail senden", "passkey": "Mit Passkey anmelden"} {
		if got := b.jsString(shadow + `.getElementById("` + id + `").textContent`); got != want {
			t.Errorf("German #%s %q, want %q", id, got, want)
		}
	}
	b.cleanPage("the German form")
	b.screenshot("widget-de-email.png")
	b.do("tab into the widget", chromedp.KeyEvent(kb.Tab))
	b.do("type the email and press Enter", chromedp.KeyEvent(email), chromedp.KeyEvent(kb.Enter))
	// Earlier mail (the notice that a passkey was added) may come first: wait for the link.
	var link string
	for link == "" {
		select {
		case m := <-mail.ch:
			if m.To == email {
				link = magicLinkRE.FindString(m.Text)
			}
		case <-ctx.Done():
			b.fatalf("no magic link was sent")
		}
	}
	b.waitWidget("waiting for the link", `!`+shadow+`.getElementById("link-sent").hidden`, false)
	b.screenshot("widget-de-link-sent.png")
	sends := reqs.matching("POST", "/api/v1/auth/passwordless/magic-link/send")
	challenges := reqs.matching("GET", "/api/v1/protect/challenge")
	if len(sends) != 2 || sends[0].status != http.StatusForbidden || sends[1].status != http.StatusOK || len(challenges) != 1 {
		t.Errorf("sends %+v, challenges %+v: want a refused send, one challenge, then an accepted send", sends, challenges)
	}
	if status, _ := call(t, "GET", link, "", nil); status != http.StatusOK {
		b.fatalf("open the magic link: %d", status)
	}
	b.waitWidget("signed in by magic link", `window.events.some((e) => e.type === "latchkey:login")`, false)
	res = b.loginResult()
	if !res.Authenticated || res.User.Email != email || res.Profile.ConnectionType != login.MagicLink {
		t.Errorf("latchkey:login detail after the magic link %+v, want %s by MagicLink", res, email)
	}
	if got := b.jsString(shadow + `.querySelector("[role=status]").textContent`); got != "Sie sind angemeldet." {
		t.Errorf("German status after sign-in %q", got)
	}
	if got := b.jsString(`window.workers.join(",")`); got != "" {
		t.Errorf("workers started %q: without pow-worker the proof of work must be solved on the main thread", got)
	}
	b.cleanPage("signed in by magic link", statusLine(http.StatusForbidden))
	b.screenshot("widget-de-signed-in.png")

	logs, err := a.Store().ListLoginLogs(ctx, pid, res.User.UserID, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	byType := map[string]int{}
	for _, l := range logs {
		byType[l.ConnectionType]++
	}
	if byType[login.EmailOTP] != 1 || byType[login.Passkey] != 1 || byType[login.MagicLink] != 1 {
		t.Errorf("login log by connection type %v, want one each of EmailOTP, Passkey, MagicLink", byType)
	}
}

// TestWidgetMFAInChromium signs in with an email code to a project that requires a second
// factor and checks the bot always: the widget fires latchkey:mfa-required with the MFA
// challenge (and no latchkey:login), and, with pow-worker on a page whose CSP allows blob:
// workers, solves the proof of work in a Blob worker.
func TestWidgetMFAInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	a, base, mail, reqs := startBrowserApp(t)
	clientID, secret := widgetProject(t, ctx, a)
	host := startWidgetHost(t, base, clientID)
	patchSettings(t, base, secret, fmt.Sprintf(`{"allowed_origins":[%q],"mfa":{"policy":"required"},"protect":{"bot_check":"always"}}`, host.base))

	b := newChromiumTest(t, ctx, chromium, reqs)
	const email = "grace@example.com"
	b.do("open the app's page", chromedp.Navigate(host.base+"/?mode=inline&methods=email-otp&lang=en&pow-worker=1"))
	b.waitWidget("the widget renders", shadow+`.getElementById("email") !== null`, false)
	b.do("tab into the widget", chromedp.KeyEvent(kb.Tab))
	b.do("type the email and press Enter", chromedp.KeyEvent(email), chromedp.KeyEvent(kb.Enter))
	code := b.codeFrom(mail, email)
	b.waitWidget("the code field has focus", shadow+`.activeElement && `+shadow+`.activeElement.id === "code"`, false)
	if got := b.jsString(`window.workers.join(",")`); got != "blob:" {
		t.Errorf("workers started %q, want the one blob: worker of the proof of work", got)
	}
	sends := reqs.matching("POST", "/api/v1/auth/passwordless/email-otp/send")
	if len(sends) != 2 || sends[0].status != http.StatusForbidden || sends[1].status != http.StatusOK {
		t.Errorf("sends %+v: want a refused send, then one with the worker's proof accepted", sends)
	}
	b.do("type the code", chromedp.KeyEvent(code), chromedp.KeyEvent(kb.Enter))
	b.waitWidget("a second factor is asked for", `window.events.some((e) => e.type === "latchkey:mfa-required")`, false)
	evs := b.widgetEvents()
	if len(evs) != 1 || evs[0].Target != "LATCHKEY-LOGIN" {
		t.Errorf("events %+v, want only latchkey:mfa-required from the element", evs)
	}
	var challenge struct {
		Authenticated bool   `json:"authenticated"`
		MFARequired   bool   `json:"mfa_required"`
		MFAToken      string `json:"mfa_token"`
		AccessToken   string `json:"access_token"`
	}
	if err := json.Unmarshal(evs[0].Detail, &challenge); err != nil || challenge.Authenticated || !challenge.MFARequired ||
		challenge.MFAToken == "" || challenge.AccessToken != "" {
		t.Errorf("latchkey:mfa-required detail %v (%v), want the MFA challenge with an mfa_token and no tokens", evs[0], err)
	}
	if got := b.jsString(shadow + `.querySelector("[role=status]").textContent`); got != "Your account needs a second step to sign in." {
		t.Errorf("status %q", got)
	}
	if got := b.jsString(`String(` + shadow + `.getElementById("code-form").hidden)`); got != "true" {
		t.Errorf("the code form is still shown after the first factor was spent")
	}
	b.cleanPage("the MFA challenge", statusLine(http.StatusForbidden))
	b.screenshot("widget-en-mfa-required.png")
}

// TestWidgetRedirectInChromium embeds the widget in redirect mode, in German: its button sends
// the browser to /v1/authorize with an authorization code request with PKCE S256 whose
// challenge is the hash of the verifier saved in sessionStorage on the app's origin, and the
// state, nonce, organization, locale and login hint of the page. It asserts the URL the browser
// was sent to, not the page that answers it (the authorization endpoint is not this test's).
func TestWidgetRedirectInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	a, base, _, reqs := startBrowserApp(t)
	clientID, secret := widgetProject(t, ctx, a)
	host := startWidgetHost(t, base, clientID)
	callback := host.base + "/callback"
	patchSettings(t, base, secret, fmt.Sprintf(`{"allowed_origins":[%q],"redirect_uris":[%q]}`, host.base, callback))

	b := newChromiumTest(t, ctx, chromium, reqs)

	// Redirect mode without a redirect-uri is a mistake of the page: said on the widget and in
	// latchkey:error, and nothing is sent anywhere.
	b.do("open a page without redirect-uri", chromedp.Navigate(host.base+"/?mode=redirect&lang=en"))
	b.waitWidget("the configuration error is shown", `!`+shadow+`.getElementById("error").hidden`, true)
	if got := b.jsString(shadow + `.getElementById("error").textContent`); !strings.HasPrefix(got, "This sign-in form is not set up correctly.") ||
		!strings.Contains(got, "redirect-uri") {
		t.Errorf("configuration error %q, want the generic sentence naming redirect-uri", got)
	}
	if evs := b.widgetEvents(); len(evs) != 1 || evs[0].Type != "latchkey:error" || !strings.Contains(string(evs[0].Detail), `"code":"misconfigured"`) {
		t.Errorf("events %+v, want one latchkey:error with code misconfigured", evs)
	}
	if got := b.jsString(`String(` + shadow + `.querySelector("button"))`); got != "null" {
		t.Errorf("a misconfigured widget shows a button (%s), want none", got)
	}
	b.cleanPage("the misconfigured widget")

	// Without constructable stylesheets the widget styles itself with a <style> that carries
	// the page's nonce: allowed by the page's style-src, and applied.
	b.do("open a page without constructable stylesheets", chromedp.Navigate(host.base+"/?mode=redirect&lang=en&no-constructable=1&redirect-uri="+url.QueryEscape(callback)))
	b.waitWidget("the widget renders", shadow+`.getElementById("continue") !== null`, false)
	if got := b.jsString(`(() => { const s = ` + shadow + `.querySelector("style"); return s ? String(s.nonce !== "") : "none"; })()`); got != "true" {
		t.Errorf("the fallback <style>: %s, want one with the page's nonce", got)
	}
	if got := b.jsString(`getComputedStyle(` + shadow + `.getElementById("continue")).backgroundColor`); got != "rgb(79, 70, 229)" {
		t.Errorf("the button's background is %s without constructable stylesheets, want the primary colour", got)
	}
	b.cleanPage("the style fallback")

	q := url.Values{"mode": {"redirect"}, "lang": {"de"}, "redirect-uri": {callback}, "organization": {"acme"},
		"login-hint": {"ada@example.com"}, "class": {"themed"}}
	b.do("open the app's page", chromedp.Navigate(host.base+"/?"+q.Encode()))
	b.waitWidget("the widget renders", shadow+`.getElementById("continue") !== null`, false)
	if got := b.jsString(shadow + `.getElementById("continue").textContent`); got != "Weiter zur Anmeldung" {
		t.Errorf("German button %q", got)
	}
	// The page's theme reaches into the shadow root through the custom properties and parts.
	if got := b.jsString(`(() => { const s = getComputedStyle(` + shadow + `.getElementById("continue"));
		return [s.backgroundColor, s.borderTopLeftRadius, s.letterSpacing].join(" "); })()`); got != "rgb(0, 128, 0) 0px 1px" {
		t.Errorf("themed button: background, radius, letter spacing %q, want rgb(0, 128, 0) 0px 1px", got)
	}
	b.cleanPage("the redirect button")
	b.screenshot("widget-de-redirect.png")

	// An app may stop the navigation (say, to open it in a popup) by cancelling latchkey:redirect.
	b.do("cancel the first redirect", chromedp.Evaluate[chromedp.Void](`document.addEventListener("latchkey:redirect",
		(e) => { if (!window.redirectSeen) { window.redirectSeen = e.detail.url; e.preventDefault(); } })`))
	b.do("tab to the button and press Enter", chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Enter))
	b.waitWidget("the cancelable event, and the focus back on the button", `window.redirectSeen && !`+shadow+`.getElementById("continue").disabled && `+
		shadow+`.activeElement && `+shadow+`.activeElement.id === "continue"`, false)
	if seen := b.jsString(`window.redirectSeen`); !strings.HasPrefix(seen, base+"/v1/authorize?") || len(reqs.matching("GET", "/v1/authorize")) != 0 {
		t.Errorf("latchkey:redirect url %q, authorize requests %d: want the authorize URL and no navigation", seen, len(reqs.matching("GET", "/v1/authorize")))
	}
	b.do("press Enter again", chromedp.KeyEvent(kb.Enter))
	deadline := time.Now().Add(30 * time.Second)
	var sent []loggedRequest
	for len(sent) == 0 && time.Now().Before(deadline) {
		sent = reqs.matching("GET", "/v1/authorize")
		time.Sleep(50 * time.Millisecond) // polling the request log, not timing anything
	}
	if len(sent) != 1 {
		b.fatalf("requests of /v1/authorize %+v, want one", sent)
	}
	// The request lands on the hosted login page, which speaks the widget's language and logs
	// nothing (TestWidgetRedirectSignInInChromium goes on to a code).
	b.until("the hosted login page", `location.pathname === "/login" && document.readyState === "complete" &&
		["identifier", "methods"].includes(document.querySelector("main")?.dataset.screen)`)
	if got := b.jsString(`document.documentElement.lang`); got != "de" {
		t.Errorf("the hosted page's language is %q, want de (ui_locales)", got)
	}
	b.cleanPage("the hosted login page")
	b.screenshot("widget-de-hosted-page.png")

	// Back on the app's origin (its callback page), the saved request is in sessionStorage.
	b.do("open the callback page", chromedp.Navigate(callback))
	raw := b.jsString(`sessionStorage.getItem("latchkey.widget.authorize") || ""`)
	var saved struct {
		ClientID     string `json:"client_id"`
		RedirectURI  string `json:"redirect_uri"`
		Issuer       string `json:"issuer"`
		State        string `json:"state"`
		Nonce        string `json:"nonce"`
		CodeVerifier string `json:"code_verifier"`
		CreatedAt    string `json:"created_at"`
	}
	if err := json.Unmarshal([]byte(raw), &saved); err != nil {
		b.fatalf("sessionStorage latchkey.widget.authorize = %q: %v", raw, err)
	}
	if saved.ClientID != clientID || saved.RedirectURI != callback || saved.Issuer != base || saved.CreatedAt == "" {
		t.Errorf("saved request %+v, want client %s, redirect %s, issuer %s", saved, clientID, callback, base)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(saved.CodeVerifier) {
		t.Errorf("code_verifier %q: want 43 base64url characters (256 random bits)", saved.CodeVerifier)
	}
	for what, v := range map[string]string{"state": saved.State, "nonce": saved.Nonce} {
		if len(v) < 22 {
			t.Errorf("%s %q: want at least 128 random bits", what, v)
		}
	}

	// The module's helper for the callback hands the saved request over once, and only for
	// its state.
	took, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](fmt.Sprintf(`(async () => {
		const { takeAuthorization } = await import(%q);
		const saved = sessionStorage.getItem("latchkey.widget.authorize");
		const wrong = takeAuthorization("not-the-state");
		const afterWrong = sessionStorage.getItem("latchkey.widget.authorize");
		sessionStorage.setItem("latchkey.widget.authorize", saved);
		const right = takeAuthorization(%q);
		const again = takeAuthorization(%q);
		return [JSON.stringify(wrong), String(afterWrong), right ? right.code_verifier : "", JSON.stringify(again)];
	})()`, base+"/login/widget.js", saved.State, saved.State), chromedp.EvalAwaitPromise))
	if err != nil || !slices.Equal(took, []string{"null", "null", saved.CodeVerifier, "null"}) {
		t.Errorf("takeAuthorization (wrong state, removed after, right state, again) = %q (%v), want null, null, the verifier, null", took, err)
	}

	got, err := url.ParseQuery(sent[0].query)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(saved.CodeVerifier))
	want := url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {callback},
		"scope": {"openid profile email offline_access"}, "state": {saved.State}, "nonce": {saved.Nonce},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"organization": {"acme"}, "ui_locales": {"de"}, "login_hint": {"ada@example.com"},
	}
	if got.Encode() != want.Encode() {
		t.Errorf("the browser was sent to /v1/authorize?%s\nwant the parameters %s", sent[0].query, want.Encode())
	}
	b.cleanPage("the callback page")

	// The page's policy is as strict as claimed, and the detector sees what it blocks: an
	// inline script and a style attribute are both refused.
	violations, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`(() => {
		const s = document.createElement("script"); s.textContent = "1"; document.head.append(s);
		const d = document.createElement("div"); d.setAttribute("style", "color: red"); document.body.append(d);
		return true;
	})() && `+cspReports))
	if err != nil || !slices.ContainsFunc(violations, func(v string) bool { return strings.HasPrefix(v, "script-src") }) ||
		!slices.ContainsFunc(violations, func(v string) bool { return strings.HasPrefix(v, "style-src") }) {
		t.Errorf("an inline script and a style attribute on the app's page: CSP reports %q (%v), want both blocked", violations, err)
	}
}

// jsString evaluates expr on the page.
func (b *chromiumTest) jsString(expr string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.fatalf("evaluate %s: %v", expr, err)
	}
	return s
}

// widgetLogin is the part of the login result (API.md §2) the tests look at.
type widgetLogin struct {
	Authenticated bool   `json:"authenticated"`
	AccessToken   string `json:"access_token"`
	RefreshToken  string `json:"refresh_token"`
	User          struct {
		UserID string `json:"user_id"`
		Email  string `json:"email"`
	} `json:"user"`
	Profile struct {
		ConnectionType string `json:"connection_type"`
	} `json:"profile"`
}

// String shows the result without its tokens, only whether they are there.
func (l widgetLogin) String() string {
	return fmt.Sprintf("{authenticated:%v user:%s %s connection:%s access_token:%d bytes refresh_token:%d bytes}",
		l.Authenticated, l.User.UserID, l.User.Email, l.Profile.ConnectionType, len(l.AccessToken), len(l.RefreshToken))
}

// loginResult is the detail of the one latchkey:login the page saw, and clears the page's
// event list for the next step.
func (b *chromiumTest) loginResult() widgetLogin {
	b.t.Helper()
	var logins []widgetEvent
	for _, e := range b.widgetEvents() {
		if e.Type == "latchkey:login" {
			logins = append(logins, e)
		}
	}
	if len(logins) != 1 || logins[0].Target != "LATCHKEY-LOGIN" {
		b.fatalf("latchkey:login events %+v, want one from the element", logins)
	}
	var res widgetLogin
	if err := json.Unmarshal(logins[0].Detail, &res); err != nil {
		b.fatalf("latchkey:login detail %v: %v", logins[0], err)
	}
	b.do("clear the events", chromedp.Evaluate[chromedp.Void](`window.events.length = 0`))
	return res
}

// checkToken asks the server whose token the widget handed over.
func (b *chromiumTest) checkToken(base, clientID, token, email string) {
	b.t.Helper()
	status, body := call(b.t, "GET", base+"/api/v1/auth/status?client_id="+clientID, "",
		map[string]string{"Authorization": "Bearer " + token})
	var st struct {
		Authenticated bool `json:"authenticated"`
		User          struct {
			Email string `json:"email"`
		} `json:"user"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil || !st.Authenticated || st.User.Email != email {
		b.t.Errorf("GET /api/v1/auth/status with the widget's token: %d %s, want %s signed in", status, body, email)
	}
}

// mustProject is the id of the project with clientID.
func mustProject(t *testing.T, ctx context.Context, a *app.App, clientID string) string {
	t.Helper()
	p, err := a.Projects().ProjectByClientID(ctx, clientID)
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

// registerPasskeyJS is the app's own code adding a passkey for the signed-in user through the
// passkey API, from its origin; it evaluates to the status of the finishing call.
func registerPasskeyJS(auth, clientID, token string) string {
	return fmt.Sprintf(`(async () => {
	const api = %q + "/api/v1/auth/passwordless/passkey/register?client_id=" + %q;
	const headers = {"Authorization": "Bearer " + %q, "Accept": "application/json"};
	const b = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
	const u = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
	const opts = await (await fetch(api, {headers})).json();
	const o = opts.publicKey;
	const cred = await navigator.credentials.create({publicKey: {...o, challenge: b(o.challenge), user: {...o.user, id: b(o.user.id)},
		excludeCredentials: (o.excludeCredentials || []).map((c) => ({...c, id: b(c.id)}))}});
	const res = await fetch(api, {method: "POST", headers: {...headers, "Content-Type": "application/json"}, body: JSON.stringify({
		auth_code: opts.auth_code,
		publicKey: {id: cred.id, rawId: u(cred.rawId), type: cred.type, clientExtensionResults: {},
			response: {clientDataJSON: u(cred.response.clientDataJSON), attestationObject: u(cred.response.attestationObject),
				transports: cred.response.getTransports()}}})});
	return res.status;
})()`, auth, clientID, token)
}
