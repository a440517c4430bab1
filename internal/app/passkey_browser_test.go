package app_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/browsertest"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestPasskeyInChromium drives the passkey page (/login/passkey) in a real headless Chromium
// with the DevTools virtual authenticator: a user signs in with an email code, adds a passkey,
// signs out and signs in again with the passkey through the discoverable flow (no identifier).
// The server runs in process on http://localhost:PORT, because an IP address cannot be a
// WebAuthn RP id. Outside CI the test is skipped when Chromium is missing; under CI=true it
// fails (scripts/chromium.sh installs it).
func TestPasskeyInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	a, base, mail, reqs := startBrowserApp(t)

	iss, err := a.Projects().Create(ctx, project.NewProject{Name: "Passkey browser test"})
	if err != nil {
		t.Fatal(err)
	}
	pid := iss.Project.ID

	b := newChromiumTest(t, ctx, chromium, reqs)
	tab := b.ctx

	// A platform authenticator that keeps discoverable credentials and verifies its user,
	// answering at once (no touch to wait for).
	if _, err := chromedp.Call(tab, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		b.fatalf("WebAuthn.enable: %v", err)
	}
	auth, err := chromedp.Call(tab, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:                    webauthn.AuthenticatorProtocolCtap2,
			Transport:                   webauthn.AuthenticatorTransportInternal,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              true,
			AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		b.fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}

	const email = "ada@example.com"
	b.do("open the page", chromedp.Navigate(base+"/login/passkey?client_id="+iss.Project.ClientID))
	b.do("wait for the sign-in form", chromedp.WaitVisible(chromedp.ID("email")))

	// 1. Sign in with an email code.
	b.do("ask for a code",
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.Click(chromedp.ID("send-code")),
	)
	code := b.codeFrom(mail, email)
	b.do("enter the code",
		chromedp.WaitVisible(chromedp.ID("code")),
		chromedp.SendKeys(chromedp.ID("code"), code),
		chromedp.Click(chromedp.ID("verify-code")),
	)
	b.waitFor("signed in by email code", signedInAs(email))
	u, err := a.Directory().GetUserByEmail(ctx, pid, email)
	if err != nil {
		b.fatalf("the user the email code signed in: %v", err)
	}
	if u.ConnectionType != login.EmailOTP {
		t.Errorf("after the email code the user's connection type is %q, want %q", u.ConnectionType, login.EmailOTP)
	}

	// 2. Add a passkey: the page lists it by name, the server holds it, the authenticator keeps
	// it as a discoverable credential for localhost.
	b.do("add a passkey", chromedp.Click(chromedp.ID("add-passkey")))
	b.waitFor("the new passkey in the list", `document.querySelectorAll("#passkeys li").length === 1 &&
		document.querySelector("#passkeys li").textContent.trim() !== ""`)
	listed := b.text("the listed passkey", chromedp.CSS("#passkeys li"))
	pks, err := a.Store().ListPasskeys(ctx, pid, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(pks) != 1 {
		b.fatalf("the server has %d passkeys for the user, want 1", len(pks))
	}
	if pks[0].Name == "" || listed != pks[0].Name {
		t.Errorf("the page lists the passkey as %q, the server names it %q", listed, pks[0].Name)
	}
	if !pks[0].UserVerified || pks[0].LastUsedAt != nil {
		t.Errorf("new passkey: user verified %v, last used %v; want verified and never used", pks[0].UserVerified, pks[0].LastUsedAt)
	}
	creds, err := chromedp.Call(tab, webauthn.GetCredentials, webauthn.GetCredentialsParams(auth))
	if err != nil {
		b.fatalf("WebAuthn.getCredentials: %v", err)
	}
	if len(creds.Credentials) != 1 || !creds.Credentials[0].IsResidentCredential || creds.Credentials[0].RpID != "localhost" ||
		string(creds.Credentials[0].CredentialID) != string(pks[0].CredentialID) {
		t.Errorf("the authenticator holds %+v, want one discoverable credential for localhost with the stored id", creds.Credentials)
	}

	// 3. Sign out. The signed-out page starts a conditional (autofill) request, which Chromium's
	// virtual authenticator answers at once with the only credential, signing the user straight
	// back in; a person would have to pick the passkey in the email field's autofill. So that
	// the test sees the signed-out page and then the button's modal request, it tells the page
	// that conditional mediation is unavailable, as in a browser without autofill support.
	b.do("turn off passkey autofill", chromedp.Evaluate[chromedp.Void](
		`PublicKeyCredential.isConditionalMediationAvailable = async () => false`))
	b.do("sign out", chromedp.Click(chromedp.ID("sign-out")))
	b.waitFor("signed out", `!document.getElementById("signed-out").hidden && document.getElementById("signed-in").hidden &&
		sessionStorage.getItem("latchkey.session") === null`)
	b.do("see the sign-in form again", chromedp.WaitVisible(chromedp.ID("passkey-login")))

	// 4. Sign in with the passkey, naming nobody: the browser offers the discoverable credential.
	optionsBefore := len(reqs.matching("GET", "/api/v1/auth/passwordless/passkey/login"))
	loginsBefore := len(reqs.matching("POST", "/api/v1/auth/passwordless/passkey/login"))
	b.do("sign in with the passkey", chromedp.Click(chromedp.ID("passkey-login")))
	b.waitFor("signed in by passkey", signedInAs(email))
	options := reqs.matching("GET", "/api/v1/auth/passwordless/passkey/login")[optionsBefore:]
	logins := reqs.matching("POST", "/api/v1/auth/passwordless/passkey/login")[loginsBefore:]
	if len(options) != 1 || len(logins) != 1 || logins[0].status != http.StatusOK {
		t.Errorf("after the click: options %+v, logins %+v; want one of each, the login a success", options, logins)
	}
	for _, r := range reqs.matching("GET", "/api/v1/auth/passwordless/passkey/login") {
		if strings.Contains(r.query, "identifier=") {
			t.Errorf("the page named the user when it asked for login options: %s?%s", r.path, r.query)
		}
	}
	if who := b.text("#who", chromedp.CSS("#who")); who != email {
		t.Errorf("#who = %q, want %q", who, email)
	}
	logs, err := a.Store().ListLoginLogs(ctx, pid, u.ID, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	// The log is ordered by id, whose time part has whole seconds, so two logins in the same
	// second may come in either order: count them by type.
	byType := map[string]int{}
	for _, l := range logs {
		byType[l.ConnectionType]++
	}
	if len(logs) != 2 || byType[login.Passkey] != 1 || byType[login.EmailOTP] != 1 {
		t.Errorf("login log by connection type: %v, want one %s and one %s", byType, login.Passkey, login.EmailOTP)
	}
	u, err = a.Directory().GetUser(ctx, pid, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.ConnectionType != login.Passkey || u.LastLoginAt == nil {
		t.Errorf("user after the passkey login: connection type %q, last login %v; want %q and a time", u.ConnectionType, u.LastLoginAt, login.Passkey)
	}
	if pks, err = a.Store().ListPasskeys(ctx, pid, u.ID); err != nil {
		t.Fatal(err)
	} else if len(pks) != 1 || pks[0].LastUsedAt == nil {
		t.Errorf("passkey after the login: %+v, want one with a last use", pks)
	}

	b.screenshot("passkey-signed-in.png")
}

// signedInAs is the page condition of being signed in as email.
func signedInAs(email string) string {
	return fmt.Sprintf(`!document.getElementById("signed-in").hidden && document.getElementById("signed-out").hidden &&
		document.getElementById("who").textContent === %q`, email)
}

// chromiumPath finds Chromium (browsertest.ChromiumPath).
func chromiumPath(t *testing.T) string { t.Helper(); return browsertest.ChromiumPath(t) }

// mailTrap is the email sender: it hands each message to the test.
type mailTrap struct {
	ch chan notify.Message
}

func (m *mailTrap) Send(ctx context.Context, msg notify.Message) error {
	select {
	case m.ch <- msg:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// requestLog records the requests the server answered, for assertions and for the failure
// report.
type requestLog struct {
	mu   sync.Mutex
	reqs []loggedRequest
}

type loggedRequest struct {
	method, path, query string
	status              int
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		l.mu.Lock()
		defer l.mu.Unlock()
		l.reqs = append(l.reqs, loggedRequest{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, status: sw.status})
	})
}

func (l *requestLog) matching(method, path string) []loggedRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []loggedRequest
	for _, r := range l.reqs {
		if r.method == method && r.path == path {
			out = append(out, r)
		}
	}
	return out
}

func (l *requestLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var sb strings.Builder
	for _, r := range l.reqs {
		fmt.Fprintf(&sb, "  %d %s %s\n", r.status, r.method, r.path)
	}
	return sb.String()
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// chromiumTest runs the steps of a browser test and, when one fails, reports what the page
// said, its console and the requests the server saw, with a screenshot.
type chromiumTest struct {
	t    *testing.T
	ctx  context.Context
	reqs *requestLog
	tab  *browsertest.Tab
}

func (b *chromiumTest) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.fatalf("%s: %v", step, err)
	}
}

