package httpserver

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/failure"
)

// TestBotCheckedRoutes: a route mounted BotChecked passes the router's bot check after its
// access check, and only such routes do; without a bot check it refuses rather than let bots
// through.
func TestBotCheckedRoutes(t *testing.T) {
	newRouter := func() *Router {
		rt := NewRouter(corsAuth{}, nil)
		ok := func(w http.ResponseWriter, _ *http.Request) error { w.WriteHeader(http.StatusNoContent); return nil }
		rt.Handle("POST /send", ClientID, ok, BotChecked)
		rt.Handle("POST /verify", ClientID, ok)
		return rt
	}
	call := func(rt *Router, path, clientID string) *httptest.ResponseRecorder {
		return serveWith(rt, httptest.NewRequest("POST", path+"?client_id="+clientID, nil))
	}

	rt := newRouter()
	if got := rt.BotCheckedPatterns(); !slices.Equal(got, []string{"POST /send"}) {
		t.Errorf("BotCheckedPatterns %q", got)
	}
	if rec := call(rt, "/send", "cli_1"); rec.Code != http.StatusInternalServerError {
		t.Errorf("a bot-checked route without a bot check: %d, want 500", rec.Code)
	}

	var checked []string
	rt.UseBotCheck(func(r *http.Request) (*http.Request, error) {
		checked = append(checked, ProjectFrom(r.Context()).ID)
		return r, failure.New(failure.Forbidden, "bot_check_required", "prove it")
	})
	if rec := call(rt, "/send", "cli_1"); rec.Code != http.StatusForbidden {
		t.Errorf("bot-checked route: %d, want the check's 403", rec.Code)
	}
	if rec := call(rt, "/verify", "cli_1"); rec.Code != http.StatusNoContent {
		t.Errorf("unchecked route: %d, want 204", rec.Code)
	}
	// The access check comes first: an unknown client never reaches the bot check.
	if rec := call(rt, "/send", "cli_unknown"); rec.Code != http.StatusUnauthorized {
		t.Errorf("unknown client: %d, want 401", rec.Code)
	}
	if !slices.Equal(checked, []string{corsProject.ID}) {
		t.Errorf("the bot check saw %q, want one request of %s", checked, corsProject.ID)
	}
}
