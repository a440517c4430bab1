package httpserver

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/store"
)

func serveWith(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestSecureHeadersOnJSON(t *testing.T) {
	h := SecureHeaders(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}), "http://127.0.0.1:8080")
	got := serveWith(h, httptest.NewRequest("GET", "/healthz", nil)).Header()
	for k, v := range map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
		"Cache-Control":           "no-store", // the handler's own, left alone
	} {
		if got.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, got.Get(k), v)
		}
	}
	for _, k := range []string{"Strict-Transport-Security", "Cross-Origin-Opener-Policy"} {
		if got.Get(k) != "" {
			t.Errorf("%s = %q on a plain-HTTP JSON response, want none", k, got.Get(k))
		}
	}
}

func TestPageHeadersAndNonces(t *testing.T) {
	var inPage []string
	h := SecureHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := SetPageHeaders(w, r, PagePolicy{Script: []string{NonceSource}, Style: []string{NonceSource}, Connect: []string{"'self'"}})
		if again := CSPNonce(r.Context()); again != n {
			t.Errorf("CSPNonce changed within a request: %q then %q", n, again)
		}
		inPage = append(inPage, n)
		_, _ = w.Write([]byte("<!doctype html><script nonce=\"" + n + "\"></script>"))
	}), "http://127.0.0.1:8080")

	var policies []string
	for range 2 {
		got := serveWith(h, httptest.NewRequest("GET", "/page", nil)).Header()
		if got.Get("Cross-Origin-Opener-Policy") != "same-origin" || got.Get("X-Frame-Options") != "DENY" ||
			!strings.HasPrefix(got.Get("Content-Type"), "text/html") {
			t.Errorf("page headers: %v", got)
		}
		policies = append(policies, got.Get("Content-Security-Policy"))
	}
	if inPage[0] == inPage[1] || len(inPage[0]) < 22 {
		t.Errorf("nonces %q and %q: want a fresh 128-bit nonce per request", inPage[0], inPage[1])
	}
	want := "default-src 'none'; script-src 'nonce-" + inPage[0] + "'; style-src 'nonce-" + inPage[0] +
		"'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	if policies[0] != want {
		t.Errorf("CSP\n %s\nwant\n %s", policies[0], want)
	}
	if strings.Contains(policies[0], "unsafe-inline") || strings.Contains(policies[0], "'self'; style") {
		t.Errorf("page policy allows inline script: %s", policies[0])
	}
}

func TestDefaultPolicies(t *testing.T) {
	page := func(csp string) http.Handler {
		return SecureHeaders(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			if csp != "" {
				w.Header().Set("Content-Security-Policy", csp)
			}
			// No explicit WriteHeader: the headers are completed on the first Write.
			_, _ = w.Write([]byte("<p>hi</p>"))
		}), "http://127.0.0.1:8080")
	}
	got := serveWith(page(""), httptest.NewRequest("GET", "/", nil)).Header()
	if csp := got.Get("Content-Security-Policy"); csp != fallbackPageCSP || got.Get("Cross-Origin-Opener-Policy") != "same-origin" {
		t.Errorf("a page without a policy got %q", csp)
	}
	got = serveWith(page("default-src 'self'"), httptest.NewRequest("GET", "/", nil)).Header()
	if csp := got.Get("Content-Security-Policy"); csp != "default-src 'self'; frame-ancestors 'none'" {
		t.Errorf("a policy without frame-ancestors became %q", csp)
	}
	got = serveWith(page("default-src 'self'; frame-ancestors https://a.example"), httptest.NewRequest("GET", "/", nil)).Header()
	if csp := got.Get("Content-Security-Policy"); csp != "default-src 'self'; frame-ancestors https://a.example" {
		t.Errorf("a handler's own frame-ancestors was changed: %q", csp)
	}

	// A handler that writes nothing, and one that panics, still get a policy.
	empty := SecureHeaders(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), "")
	if csp := serveWith(empty, httptest.NewRequest("GET", "/", nil)).Header().Get("Content-Security-Policy"); csp != apiCSP {
		t.Errorf("empty response: CSP %q", csp)
	}
	panicky := SecureHeaders(Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }),
		slog.New(slog.DiscardHandler), nil), "")
	rec := serveWith(panicky, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 || rec.Header().Get("Content-Security-Policy") != apiCSP || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("panic: %d %v", rec.Code, rec.Header())
	}
}

