package app_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testclock"
	"github.com/latchkey-dev/latchkey/internal/testdb"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// These tests drive the token endpoints over HTTP against a whole server. Logins are completed
// through the login service, which every login method ends in; the methods themselves have their
// own issues.

const testIssuer = "https://auth.example.com"

// tokenWorld is a server with one project and one user.
type tokenWorld struct {
	t      *testing.T
	a      *app.App
	srv    *httptest.Server
	clock  *testclock.Clock
	proj   project.Issued
	userID string
}

func newTokenWorld(t *testing.T, st *sqlstore.Store) *tokenWorld {
	t.Helper()
	w := &tokenWorld{t: t, clock: testclock.New(time.Now().UTC().Truncate(time.Second))}
	var err error
	w.a, err = app.NewWithStore(st, app.WithPublicURL(testIssuer), app.WithClock(w.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	w.srv = httptest.NewServer(w.a.Handler())
	checkAgainstOpenAPI(t, w.srv)
	t.Cleanup(w.srv.Close)
	if w.proj, err = w.a.Projects().Create(t.Context(), project.NewProject{Name: "Tokens"}); err != nil {
		t.Fatal(err)
	}
	email := "ada@example.com"
	u, err := w.a.Directory().CreateUser(t.Context(), audit.Actor{Kind: audit.ActorCLI}, w.proj.Project.ID, directory.UserInput{Email: &email})
	if err != nil {
		t.Fatal(err)
	}
	w.userID = u.ID
	return w
}

// login completes a login of the user as a login method would.
func (w *tokenWorld) login() login.Result {
	w.t.Helper()
	// Read the project as a request would: its settings may have changed since it was made.
	p, err := w.a.Store().GetProject(w.t.Context(), w.proj.Project.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	r, err := w.a.Login().Complete(w.t.Context(), login.Request{Project: p, UserID: w.userID,
		ConnectionType: login.EmailOTP, AMR: []string{"otp"},
		Meta: audit.Meta{IPAddress: "192.0.2.10", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"}})
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (w *tokenWorld) call(method, path, body string, header map[string]string) response {
	w.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, w.srv.URL+path, rd)
	if err != nil {
		w.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := w.srv.Client().Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	out := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func (w *tokenWorld) secret() map[string]string {
	return map[string]string{"X-Client-Id": w.proj.Project.ClientID, "X-Client-Secret": w.proj.ClientSecret}
}

func (w *tokenWorld) want(r response, status int, code string) {
	w.t.Helper()
	if r.status != status || (code != "" && r.body["error_code"] != code) {
		w.t.Fatalf("got %d %s, want %d %s", r.status, r.raw, status, code)
	}
}

// jwks fetches the published key set over HTTP and parses it with an independent library.
func (w *tokenWorld) jwks() jwk.Set {
	w.t.Helper()
	r := w.call("GET", "/.well-known/jwks.json?client_id="+w.proj.Project.ClientID, "", nil)
	if r.status != 200 || !strings.Contains(r.header.Get("Cache-Control"), "max-age=") {
		w.t.Fatalf("JWKS: %d %s (Cache-Control %q)", r.status, r.raw, r.header.Get("Cache-Control"))
	}
	alias := w.call("GET", "/api/v1/.well-known/jwks.json", "", map[string]string{"X-Client-Id": w.proj.Project.ClientID})
	if string(alias.raw) != string(r.raw) {
		w.t.Errorf("the two JWKS paths disagree:\n%s\n%s", r.raw, alias.raw)
	}
	if strings.Contains(string(r.raw), `"d"`) {
		w.t.Fatalf("the JWKS leaks a private key: %s", r.raw)
	}
	set, err := jwk.Parse(r.raw)
	if err != nil {
		w.t.Fatalf("jwk.Parse: %v\n%s", err, r.raw)
	}
	return set
}

// verifyIndependently checks tok with lestrrat-go/jwx against set, at the test clock's time.
func (w *tokenWorld) verifyIndependently(set jwk.Set, tok string) (jwt.Token, error) {
	return jwt.Parse([]byte(tok), jwt.WithKeySet(set), jwt.WithValidate(true),
		jwt.WithIssuer(testIssuer), jwt.WithAudience(w.proj.Project.ClientID),
		jwt.WithClock(jwt.ClockFunc(w.clock.Now)), jwt.WithAcceptableSkew(0))
}

// header decodes a compact JWS header.
func header(t *testing.T, tok string) map[string]any {
	t.Helper()
	part, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestTokensVerifyWithAnIndependentLibraryAcrossRotation(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newTokenWorld(t, st)
		first := w.login()
		set := w.jwks()
		if set.Len() != 1 {
			t.Fatalf("JWKS has %d keys, want 1", set.Len())
		}
		tok, err := w.verifyIndependently(set, first.Tokens.AccessToken)
		if err != nil {
			t.Fatalf("jwx refuses our token: %v", err)
		}
		h := header(t, first.Tokens.AccessToken)
		if h["typ"] != "at+jwt" || h["alg"] != "RS256" || h["kid"] == "" {
			t.Errorf("header = %v, want typ at+jwt, alg RS256 (the default), a kid", h)
		}
		sub, _ := tok.Subject()
		var sid, clientID string
		_ = tok.Get("sid", &sid)
		_ = tok.Get("client_id", &clientID)
		if sub != w.userID || sid != first.Tokens.Session.ID || clientID != w.proj.Project.ClientID {
			t.Errorf("claims: sub %q sid %q client_id %q", sub, sid, clientID)
		}
		oldKID := h["kid"]

		// Rotate: the new key is published at once but signs only after a minute.
		if _, err := w.a.Keys().Rotate(t.Context(), audit.Actor{Kind: audit.ActorCLI}, w.proj.Project.ID, token.RS256, time.Minute); err != nil {
			t.Fatal(err)
		}
		set = w.jwks()
		if set.Len() != 2 {
			t.Fatalf("after rotation the JWKS has %d keys, want 2 (the new one published before it signs)", set.Len())
		}
		beforeActivation := w.login()
		if kid := header(t, beforeActivation.Tokens.AccessToken)["kid"]; kid != oldKID {
			t.Errorf("a token minted before the new key activates is signed by %v, want the old key %v", kid, oldKID)
		}

		w.clock.Advance(2 * time.Minute)
		second := w.login()
		newKID := header(t, second.Tokens.AccessToken)["kid"]
		if newKID == oldKID {
			t.Fatalf("after activation tokens are still signed by the old key %v", oldKID)
		}
		set = w.jwks()
		for _, tk := range []string{first.Tokens.AccessToken, second.Tokens.AccessToken} {
			if _, err := w.verifyIndependently(set, tk); err != nil {
				t.Errorf("after rotation jwx refuses a token of kid %v: %v", header(t, tk)["kid"], err)
			}
			if r := w.call("GET", "/api/v1/auth/status", "", bearer(tk)); r.status != 200 {
				t.Errorf("after rotation the server refuses a token of kid %v: %d %s", header(t, tk)["kid"], r.status, r.raw)
			}
		}

		// The old token works until it expires, and not after.
		w.clock.Advance(first.Tokens.Claims.ExpiresAt.Sub(w.clock.Now()) + time.Minute) // past the verifiers' leeway
		if _, err := w.verifyIndependently(set, first.Tokens.AccessToken); err == nil {
			t.Error("jwx accepts the old token after it expired")
		}
		w.want(w.call("GET", "/api/v1/auth/status", "", bearer(first.Tokens.AccessToken)), 401, "invalid_token")

		// Once nothing the old key signed can be alive, it leaves the JWKS.
		w.clock.Advance(token.MaxAccessTokenTTL + 10*time.Minute)
		set = w.jwks()
		if set.Len() != 1 {
			t.Fatalf("a day after rotation the JWKS has %d keys, want only the new one", set.Len())
		}
		if k, ok := set.Key(0); !ok {
			t.Fatal("no key")
		} else if kid, _ := k.KeyID(); kid != newKID {
			t.Errorf("the JWKS kept %v, want the new key %v", kid, newKID)
		}
	})
}

func TestAlgorithmFollowsTheProjectSetting(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			w := newTokenWorld(t, testdb.SQLite(t))
			if h := header(t, w.login().Tokens.AccessToken); h["alg"] != "RS256" {
				t.Fatalf("default alg = %v, want RS256", h["alg"])
			}
			w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"tokens":{"signing_algorithm":"`+alg+`"}}}`, w.secret()), 200, "")
			// The key of the new algorithm is published first and signs only once every
			// instance and client can have fetched it; until then the old key signs.
			if h := header(t, w.login().Tokens.AccessToken); h["alg"] != "RS256" {
				t.Fatalf("right after the change alg = %v, want RS256 until the new key activates", h["alg"])
			}
			if n := w.jwks().Len(); n != 2 {
				t.Fatalf("after the change the JWKS has %d keys, want 2 (the new one published early)", n)
			}
			w.clock.Advance(w.a.Keys().DefaultActivationDelay() + time.Second)
			r := w.login()
			if h := header(t, r.Tokens.AccessToken); h["alg"] != alg {
				t.Fatalf("alg = %v, want %s", h["alg"], alg)
			}
			if _, err := w.verifyIndependently(w.jwks(), r.Tokens.AccessToken); err != nil {
				t.Fatalf("jwx refuses our %s token: %v", alg, err)
			}
		})
	}
}

func TestRefreshOverHTTP(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newTokenWorld(t, st)
		rt := w.login().Tokens.RefreshToken
		cid := map[string]string{"X-Client-Id": w.proj.Project.ClientID}
		form := map[string]string{"X-Client-Id": w.proj.Project.ClientID, "Content-Type": "application/x-www-form-urlencoded"}
		jsonCT := map[string]string{"X-Client-Id": w.proj.Project.ClientID, "Content-Type": "application/json"}
		for i, c := range []struct {
			method, path, body string
			header             map[string]string
		}{
			{"POST", "/api/v1/accesstoken/refresh", "refresh_token=%s", form},
			{"POST", "/api/v1/accesstoken/refresh", `{"refresh_token":"%s"}`, jsonCT},
			{"GET", "/api/v1/accesstoken/refresh?refresh_token=%s", "", cid},
		} {
			path, body := c.path, c.body
			if body != "" {
				body = fmt.Sprintf(body, url.QueryEscape(rt))
			} else {
				path = fmt.Sprintf(path, url.QueryEscape(rt))
			}
			r := w.call(c.method, path, body, c.header)
			if r.status != 200 || r.body["authenticated"] != true || r.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("refresh %d (%s): %d %s", i, c.method, r.status, r.raw)
			}
			next, _ := r.body["refresh_token"].(string)
			oauth, _ := r.body["oauth"].(map[string]any)
			profile, _ := r.body["profile"].(map[string]any)
			if next == "" || next == rt || oauth["refresh_token"] != next || profile["id"] != w.userID {
				t.Fatalf("refresh %d: body %s", i, r.raw)
			}
			rt = next
		}
		w.want(w.call("POST", "/api/v1/accesstoken/refresh", "refresh_token=", form), 400, "invalid_request")
		w.want(w.call("POST", "/api/v1/accesstoken/refresh", "refresh_token="+rt, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}), 400, "missing_client_id")
		other, err := w.a.Projects().Create(t.Context(), project.NewProject{Name: "Other"})
		if err != nil {
			t.Fatal(err)
		}
		// Another project's client id cannot spend this project's token.
		w.want(w.call("POST", "/api/v1/accesstoken/refresh", "refresh_token="+url.QueryEscape(rt),
			map[string]string{"X-Client-Id": other.Project.ClientID, "Content-Type": "application/x-www-form-urlencoded"}), 401, "invalid_grant")
		last := w.call("POST", "/api/v1/accesstoken/refresh", "refresh_token="+url.QueryEscape(rt), form)
		w.want(last, 200, "")
		// Replaying a spent token ends the session: the newest tokens die with it.
		w.want(w.call("POST", "/api/v1/accesstoken/refresh", "refresh_token="+url.QueryEscape(rt), form), 401, "invalid_grant")
		w.want(w.call("GET", "/api/v1/auth/status", "", bearer(last.body["access_token"].(string))), 401, "invalid_token")
		w.want(w.call("POST", "/api/v1/accesstoken/refresh", "refresh_token="+url.QueryEscape(last.body["refresh_token"].(string)), form), 401, "invalid_grant")
	})
}

func TestRefreshRaceOverHTTP(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newTokenWorld(t, st)
		rt := w.login().Tokens.RefreshToken
		const racers = 50
		statuses := make([]int, racers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range racers {
			wg.Go(func() {
				<-start
				req, _ := http.NewRequest("POST", w.srv.URL+"/api/v1/accesstoken/refresh", strings.NewReader("refresh_token="+url.QueryEscape(rt)))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("X-Client-Id", w.proj.Project.ClientID)
				resp, err := w.srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			})
		}
		close(start)
		wg.Wait()
		ok, refused := 0, 0
		for _, s := range statuses {
			switch s {
			case 200:
				ok++
			case 401:
				refused++
			}
		}
		if ok != 1 || refused != racers-1 {
			t.Fatalf("%d succeeded and %d were refused of %d racing refreshes; want 1 and %d (statuses %v)", ok, refused, racers, racers-1, statuses)
		}
	})
}

func TestSessionsOverHTTP(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newTokenWorld(t, st)
		a, b, c := w.login(), w.login(), w.login()
		at := func(r login.Result) map[string]string { return bearer(r.Tokens.AccessToken) }

		status := w.call("GET", "/api/v1/auth/status", "", at(a))
		session, _ := status.body["session"].(map[string]any)
		profile, _ := status.body["profile"].(map[string]any)
		if status.status != 200 || status.body["authenticated"] != true || session["id"] != a.Tokens.Session.ID ||
			profile["id"] != w.userID || profile["connection_type"] != "EmailOTP" {
			t.Fatalf("status: %d %s", status.status, status.raw)
		}
		w.want(w.call("GET", "/api/v1/auth/status", "", nil), 401, "missing_token")
		if r := w.call("GET", "/api/v1/auth/status", "", bearer("not.a.jwt")); r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("garbage token: %d %s (WWW-Authenticate %q)", r.status, r.raw, r.header.Get("WWW-Authenticate"))
		}

		list := w.call("GET", "/api/v1/auth/sessions", "", at(a))
		sessions, _ := list.body["sessions"].([]any)
		if list.status != 200 || len(sessions) != 3 {
			t.Fatalf("sessions: %d %s", list.status, list.raw)
		}
		current := 0
		for _, s := range sessions {
			m := s.(map[string]any)
			if m["current"] == true {
				current++
				if m["id"] != a.Tokens.Session.ID {
					t.Errorf("current session = %v, want %s", m["id"], a.Tokens.Session.ID)
				}
			}
			if m["ip_address"] != "192.0.2.10" || m["connection_type"] != "EmailOTP" {
				t.Errorf("session = %v", m)
			}
		}
		if current != 1 {
			t.Errorf("%d sessions marked current, want 1", current)
		}

		// End session b from session a: b's token stops working at once.
		w.want(w.call("DELETE", "/api/v1/auth/sessions/"+b.Tokens.Session.ID, "", at(a)), 200, "")
		w.want(w.call("GET", "/api/v1/auth/status", "", at(b)), 401, "invalid_token")
		w.want(w.call("DELETE", "/api/v1/auth/sessions/"+b.Tokens.Session.ID, "", at(a)), 404, "session_not_found")

		// Logout ends only the caller's session.
		w.want(w.call("POST", "/api/v1/auth/logout", "", at(c)), 200, "")
		w.want(w.call("GET", "/api/v1/auth/status", "", at(c)), 401, "invalid_token")
		w.want(w.call("GET", "/api/v1/auth/status", "", at(a)), 200, "")

		// The management API sees and ends them too.
		d := w.login()
		mgmt := w.call("GET", "/api/v1/users/"+w.userID+"/sessions", "", w.secret())
		if ms, _ := mgmt.body["sessions"].([]any); mgmt.status != 200 || len(ms) != 2 {
			t.Fatalf("management sessions: %d %s", mgmt.status, mgmt.raw)
		}
		w.want(w.call("GET", "/api/v1/users/"+w.userID+"/sessions", "", at(a)), 403, "machine_token_required")
		w.want(w.call("GET", "/api/v1/users/ffffffffffffffffffffffff/sessions", "", w.secret()), 404, "user_not_found")
		w.want(w.call("DELETE", "/api/v1/users/"+w.userID+"/sessions", "", w.secret()), 200, "")
		for _, r := range []login.Result{a, d} {
			w.want(w.call("GET", "/api/v1/auth/status", "", at(r)), 401, "invalid_token")
		}

		// logout?all=true ends every session of the user.
		e, f := w.login(), w.login()
		r := w.call("POST", "/api/v1/auth/logout?all=true", "", at(e))
		if r.status != 200 || r.body["revoked"] != float64(2) {
			t.Fatalf("logout all: %d %s", r.status, r.raw)
		}
		w.want(w.call("GET", "/api/v1/auth/status", "", at(f)), 401, "invalid_token")

		// Deactivating the user over the management API ends their sessions.
		g := w.login()
		w.want(w.call("PUT", "/api/v1/users/"+w.userID, `{"is_active":false}`, w.secret()), 200, "")
		w.want(w.call("GET", "/api/v1/auth/status", "", at(g)), 401, "invalid_token")
		w.want(w.call("POST", "/api/v1/accesstoken/refresh", "refresh_token="+url.QueryEscape(g.Tokens.RefreshToken),
			map[string]string{"X-Client-Id": w.proj.Project.ClientID, "Content-Type": "application/x-www-form-urlencoded"}), 401, "invalid_grant")

		// Logins leave login logs with the parsed user agent.
		logs := w.call("GET", "/api/v1/users/"+w.userID+"/loginlogs", "", w.secret())
		entries, _ := logs.body["login_logs"].([]any)
		if logs.status != 200 || len(entries) != 7 {
			t.Fatalf("login logs: %d %s", logs.status, logs.raw)
		}
		if e := entries[0].(map[string]any); e["Browser"] != "Chrome" || e["Os"] != "Linux" || e["IpAddress"] != "192.0.2.10" {
			t.Errorf("login log = %v", e)
		}
	})
}

func TestClientCredentialsOverHTTP(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newTokenWorld(t, st)
		form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
		basic := func(id, secret string) map[string]string {
			return map[string]string{"Content-Type": "application/x-www-form-urlencoded",
				"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))}
		}
		r := w.call("POST", "/api/v1/oauth2/token", "grant_type=client_credentials&scope=users:read", basic(w.proj.Project.ClientID, w.proj.ClientSecret))
		if r.status != 200 || r.body["token_type"] != "Bearer" || r.body["expires_in"] != float64(900) || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("client_credentials: %d %s", r.status, r.raw)
		}
		machine := r.body["access_token"].(string)
		r = w.call("POST", "/api/v1/oauth2/token", "grant_type=client_credentials&client_id="+w.proj.Project.ClientID+"&client_secret="+url.QueryEscape(w.proj.ClientSecret), form)
		w.want(r, 200, "")

		// The machine token works on the management API in place of the secret.
		w.want(w.call("GET", "/api/v1/users", "", bearer(machine)), 200, "")
		w.want(w.call("POST", "/api/v1/organization", `{"name":"Made by a machine"}`, bearer(machine)), 201, "")
		// but not where a user is needed, and a user's token does not manage.
		w.want(w.call("GET", "/api/v1/auth/status", "", bearer(machine)), 403, "user_token_required")
		w.want(w.call("GET", "/api/v1/users", "", bearer(w.login().Tokens.AccessToken)), 403, "machine_token_required")

		// Another project's token is nobody here.
		other, err := w.a.Projects().Create(t.Context(), project.NewProject{Name: "Other"})
		if err != nil {
			t.Fatal(err)
		}
		w.want(w.call("GET", "/api/v1/users", "", map[string]string{"Authorization": "Bearer " + machine, "X-Client-Id": other.Project.ClientID}), 401, "invalid_token")

		for _, c := range []struct {
			body   string
			header map[string]string
			status int
			code   string
		}{
			{"grant_type=client_credentials", basic(w.proj.Project.ClientID, "sk_wrong"), 401, "invalid_client"},
			{"grant_type=client_credentials", basic(other.Project.ClientID, w.proj.ClientSecret), 401, "invalid_client"},
			{"grant_type=client_credentials", form, 401, "invalid_client"},
			{"grant_type=password", basic(w.proj.Project.ClientID, w.proj.ClientSecret), 400, "unsupported_grant_type"},
			{"", basic(w.proj.Project.ClientID, w.proj.ClientSecret), 400, "invalid_request"},
		} {
			r := w.call("POST", "/api/v1/oauth2/token", c.body, c.header)
			// OAuth clients read RFC 6749's error shape.
			if r.status != c.status || r.body["error"] != c.code {
				t.Errorf("%q: %d %s, want %d error %q", c.body, r.status, r.raw, c.status, c.code)
			}
		}
	})
}

// TestTokensNeverReachTheLog refreshes with the token in the query (SSOJet's GET) and in a
// body, and checks that neither the refresh token nor any token it returned is logged.
func TestTokensNeverReachTheLog(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	w := &tokenWorld{t: t, clock: testclock.New(time.Now().UTC().Truncate(time.Second))}
	var err error
	w.a, err = app.NewWithStore(testdb.SQLite(t), app.WithPublicURL(testIssuer), app.WithClock(w.clock.Now),
		app.WithLogger(slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	w.srv = httptest.NewServer(w.a.Handler())
	checkAgainstOpenAPI(t, w.srv)
	t.Cleanup(w.srv.Close)
	if w.proj, err = w.a.Projects().Create(t.Context(), project.NewProject{Name: "Logs"}); err != nil {
		t.Fatal(err)
	}
	email := "log@example.com"
	u, err := w.a.Directory().CreateUser(t.Context(), audit.Actor{Kind: audit.ActorCLI}, w.proj.Project.ID, directory.UserInput{Email: &email})
	if err != nil {
		t.Fatal(err)
	}
	w.userID = u.ID
	first := w.login()
	secrets := []string{first.Tokens.RefreshToken, first.Tokens.AccessToken, w.proj.ClientSecret}
	r := w.call("GET", "/api/v1/accesstoken/refresh?client_id="+w.proj.Project.ClientID+"&refresh_token="+url.QueryEscape(first.Tokens.RefreshToken), "", nil)
	w.want(r, 200, "")
	secrets = append(secrets, r.body["refresh_token"].(string), r.body["access_token"].(string))
	// A replay: the reuse is logged (a security event) but not the token.
	w.want(w.call("GET", "/api/v1/accesstoken/refresh?client_id="+w.proj.Project.ClientID+"&refresh_token="+url.QueryEscape(first.Tokens.RefreshToken), "", nil), 401, "invalid_grant")
	w.want(w.call("POST", "/api/v1/oauth2/token", "grant_type=client_credentials&client_id="+w.proj.Project.ClientID+"&client_secret="+url.QueryEscape(w.proj.ClientSecret),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"}), 200, "")

	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, "refresh token reused") || !strings.Contains(out, "/api/v1/accesstoken/refresh") {
		t.Fatalf("the log lacks the requests or the reuse warning:\n%s", out)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("a secret reached the log: %.12s…\n%s", s, out)
		}
	}
	if strings.Contains(out, "refresh_token=") {
		t.Errorf("a query string reached the log:\n%s", out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
