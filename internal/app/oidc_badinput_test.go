package app_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/oidcprovider"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

const testVerifier = "a-verifier-of-forty-three-characters-or-more-0123456789"

// TestOIDCAuthorizeBadInput is the authorization rows of issue 15's bad-input table: what may
// not go back to the client is a 400 HTML page without a redirect; everything else is
// redirected to the registered redirect_uri with the error and the state. op's stock checks
// let the plain, empty-method and no-PKCE rows through to the login page, and ignore
// request_uri.
func TestOIDCAuthorizeBadInput(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newOIDCWorld(t, st, "")
		for _, tc := range []struct {
			name  string
			path  string
			extra url.Values
		}{
			{"unknown client", "/oidc/authorize", url.Values{"client_id": {"cli_000000000000000000000000"}}},
			{"no client", "/v1/authorize", url.Values{"client_id": {""}}},
			{"redirect_uri with a trailing slash", "/oauth2/authorize", url.Values{"redirect_uri": {oidcRedirect + "/"}}},
			{"redirect_uri with a query", "/v1/authorize", url.Values{"redirect_uri": {oidcRedirect + "?x=1"}}},
			{"another host", "/v1/authorize", url.Values{"redirect_uri": {"https://evil.example/callback"}}},
			{"no redirect_uri", "/v1/authorize", url.Values{"redirect_uri": {""}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				u, _ := url.Parse(w.authorizeURL(tc.extra, testVerifier))
				u.Path = tc.path
				resp, body := w.get(u.String())
				if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" ||
					!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "<html") {
					t.Fatalf("%d Location=%q %s, want a 400 HTML page without a redirect", resp.StatusCode, resp.Header.Get("Location"), body)
				}
			})
		}
		t.Run("POST is the same page", func(t *testing.T) {
			form := url.Values{"response_type": {"code"}, "client_id": {w.clientID()}, "redirect_uri": {"https://evil.example/cb"}, "scope": {"openid"}}
			resp, err := w.browser.PostForm(w.srv.URL+"/oauth2/authorize", form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Fatalf("%d Location=%q", resp.StatusCode, resp.Header.Get("Location"))
			}
		})

		for _, tc := range []struct {
			name, want string
			extra      url.Values
		}{
			{"response_type token", "unsupported_response_type", url.Values{"response_type": {"token"}}},
			{"response_type id_token", "unsupported_response_type", url.Values{"response_type": {"id_token"}}},
			{"no PKCE for a public client", "invalid_request", url.Values{"code_challenge": {""}, "code_challenge_method": {""}}},
			{"PKCE plain", "invalid_request", url.Values{"code_challenge_method": {"plain"}}},
			{"a challenge without a method (plain)", "invalid_request", url.Values{"code_challenge_method": {""}}},
			{"a challenge that is no SHA-256", "invalid_request", url.Values{"code_challenge": {"short"}}},
			{"request object", "request_not_supported", url.Values{"request": {"eyJhbGciOiJub25lIn0.e30."}}},
			{"request_uri", "request_not_supported", url.Values{"request_uri": {"https://rp.example/req.jwt"}}},
			{"response_mode fragment", "invalid_request", url.Values{"response_mode": {"fragment"}}},
			{"a huge state", "invalid_request", url.Values{"state": {"st" + strings.Repeat("x", 2000)}}},
			{"prompt none without a session", "login_required", url.Values{"prompt": {"none"}}},
			{"prompt none with another prompt", "invalid_request", url.Values{"prompt": {"none login"}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, at := w.startAuthorize(w.authorizeURL(tc.extra, testVerifier))
				if at == nil || !strings.HasPrefix(at.String(), oidcRedirect+"?") {
					t.Fatalf("went to %v, want the client's redirect_uri", at)
				}
				state := "st"
				if s := tc.extra.Get("state"); s != "" {
					state = s
				}
				if got := at.Query().Get("error"); got != tc.want || at.Query().Get("state") != state || at.Query().Get("code") != "" {
					t.Fatalf("redirected with %v, want error=%s and the state", at.Query(), tc.want)
				}
			})
		}
	})
}

