package passwordlesshttp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/passwordless"
	"github.com/latchkey-dev/latchkey/internal/passwordless/passwordlesshttp"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// oneProject resolves the one client id these tests use.
type oneProject struct{}

func (oneProject) ProjectByClientID(_ context.Context, clientID string) (store.Project, error) {
	if clientID != "c1" {
		return store.Project{}, failure.New(failure.Unauthenticated, "invalid_client", "unknown client")
	}
	return store.Project{ID: "p1", ClientID: "c1", Name: "Acme"}, nil
}

func (oneProject) AuthenticateSecret(context.Context, string, string) (store.Project, error) {
	return store.Project{}, failure.New(failure.Unauthenticated, "invalid_client", "no secrets here")
}

// failingLinks is a passwordless service whose VerifyLink fails with err: the page's mapping
// of each typed error is what is under test, not the flows (internal/app tests those).
type failingLinks struct{ err error }

func (f failingLinks) Send(context.Context, store.Project, passwordless.SendRequest) (string, error) {
	return "", f.err
}

func (f failingLinks) Resend(context.Context, store.Project, []passwordless.Channel, string, string) error {
	return f.err
}

func (f failingLinks) VerifyCodeDevice(context.Context, store.Project, []passwordless.Channel, string, string, string, audit.Meta) (login.Result, error) {
	return login.Result{}, f.err
}

func (f failingLinks) VerifyLink(context.Context, store.Project, string, string, audit.Meta) (string, error) {
	return "", f.err
}

func (f failingLinks) Status(context.Context, store.Project, string, audit.Meta) (login.Result, error) {
	return login.Result{}, f.err
}

var nonceAttr = regexp.MustCompile(`<style nonce="([A-Za-z0-9_-]+)">`)

// TestLinkPageAnswersAsMapped opens the magic link with each kind of failure behind it: the
// page answers with the status, Retry-After and error code that the JSON API gives the same
// error, under a nonce policy, and never shows a server error's detail.
func TestLinkPageAnswersAsMapped(t *testing.T) {
	cases := []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter string
		says       string
	}{
		{"too many", failure.TooManyUntil(90*time.Second, "too_many_attempts", "slow down"), 429, "too_many_attempts", "90", "Too many requests"},
		{"unavailable", failure.StorageUnavailable(errors.New("disk full at /var/lib/latchkey")), 503, "", "30", "Temporarily unavailable"},
		{"internal", failure.New(failure.Internal, "internal_error", "sealer broke on key k-7"), 500, "internal_error", "", "Something went wrong"},
		{"untyped", fmt.Errorf("query flows: %w", errors.New("connection reset by 10.0.0.7")), 500, "internal_error", "", "Something went wrong"},
		{"not found", failure.New(failure.NotFound, "flow_not_found", "no such sign-in"), 404, "flow_not_found", "", "expired or was already used"},
		{"invalid", failure.New(failure.Invalid, "invalid_request", "state is required"), 400, "invalid_request", "", "This link cannot be used"},
		{"dead", failure.New(failure.Unauthenticated, "flow_dead", "too many attempts"), 401, "flow_dead", "", "Too many attempts were made"},
		{"forbidden", failure.New(failure.Forbidden, "origin_not_allowed", "no"), 403, "origin_not_allowed", "", "This link cannot be used"},
		{"conflict", failure.New(failure.Conflict, "flow_collected", "already used"), 409, "flow_collected", "", "This link cannot be used"},
		{"store not found", store.ErrNotFound, 404, "not_found", "", "This link cannot be used"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			rt := httpserver.NewRouter(oneProject{}, slog.New(slog.NewTextHandler(&logs, nil)))
			passwordlesshttp.Handler{Flows: failingLinks{c.err}}.Mount(rt)
			srv := httptest.NewServer(httpserver.SecureHeaders(httpserver.Wrap(rt, slog.New(slog.DiscardHandler), nil), ""))
			defer srv.Close()

			resp, err := http.Get(srv.URL + "/api/v1/auth/passwordless/magic-link/verify?client_id=c1&state=s1&magictext=m1")
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			page := string(raw)
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d", resp.StatusCode, c.status)
			}
			if got := resp.Header.Get("Retry-After"); got != c.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, c.retryAfter)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q, want an HTML page", ct)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q: the URL holds the link's secret", resp.Header.Get("Cache-Control"))
			}
			m := nonceAttr.FindStringSubmatch(page)
			if m == nil || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "style-src 'nonce-"+m[1]+"'") {
				t.Errorf("the page's style and its policy do not share a nonce: %q\n%s", resp.Header.Get("Content-Security-Policy"), page)
			}
			code := c.code
			if code == "" {
				fe, _ := failure.As(c.err)
				code = fe.Code
			}
			if !strings.Contains(page, "Error code: "+code) || !strings.Contains(page, c.says) || !strings.Contains(page, "Acme") {
				t.Errorf("page does not say %q with code %s:\n%s", c.says, code, page)
			}
			for _, secret := range []string{"/var/lib", "k-7", "10.0.0.7", "slow down"} {
				if strings.Contains(page, secret) {
					t.Errorf("the page shows the error's detail %q:\n%s", secret, page)
				}
			}
			if c.status == 500 && !strings.Contains(logs.String(), "request failed") {
				t.Errorf("a 500 is not logged: %q", logs.String())
			}
		})
	}
}
