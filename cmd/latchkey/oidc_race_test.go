package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// Issue 15's "Must show 4" against the real binary: 50 concurrent exchanges of one
// authorization code at /api/v1/oauth2/token give exactly one set of tokens, and the reuse
// revokes it (its access token is refused, its refresh token gets invalid_grant) with the
// audit event authorization_code.reused; 50 concurrent refreshes of one refresh token at
// /oidc/token rotate it exactly once, and the reuse revokes the family, the winner's new
// tokens included (refresh_token.reused). Each request is its own HTTP connection to the
// server process, on SQLite and on PostgreSQL, so the database alone decides the winner.

func TestOIDCRaceCodeAndRefresh(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testOIDCRaceOn(t, []string{"--data-dir", t.TempDir()})
	})
	t.Run("postgres", func(t *testing.T) {
		testOIDCRaceOn(t, append([]string{"--database-url", testdb.PostgresURL(t)}, masterKeyArgs(t)...))
	})
}

// raceWorld is one server and a public client (PKCE, no secret) of its Default project.
type raceWorld struct {
	t                                  *testing.T
	s                                  *server
	issuer, clientID, secret, redirect string
	browser                            *http.Client
	// issued are the codes and tokens the server handed out: none may be in its log.
	issued []string
}

func testOIDCRaceOn(t *testing.T, dbArgs []string) {
	addr := freeLoopbackAddr(t)
	issuer := "http://" + addr
	s := startServer(t, append(dbArgs, "--dev", "--addr", addr, "--public-url", issuer)...)
	clientID, secret := s.credentials()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }))
	t.Cleanup(app.Close)
	w := &raceWorld{t: t, s: s, issuer: issuer, clientID: clientID, secret: secret, redirect: app.URL + "/callback", browser: newBrowser(t)}
	patchSettings(t, s, secret, map[string]any{
		"redirect_uris": []string{w.redirect},
		"oidc":          map[string]any{"token_endpoint_auth_method": "none"},
	})

	t.Run("code", func(t *testing.T) {
		code, verifier := w.code("race-code@example.com", true)
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {w.redirect},
			"client_id": {clientID}, "code_verifier": {verifier}}
		win := w.oneWinner("/api/v1/oauth2/token", form)
		if got := w.status(win.Access); got != http.StatusUnauthorized {
			t.Errorf("the winner's access token after the reuse: /api/v1/auth/status %d, want 401", got)
		}
		if st, r := w.tokenCall("/api/v1/oauth2/token", w.refreshForm(win.Refresh)); st != http.StatusBadRequest || r.Error != "invalid_grant" {
			t.Errorf("the winner's refresh token after the reuse: %d %+v, want 400 invalid_grant", st, r)
		}
		if n := w.auditCount("authorization_code.reused"); n == 0 {
			t.Error("GET /api/v1/logs lists no authorization_code.reused event")
		}
		if st, r := w.tokenCall("/api/v1/oauth2/token", form); st != http.StatusBadRequest || r.Error != "invalid_grant" {
			t.Errorf("a late reuse of the code: %d %+v, want 400 invalid_grant", st, r)
		}
	})

	t.Run("refresh", func(t *testing.T) {
		// The browser is signed in from the first sign-in: single sign-on, or the page again.
		code, verifier := w.code("race-code@example.com", false)
		st, first := w.tokenCall("/oidc/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {w.redirect}, "client_id": {clientID}, "code_verifier": {verifier}})
		if st != http.StatusOK || first.Refresh == "" {
			t.Fatalf("code exchange: %d %+v, want 200 with a refresh token", st, first)
		}
		if got := w.status(first.Access); got != http.StatusOK {
			t.Fatalf("the fresh access token: /api/v1/auth/status %d, want 200", got)
		}
		win := w.oneWinner("/oidc/token", w.refreshForm(first.Refresh))
		if win.Refresh == "" || win.Refresh == first.Refresh {
			t.Fatal("the winning refresh did not rotate the refresh token")
		}
		// The 49 losers presented a spent token: the family is revoked, the winner's with it.
		if st, r := w.tokenCall("/oidc/token", w.refreshForm(win.Refresh)); st != http.StatusBadRequest || r.Error != "invalid_grant" {
			t.Errorf("the rotated refresh token of a revoked family: %d %+v, want 400 invalid_grant", st, r)
		}
		if got := w.status(win.Access); got != http.StatusUnauthorized {
			t.Errorf("the rotated access token of a revoked family: /api/v1/auth/status %d, want 401", got)
		}
		if got := w.status(first.Access); got != http.StatusUnauthorized {
			t.Errorf("the family's first access token: /api/v1/auth/status %d, want 401", got)
		}
		if n := w.auditCount("refresh_token.reused"); n == 0 {
			t.Error("GET /api/v1/logs lists no refresh_token.reused event")
		}
	})

	for _, tok := range w.issued {
		if strings.Contains(s.stderr.String(), tok) {
			t.Error("a code or token is in the server's log")
		}
	}
}