func TestHSTS(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	req := func(host string, overTLS bool) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = host
		if overTLS {
			r.TLS = &tls.ConnectionState{}
		}
		return r
	}
	cases := []struct {
		name, publicURL, host string
		tls                   bool
		want                  bool
	}{
		{"plain HTTP, http public URL", "http://auth.example.com", "auth.example.com", false, false},
		{"served over TLS", "http://auth.example.com", "auth.example.com", true, true},
		{"behind a TLS-terminating proxy (https public URL)", "https://auth.example.com", "auth.example.com", false, true},
		{"localhost over TLS", "https://localhost:8443", "localhost:8443", true, false},
		{"a .localhost name", "https://app.localhost", "app.localhost", false, false},
		{"an IP over TLS (browsers ignore it, harmless)", "https://127.0.0.1:8443", "127.0.0.1:8443", true, true},
	}
	for _, c := range cases {
		got := serveWith(SecureHeaders(ok, c.publicURL), req(c.host, c.tls)).Header().Get("Strict-Transport-Security")
		if (got != "") != c.want {
			t.Errorf("%s: HSTS %q, want present=%v", c.name, got, c.want)
		} else if c.want && got != "max-age=63072000; includeSubDomains" {
			t.Errorf("%s: HSTS %q", c.name, got)
		}
	}
}

// corsAuth knows one project, cli_1, which allows https://app.example.com.
type corsAuth struct{}

var corsProject = store.Project{ID: "prj_1", ClientID: "cli_1"}

func (corsAuth) ProjectByClientID(_ context.Context, id string) (store.Project, error) {
	if id == corsProject.ClientID {
		return corsProject, nil
	}
	return store.Project{}, failure.New(failure.Unauthenticated, "invalid_client", "unknown client")
}

func (corsAuth) AuthenticateSecret(_ context.Context, clientID, secret string) (store.Project, error) {
	if secret == "sk_good" && (clientID == "" || clientID == corsProject.ClientID) {
		return corsProject, nil
	}
	return store.Project{}, failure.New(failure.Unauthenticated, "invalid_client", "bad secret")
}

func corsRouter(withCORS bool) http.Handler {
	rt := NewRouter(corsAuth{}, slog.New(slog.DiscardHandler))
	ok := func(w http.ResponseWriter, _ *http.Request) error {
		WriteJSON(w, 200, map[string]bool{"ok": true})
		return nil
	}
	rt.Handle("POST /api/v1/auth/passwordless/email-otp/send", ClientID, ok)
	rt.Handle("GET /api/v1/auth/status", User, ok)
	rt.Handle("GET /api/v1/users", Secret, ok)
	rt.Handle("POST /api/v1/users", Secret, ok)
	rt.Handle("GET /healthz", Public, ok)
	rt.Handle("GET /api/v1/userinfo", Public, ok, BearerPreflight)
	if withCORS {
		rt.UseCORS(func(_ context.Context, p store.Project) ([]string, error) {
			if p.ID == corsProject.ID {
				return []string{"https://app.example.com", "http://localhost:3000"}, nil
			}
			return nil, nil
		})
	}
	return SecureHeaders(rt, "https://auth.example.com")
}

func corsRequest(method, target, origin string, header map[string]string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(`{}`))
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return r
}

// fakeJWT is an unsigned token whose payload names clientID: enough for CORS, never for access.
func fakeJWT(clientID string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(`{"client_id":"`+clientID+`","sub":"u"}`)) + "." + enc([]byte("sig"))
}

