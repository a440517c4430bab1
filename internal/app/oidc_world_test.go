package app_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/oidcprovider"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testclock"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// oidcRedirect is the relying party's registered redirect_uri; nothing listens there: the tests
// read the code from the Location header.
const (
	oidcRedirect = "https://rp.example/callback"
	oidcGoodbye  = "https://rp.example/goodbye"
)

// oidcWorld is the whole server on its own loopback URL, which is the issuer (a relying party
// checks that discovery's issuer is the URL it fetched), with a browser: a client with a
// cookie jar that does not follow redirects. Every exchange goes through the OpenAPI check.
type oidcWorld struct {
	*flowWorld
	browser *http.Client
	jar     http.CookieJar
}

// loopbackJar is a browser's cookie jar on loopback: browsers send Secure cookies to
// http://127.0.0.1 (a secure context), Go's jar only over https.
type loopbackJar struct{ *cookiejar.Jar }

func (j loopbackJar) SetCookies(u *url.URL, cs []*http.Cookie) {
	for _, c := range cs {
		c.Secure = false
	}
	j.Jar.SetCookies(u, cs)
}

// newOIDCWorld starts the server with a project whose oidc settings are patched with
// oidcSettings (a JSON object, "" for none) on top of a public client (auth method none).
func newOIDCWorld(t *testing.T, st *sqlstore.Store, oidcSettings string, opts ...app.Option) *oidcWorld {
	t.Helper()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	checkAgainstOpenAPI(t, srv)
	tw := &tokenWorld{t: t, clock: testclock.New(time.Now().UTC().Truncate(time.Second)), srv: srv}
	var err error
	tw.a, err = app.NewWithStore(st, append([]app.Option{app.WithPublicURL(srv.URL), app.WithClock(tw.clock.Now), app.WithDev(true)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	h = tw.a.Handler()
	if tw.proj, err = tw.a.Projects().Create(t.Context(), project.NewProject{Name: "RP", RedirectURIs: []string{oidcRedirect}}); err != nil {
		t.Fatal(err)
	}
	w := &oidcWorld{flowWorld: &flowWorld{tw}}
	w.patchOIDC(`{"token_endpoint_auth_method":"none","post_logout_redirect_uris":["` + oidcGoodbye + `"]}`)
	if oidcSettings != "" {
		w.patchOIDC(oidcSettings)
	}
	jar, _ := cookiejar.New(nil)
	w.jar = loopbackJar{jar}
	w.browser = &http.Client{Transport: srv.Client().Transport, Jar: w.jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return w
}

func (w *oidcWorld) patchOIDC(doc string) {
	w.t.Helper()
	w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"protect":{"bot_check":"off"},"oidc":`+doc+`}}`, w.secret()), 200, "")
}

func (w *oidcWorld) clientID() string { return w.proj.Project.ClientID }

// get sends a browser GET and returns the response, its body read.
func (w *oidcWorld) get(u string) (*http.Response, string) {
	w.t.Helper()
	resp, err := w.browser.Get(u)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// location is the redirect target of resp, or fails the test.
func (w *oidcWorld) location(resp *http.Response, body string) *url.URL {
	w.t.Helper()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		w.t.Fatalf("GET %s: %d %s, want a redirect", resp.Request.URL, resp.StatusCode, body)
	}
	u, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		w.t.Fatal(err)
	}
	return u
}

// startAuthorize opens an authorization URL in the browser and follows it to where it leaves
// the provider's own steps: the login page (its request id returned), or the client.
func (w *oidcWorld) startAuthorize(authURL string) (requestID string, atClient *url.URL) {
	w.t.Helper()
	u := authURL
	for range 5 {
		loc := w.location(w.get(u))
		switch {
		case strings.HasPrefix(loc.String(), w.srv.URL+oidcprovider.LoginPagePath+"?"):
			return loc.Query().Get("authRequest"), nil
		case !strings.HasPrefix(loc.String(), w.srv.URL):
			return "", loc
		}
		u = loc.String()
	}
	w.t.Fatal("too many redirects")
	return "", nil
}

// cookie is the browser's cookie name for the server, "" if none.
func (w *oidcWorld) cookie(name string) string {
	u, _ := url.Parse(w.srv.URL)
	for _, c := range w.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// setBrowserSession stores the browser session cookie the login page would set.
func (w *oidcWorld) setBrowserSession(a oidcprovider.Approved) {
	u, _ := url.Parse(w.srv.URL)
	w.jar.SetCookies(u, []*http.Cookie{{Name: oidcprovider.BrowserSessionCookie, Value: a.BrowserSession, Path: "/", HttpOnly: true}})
}

// signIn signs email in through the JSON email-code API, reading the code from the dev inbox,
// and returns the login result the hosted page would hold.
func (w *oidcWorld) signIn(email string) login.Result {
	w.t.Helper()
	r := w.post("email-otp/send", fmt.Sprintf(`{"email":%q}`, email))
	w.want(r, 200, "")
	res := w.post("email-otp/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, r.body["state"], w.lastCode(email)))
	w.want(res, 200, "")
	at, _ := res.body["access_token"].(string)
	c, err := w.a.Sessions().AuthenticateBearer(w.t.Context(), w.clientID(), at)
	if err != nil {
		w.t.Fatal(err)
	}
	u, err := w.a.Directory().GetUser(w.t.Context(), w.proj.Project.ID, c.Claims.Subject)
	if err != nil {
		w.t.Fatal(err)
	}
	return login.Result{Authenticated: true, User: u, Tokens: token.Tokens{AccessToken: at, Session: c.Session, Claims: c.Claims}}
}

// approve is the hosted page's end: the login answers the pending request, the browser gets
// its session cookie and goes to the callback, which redirects to the client with the code.
func (w *oidcWorld) approve(id string, res login.Result, consented bool) url.Values {
	w.t.Helper()
	a, err := w.a.OIDC().Approve(w.t.Context(), id, w.cookie(oidcprovider.BindingCookieName(id)), oidcprovider.Approval{Result: res, Consented: consented})
	if err != nil {
		w.t.Fatalf("approve: %v", err)
	}
	w.setBrowserSession(a)
	loc := w.location(w.get(a.RedirectURL))
	if !strings.HasPrefix(loc.String(), oidcRedirect) {
		w.t.Fatalf("callback went to %s", loc)
	}
	return loc.Query()
}

// authorizeURL is a public client's authorization URL with PKCE S256 of verifier.
func (w *oidcWorld) authorizeURL(extra url.Values, verifier string) string {
	v := url.Values{"response_type": {"code"}, "client_id": {w.clientID()}, "redirect_uri": {oidcRedirect},
		"scope": {"openid email offline_access"}, "state": {"st"}, "nonce": {"n"},
		"code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"}}
	for k, vs := range extra {
		if len(vs) == 0 || vs[0] == "" {
			v.Del(k)
			continue
		}
		v[k] = vs
	}
	return w.srv.URL + "/v1/authorize?" + v.Encode()
}

// code runs a full authorization and returns the code: through the login page with a new
// sign-in of email, or straight back when the browser is already signed in (single sign-on).
func (w *oidcWorld) code(email, verifier string) string {
	w.t.Helper()
	id, at := w.startAuthorize(w.authorizeURL(nil, verifier))
	if at != nil {
		if at.Query().Get("code") == "" {
			w.t.Fatalf("authorize went to the client without a code: %s", at)
		}
		return at.Query().Get("code")
	}
	q := w.approve(id, w.signIn(email), false)
	if q.Get("code") == "" || q.Get("state") != "st" {
		w.t.Fatalf("callback query %v", q)
	}
	return q.Get("code")
}

// token posts a form to the token endpoint (path "" for /api/v1/oauth2/token).
func (w *oidcWorld) token(path string, form url.Values, header map[string]string) response {
	w.t.Helper()
	if path == "" {
		path = "/api/v1/oauth2/token"
	}
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for k, v := range header {
		h[k] = v
	}
	return w.call("POST", path, form.Encode(), h)
}

func (w *oidcWorld) exchangeForm(code, verifier string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {oidcRedirect},
		"client_id": {w.clientID()}, "code_verifier": {verifier}}
}

// statusOf is the status of GET /api/v1/auth/status with an access token.
func (w *oidcWorld) statusOf(accessToken string) int {
	w.t.Helper()
	return w.call("GET", "/api/v1/auth/status", "", bearer(accessToken)).status
}

// claimsOf decodes a JWT's payload without verifying it (the tests verify with the RP
// libraries; this only reads what they verified).
func claimsOf(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := decodeSegment(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// s256 is the PKCE S256 challenge of verifier (RFC 7636 §4.2).
func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func decodeSegment(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(user)+":"+url.QueryEscape(pass)))
}

func approvalOf(res login.Result, consented bool) oidcprovider.Approval {
	return oidcprovider.Approval{Result: res, Consented: consented}
}
