package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestNoJSEmailCodeSignIn is issue 15's "Must show 3": the whole email-code sign-in on the
// hosted page with JavaScript disabled, by posting the page's forms, against the real binary.
// The browser here runs no script and fetches nothing but the pages and their redirects: every
// form it submits is a plain <form method="post" action="/login"> with a submit button, every
// post answers 303 (post/redirect/get), every page answers 200 HTML, and the sign-in ends at
// the client's redirect_uri with a code that the token endpoint exchanges for tokens.
func TestNoJSEmailCodeSignIn(t *testing.T) {
	addr := freeLoopbackAddr(t)
	issuer := "http://" + addr
	s := startServer(t, "--data-dir", t.TempDir(), "--dev", "--addr", addr, "--public-url", issuer)
	oidcDiscovery(t, s)
	clientID, secret := s.credentials()
	// Nothing listens there: the browser never follows the final redirect, the test reads it.
	const redirectURI = "https://app.example/callback"
	patchSettings(t, s, secret, map[string]any{
		"redirect_uris": []string{redirectURI},
		"oidc":          map[string]any{"token_endpoint_auth_method": "none"},
	})

	verifier, state, nonce := randomString(t)+randomString(t), randomString(t), randomString(t)
	sum := sha256.Sum256([]byte(verifier))
	authURL := issuer + "/v1/authorize?" + url.Values{"response_type": {"code"}, "client_id": {clientID},
		"redirect_uri": {redirectURI}, "scope": {"openid email"}, "state": {state}, "nonce": {nonce},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}.Encode()

	browser := newBrowser(t)
	b := &hostedBrowser{t: t, client: browser, origin: issuer}
	pg, leave := b.open(authURL)
	if pg == nil || pg.URL.Path != "/login" || pg.Screen != "identifier" {
		t.Fatalf("the authorization URL led to %v / %q, want the hosted page's identifier screen", pg, leave)
	}
	const email = "nojs@example.com"
	callback, steps := signInWithEmailCodeSteps(t, browser, pg.URL.String(), email)

	// What the browser did, step by step: nothing but pages, form posts and redirects.
	var screens []string
	for _, st := range steps {
		switch {
		case st.Method == http.MethodPost:
			if st.Path != "/login" || st.FormAction != "/login" || st.FormMethod != "post" || st.Status != http.StatusSeeOther {
				t.Errorf("a form post: %+v; want a form with method=post action=/login answered 303", st)
			}
		case st.Status == http.StatusOK:
			if st.Path != "/login" || st.ContentType != "text/html" || st.Screen == "" {
				t.Errorf("a page: %+v; want the hosted page as HTML with a screen", st)
			}
			screens = append(screens, st.Screen)
		case st.Status == http.StatusFound || st.Status == http.StatusSeeOther:
			if !strings.HasPrefix(st.Path, "/v1/authorize") && st.Path != "/login" {
				t.Errorf("a redirect from %s: the sign-in left the page and the authorization endpoint", st.Path)
			}
		default:
			t.Errorf("an unexpected answer: %+v", st)
		}
		if strings.HasPrefix(st.Path, "/login/") || strings.HasSuffix(st.Path, ".js") {
			t.Errorf("the browser fetched %s: a no-JS sign-in needs no script or JSON route", st.Path)
		}
	}
	// The project offers passkeys by default, so after a code login on a browser without one
	// the page offers to save one (issue 15's screen 5), and "not now" is a form too.
	if want := []string{"identifier", "methods", "code", "passkey_offer"}; !slices.Equal(screens, want) {
		t.Errorf("screens %v, want %v", screens, want)
	}

	// The sign-in ends at the client with the code and its state, and the code is good.
	cb, err := url.Parse(callback)
	if err != nil || cb.Scheme+"://"+cb.Host+cb.Path != redirectURI || cb.Query().Get("state") != state || cb.Query().Get("code") == "" {
		t.Fatalf("the sign-in ended at %s://%s%s (state ok %v, code %v), want %s with the state and a code",
			cb.Scheme, cb.Host, cb.Path, cb.Query().Get("state") == state, cb.Query().Get("code") != "", redirectURI)
	}
	resp, err := http.PostForm(issuer+"/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID},
		"code": {cb.Query().Get("code")}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
		Error       string `json:"error"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" || tok.IDToken == "" {
		t.Fatalf("exchanging the code: %d %q (%v), want an access token and an id_token", resp.StatusCode, tok.Error, err)
	}
	// The id_token is the user who signed in on the page (its signature is the RP tests' to
	// check against the discovered JWKS; here the payload says who).
	parts := strings.Split(tok.IDToken, ".")
	var claims map[string]any
	if len(parts) != 3 {
		t.Fatal("the id_token is not a JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &claims) != nil || claims["email"] != email || claims["nonce"] != nonce {
		t.Errorf("id_token email %v nonce ok %v, want %s and the nonce", claims["email"], claims["nonce"] == nonce, email)
	}
	if strings.Contains(s.stderr.String(), cb.Query().Get("code")) {
		t.Error("the authorization code is in the server's log")
	}
}
