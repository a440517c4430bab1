package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// get sends a request and returns the response with its body read.
func get(t *testing.T, method, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := clientFor(url).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func wantHeaders(t *testing.T, what string, h http.Header, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("%s: %s = %q, want %q", what, k, h.Get(k), v)
		}
	}
}

// TestSecurityHeaders checks the headers of the HTML pages and of a JSON route as the whole
// server sends them (public URL https: HSTS everywhere).
func TestSecurityHeaders(t *testing.T) {
	a, err := app.NewWithStore(testdb.SQLite(t), app.WithPublicURL("https://auth.example.com"), app.WithDev(true))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	checkAgainstOpenAPI(t, srv)
	t.Cleanup(srv.Close)
	common := map[string]string{
		"X-Content-Type-Options":    "nosniff",
		"Referrer-Policy":           "no-referrer",
		"X-Frame-Options":           "DENY",
		"Strict-Transport-Security": "max-age=63072000; includeSubDomains",
	}

	resp, _ := get(t, "GET", srv.URL+"/healthz", nil)
	wantHeaders(t, "/healthz", resp.Header, common)
	wantHeaders(t, "/healthz", resp.Header, map[string]string{"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"})

	resp, _ = get(t, "GET", srv.URL+"/login/passkey", nil)
	wantHeaders(t, "/login/passkey", resp.Header, common)
	// The page's policy is unchanged from before the shared helper: its module from its own
	// origin, no inline script, no framing.
	wantHeaders(t, "/login/passkey", resp.Header, map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; " +
			"img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
		"Cross-Origin-Opener-Policy": "same-origin",
		"Content-Type":               "text/html; charset=utf-8",
	})
	if script := cspDirective(resp.Header.Get("Content-Security-Policy"), "script-src"); strings.Contains(script, "unsafe-inline") ||
		strings.Contains(script, "unsafe-eval") || strings.Contains(script, "*") || script == "" {
		t.Errorf("/login/passkey script-src %q allows inline or foreign script", script)
	}

	resp, body := get(t, "GET", srv.URL+"/dev/inbox", nil)
	wantHeaders(t, "/dev/inbox", resp.Header, common)
	csp := resp.Header.Get("Content-Security-Policy")
	m := regexp.MustCompile(`^default-src 'none'; style-src 'nonce-([A-Za-z0-9_-]{22})'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'$`).FindStringSubmatch(csp)
	if m == nil {
		t.Fatalf("/dev/inbox CSP %q", csp)
	}
	if !strings.Contains(body, `<style nonce="`+m[1]+`">`) || strings.Count(body, "<script") != 0 {
		t.Errorf("/dev/inbox body does not carry its header's nonce %s:\n%s", m[1], body)
	}
	wantHeaders(t, "/dev/inbox", resp.Header, map[string]string{"Cross-Origin-Opener-Policy": "same-origin", "Cache-Control": "no-store"})
	if resp2, _ := get(t, "GET", srv.URL+"/dev/inbox", nil); resp2.Header.Get("Content-Security-Policy") == csp {
		t.Error("/dev/inbox reused its nonce on the next request")
	}
}

func cspDirective(csp, name string) string {
	for _, d := range strings.Split(csp, ";") {
		if f := strings.Fields(d); len(f) > 0 && f[0] == name {
			return strings.Join(f[1:], " ")
		}
	}
	return ""
}

// TestCORSFromProjectOrigins: the client routes answer the project's allowed origins, the
// management routes never answer CORS.
func TestCORSFromProjectOrigins(t *testing.T) {
	a, srv := newApp(t, testdb.SQLite(t))
	ctx := context.Background()
	issued, _, err := a.Projects().Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Projects().Update(ctx, audit.Actor{Kind: audit.ActorCLI}, issued.Project.ID, project.Update{
		Settings: []byte(`{"allowed_origins":["https://app.example.com"]}`),
	}); err != nil {
		t.Fatal(err)
	}
	cid := issued.Project.ClientID
	const allowed = "https://app.example.com"

	// A client route, with the client id in the header as SSOJet's clients send it.
	resp, body := get(t, "GET", srv.URL+"/api/v1/config", map[string]string{"Origin": allowed, "X-Client-Id": cid})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != allowed ||
		!strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
		t.Errorf("client route from an allowed origin: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Error("Access-Control-Allow-Credentials sent")
	}
	resp, _ = get(t, "GET", srv.URL+"/api/v1/config", map[string]string{"Origin": "https://evil.example", "X-Client-Id": cid})
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("client route from another origin: ACAO %q", resp.Header.Get("Access-Control-Allow-Origin"))
	}

	// Its preflight, which can name the project only in the query.
	send := srv.URL + "/api/v1/auth/passwordless/email-otp/send?client_id=" + cid
	pre := map[string]string{"Origin": allowed, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
	resp, _ = get(t, "OPTIONS", send, pre)
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != allowed ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Content-Type") {
		t.Errorf("preflight from an allowed origin: %d %v", resp.StatusCode, resp.Header)
	}
	pre["Origin"] = "https://evil.example"
	resp, _ = get(t, "OPTIONS", send, pre)
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", resp.StatusCode, resp.Header)
	}

	// Management routes: no CORS at all, even from an allowed origin with a valid secret.
	mgmt := map[string]string{"Origin": allowed, "X-Client-Id": cid, "X-Client-Secret": issued.ClientSecret}
	resp, body = get(t, "GET", srv.URL+"/api/v1/project", mgmt)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/v1/project: %d %s", resp.StatusCode, body)
	}
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("management route sent %s", k)
		}
	}
	pre["Origin"] = allowed
	pre["Access-Control-Request-Method"] = "PATCH"
	resp, _ = get(t, "OPTIONS", srv.URL+"/api/v1/project?client_id="+cid, pre)
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight of a management route: %d %v", resp.StatusCode, resp.Header)
	}
}
