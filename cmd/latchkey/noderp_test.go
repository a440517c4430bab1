package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The Node relying parties of issue 15 ("Must show 1"): npm's openid-client and Auth.js
// (@auth/core with the SSOJet provider, configured with Latchkey as the issuer), run as stock
// applications against the real binary on loopback. The scripts live in tools/oidc-rp (see its
// lib.mjs for the JSON-lines conversation); scripts/node-deps.sh installs their packages with
// npm ci from the committed lockfile. Outside CI the tests skip without Node.js 20 or the
// packages; under CI=true they fail.

// oidcRPDir is tools/oidc-rp, relative to this package's directory (where go test runs).
var oidcRPDir = filepath.Join("..", "..", "tools", "oidc-rp")

// nodeRPResult is the last line a relying-party script prints: what it verified.
type nodeRPResult struct {
	Step  string `json:"step"`
	Error string `json:"error"`
	// URL is the authorization URL (the "authorize" line only).
	URL string `json:"url"`
	// Library is "openid-client" or "@auth/core"; Provider says where Auth.js's SSOJet
	// provider came from (the built-in one, or the copy while @auth/core lacks it).
	Library  string `json:"library"`
	Provider string `json:"provider"`
	Sub      string `json:"sub"`
	Email    string `json:"email"`
	// Claims are the id_token's, verified against the JWKS from discovery.
	Claims   map[string]any `json:"claims"`
	Userinfo map[string]any `json:"userinfo"`
	// Session is Auth.js's /session answer (authjs.mjs only).
	Session   map[string]any `json:"session"`
	Refreshed bool           `json:"refreshed"`
	Revoked   bool           `json:"revoked"`
	// LogoutURL is the RP-initiated logout URL; it carries the id_token as id_token_hint, so
	// it is never printed in a failure message.
	LogoutURL string `json:"logout_url"`
}

// rpEnvKeys are the settings the scripts read; a developer's own values must not leak in (a
// CLIENT_SECRET in the shell would turn a public-client test into a confidential one).
var rpEnvKeys = []string{"ISSUER", "CLIENT_ID", "CLIENT_SECRET", "REDIRECT_URI", "SCOPE",
	"POST_LOGOUT_REDIRECT_URI", "TOKEN_ENDPOINT_AUTH_METHOD"}

// runNodeRP runs tools/oidc-rp/<script> with env, answers its authorization URL with the
// callback URL signIn returns (after signing the user in on the OP's page), and returns the
// script's final result. Anything but a "done" line fails the test with the script's stderr
// (the scripts write no token, code or secret there).
func runNodeRP(t *testing.T, script string, env map[string]string, signIn func(authURL string) (callbackURL string)) nodeRPResult {
	t.Helper()
	node := nodeForRP(t)

	// A guard against a hung script, not a measure of speed: a run takes about a second.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = oidcRPDir
	for _, kv := range cleanEnv() {
		if k, _, _ := strings.Cut(kv, "="); !slices.Contains(rpEnvKeys, k) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node %s: %v", script, err)
	}
	lines := make(chan []byte)
	exited := make(chan struct{})
	var exitErr error
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20) // a line with an id_token is a few KB
		for sc.Scan() {
			lines <- bytes.Clone(sc.Bytes())
		}
		close(lines)
		exitErr = cmd.Wait() // after the last read, as os/exec requires
		close(exited)
	}()
	stop := func() {
		cancel()
		for range lines {
		}
		<-exited
	}
	// However the test ends (signIn may t.Fatal), the script does not outlive it.
	t.Cleanup(stop)
	fail := func(format string, args ...any) {
		t.Helper()
		stop()
		t.Fatalf("node %s: %s\nstderr:\n%s", script, fmt.Sprintf(format, args...), stderr.String())
	}
	next := func(want string) nodeRPResult {
		t.Helper()
		line, ok := <-lines
		if !ok {
			fail("exited before printing its %s line", want)
		}
		var msg nodeRPResult
		if err := json.Unmarshal(line, &msg); err != nil {
			// Not the line itself: it may hold a token.
			fail("printed a line that is not a JSON object (%d bytes): %v", len(line), err)
		}
		switch msg.Step {
		case want:
		case "error":
			fail("%s", msg.Error)
		default:
			fail("printed step %q, want %s", msg.Step, want)
		}
		return msg
	}

	authorize := next("authorize")
	callback := signIn(authorize.URL)
	answer, err := json.Marshal(map[string]string{"callback_url": callback})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stdin.Write(append(answer, '\n')); err != nil {
		fail("write the callback URL: %v", err)
	}
	res := next("done")
	if _, more := <-lines; more {
		fail("printed more after its done line")
	}
	<-exited
	if exitErr != nil {
		fail("exited with %v after printing done", exitErr)
	}
	return res
}

