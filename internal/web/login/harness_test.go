package login_test

import (
	"context"
	"errors"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/botcheck"
	"github.com/latchkey-dev/latchkey/internal/breach"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/login/logintest"
	"github.com/latchkey-dev/latchkey/internal/mfa"
	"github.com/latchkey-dev/latchkey/internal/oidcprovider"
	"github.com/latchkey-dev/latchkey/internal/passkey"
	"github.com/latchkey-dev/latchkey/internal/password"
	"github.com/latchkey-dev/latchkey/internal/passwordauth"
	"github.com/latchkey-dev/latchkey/internal/passwordless"
	"github.com/latchkey-dev/latchkey/internal/protect/protecthttp"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	weblogin "github.com/latchkey-dev/latchkey/internal/web/login"
)

// appCallback is the authorization callback the fake provider answers approvals with.
const appCallback = "https://auth.example.com/callback?id="

// fakeProvider stands in for the OpenID Provider: pending requests with their bindings, and a
// record of every approval.
type fakeProvider struct {
	callback string // the approvals' RedirectURL, before the request id
	mu       sync.Mutex
	pending  map[string]fakeRequest
	approved []approval
	denied   []string
	// signedIn are the browsers' sign-ins, by browser-session cookie value.
	signedIn map[string]oidcprovider.SignedIn
}

type fakeRequest struct {
	login   oidcprovider.PendingLogin
	binding string
}

type approval struct {
	id, binding string
	a           oidcprovider.Approval
}

func (f *fakeProvider) Pending(_ context.Context, id, binding string) (oidcprovider.PendingLogin, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.pending[id]
	if !ok || r.binding != binding {
		return oidcprovider.PendingLogin{}, failure.New(failure.NotFound, "auth_request_not_found", "no such authorization request")
	}
	return r.login, nil
}

func (f *fakeProvider) Approve(_ context.Context, id, binding string, a oidcprovider.Approval) (oidcprovider.Approved, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.pending[id]
	if !ok || r.binding != binding {
		return oidcprovider.Approved{}, failure.New(failure.NotFound, "auth_request_not_found", "no such authorization request")
	}
	if !a.Result.Authenticated {
		return oidcprovider.Approved{}, errors.New("approved a login that is not authenticated")
	}
	f.approved = append(f.approved, approval{id: id, binding: binding, a: a})
	delete(f.pending, id)
	return oidcprovider.Approved{RedirectURL: f.callback + id, BrowserSession: "bs_" + id,
		BrowserExpires: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)}, nil
}

// Deny answers a pending request with the user's refusal, as the provider does: it is no
// longer pending, and the browser goes to the callback (here marked &denied).
func (f *fakeProvider) Deny(_ context.Context, id, binding string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.pending[id]
	if !ok || r.binding != binding {
		return "", failure.New(failure.NotFound, "auth_request_not_found", "no such authorization request")
	}
	f.denied = append(f.denied, id)
	delete(f.pending, id)
	return f.callback + id + "&denied", nil
}

// SignedInAs answers from signedIn, for a pending request of the browser.
func (f *fakeProvider) SignedInAs(_ context.Context, id, binding, browserSession string) (oidcprovider.SignedIn, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.pending[id]
	if !ok || r.binding != binding {
		return oidcprovider.SignedIn{}, false, failure.New(failure.NotFound, "auth_request_not_found", "no such authorization request")
	}
	si, ok := f.signedIn[browserSession]
	return si, ok, nil
}

func (f *fakeProvider) denials() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.denied...)
}

func (f *fakeProvider) approvals() []approval {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]approval(nil), f.approved...)
}

// site is the page on a real login stack and a real HTTP server.
type site struct {
	*logintest.Stack
	t         *testing.T
	srv       *httptest.Server
	provider  *fakeProvider
	pwless    *passwordless.Service
	passwords *passwordauth.Service
	passkeys  *passkey.Service
	mfa       *mfa.Service
	pow       *botcheck.PoW
	p         store.Project
}

// newSite wires the page for a project with settings (a JSON object, "" for the defaults).
func newSite(t *testing.T, st *sqlstore.Store, settings string) *site {
	t.Helper()
	return newSiteAt(t, st, settings, nil, "")
}