func TestCORS(t *testing.T) {
	h := corsRouter(true)
	const send = "/api/v1/auth/passwordless/email-otp/send"
	const allowed = "https://app.example.com"
	cid := map[string]string{"X-Client-Id": "cli_1", "Content-Type": "application/json"}

	cases := []struct {
		name       string
		req        *http.Request
		wantStatus int
		wantACAO   string
		wantVary   bool
	}{
		{"client route, allowed origin (header client id)", corsRequest("POST", send, allowed, cid), 200, allowed, true},
		{"client route, allowed origin (query client id)", corsRequest("POST", send+"?client_id=cli_1", allowed, nil), 200, allowed, true},
		{"client route, origin compared case-insensitively", corsRequest("POST", send+"?client_id=cli_1", "https://APP.example.com", nil), 200, "https://APP.example.com", true},
		{"client route, other origin", corsRequest("POST", send, "https://evil.example", cid), 200, "", true},
		{"client route, null origin", corsRequest("POST", send, "null", cid), 200, "", true},
		{"client route, allowed origin but another port", corsRequest("POST", send, "https://app.example.com:8443", cid), 200, "", true},
		{"client route, no client id", corsRequest("POST", send, allowed, nil), 400, "", true},
		{"client route, unknown client", corsRequest("POST", send+"?client_id=cli_2", allowed, nil), 401, "", true},
		{"client route, no Origin (server to server)", corsRequest("POST", send, "", cid), 200, "", true},
		{"user route, refused token names the project", corsRequest("GET", "/api/v1/auth/status", allowed,
			map[string]string{"Authorization": "Bearer " + fakeJWT("cli_1")}), 401, allowed, true},
		{"user route, token of another project", corsRequest("GET", "/api/v1/auth/status", allowed,
			map[string]string{"Authorization": "Bearer " + fakeJWT("cli_2")}), 401, "", true},
		{"management route, allowed origin, valid secret", corsRequest("GET", "/api/v1/users", allowed,
			map[string]string{"X-Client-Id": "cli_1", "X-Client-Secret": "sk_good"}), 200, "", false},
		{"public route without client id", corsRequest("GET", "/healthz", allowed, nil), 200, "", true},
	}
	for _, c := range cases {
		rec := serveWith(h, c.req)
		got := rec.Header()
		if rec.Code != c.wantStatus {
			t.Errorf("%s: status %d, want %d (%s)", c.name, rec.Code, c.wantStatus, rec.Body)
		}
		if got.Get("Access-Control-Allow-Origin") != c.wantACAO {
			t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", c.name, got.Get("Access-Control-Allow-Origin"), c.wantACAO)
		}
		if vary := strings.Contains(strings.Join(got.Values("Vary"), ","), "Origin"); vary != c.wantVary {
			t.Errorf("%s: Vary %q, want Origin=%v", c.name, got.Values("Vary"), c.wantVary)
		}
		if got.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s: Access-Control-Allow-Credentials sent", c.name)
		}
		if c.wantACAO == "" {
			for k := range got {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("%s: %s sent without an allowed origin", c.name, k)
				}
			}
		} else if !strings.Contains(got.Get("Access-Control-Expose-Headers"), "Retry-After") {
			t.Errorf("%s: Access-Control-Expose-Headers %q", c.name, got.Get("Access-Control-Expose-Headers"))
		}
	}
}

func TestCORSPreflight(t *testing.T) {
	h := corsRouter(true)
	const send = "/api/v1/auth/passwordless/email-otp/send"
	const allowed = "https://app.example.com"
	preflight := func(target, origin, method string) *http.Request {
		r := httptest.NewRequest("OPTIONS", target, nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", method)
		r.Header.Set("Access-Control-Request-Headers", "content-type,x-client-id")
		return r
	}

	rec := serveWith(h, preflight(send+"?client_id=cli_1", allowed, "POST"))
	got := rec.Header()
	if rec.Code != http.StatusNoContent || got.Get("Access-Control-Allow-Origin") != allowed ||
		got.Get("Access-Control-Allow-Methods") != "POST" || got.Get("Access-Control-Max-Age") != "600" ||
		!strings.Contains(strings.Join(got.Values("Vary"), ","), "Origin") {
		t.Fatalf("allowed preflight: %d %v", rec.Code, got)
	}
	allowHeaders := strings.ToLower(got.Get("Access-Control-Allow-Headers"))
	for _, want := range []string{"content-type", "authorization", "x-client-id"} {
		if !strings.Contains(allowHeaders, want) {
			t.Errorf("Access-Control-Allow-Headers %q lacks %s", allowHeaders, want)
		}
	}
	if strings.Contains(allowHeaders, "secret") {
		t.Errorf("Access-Control-Allow-Headers %q lets a browser send a secret", allowHeaders)
	}
	if got.Get("Access-Control-Allow-Credentials") != "" || got.Get("Access-Control-Allow-Origin") == "*" {
		t.Errorf("preflight allows credentials or any origin: %v", got)
	}

	for name, r := range map[string]*http.Request{
		"other origin":                         preflight(send+"?client_id=cli_1", "https://evil.example", "POST"),
		"no client id in the query":            preflight(send, allowed, "POST"),
		"unknown client":                       preflight(send+"?client_id=cli_2", allowed, "POST"),
		"management route from allowed origin": preflight("/api/v1/users?client_id=cli_1", allowed, "POST"),
		"method the path does not take":        preflight(send+"?client_id=cli_1", allowed, "DELETE"),
	} {
		rec := serveWith(h, r)
		if rec.Code != http.StatusNoContent {
			t.Errorf("%s: status %d, want 204", name, rec.Code)
		}
		for k := range rec.Header() {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("%s: %s sent", name, k)
			}
		}
	}

	// A plain OPTIONS lists the methods; an unknown path is still 404.
	rec = serveWith(h, httptest.NewRequest("OPTIONS", "/api/v1/users", nil))
	if allow := rec.Header().Get("Allow"); rec.Code != 204 || !strings.Contains(allow, "POST") || !strings.Contains(allow, "OPTIONS") {
		t.Errorf("OPTIONS: %d Allow %q", rec.Code, allow)
	}
	if rec := serveWith(h, preflight("/nope?client_id=cli_1", allowed, "GET")); rec.Code != 404 {
		t.Errorf("preflight of an unknown path: %d", rec.Code)
	}
	// Other methods the path does not take are still refused as before.
	if rec := serveWith(h, httptest.NewRequest("PUT", "/api/v1/users", nil)); !strings.Contains(rec.Body.String(), "method_not_allowed") {
		t.Errorf("PUT: %d %s", rec.Code, rec.Body)
	}
}