// TestOIDCConsent: a third-party project's request needs consent: prompt=none answers
// consent_required even for a signed-in browser, and the page's approval without the user's
// consent is refused.
func TestOIDCConsent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newOIDCWorld(t, st, `{"first_party":false}`)
		res := w.signIn("ada@example.com")
		id, _ := w.startAuthorize(w.authorizeURL(nil, testVerifier))
		if _, err := w.a.OIDC().Approve(t.Context(), id, w.cookie(oidcprovider.BindingCookieName(id)), approvalOf(res, false)); err == nil {
			t.Fatal("a third-party approval without consent was accepted")
		}
		q := w.approve(id, res, true)
		if q.Get("code") == "" {
			t.Fatalf("consented approval: %v", q)
		}
		_, at := w.startAuthorize(w.authorizeURL(url.Values{"prompt": {"none"}}, testVerifier))
		if at == nil || at.Query().Get("error") != "consent_required" {
			t.Fatalf("prompt=none on a third-party project went to %v, want consent_required", at)
		}
		// Without a browser session it is login_required first.
		w.jar.SetCookies(mustURL(w.srv.URL), []*http.Cookie{{Name: "__Host-lk_session", Value: "", Path: "/", MaxAge: -1}})
		_, at = w.startAuthorize(w.authorizeURL(url.Values{"prompt": {"none"}}, testVerifier))
		if at == nil || at.Query().Get("error") != "login_required" {
			t.Fatalf("prompt=none without a session went to %v, want login_required", at)
		}
	})
}

// TestOIDCCodeBadInput is the token rows: a code expired (60 s, on the injected clock), from
// another client, with a wrong redirect_uri or code_verifier is 400 invalid_grant; a wrong
// secret is 401 invalid_client with WWW-Authenticate. A failed attempt does not spend the code.
func TestOIDCCodeBadInput(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newOIDCWorld(t, st, "")
		other, err := w.a.Projects().Create(t.Context(), project.NewProject{Name: "Other", RedirectURIs: []string{oidcRedirect}})
		if err != nil {
			t.Fatal(err)
		}
		w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"oidc":{"token_endpoint_auth_method":"none"}}}`,
			map[string]string{"X-Client-Id": other.Project.ClientID, "X-Client-Secret": other.ClientSecret}), 200, "")

		code := w.code("ada@example.com", testVerifier)
		good := w.exchangeForm(code, testVerifier)
		for _, tc := range []struct {
			name   string
			change url.Values
			header map[string]string
			status int
			want   string
		}{
			{"another client", url.Values{"client_id": {other.Project.ClientID}}, nil, 400, "invalid_grant"},
			{"another client's secret", url.Values{"client_id": {other.Project.ClientID}, "client_secret": {other.ClientSecret}}, nil, 400, "invalid_grant"},
			{"wrong redirect_uri", url.Values{"redirect_uri": {oidcRedirect + "/"}}, nil, 400, "invalid_grant"},
			{"no redirect_uri", url.Values{"redirect_uri": {""}}, nil, 400, "invalid_grant"},
			{"wrong verifier", url.Values{"code_verifier": {testVerifier + "x"}}, nil, 400, "invalid_grant"},
			{"no verifier", url.Values{"code_verifier": {""}}, nil, 400, "invalid_request"},
			{"unknown code", url.Values{"code": {"not-a-code"}}, nil, 400, "invalid_grant"},
			{"wrong secret in the form", url.Values{"client_secret": {"sk_wrong"}}, nil, 401, "invalid_client"},
			{"wrong secret in Basic", url.Values{"client_id": {""}}, map[string]string{"Authorization": basicAuth(w.clientID(), "sk_wrong")}, 401, "invalid_client"},
			{"unknown public client", url.Values{"client_id": {"cli_000000000000000000000000"}}, nil, 401, "invalid_client"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				form := url.Values{}
				for k, v := range good {
					form[k] = v
				}
				for k, v := range tc.change {
					if v[0] == "" {
						form.Del(k)
					} else {
						form[k] = v
					}
				}
				r := w.token("", form, tc.header)
				if r.status != tc.status || r.body["error"] != tc.want {
					t.Fatalf("%d %s, want %d %s", r.status, r.raw, tc.status, tc.want)
				}
				if tc.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic realm=") {
					t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
				}
			})
		}
		// None of that spent it. A browser client's page may read the answer when the project
		// allows its origin (the client_id is in the body, not the URL).
		w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"allowed_origins":["https://rp.example"]}}`, w.secret()), 200, "")
		r := w.token("/token", good, map[string]string{"Origin": "https://rp.example"})
		w.want(r, 200, "")
		if got := r.header.Get("Access-Control-Allow-Origin"); got != "https://rp.example" {
			t.Errorf("Access-Control-Allow-Origin %q for an allowed origin", got)
		}
		r = w.token("", w.exchangeForm("not-a-code", testVerifier), map[string]string{"Origin": "https://evil.example"})
		if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("Access-Control-Allow-Origin %q for another origin", got)
		}

		// A code is good for 60 seconds.
		late := w.code("ada@example.com", testVerifier)
		w.clock.Advance(61 * time.Second)
		if r := w.token("/oauth/token", w.exchangeForm(late, testVerifier), nil); r.status != 400 || r.body["error"] != "invalid_grant" {
			t.Fatalf("a code 61 s old: %d %s, want 400 invalid_grant", r.status, r.raw)
		}
	})
}