// nodeForRP returns the node executable once tools/oidc-rp's packages are installed at the
// versions package.json pins, running npm ci when they are not. Without Node.js 20 or newer,
// npm, or a registry, the test is skipped, and under CI=true failed.
func nodeForRP(t *testing.T) string {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format+"; CI=true requires the Node relying-party tests: run scripts/node-deps.sh", args...)
		}
		t.Skipf(format+" (scripts/node-deps.sh installs it); skipping the Node relying-party test", args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable("node is not installed")
	}
	out, err := exec.Command(node, "-p", "process.versions.node").Output()
	if err != nil {
		unavailable("node -p process.versions.node: %v", err)
	}
	major, _ := strconv.Atoi(strings.SplitN(strings.TrimSpace(string(out)), ".", 2)[0])
	if major < 20 {
		unavailable("node %s is too old: openid-client v6 and Auth.js need Node.js 20 or newer", strings.TrimSpace(string(out)))
	}

	var pinned struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if b, err := os.ReadFile(filepath.Join(oidcRPDir, "package.json")); err != nil || json.Unmarshal(b, &pinned) != nil ||
		len(pinned.Dependencies) == 0 {
		t.Fatalf("read the pinned versions from %s/package.json: %v", oidcRPDir, err)
	}
	installed := func() bool {
		for name, version := range pinned.Dependencies {
			var pkg struct {
				Version string `json:"version"`
			}
			b, err := os.ReadFile(filepath.Join(oidcRPDir, "node_modules", filepath.FromSlash(name), "package.json"))
			if err != nil || json.Unmarshal(b, &pkg) != nil || pkg.Version != version {
				return false
			}
		}
		return true
	}
	if installed() {
		return node
	}
	npmInstall.Lock()
	defer npmInstall.Unlock()
	if installed() { // another test installed them while this one waited
		return node
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		unavailable("npm is not installed")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = oidcRPDir
	if out, err := cmd.CombinedOutput(); err != nil {
		unavailable("npm ci in %s: %v\n%s", oidcRPDir, err, out)
	}
	return node
}

// npmInstall keeps parallel tests from running npm ci in tools/oidc-rp at the same time.
var npmInstall sync.Mutex

// lockedBuffer is a bytes.Buffer safe for the process's writes and the test's reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestNodeRPChecks runs tools/oidc-rp's own tests (node --test): the id_token checks the
// scripts make on top of their libraries refuse a foreign key, issuer, audience, nonce, an
// expired or unsigned token, and the configuration refuses what would leak a secret. They
// need no OpenID Provider, so they guard the scripts while the provider is being built.
func TestNodeRPChecks(t *testing.T) {
	node := nodeForRP(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a guard against a hang
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=tap", "lib.test.mjs")
	cmd.Dir, cmd.Env = oidcRPDir, cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test lib.test.mjs: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "\n# fail 0") || strings.Contains(string(out), "\n# pass 0") {
		t.Fatalf("node --test lib.test.mjs ran no passing test, or a failing one:\n%s", out)
	}
}

// TestOpenIDClientRelyingParty signs a user in to Latchkey through npm's openid-client, as a
// confidential client (client_secret_basic) and as a public one (PKCE only).
func TestOpenIDClientRelyingParty(t *testing.T) {
	testNodeRelyingParty(t, "openid-client.mjs", "/callback")
}