// TestBearerPreflight: a BearerPreflight route (userinfo, whose URL a client takes from
// discovery and cannot add client_id to) answers a preflight from any serialized origin, for
// the token header only, while its answer stays readable only by the token's project's
// allowed origins.
func TestBearerPreflight(t *testing.T) {
	h := corsRouter(true)
	preflight := func(origin, method, headers string) *http.Request {
		r := httptest.NewRequest("OPTIONS", "/api/v1/userinfo", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", method)
		r.Header.Set("Access-Control-Request-Headers", headers)
		return r
	}
	for _, origin := range []string{"https://app.example.com", "https://elsewhere.example"} {
		rec := serveWith(h, preflight(origin, "GET", "authorization"))
		got := rec.Header()
		if rec.Code != http.StatusNoContent || got.Get("Access-Control-Allow-Origin") != origin ||
			got.Get("Access-Control-Allow-Methods") != "GET" || got.Get("Access-Control-Allow-Headers") != "Authorization, Content-Type" ||
			got.Get("Access-Control-Max-Age") != "600" || got.Get("Access-Control-Allow-Credentials") != "" ||
			!strings.Contains(strings.Join(got.Values("Vary"), ","), "Origin") {
			t.Errorf("preflight from %s: %d %v, want the origin echoed for Authorization only, no credentials", origin, rec.Code, got)
		}
	}
	for name, r := range map[string]*http.Request{
		"null origin":                   preflight("null", "GET", "authorization"),
		"not an origin":                 preflight("https://app.example.com/path", "GET", "authorization"),
		"method the path does not take": preflight("https://app.example.com", "DELETE", "authorization"),
	} {
		rec := serveWith(h, r)
		for k := range rec.Header() {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("%s: %s sent", name, k)
			}
		}
	}
	// Other routes keep the strict preflight: no client_id, no CORS.
	r := httptest.NewRequest("OPTIONS", "/api/v1/auth/status", nil)
	r.Header.Set("Origin", "https://app.example.com")
	r.Header.Set("Access-Control-Request-Method", "GET")
	if got := serveWith(h, r).Header().Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("a User route's preflight without client_id allowed %q", got)
	}
	// The answer: only an origin the token's project allows may read it.
	for origin, want := range map[string]string{"https://app.example.com": "https://app.example.com", "https://elsewhere.example": ""} {
		rec := serveWith(h, corsRequest("GET", "/api/v1/userinfo", origin, map[string]string{"Authorization": "Bearer " + fakeJWT("cli_1")}))
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("userinfo answer to %s: Access-Control-Allow-Origin %q, want %q", origin, got, want)
		}
	}
}

func TestNoCORSWithoutOrigins(t *testing.T) {
	h := corsRouter(false)
	r := corsRequest("POST", "/api/v1/auth/passwordless/email-otp/send", "https://app.example.com", map[string]string{"X-Client-Id": "cli_1"})
	for k := range serveWith(h, r).Header() {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("%s sent by a router without UseCORS", k)
		}
	}
}

func TestUnverifiedClientID(t *testing.T) {
	if got := unverifiedClientID(fakeJWT("cli_1")); got != "cli_1" {
		t.Errorf("got %q", got)
	}
	for _, raw := range []string{"", "mfa_abc", "a.b", "a.!!!.c", fakeJWT("x") + ".d", "a." + strings.Repeat("A", 9000) + ".c"} {
		if got := unverifiedClientID(raw); got != "" {
			t.Errorf("unverifiedClientID(%.20q) = %q", raw, got)
		}
	}
}