// TestOIDCTokenMalformed sends malformed token requests: each is a 4xx in RFC 6749's shape
// (error, error_description), never a 500.
func TestOIDCTokenMalformed(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newOIDCWorld(t, st, "")
		cid := w.clientID()
		form := func(kv ...string) string {
			v := url.Values{}
			for i := 0; i+1 < len(kv); i += 2 {
				v.Add(kv[i], kv[i+1])
			}
			return v.Encode()
		}
		formCT := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
		for _, tc := range []struct {
			name, path, body string
			header           map[string]string
			want             string
		}{
			{"empty body", "", "", formCT, "invalid_request"},
			{"JSON body", "", `{"grant_type":"authorization_code"}`, map[string]string{"Content-Type": "application/json"}, "invalid_request"},
			{"no content type", "", form("grant_type", "refresh_token"), map[string]string{}, "invalid_request"},
			{"unknown grant", "", form("grant_type", "password", "client_id", cid), formCT, "unsupported_grant_type"},
			{"implicit grant", "", form("grant_type", "implicit", "client_id", cid), formCT, "unsupported_grant_type"},
			{"repeated grant_type", "", "grant_type=authorization_code&grant_type=refresh_token&client_id=" + cid, formCT, "invalid_request"},
			{"no code", "", form("grant_type", "authorization_code", "client_id", cid, "redirect_uri", oidcRedirect), formCT, "invalid_request"},
			{"huge code", "", form("grant_type", "authorization_code", "client_id", cid, "code", strings.Repeat("c", 5000)), formCT, "invalid_grant"},
			{"huge verifier", "", form("grant_type", "authorization_code", "client_id", cid, "code", "x", "code_verifier", strings.Repeat("v", 500)), formCT, "invalid_request"},
			{"no refresh_token", "", form("grant_type", "refresh_token", "client_id", cid), formCT, "invalid_request"},
			{"garbage refresh_token", "", form("grant_type", "refresh_token", "client_id", cid, "refresh_token", "garbage"), formCT, "invalid_grant"},
			{"no client", "", form("grant_type", "authorization_code", "code", "x"), formCT, "invalid_client"},
			{"code in the URL", "?code=x", form("grant_type", "authorization_code", "client_id", cid), formCT, "invalid_request"},
			{"two client authentications", "", form("grant_type", "client_credentials", "client_id", cid, "client_secret", w.proj.ClientSecret),
				map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": basicAuth(cid, w.proj.ClientSecret)}, "invalid_request"},
			{"public client, client_credentials", "", form("grant_type", "client_credentials", "client_id", cid), formCT, "invalid_client"},
			{"a scope that widens the grant", "", form("grant_type", "refresh_token", "client_id", cid, "refresh_token", "rt_x", "scope", "openid admin"), formCT, "invalid_grant"},
			{"invalid UTF-8 and percent-escapes", "", "grant_type=%zz&client_id=" + cid, formCT, "invalid_request"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := w.call("POST", "/api/v1/oauth2/token"+tc.path, tc.body, tc.header)
				if r.status < 400 || r.status >= 500 || r.body["error"] != tc.want || r.body["error_description"] == nil {
					t.Fatalf("%d %s, want a 4xx %s in RFC 6749's shape", r.status, r.raw, tc.want)
				}
				if r.header.Get("Cache-Control") != "no-store" {
					t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
				}
			})
		}
	})
}