// TestAuthJSRelyingParty signs a user in to Latchkey through Auth.js's SSOJet provider
// configured with only Latchkey's issuer and the project's client id (and secret).
func TestAuthJSRelyingParty(t *testing.T) {
	testNodeRelyingParty(t, "authjs.mjs", "/auth/callback/ssojet")
}

// testNodeRelyingParty runs script against one server, for a confidential and a public client
// of the Default project, and checks what the RP saw against what Latchkey knows.
func testNodeRelyingParty(t *testing.T, script, callbackPath string) {
	nodeForRP(t) // skip (or fail under CI) before starting anything
	addr := freeLoopbackAddr(t)
	issuer := "http://" + addr
	// The issuer is the public URL, so the server must listen where the public URL says.
	s := startServer(t, "--data-dir", t.TempDir(), "--dev", "--addr", addr, "--public-url", issuer)
	discovery := oidcDiscovery(t, s)
	clientID, secret := s.credentials()

	// The app: it only records where the browser lands, as a real RP's callback route would
	// receive it, and the page the user sees after logging out.
	var mu sync.Mutex
	var landed []string
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		landed = append(landed, r.URL.RequestURI())
		mu.Unlock()
		fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(app.Close)
	redirectURI := app.URL + callbackPath
	postLogout := app.URL + "/signed-out"

	for _, tc := range []struct {
		name       string
		authMethod string
		secret     string
	}{
		{"confidential", "client_secret_basic", secret},
		{"public", "none", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			email := "rp-" + tc.name + "@example.com"
			patchSettings(t, s, secret, map[string]any{
				"redirect_uris": []string{redirectURI},
				"oidc": map[string]any{
					"post_logout_redirect_uris":  []string{postLogout},
					"token_endpoint_auth_method": tc.authMethod,
				},
			})
			env := map[string]string{
				"ISSUER":                   issuer,
				"CLIENT_ID":                clientID,
				"REDIRECT_URI":             redirectURI,
				"SCOPE":                    "openid profile email offline_access",
				"POST_LOGOUT_REDIRECT_URI": postLogout,
			}
			if tc.secret != "" {
				env["CLIENT_SECRET"] = tc.secret
				env["TOKEN_ENDPOINT_AUTH_METHOD"] = tc.authMethod
			}
			var code string
			res := runNodeRP(t, script, env, func(authURL string) string {
				cb := signInOnHostedPage(t, newBrowser(t), authURL, issuer, redirectURI, email)
				u, err := url.Parse(cb)
				if err != nil {
					t.Fatalf("callback URL: %v", err)
				}
				code = u.Query().Get("code")
				return cb
			})

			if res.Sub == "" || res.Claims["sub"] != res.Sub || res.Userinfo["sub"] != res.Sub {
				t.Errorf("sub: result %q, id_token %v, userinfo %v: want one non-empty subject", res.Sub, res.Claims["sub"], res.Userinfo["sub"])
			}
			if res.Claims["iss"] != issuer {
				t.Errorf("id_token iss %v, want %s", res.Claims["iss"], issuer)
			}
			if res.Email != email || res.Claims["email"] != email || res.Userinfo["email"] != email {
				t.Errorf("email: result %q, id_token %v, userinfo %v, want %s", res.Email, res.Claims["email"], res.Userinfo["email"], email)
			}
			if res.Claims["email_verified"] != true || res.Userinfo["email_verified"] != true {
				t.Errorf("email_verified: id_token %v, userinfo %v; an email-code login verifies the address",
					res.Claims["email_verified"], res.Userinfo["email_verified"])
			}
			if !res.Refreshed || !res.Revoked {
				t.Errorf("refreshed %v, revoked %v: the RP must refresh (rotating) and revoke (RFC 7009)", res.Refreshed, res.Revoked)
			}
			if script == "authjs.mjs" {
				user, _ := res.Session["user"].(map[string]any)
				if user["email"] != email || user["sub"] != res.Sub {
					t.Errorf("Auth.js session user %v, want %s / %s", user, email, res.Sub)
				}
				t.Logf("Auth.js SSOJet provider: %s", res.Provider)
			}
			if code == "" {
				t.Fatal("the callback URL had no code")
			}
			if strings.Contains(s.stderr.String(), code) {
				t.Error("the authorization code is in the server's log")
			}

			checkLogout(t, res.LogoutURL, discovery.EndSessionEndpoint, postLogout, func() []string {
				mu.Lock()
				defer mu.Unlock()
				return slices.Clone(landed)
			})
		})
	}
}

