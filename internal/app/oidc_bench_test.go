package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/oidcprovider"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// oidcBench is the whole server on SQLite over loopback HTTP, with a browser already signed in
// to a public client's project (a browser session from one approval).
type oidcBench struct {
	b       *testing.B
	srv     *httptest.Server
	browser *http.Client
	proj    store.Project
}

func newOIDCBench(b *testing.B) *oidcBench {
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	b.Cleanup(srv.Close)
	a, err := app.NewWithStore(testdb.SQLite(b), app.WithPublicURL(srv.URL))
	if err != nil {
		b.Fatal(err)
	}
	h = a.Handler()
	ctx := context.Background()
	issued, err := a.Projects().Create(ctx, project.NewProject{Name: "Bench", RedirectURIs: []string{oidcRedirect}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.Projects().Update(ctx, audit.Actor{Kind: audit.ActorCLI}, issued.Project.ID, project.Update{Settings: []byte(
		`{"tokens":{"signing_algorithm":"EdDSA"},"oidc":{"token_endpoint_auth_method":"none"},` +
			// One loopback IP starts every request: the highest budget keeps its count (part of
			// the cost measured) without refusing a long run.
			`"protect":{"authorize_requests_per_hour":1000000}}`)}); err != nil {
		b.Fatal(err)
	}
	p, err := a.Store().GetProject(ctx, issued.Project.ID)
	if err != nil {
		b.Fatal(err)
	}
	cj, _ := cookiejar.New(nil)
	jar := loopbackJar{cj}
	w := &oidcBench{b: b, srv: srv, proj: p, browser: &http.Client{Jar: jar, Transport: srv.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}

	email := "bench@example.com"
	u, err := a.Directory().CreateUser(ctx, audit.Actor{Kind: audit.ActorCLI}, p.ID, directory.UserInput{Email: &email})
	if err != nil {
		b.Fatal(err)
	}
	res, err := a.Login().Complete(ctx, login.Request{Project: p, UserID: u.ID, ConnectionType: login.EmailOTP, AMR: []string{"otp"}})
	if err != nil {
		b.Fatal(err)
	}
	loc := w.follow(w.authorizeURL(""), 2)
	id := loc.Query().Get("authRequest")
	base, _ := url.Parse(srv.URL)
	var binding string
	for _, c := range jar.Cookies(base) {
		if c.Name == oidcprovider.BindingCookieName(id) {
			binding = c.Value
		}
	}
	approved, err := a.OIDC().Approve(ctx, id, binding, oidcprovider.Approval{Result: res})
	if err != nil {
		b.Fatal(err)
	}
	jar.SetCookies(base, []*http.Cookie{{Name: oidcprovider.BrowserSessionCookie, Value: approved.BrowserSession, Path: "/"}})
	return w
}

func (w *oidcBench) authorizeURL(prompt string) string {
	v := url.Values{"response_type": {"code"}, "client_id": {w.proj.ClientID}, "redirect_uri": {oidcRedirect},
		"scope": {"openid email offline_access"}, "state": {"st"}, "nonce": {"n"},
		"code_challenge": {s256(testVerifier)}, "code_challenge_method": {"S256"}}
	if prompt != "" {
		v.Set("prompt", prompt)
	}
	return w.srv.URL + "/v1/authorize?" + v.Encode()
}

// follow GETs u and follows n redirects, returning the last Location.
func (w *oidcBench) follow(u string, n int) *url.URL {
	var loc *url.URL
	for range n {
		resp, err := w.browser.Get(u)
		if err != nil {
			w.b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			w.b.Fatalf("GET %s: %d", u, resp.StatusCode)
		}
		if loc, err = resp.Request.URL.Parse(resp.Header.Get("Location")); err != nil {
			w.b.Fatal(err)
		}
		u = loc.String()
	}
	return loc
}

// code is a signed-in browser's round trip for a code: authorize, resume (single sign-on),
// callback.
func (w *oidcBench) code(prompt string) string {
	loc := w.follow(w.authorizeURL(prompt), 3)
	if !strings.HasPrefix(loc.String(), oidcRedirect) || loc.Query().Get("code") == "" {
		w.b.Fatalf("ended at %s", loc)
	}
	return loc.Query().Get("code")
}

// BenchmarkCodeExchange measures the token endpoint's authorization_code grant over HTTP on
// SQLite: op's checks (code, PKCE, client, redirect_uri), one transaction that starts the
// session with its refresh token and consumes the code, the access token and the id_token
// (EdDSA). Getting each code (a prompt=none round trip) is not timed.
func BenchmarkCodeExchange(b *testing.B) {
	w := newOIDCBench(b)
	form := url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {oidcRedirect}, "client_id": {w.proj.ClientID},
		"code_verifier": {testVerifier}}
	for b.Loop() {
		b.StopTimer()
		form.Set("code", w.code("none"))
		b.StartTimer()
		resp, err := w.browser.PostForm(w.srv.URL+"/api/v1/oauth2/token", form)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("exchange: %d", resp.StatusCode)
		}
	}
}

// BenchmarkPromptNone measures a signed-in browser's prompt=none round trip over HTTP on
// SQLite, from the authorize request to the client's redirect with a code: authorize (the
// stored request), resume (the browser session checked, the request approved), callback (the
// code saved).
func BenchmarkPromptNone(b *testing.B) {
	w := newOIDCBench(b)
	for b.Loop() {
		w.code("none")
	}
}