// TestOIDCIssuerIgnoresForgedHost: discovery (all four paths) names the public URL whatever
// Host, X-Forwarded-Host or Forwarded a peer that is no trusted proxy sends.
func TestOIDCIssuerIgnoresForgedHost(t *testing.T) {
	w := newOIDCWorld(t, testdb.SQLite(t), "")
	for _, path := range []string{"/.well-known/openid-configuration", "/v1/.well-known/openid-configuration",
		"/oidc/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		req, _ := http.NewRequest(http.MethodGet, w.srv.URL+path, nil)
		req.Host = "evil.example"
		req.Header.Set("X-Forwarded-Host", "evil.example")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("Forwarded", "host=evil.example;proto=https")
		resp, err := w.browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		err = json.NewDecoder(resp.Body).Decode(&d)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, err)
		}
		for _, k := range []string{"issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "end_session_endpoint", "userinfo_endpoint"} {
			if v, _ := d[k].(string); !strings.HasPrefix(v, w.srv.URL) {
				t.Errorf("%s: %s = %q, want it under %s", path, k, v, w.srv.URL)
			}
		}
		if d["issuer"] != w.srv.URL || d["jwks_uri"] != w.srv.URL+"/.well-known/jwks.json" {
			t.Errorf("%s: issuer %v jwks_uri %v", path, d["issuer"], d["jwks_uri"])
		}
		wantList(t, d, "response_types_supported", "code")
		wantList(t, d, "code_challenge_methods_supported", "S256")
		wantList(t, d, "grant_types_supported", "authorization_code", "refresh_token", "client_credentials")
		wantList(t, d, "token_endpoint_auth_methods_supported", "client_secret_basic", "client_secret_post", "none")
		wantList(t, d, "scopes_supported", "openid", "profile", "email", "phone", "offline_access", "organization", "roles")
		if d["request_parameter_supported"] != false || d["request_uri_parameter_supported"] != false {
			t.Errorf("%s: request objects advertised", path)
		}
	}
}

func wantList(t *testing.T, d map[string]any, key string, want ...string) {
	t.Helper()
	got, _ := d[key].([]any)
	if len(got) != len(want) {
		t.Errorf("%s = %v, want %v", key, got, want)
		return
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// TestOIDCConfidentialClient: a client_secret_basic client may leave PKCE out; it
// authenticates at the token endpoint with its secret, first (a missing secret is 401
// invalid_client), by HTTP Basic or in the form.
func TestOIDCConfidentialClient(t *testing.T) {
	w := newOIDCWorld(t, testdb.SQLite(t), `{"token_endpoint_auth_method":"client_secret_basic"}`)
	res := w.signIn("ada@example.com")
	code := func() string {
		id, at := w.startAuthorize(w.authorizeURL(url.Values{"code_challenge": {""}, "code_challenge_method": {""}}, testVerifier))
		if at != nil {
			return at.Query().Get("code")
		}
		return w.approve(id, res, false).Get("code")
	}
	form := func(c string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {oidcRedirect}}
	}
	c := code()
	if r := w.token("", url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {oidcRedirect}, "client_id": {w.clientID()}}, nil); r.status != 401 || r.body["error"] != "invalid_client" {
		t.Fatalf("a confidential client without its secret: %d %s", r.status, r.raw)
	}
	r := w.token("", form(c), map[string]string{"Authorization": basicAuth(w.clientID(), w.proj.ClientSecret)})
	w.want(r, 200, "")
	if r.body["id_token"] == nil || r.body["refresh_token"] == nil || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("exchange %s", r.raw)
	}
	f := form(code())
	f.Set("client_id", w.clientID())
	f.Set("client_secret", w.proj.ClientSecret)
	w.want(w.token("", f, nil), 200, "")
}