func (b *chromiumTest) text(what string, sel chromedp.CSS) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(sel))
	if err != nil {
		b.fatalf("read %s: %v", what, err)
	}
	return strings.TrimSpace(s)
}

// waitFor polls the page until cond (a JavaScript expression) holds, and fails at once when
// the page shows an error message.
func (b *chromiumTest) waitFor(what, cond string) {
	b.t.Helper()
	expr := `(() => {
		const m = document.getElementById("message");
		if (m && m.className === "error" && m.textContent) return "error: " + m.textContent;
		return (` + cond + `) ? "ok" : false;
	})()`
	got, err := chromedp.Run(b.ctx, chromedp.Poll[string](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	switch {
	case err != nil:
		b.fatalf("wait until %s: %v", what, err)
	case got != "ok":
		b.fatalf("wait until %s: the page says %q", what, got)
	}
}

// codeFrom waits for the email to `to` and returns the code in it.
func (b *chromiumTest) codeFrom(mail *mailTrap, to string) string {
	b.t.Helper()
	for {
		select {
		case m := <-mail.ch:
			if m.To != to {
				continue
			}
			c := codeRE.FindStringSubmatch(m.Text)
			if c == nil {
				b.fatalf("no code in the email %q", m.Text)
			}
			return c[1]
		case <-b.ctx.Done():
			b.fatalf("no email to %s: %v", to, b.ctx.Err())
		}
	}
}

// screenshot saves the page as a PNG under $TEST_ARTIFACTS, or the test's temporary directory.
func (b *chromiumTest) screenshot(name string) {
	b.t.Helper()
	browsertest.Screenshot(b.t, b.ctx, name)
}

func (b *chromiumTest) fatalf(format string, args ...any) {
	b.t.Helper()
	// What the page shows, read with a short deadline of its own: the test's may be gone.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 5*time.Second)
	defer cancel()
	if msg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("message")?.textContent ?? ""`)); err == nil {
		b.t.Logf("page message: %q", msg)
	} else if !errors.Is(err, context.Canceled) {
		b.t.Logf("page message: unreadable: %v", err)
	}
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		dir := os.Getenv("TEST_ARTIFACTS")
		if dir == "" {
			dir = b.t.TempDir()
		}
		path := filepath.Join(dir, "passkey-failure.png")
		if os.MkdirAll(dir, 0o755) == nil && os.WriteFile(path, png, 0o644) == nil {
			b.t.Logf("screenshot of the failure: %s", path)
		}
	}
	b.t.Logf("browser console:\n  %s", strings.Join(b.tab.Console(), "\n  "))
	b.t.Logf("requests:\n%s", b.reqs)
	b.t.Fatalf(format, args...)
}

// startBrowserApp runs the whole server in process on http://localhost:PORT, with the outbox
// worker delivering to a mail trap and every request logged: the server of a browser test.
// It listens first to learn the port, which is part of the public URL: the RP id is its host,
// localhost (an IP address cannot be a WebAuthn RP id), and a page's origin must be the public
// URL's. Routes, when given, adds a test's own pages beside the API, on the same origin.
func startBrowserApp(t *testing.T, routes ...func(*http.ServeMux)) (*app.App, string, *mailTrap, *requestLog) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	mail := &mailTrap{ch: make(chan notify.Message, 16)}
	a, err := app.NewWithStore(testdb.SQLite(t), app.WithPublicURL(base),
		app.WithSenders(map[notify.Channel]notify.Sender{notify.Email: mail}))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", a.Handler())
	for _, add := range routes {
		add(mux)
	}
	reqs := &requestLog{}
	srv := httptest.NewUnstartedServer(reqs.wrap(mux))
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

// newChromiumTest starts headless Chromium (chromium is its path) with one tab collecting its
// console (browsertest.Open); both end with the test.
func newChromiumTest(t *testing.T, ctx context.Context, chromium string, reqs *requestLog) *chromiumTest {
	t.Helper()
	tab := browsertest.Open(t, ctx, chromium, 1024, 900)
	return &chromiumTest{t: t, ctx: tab.Ctx, reqs: reqs, tab: tab}
}
