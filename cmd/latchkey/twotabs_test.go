package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
)

// TestNoJSTwoTabsSignIn: a user opens the application in two tabs, and both send the browser
// to the authorization endpoint before either signs in. Each request has its own binding
// cookie, so the first tab's sign-in on the hosted page is not refused as another browser's,
// and the second tab, signed in after it, finishes too: each with its own state and code, and
// each code is good. Against the real binary, by posting the page's forms.
func TestNoJSTwoTabsSignIn(t *testing.T) {
	addr := freeLoopbackAddr(t)
	issuer := "http://" + addr
	s := startServer(t, "--data-dir", t.TempDir(), "--dev", "--addr", addr, "--public-url", issuer)
	oidcDiscovery(t, s)
	clientID, secret := s.credentials()
	const redirectURI = "https://app.example/callback"
	patchSettings(t, s, secret, map[string]any{
		"redirect_uris": []string{redirectURI},
		"oidc":          map[string]any{"token_endpoint_auth_method": "none"},
	})
	verifier := randomString(t) + randomString(t)
	sum := sha256.Sum256([]byte(verifier))
	authURL := func(state string) string {
		return issuer + "/v1/authorize?" + url.Values{"response_type": {"code"}, "client_id": {clientID},
			"redirect_uri": {redirectURI}, "scope": {"openid email"}, "state": {state}, "nonce": {randomString(t)},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}.Encode()
	}

	browser := newBrowser(t)
	b := &hostedBrowser{t: t, client: noRedirects(browser), origin: issuer}
	states := []string{randomString(t), randomString(t)}
	var pages []string
	for i, st := range states {
		pg, leave := b.open(authURL(st))
		if pg == nil || pg.URL.Path != "/login" || pg.Screen != "identifier" {
			t.Fatalf("tab %d: the authorization URL led to %v / %q, want the hosted page's identifier screen", i+1, pg, leave)
		}
		pages = append(pages, pg.URL.String())
	}

	const email = "tabs@example.com"
	codes := map[string]bool{}
	for i, pg := range pages { // the first tab first: the one whose binding a shared cookie lost
		callback := signInWithEmailCode(t, browser, pg, email)
		cb, err := url.Parse(callback)
		if err != nil || cb.Scheme+"://"+cb.Host+cb.Path != redirectURI || cb.Query().Get("state") != states[i] || cb.Query().Get("code") == "" {
			t.Fatalf("tab %d: the sign-in ended at %s://%s%s (state ok %v, code %v), want %s with its state and a code",
				i+1, cb.Scheme, cb.Host, cb.Path, cb.Query().Get("state") == states[i], cb.Query().Get("code") != "", redirectURI)
		}
		code := cb.Query().Get("code")
		if codes[code] {
			t.Fatalf("tab %d got the other tab's code", i+1)
		}
		codes[code] = true
		resp, err := http.PostForm(issuer+"/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID},
			"code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}})
		if err != nil {
			t.Fatal(err)
		}
		var tok struct {
			IDToken string `json:"id_token"`
			Error   string `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || tok.IDToken == "" {
			t.Fatalf("tab %d: exchanging its code: %d %q (%v), want an id_token", i+1, resp.StatusCode, tok.Error, err)
		}
	}
}