// newSiteAt is newSite served on ln at base (its public URL, the passkeys' origin), for a
// browser; with no ln, on a loopback port of its own with the stack's issuer as the passkeys'
// origin.
func newSiteAt(t *testing.T, st *sqlstore.Store, settings string, ln net.Listener, base string) *site {
	t.Helper()
	s := &site{Stack: logintest.New(t, st), t: t, provider: &fakeProvider{callback: appCallback, pending: map[string]fakeRequest{},
		signedIn: map[string]oidcprovider.SignedIn{}}}
	passkeyOrigin, pageURL := logintest.Issuer, "http://127.0.0.1"
	if base != "" {
		passkeyOrigin, pageURL, s.provider.callback = base, base, base+"/done?id="
	}
	now := s.Clock.Now
	s.pwless = passwordless.New(passwordless.Deps{Store: st, Login: s.Login, Protect: s.Protect, Sealer: s.Ring,
		Settings: s.Projects.Settings, PublicURL: logintest.Issuer, Delivery: logintest.Delivery, Now: now})
	hasher, err := password.New(password.DefaultParams(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.passwords = passwordauth.New(passwordauth.Deps{Store: st, Login: s.Login, Protect: s.Protect, Notices: s.Notices,
		Breached: breach.NewChecker(breach.NewOffline(), nil), Sessions: s.Sessions, Hasher: hasher,
		Settings: s.Projects.Settings, Sealer: s.Ring, Delivery: logintest.Delivery, Now: now,
		EnumerationKey: []byte("a test enumeration key, 32 bytes")})
	if s.passkeys, err = passkey.New(passkey.Deps{Store: st, Login: s.Login, Guard: s.Protect, Notices: s.Notices,
		Settings: s.Projects.Settings, PublicURL: passkeyOrigin, EnumerationKey: []byte("a test enumeration key, 32 bytes"),
		Now: now}); err != nil {
		t.Fatal(err)
	}
	s.mfa = mfa.New(mfa.Deps{Store: st, Login: s.Login, Settings: s.Projects.Settings, Tokens: s.MFATokens,
		TOTP:     mfa.NewTOTP(mfa.TOTPDeps{Store: st, Sealer: s.Ring, Now: now}),
		Codes:    mfa.NewRecoveryCodes(mfa.RecoveryCodesDeps{Store: st, Now: now}),
		Passkeys: s.passkeys, Protect: s.Protect, Notices: s.Notices, Sealer: s.Ring, Delivery: logintest.Delivery, Now: now})
	if s.pow, err = botcheck.NewPoW(botcheck.PoWConfig{Key: []byte("a test proof-of-work key, 32 b!!"), MaxNumber: 1000,
		Spent: botcheck.NewMemorySpender(now), Now: now}); err != nil {
		t.Fatal(err)
	}
	gate := protecthttp.Handler{PoW: s.pow, Risk: s.Protect, Settings: s.Projects.Settings}
	h, err := weblogin.New(weblogin.Deps{Authorizations: s.provider, Projects: s.Projects, Passwordless: s.pwless, Flows: st,
		Passwords: s.passwords, Passkeys: s.passkeys, MFA: s.mfa, Directory: s.Directory, Sessions: st, Sealer: s.Ring,
		BotCheck: gate.Gate, PublicURL: pageURL, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rt := httpserver.NewRouter(s.Projects, log)
	h.Mount(rt)
	gate.Mount(rt)
	mux := http.NewServeMux()
	mux.Handle("/", rt)
	// The application the browser returns to, in browser tests.
	mux.HandleFunc("GET /done", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, `<!doctype html><html lang="en"><head><title>Done</title></head><body><h1 id="done">Signed in</h1></body></html>`)
	})
	s.srv = httptest.NewUnstartedServer(httpserver.SecureHeaders(mux, pageURL))
	if ln != nil {
		s.srv.Listener.Close()
		s.srv.Listener = ln
	}
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	s.p = s.Project(t, settings)
	return s
}

// request makes a pending authorization request bound to a new browser, and returns both.
func (s *site) request(id string, scopes []string, edit func(*oidcprovider.PendingLogin)) *browser {
	s.t.Helper()
	b := s.browser()
	binding := "binding-" + id
	pl := oidcprovider.PendingLogin{ID: id, Project: s.p, RedirectURI: "https://app.acme.test/done", Scopes: scopes,
		ExpiresAt: s.Clock.Now().Add(10 * time.Minute)}
	if edit != nil {
		edit(&pl)
	}
	s.provider.mu.Lock()
	s.provider.pending[id] = fakeRequest{login: pl, binding: binding}
	s.provider.mu.Unlock()
	b.setCookie(oidcprovider.BindingCookieName(id), binding)
	b.query = url.Values{"authRequest": {id}}
	return b
}

// browser is a cookie-keeping client that does not follow redirects, like a browser with
// JavaScript off whose every step the test looks at.
type browser struct {
	s      *site
	t      *testing.T
	client *http.Client
	query  url.Values
	lang   string
	// last is the body of the last page, for its form fields.
	last string
}

func (s *site) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return &browser{s: s, t: s.t, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) setCookie(name, value string) {
	u, _ := url.Parse(b.s.srv.URL)
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

type page struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	p := page{status: res.StatusCode, body: string(body), location: res.Header.Get("Location"), header: res.Header}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		b.last = p.body
	}
	return p
}

// open GETs the page (path with the browser's query when path has none).
func (b *browser) open(path string) page {
	b.t.Helper()
	if !strings.Contains(path, "?") && b.query != nil {
		path += "?" + b.query.Encode()
	}
	req, err := http.NewRequest(http.MethodGet, b.s.srv.URL+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// submit posts a form of the last page with action and the extra fields, as a browser would:
// the hidden context and CSRF fields come from that page.
func (b *browser) submit(action string, fields url.Values) page {
	b.t.Helper()
	form := url.Values{"action": {action}}
	for _, name := range []string{"csrf", "authRequest", "client_id", "redirect_uri"} {
		if v := hiddenField(b.last, name); v != "" {
			form.Set(name, v)
		}
	}
	for k, v := range fields {
		form[k] = v
	}
	return b.post(form)
}

func (b *browser) post(form url.Values) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.s.srv.URL+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// follow opens a 303's target on the site.
func (b *browser) follow(p page) page {
	b.t.Helper()
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/login") {
		b.t.Fatalf("want a 303 back to the page, got %d to %q:\n%s", p.status, p.location, p.body)
	}
	return b.open(p.location)
}

// step posts action and opens the page it leads back to.
func (b *browser) step(action string, fields url.Values) page {
	b.t.Helper()
	return b.follow(b.submit(action, fields))
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-zA-Z_]+)" value="([^"]*)"`)

func hiddenField(body, name string) string {
	for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
		if m[1] == name {
			return html.UnescapeString(m[2])
		}
	}
	return ""
}

// screen is the data-screen of a page.
func screen(body string) string {
	m := regexp.MustCompile(`data-screen="([a-z_]+)"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

func wantScreen(t *testing.T, p page, want string) {
	t.Helper()
	if got := screen(p.body); got != want || p.status != http.StatusOK {
		t.Fatalf("screen %q (status %d), want %q:\n%s", got, p.status, want, p.body)
	}
}

var codeRE = regexp.MustCompile(`\b(\d{6})\b`)

// code is the code in the newest message to dest.
func (s *site) code(t *testing.T, dest string) string {
	t.Helper()
	msgs := s.Messages(t, dest)
	if len(msgs) == 0 {
		t.Fatalf("no message to %s", dest)
	}
	// The newest message with a code: messages queued in one second of the test clock may come
	// in any order, and notices carry none.
	for _, msg := range msgs {
		if m := codeRE.FindStringSubmatch(msg.Text); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no code to %s in %d messages", dest, len(msgs))
	return ""
}

// clickLink opens the magic link in the newest message to dest as its own landing does
// (passwordlesshttp's verify route calls VerifyLink), and returns where that sends the browser.
func (s *site) clickLink(t *testing.T, dest string) string {
	t.Helper()
	msgs := s.Messages(t, dest)
	if len(msgs) == 0 {
		t.Fatalf("no message to %s", dest)
	}
	// The newest magic link: messages queued in one second of the test clock may come in any
	// order, so the newest message may be another kind.
	var m string
	for _, msg := range msgs {
		if m = regexp.MustCompile(`https?://\S+magic-link/verify\?\S+`).FindString(msg.Text); m != "" {
			break
		}
	}
	u, err := url.Parse(strings.TrimRight(m, ".)>"))
	if err != nil || m == "" {
		t.Fatalf("no magic link to %s", dest)
	}
	to, err := s.pwless.VerifyLink(t.Context(), s.p, u.Query().Get("state"), u.Query().Get("magictext"), audit.Meta{IPAddress: "127.0.0.1"})
	if err != nil {
		t.Fatalf("verify the link: %v", err)
	}
	return to
}

// user creates a user with an email.
func (s *site) user(t *testing.T, email string) directory.User {
	t.Helper()
	verified := true
	u, err := s.Directory.CreateUser(t.Context(), audit.Actor{Kind: audit.ActorCLI}, s.p.ID,
		directory.UserInput{Email: &email, EmailVerified: &verified})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// outboxSize counts every queued message.
func (s *site) outboxSize(t *testing.T) int {
	t.Helper()
	rows, err := s.Store.ListOutbox(t.Context(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(rows)
}
