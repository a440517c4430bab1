package app_test

import (
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// gatedRoutes are the routes behind the bot check: sign-up, and every route that sends a
// message (sends, resends, password reset). A new one belongs here, and in its Mount with
// httpserver.BotChecked.
var gatedRoutes = []string{
	"POST /api/v1/auth/password/reset/send",
	"POST /api/v1/auth/password/signup",
	"POST /api/v1/auth/passwordless/email-otp/resend",
	"POST /api/v1/auth/passwordless/email-otp/send",
	"POST /api/v1/auth/passwordless/magic-link/resend",
	"POST /api/v1/auth/passwordless/magic-link/send",
	"POST /api/v1/auth/passwordless/magic-otp/send",
	"POST /api/v1/auth/passwordless/phone-otp/resend",
	"POST /api/v1/auth/passwordless/phone-otp/send",
}

var pathValue = regexp.MustCompile(`\{[^}]*\}`)

// TestGatedRoutes pins which routes pass the bot check, three ways: the routes their Mounts
// declare, the rule that every sign-up, send and resend route is one of them (so that a new
// send route cannot be forgotten), and what every registered route answers, with the check
// always on, to a request that carries no proof.
func TestGatedRoutes(t *testing.T) {
	w := newPasswordWorld(t, testdb.SQLite(t))
	rt := w.a.Router()
	if got := rt.BotCheckedPatterns(); !slices.Equal(got, gatedRoutes) {
		t.Errorf("bot-checked routes:\n got %q\nwant %q", got, gatedRoutes)
	}
	for _, p := range rt.Patterns() {
		sends := strings.HasSuffix(p, "/send") || strings.HasSuffix(p, "/resend") || strings.HasSuffix(p, "/signup")
		if sends && !slices.Contains(gatedRoutes, p) {
			t.Errorf("%s signs up or sends a message but is not bot-checked", p)
		}
	}

	w.setProtect(`{"bot_check":"always"}`)
	for _, p := range rt.Patterns() {
		method, path, _ := strings.Cut(p, " ")
		// The same empty body to every route is off most routes' schemas on purpose, so the
		// probe goes to the handler itself, past the test client's OpenAPI check.
		req := httptest.NewRequest(method, pathValue.ReplaceAllString(path, "x"), strings.NewReader("{}"))
		for k, v := range w.cid() {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		w.a.Handler().ServeHTTP(rec, req)
		var body struct {
			ErrorCode string `json:"error_code"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		refused := rec.Code == 403 && body.ErrorCode == "bot_check_required"
		if gated := slices.Contains(gatedRoutes, p); gated != refused {
			t.Errorf("%s without a proof: %d %s (bot-checked: %v)", p, rec.Code, rec.Body, gated)
		}
	}
}