// oidcDiscovery reads the server's discovery document, which must name the public URL as the
// issuer.
func oidcDiscovery(t *testing.T, s *server) (doc struct {
	Issuer             string `json:"issuer"`
	EndSessionEndpoint string `json:"end_session_endpoint"`
}) {
	t.Helper()
	resp, err := http.Get(s.base + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&doc); resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("discovery: %d %v", resp.StatusCode, err)
	}
	if doc.Issuer != s.base {
		t.Fatalf("discovery issuer %q, want the public URL %s", doc.Issuer, s.base)
	}
	return doc
}

// signInOnHostedPage is the browser without JavaScript: it follows the authorization URL's
// redirects with browser (newBrowser: its cookie jar keeps the OP's cookies for what the test
// does next in the same browser) to the hosted page, /login?authRequest=…, signs email in
// there, and returns the URL the OP finally sends it to, which must be on redirectURI.
func signInOnHostedPage(t *testing.T, browser *http.Client, authURL, issuer, redirectURI, email string) string {
	t.Helper()
	b := &hostedBrowser{t: t, client: noRedirects(browser), origin: issuer}
	p, leave := b.open(authURL)
	if leave != "" {
		u, _ := url.Parse(leave)
		t.Fatalf("the authorization URL sent the browser to %s://%s%s (error=%q) before any login page", u.Scheme, u.Host, u.Path,
			u.Query().Get("error"))
	}
	login := p.URL
	if login.String() != issuer+login.RequestURI() || login.Path != "/login" || login.Query().Get("authRequest") == "" {
		t.Fatalf("the authorization URL led to %s, want the hosted page %s/login?authRequest=…", login.Redacted(), issuer)
	}
	callback := signInWithEmailCode(t, browser, login.String(), email)
	cb, err := url.Parse(callback)
	if err != nil {
		t.Fatalf("callback URL: %v", err)
	}
	want, _ := url.Parse(redirectURI)
	if cb.Scheme != want.Scheme || cb.Host != want.Host || cb.Path != want.Path {
		t.Fatalf("the sign-in ended on %s://%s%s, want %s", cb.Scheme, cb.Host, cb.Path, redirectURI)
	}
	if e := cb.Query().Get("error"); e != "" {
		t.Fatalf("the OP answered the RP with error=%s (%s)", e, cb.Query().Get("error_description"))
	}
	return callback
}

// signInWithEmailCode signs email in on the hosted login page at loginURL with the no-JS
// email-code flow, using client (its cookie jar holds the authorization request's binding
// cookie; it must be a loopback jar, see newBrowser), and returns the URL the browser is
// finally redirected to: the RP's redirect_uri with code and state. That redirect is not
// followed: the code is the relying party's to exchange.
func signInWithEmailCode(t *testing.T, client *http.Client, loginURL, email string) string {
	t.Helper()
	callback, _ := signInWithEmailCodeSteps(t, client, loginURL, email)
	return callback
}

