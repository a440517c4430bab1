package app_test

import (
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// race sends n copies of one token request at once and returns the answers.
func (w *oidcWorld) race(n int, form url.Values) []response {
	w.t.Helper()
	out := make([]response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = w.token("", form, nil)
		})
	}
	close(start)
	wg.Wait()
	return out
}

// TestOIDCCodeExchangedOnce sends 50 concurrent exchanges of one code: exactly one gets tokens,
// every other gets 400 invalid_grant, and the reuse revokes what the winner got, with an audit
// event. op alone would let all 50 win (it deletes the code after minting).
func TestOIDCCodeExchangedOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newOIDCWorld(t, st, "")
		verifier := "verifier-" + t.Name() + "-0123456789012345678901234567890123456789"
		code := w.code("ada@example.com", verifier)
		var wins []response
		for _, r := range w.race(50, w.exchangeForm(code, verifier)) {
			switch {
			case r.status == http.StatusOK:
				wins = append(wins, r)
			case r.status != http.StatusBadRequest || r.body["error"] != "invalid_grant":
				t.Errorf("a losing exchange got %d %s, want 400 invalid_grant", r.status, r.raw)
			}
		}
		if len(wins) != 1 {
			t.Fatalf("%d exchanges of one code succeeded, want exactly 1", len(wins))
		}
		win := wins[0].body
		if got := w.statusOf(win["access_token"].(string)); got != http.StatusUnauthorized {
			t.Errorf("the winner's access token after the reuse: %d, want 401", got)
		}
		r := w.token("", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {win["refresh_token"].(string)}, "client_id": {w.clientID()}}, nil)
		if r.status != http.StatusBadRequest || r.body["error"] != "invalid_grant" {
			t.Errorf("the winner's refresh token after the reuse: %d %s, want 400 invalid_grant", r.status, r.raw)
		}
		if len(w.auditEvents("authorization_code.reused")) == 0 {
			t.Error("no authorization_code.reused audit event")
		}
		// A reuse long after the race is refused the same way.
		if r := w.token("", w.exchangeForm(code, verifier), nil); r.status != http.StatusBadRequest || r.body["error"] != "invalid_grant" {
			t.Errorf("a late reuse: %d %s", r.status, r.raw)
		}
	})
}

// TestOIDCRefreshedOnce sends 50 concurrent refreshes of one refresh token through the OIDC
// token endpoint: exactly one rotates it; a reuse of the spent token revokes the family, the
// token the winner got included.
func TestOIDCRefreshedOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newOIDCWorld(t, st, "")
		verifier := "verifier-" + t.Name() + "-0123456789012345678901234567890123456789"
		r := w.token("/oidc/token", w.exchangeForm(w.code("ada@example.com", verifier), verifier), nil)
		w.want(r, 200, "")
		rt := r.body["refresh_token"].(string)
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {w.clientID()}}
		var wins []response
		for _, r := range w.race(50, form) {
			switch {
			case r.status == http.StatusOK:
				wins = append(wins, r)
			case r.status != http.StatusBadRequest || r.body["error"] != "invalid_grant":
				t.Errorf("a losing refresh got %d %s, want 400 invalid_grant", r.status, r.raw)
			}
		}
		if len(wins) != 1 {
			t.Fatalf("%d refreshes of one token succeeded, want exactly 1", len(wins))
		}
		// The losers were reuses: the family is revoked, the winner's new tokens with it.
		next := wins[0].body
		if r := w.token("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next["refresh_token"].(string)},
			"client_id": {w.clientID()}}, nil); r.status != http.StatusBadRequest {
			t.Errorf("the rotated token of a revoked family: %d %s, want 400", r.status, r.raw)
		}
		if got := w.statusOf(next["access_token"].(string)); got != http.StatusUnauthorized {
			t.Errorf("the rotated access token of a revoked family: %d, want 401", got)
		}
		if len(w.auditEvents("refresh_token.reused")) == 0 {
			t.Error("no refresh_token.reused audit event")
		}
	})
}