// code runs an authorization with PKCE S256 in the browser, signing email in on the hosted
// page when it is shown (it must be for a fresh browser), and returns the code and verifier.
func (w *raceWorld) code(email string, fresh bool) (code, verifier string) {
	w.t.Helper()
	state, verifier := randomString(w.t), oauth2.GenerateVerifier()
	q := url.Values{"response_type": {"code"}, "client_id": {w.clientID}, "redirect_uri": {w.redirect},
		"scope": {"openid email offline_access"}, "state": {state}, "nonce": {randomString(w.t)},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}}
	b := &hostedBrowser{t: w.t, client: noRedirects(w.browser), origin: w.issuer}
	pg, callback := b.open(w.issuer + "/v1/authorize?" + q.Encode())
	switch {
	case pg != nil:
		callback = signInWithEmailCode(w.t, w.browser, pg.URL.String(), email)
	case fresh:
		w.t.Fatal("a browser that never signed in was sent back without the hosted page")
	}
	cb, err := url.Parse(callback)
	if err != nil {
		w.t.Fatal(err)
	}
	if cb.Query().Get("state") != state || cb.Query().Get("code") == "" {
		w.t.Fatalf("callback %s://%s%s: state ok %v, error %q; want the state and a code", cb.Scheme, cb.Host, cb.Path,
			cb.Query().Get("state") == state, cb.Query().Get("error"))
	}
	w.issued = append(w.issued, cb.Query().Get("code"))
	return cb.Query().Get("code"), verifier
}

func (w *raceWorld) refreshForm(rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {w.clientID}}
}

// tokenAnswer is a token endpoint's answer: tokens, or the OAuth error.
type tokenAnswer struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
	Error   string `json:"error"`
}

// tokenCall posts form to the token endpoint at path on a connection of its own.
func (w *raceWorld) tokenCall(path string, form url.Values) (int, tokenAnswer) {
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.PostForm(w.issuer+path, form)
	if err != nil {
		w.t.Errorf("POST %s: %v", path, err)
		return 0, tokenAnswer{}
	}
	defer resp.Body.Close()
	var a tokenAnswer
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &a); err != nil {
		w.t.Errorf("POST %s: %d, body is no JSON: %v", path, resp.StatusCode, err)
	}
	return resp.StatusCode, a
}

// oneWinner sends 50 copies of form to path at once and checks that exactly one got 200 and
// every other 400 invalid_grant; it returns the winner's tokens.
func (w *raceWorld) oneWinner(path string, form url.Values) tokenAnswer {
	w.t.Helper()
	const n = 50
	type answer struct {
		status int
		tokenAnswer
	}
	out := make([]answer, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			out[i].status, out[i].tokenAnswer = w.tokenCall(path, form)
		})
	}
	close(start)
	wg.Wait()
	var wins []tokenAnswer
	for _, a := range out {
		switch {
		case a.status == http.StatusOK:
			wins = append(wins, a.tokenAnswer)
		case a.status != http.StatusBadRequest || a.Error != "invalid_grant":
			w.t.Errorf("a losing request to %s got %d %q, want 400 invalid_grant", path, a.status, a.Error)
		}
	}
	if len(wins) != 1 {
		w.t.Fatalf("%d of %d concurrent requests to %s succeeded, want exactly 1", len(wins), n, path)
	}
	if wins[0].Access == "" || wins[0].Refresh == "" {
		w.t.Fatalf("the winner at %s got no access or refresh token", path)
	}
	w.issued = append(w.issued, wins[0].Access, wins[0].Refresh)
	return wins[0]
}

// status is GET /api/v1/auth/status's status with the access token.
func (w *raceWorld) status(access string) int {
	w.t.Helper()
	req, err := http.NewRequest(http.MethodGet, w.issuer+"/api/v1/auth/status", nil)
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// auditCount is how many events of typ GET /api/v1/logs lists (the project secret's view).
func (w *raceWorld) auditCount(typ string) int {
	w.t.Helper()
	st, body, err := request(w.t, http.DefaultClient, http.MethodGet, w.issuer+"/api/v1/logs?limit=100&type="+url.QueryEscape(typ), w.secret, "")
	if err != nil || st != http.StatusOK {
		w.t.Fatalf("GET /api/v1/logs: %d %s %v", st, body, err)
	}
	var list struct {
		Logs []struct {
			Type string `json:"type"`
		} `json:"logs"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		w.t.Fatal(err)
	}
	n := 0
	for _, e := range list.Logs {
		if e.Type == typ {
			n++
		}
	}
	return n
}