// signInWithEmailCodeSteps is signInWithEmailCode that also returns every request it made, for
// the test that the flow needs no script. Each screen is answered through its own form, as a
// person without JavaScript would: identifier → "email me a code" → the code read from the dev
// inbox → "not now" to the passkey offer, if shown; the page's post/redirect/get answers (303)
// are followed on the OP up to the first redirect that leaves it.
func signInWithEmailCodeSteps(t *testing.T, client *http.Client, loginURL, email string) (string, []pageStep) {
	t.Helper()
	lu, err := url.Parse(loginURL)
	if err != nil {
		t.Fatalf("login URL: %v", err)
	}
	origin := lu.Scheme + "://" + lu.Host
	b := &hostedBrowser{t: t, client: noRedirects(client), origin: origin}
	p, leave := b.open(loginURL)
	sentBefore := -1
	seen := map[string]bool{}
	for leave == "" {
		if seen[p.Screen] {
			// A screen shown again is a refusal (a wrong code, an expired request): its alert says which.
			t.Fatalf("the hosted page showed the %q screen again, with error %q", p.Screen, p.Error)
		}
		seen[p.Screen] = true
		var next string
		switch p.Screen {
		case "identifier":
			next = b.submit(p, p.formWith(t, "identify", ""), map[string]string{"identifier": email})
		case "methods":
			sentBefore = inboxCount(t, origin, email)
			next = b.submit(p, p.formWith(t, "send", "email_otp"), nil)
		case "code":
			if sentBefore < 0 {
				t.Fatal("the hosted page asked for a code before one was sent")
			}
			code := waitForCodeAfter(t, origin, email, sentBefore)
			next = b.submit(p, p.formWith(t, "verify_code", ""), map[string]string{"code": code})
		case "passkey_offer":
			next = b.submit(p, p.formWith(t, "skip_passkey", ""), nil)
		default:
			t.Fatalf("the hosted page showed the %q screen (error %q); this no-JS email-code sign-in does not expect it", p.Screen, p.Error)
		}
		if !strings.HasPrefix(next, origin+"/") {
			leave = next // the page itself sent the browser to the client
			break
		}
		p, leave = b.open(next)
	}
	return leave, b.Steps
}

// noRedirects is client with its cookie jar and transport, leaving redirects to the caller.
func noRedirects(client *http.Client) *http.Client {
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// checkLogout follows the RP-initiated logout URL the script built: it must be the discovered
// end_session_endpoint, and the OP must send the browser back to postLogout with the state the
// RP sent.
func checkLogout(t *testing.T, logoutURL, endSession, postLogout string, landed func() []string) {
	t.Helper()
	if logoutURL == "" {
		t.Fatal("the RP built no logout URL: discovery has no end_session_endpoint")
	}
	lu, err := url.Parse(logoutURL)
	if err != nil {
		t.Fatalf("logout URL does not parse: %v", err)
	}
	state := lu.Query().Get("state")
	if got := lu.Scheme + "://" + lu.Host + lu.Path; got != endSession || lu.Query().Get("id_token_hint") == "" ||
		lu.Query().Get("post_logout_redirect_uri") != postLogout || state == "" {
		// Not the URL itself: its id_token_hint is a token.
		t.Fatalf("logout URL on %s with params %v, want %s with id_token_hint, post_logout_redirect_uri %s, state",
			got, slices.Sorted(maps.Keys(lu.Query())), endSession, postLogout)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := client.Get(logoutURL)
	if err != nil {
		t.Fatalf("GET the logout URL: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	end := resp.Request.URL
	if resp.StatusCode != http.StatusOK || end.Scheme+"://"+end.Host+end.Path != postLogout || end.Query().Get("state") != state {
		t.Fatalf("logout ended with %d on %s://%s%s (state %q), want %s with the RP's state", resp.StatusCode,
			end.Scheme, end.Host, end.Path, end.Query().Get("state"), postLogout)
	}
	if l := landed(); len(l) == 0 || !strings.HasPrefix(l[len(l)-1], "/signed-out?") {
		t.Errorf("the app's last request was %v, want its post-logout page", l)
	}
}

// patchSettings changes the Default project's settings through the management API.
func patchSettings(t *testing.T, s *server, secret string, settings map[string]any) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"settings": settings})
	if err != nil {
		t.Fatal(err)
	}
	status, resp, err := request(t, http.DefaultClient, http.MethodPatch, s.base+"/api/v1/project", secret, string(body))
	if err != nil || status != http.StatusOK {
		t.Fatalf("PATCH /api/v1/project %s: %d %s %v", body, status, resp, err)
	}
}

// freeLoopbackAddr returns a 127.0.0.1 address with a port free a moment ago. The OIDC tests
// need the port before the server starts, because the issuer (the public URL) names it.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
