package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestOIDCAuthorizeThrottle: one IP starts at most protect.authorize_requests_per_hour
// authorization requests an hour, over the real server on both backends. The next is an HTML
// 429 page with Retry-After and never a redirect to the client (it is not the client's
// error); the next window starts over; an allow-listed IP is never counted, a blocked one is
// refused with a page.
func TestOIDCAuthorizeThrottle(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newOIDCWorld(t, st, "")
		w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"protect":{"authorize_requests_per_hour":10}}}`, w.secret()), 200, "")
		authorize := func(path string) (*http.Response, string) {
			t.Helper()
			u := strings.Replace(w.authorizeURL(nil, testVerifier), "/v1/authorize", path, 1)
			return w.get(u)
		}
		// The aliases share one budget: it is the IP's, whatever route it comes in by.
		paths := []string{"/v1/authorize", "/oidc/authorize", "/oauth2/authorize"}
		for i := range 10 {
			if resp, body := authorize(paths[i%3]); resp.StatusCode != http.StatusFound {
				t.Fatalf("request %d: %d %s, want a redirect to the login", i+1, resp.StatusCode, body)
			}
		}
		w.clock.Advance(15 * time.Minute)
		throttled := func(path string, retryAfter string) {
			t.Helper()
			resp, body := authorize(path)
			if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Location") != "" ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "too_many_requests") {
				t.Fatalf("%s: %d Location=%q %s, want a 429 HTML page without a redirect", path, resp.StatusCode, resp.Header.Get("Location"), body)
			}
			if got := resp.Header.Get("Retry-After"); got != retryAfter {
				t.Errorf("%s: Retry-After %q, want %s", path, got, retryAfter)
			}
		}
		throttled("/v1/authorize", "2700")
		throttled("/oauth2/authorize", "2700")
		// A POSTed request is the same budget and the same page.
		u, _ := url.Parse(w.authorizeURL(nil, testVerifier))
		resp, err := w.browser.PostForm(w.srv.URL+"/oidc/authorize", u.Query())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Location") != "" || resp.Header.Get("Retry-After") != "2700" {
			t.Fatalf("POST: %d Location=%q Retry-After=%q, want a 429 page", resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Retry-After"))
		}

		w.clock.Advance(45 * time.Minute)
		if resp, body := authorize("/v1/authorize"); resp.StatusCode != http.StatusFound {
			t.Fatalf("the next hour: %d %s, want a redirect to the login", resp.StatusCode, body)
		}

		// Validated like the other budgets.
		w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"protect":{"authorize_requests_per_hour":5}}}`, w.secret()), 400, "")

		w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"protect":{"allow_cidrs":["127.0.0.0/8","::1/128"]}}}`, w.secret()), 200, "")
		for i := range 25 {
			if resp, body := authorize("/v1/authorize"); resp.StatusCode != http.StatusFound {
				t.Fatalf("allow-listed, request %d: %d %s", i+1, resp.StatusCode, body)
			}
		}

		// Last: the block list refuses this address on the management API too.
		w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"protect":{"allow_cidrs":[],"block_cidrs":["127.0.0.0/8","::1/128"]}}}`, w.secret()), 200, "")
		resp, body := authorize("/v1/authorize")
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" || !strings.Contains(body, "ip_blocked") ||
			!strings.Contains(body, "not available from this network") {
			t.Fatalf("blocked: %d Location=%q %s, want a 403 page", resp.StatusCode, resp.Header.Get("Location"), body)
		}

	})
}
