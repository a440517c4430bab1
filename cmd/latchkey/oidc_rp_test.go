package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// The Go relying parties of issue 15 ("Must show 1"): zitadel/oidc's rp package and
// coreos/go-oidc with x/oauth2, each used as its documentation shows with nothing
// Latchkey-specific but the issuer, the client id (and secret) and the redirect URI, against the
// real binary on loopback. Each runs discovery → code + PKCE (S256) → the id_token verified
// against the JWKS from discovery (by the library) → userinfo → refresh (rotating) → revoke
// (RFC 7009, proven by use) → RP-initiated logout, after which the session is over: its refresh
// token is refused and prompt=none answers login_required. The user signs in on the hosted
// page with the same no-JavaScript email-code flow as the Node relying parties
// (signInWithEmailCode).

// rpTokens is what a library returned from a code exchange or a refresh, after its checks.
type rpTokens struct {
	Access, Refresh, IDToken string
	// Claims are the id_token's, as the library verified them ("" IDToken: none).
	Claims map[string]any
}

// goRP is one relying-party library configured for one client: each method is the library's
// own call for the step.
type goRP struct {
	// authURL is the authorization URL with PKCE S256 of verifier, state, nonce and, when not
	// "", prompt.
	authURL func(state, nonce, verifier, prompt string) string
	// exchange redeems code with the verifier; the library checks the id_token's signature
	// (against the discovered JWKS), issuer, audience, expiry and nonce.
	exchange func(ctx context.Context, code, verifier, nonce string) (rpTokens, error)
	userinfo func(ctx context.Context, access, sub string) (map[string]any, error)
	refresh  func(ctx context.Context, refresh string) (rpTokens, error)
	revoke   func(ctx context.Context, refresh string) error
	// logout ends the session with the id_token as hint and returns where the OP sends the
	// user: the registered post-logout URI with state.
	logout func(ctx context.Context, browser *http.Client, idToken, state string) (*url.URL, error)
	// backChannelLogout is set when logout calls the end-session endpoint from the server
	// (zitadel's rp.EndSession), so the browser's cookie never reaches the OP.
	backChannelLogout bool
}

// rpClient is what a library is configured with: only what an application's settings hold.
type rpClient struct {
	issuer, clientID, secret, redirectURI, postLogout string
	// http is the library's own client for the back channel (no cookies).
	http *http.Client
}

// TestZitadelRelyingParty signs a user in through zitadel/oidc's rp package, as a confidential
// client (client_secret_basic) and as a public one (PKCE only).
func TestZitadelRelyingParty(t *testing.T) {
	testGoRelyingParty(t, "zitadel", func(t *testing.T, c rpClient) goRP {
		var (
			mu    sync.Mutex
			nonce string // the nonce the next id_token must carry; "" for a refresh's
		)
		expect := func(n string) { mu.Lock(); nonce = n; mu.Unlock() }
		style := oauth2.AuthStyleInParams
		if c.secret != "" {
			style = oauth2.AuthStyleInHeader
		}
		party, err := rp.NewRelyingPartyOIDC(t.Context(), c.issuer, c.clientID, c.secret, c.redirectURI,
			[]string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess},
			rp.WithHTTPClient(c.http), rp.WithAuthStyle(style), rp.WithSigningAlgsFromDiscovery(),
			rp.WithVerifierOpts(rp.WithNonce(func(context.Context) string { mu.Lock(); defer mu.Unlock(); return nonce })))
		if err != nil {
			t.Fatalf("zitadel rp.NewRelyingPartyOIDC (discovery): %v", err)
		}
		if party.IDTokenVerifier() == nil || party.GetRevokeEndpoint() == "" || party.GetEndSessionEndpoint() == "" {
			t.Fatalf("zitadel rp: discovery gave no verifier, revocation or end-session endpoint")
		}
		tokens := func(tk *oidc.Tokens[*oidc.IDTokenClaims]) rpTokens {
			out := rpTokens{Access: tk.AccessToken, Refresh: tk.RefreshToken, IDToken: tk.IDToken}
			if tk.IDTokenClaims != nil {
				out.Claims = asMap(t, tk.IDTokenClaims)
			}
			return out
		}
		return goRP{
			authURL: func(state, n, verifier, prompt string) string {
				opts := []rp.AuthURLOpt{rp.WithCodeChallenge(oidc.NewSHACodeChallenge(verifier)), rp.AuthURLOpt(rp.WithURLParam("nonce", n))}
				if prompt != "" {
					opts = append(opts, rp.WithPrompt(prompt))
				}
				return rp.AuthURL(state, party, opts...)
			},
			exchange: func(ctx context.Context, code, verifier, n string) (rpTokens, error) {
				expect(n)
				tk, err := rp.CodeExchange[*oidc.IDTokenClaims](ctx, code, party, rp.WithCodeVerifier(verifier))
				if err != nil {
					return rpTokens{}, err
				}
				return tokens(tk), nil
			},
			userinfo: func(ctx context.Context, access, sub string) (map[string]any, error) {
				// rp.Userinfo refuses an answer whose sub is not the id_token's (OIDC Core §5.3.4).
				ui, err := rp.Userinfo[*oidc.UserInfo](ctx, access, oidc.BearerToken, sub, party)
				if err != nil {
					return nil, err
				}
				return asMap(t, ui), nil
			},
			refresh: func(ctx context.Context, refresh string) (rpTokens, error) {
				expect("") // OIDC Core §12.2: a refreshed id_token answers no authentication request
				tk, err := rp.RefreshTokens[*oidc.IDTokenClaims](ctx, party, refresh, "", "")
				if err != nil {
					return rpTokens{}, err
				}
				return tokens(tk), nil
			},
			revoke: func(ctx context.Context, refresh string) error {
				return rp.RevokeToken(ctx, party, refresh, "refresh_token")
			},
			logout: func(ctx context.Context, _ *http.Client, idToken, state string) (*url.URL, error) {
				// zitadel's EndSession is the back channel: it posts the form and reads the
				// redirect the OP answers, which an application then sends the browser to.
				return rp.EndSession(ctx, party, idToken, c.postLogout, state, "", nil)
			},
			backChannelLogout: true,
		}
	})
}

// TestGoOIDCRelyingParty signs a user in through coreos/go-oidc with x/oauth2, as a
// confidential client (client_secret_basic) and as a public one (PKCE only).
func TestGoOIDCRelyingParty(t *testing.T) {
	testGoRelyingParty(t, "go-oidc", func(t *testing.T, c rpClient) goRP {
		bg := gooidc.ClientContext(t.Context(), c.http)
		provider, err := gooidc.NewProvider(bg, c.issuer) // checks discovery's issuer is the URL
		if err != nil {
			t.Fatalf("go-oidc NewProvider (discovery): %v", err)
		}
		// go-oidc reads only what it needs; the rest of discovery is the application's.
		var more struct {
			Revocation string `json:"revocation_endpoint"`
			EndSession string `json:"end_session_endpoint"`
		}
		if err := provider.Claims(&more); err != nil || more.Revocation == "" || more.EndSession == "" {
			t.Fatalf("discovery has no revocation_endpoint or end_session_endpoint (%v)", err)
		}
		endpoint := provider.Endpoint()
		endpoint.AuthStyle = oauth2.AuthStyleInParams
		if c.secret != "" {
			endpoint.AuthStyle = oauth2.AuthStyleInHeader
		}
		conf := &oauth2.Config{ClientID: c.clientID, ClientSecret: c.secret, Endpoint: endpoint, RedirectURL: c.redirectURI,
			Scopes: []string{gooidc.ScopeOpenID, "profile", "email", gooidc.ScopeOfflineAccess}}
		verifier := provider.Verifier(&gooidc.Config{ClientID: c.clientID})
		verify := func(ctx context.Context, tok *oauth2.Token, nonce string, required bool) (rpTokens, error) {
			out := rpTokens{Access: tok.AccessToken, Refresh: tok.RefreshToken}
			raw, _ := tok.Extra("id_token").(string)
			if raw == "" {
				if required {
					return out, errors.New("the token response has no id_token")
				}
				return out, nil
			}
			idt, err := verifier.Verify(ctx, raw) // signature against the discovered jwks_uri, iss, aud, exp
			if err != nil {
				return out, err
			}
			if idt.Nonce != nonce {
				return out, fmt.Errorf("id_token nonce %q, want %q", idt.Nonce, nonce)
			}
			if err := idt.VerifyAccessToken(tok.AccessToken); idt.AccessTokenHash != "" && err != nil {
				return out, err
			}
			out.IDToken = raw
			return out, idt.Claims(&out.Claims)
		}
		return goRP{
			authURL: func(state, nonce, v, prompt string) string {
				opts := []oauth2.AuthCodeOption{gooidc.Nonce(nonce), oauth2.S256ChallengeOption(v)}
				if prompt != "" {
					opts = append(opts, oauth2.SetAuthURLParam("prompt", prompt))
				}
				return conf.AuthCodeURL(state, opts...)
			},
			exchange: func(ctx context.Context, code, v, nonce string) (rpTokens, error) {
				ctx = gooidc.ClientContext(ctx, c.http)
				tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(v))
				if err != nil {
					return rpTokens{}, err
				}
				return verify(ctx, tok, nonce, true)
			},
			userinfo: func(ctx context.Context, access, sub string) (map[string]any, error) {
				ctx = gooidc.ClientContext(ctx, c.http)
				ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: access, TokenType: "Bearer"}))
				if err != nil {
					return nil, err
				}
				if ui.Subject != sub {
					return nil, fmt.Errorf("userinfo sub %q is not the id_token's %q", ui.Subject, sub)
				}
				var m map[string]any
				return m, ui.Claims(&m)
			},
			refresh: func(ctx context.Context, refresh string) (rpTokens, error) {
				ctx = gooidc.ClientContext(ctx, c.http)
				// A token with no access token is not valid, so the source refreshes at once.
				tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refresh}).Token()
				if err != nil {
					return rpTokens{}, err
				}
				return verify(ctx, tok, "", false)
			},
			revoke: func(ctx context.Context, refresh string) error {
				// x/oauth2 has no RFC 7009 call: the application posts the form itself.
				form := url.Values{"token": {refresh}, "token_type_hint": {"refresh_token"}}
				if c.secret == "" {
					form.Set("client_id", c.clientID)
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, more.Revocation, strings.NewReader(form.Encode()))
				if err != nil {
					return err
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if c.secret != "" {
					req.SetBasicAuth(c.clientID, c.secret)
				}
				resp, err := c.http.Do(req)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
					return fmt.Errorf("revocation: %d %s", resp.StatusCode, b)
				}
				return nil
			},
			logout: func(ctx context.Context, browser *http.Client, idToken, state string) (*url.URL, error) {
				// The front channel: the application sends the browser to end_session_endpoint.
				q := url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {c.postLogout}, "state": {state},
					"client_id": {c.clientID}}
				b := &hostedBrowser{t: t, client: noRedirects(browser), origin: c.issuer}
				if _, leave := b.open(more.EndSession + "?" + q.Encode()); leave != "" {
					return url.Parse(leave)
				}
				return nil, errors.New("the end-session endpoint answered a page, not a redirect to post_logout_redirect_uri")
			},
		}
	})
}

// testGoRelyingParty runs the round trip with the library newRP configures, on SQLite and on
// PostgreSQL, each time for a confidential and a public client of the Default project.
func testGoRelyingParty(t *testing.T, lib string, newRP func(*testing.T, rpClient) goRP) {
	t.Run("sqlite", func(t *testing.T) {
		testGoRelyingPartyOn(t, lib, newRP, []string{"--data-dir", t.TempDir()})
	})
	t.Run("postgres", func(t *testing.T) {
		testGoRelyingPartyOn(t, lib, newRP, append([]string{"--database-url", testdb.PostgresURL(t)}, masterKeyArgs(t)...))
	})
}

// testGoRelyingPartyOn is testGoRelyingParty against one server started with dbArgs.
func testGoRelyingPartyOn(t *testing.T, lib string, newRP func(*testing.T, rpClient) goRP, dbArgs []string) {
	addr := freeLoopbackAddr(t)
	issuer := "http://" + addr
	// The issuer is the public URL, so the server must listen where the public URL says.
	s := startServer(t, append(dbArgs, "--dev", "--addr", addr, "--public-url", issuer)...)
	oidcDiscovery(t, s)
	clientID, secret := s.credentials()

	// The application's routes: they only record that the browser came back.
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }))
	t.Cleanup(app.Close)
	redirectURI, postLogout := app.URL+"/callback", app.URL+"/signed-out"

	for _, tc := range []struct {
		name, authMethod, secret string
	}{
		{"confidential", "client_secret_basic", secret},
		{"public", "none", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			patchSettings(t, s, secret, map[string]any{
				"redirect_uris": []string{redirectURI},
				"oidc": map[string]any{
					"post_logout_redirect_uris":  []string{postLogout},
					"token_endpoint_auth_method": tc.authMethod,
				},
			})
			c := rpClient{issuer: issuer, clientID: clientID, secret: tc.secret, redirectURI: redirectURI, postLogout: postLogout,
				http: &http.Client{Timeout: 30 * time.Second}}
			party := newRP(t, c)
			email := lib + "-" + tc.name + "@example.com"
			browser := newBrowser(t)
			ctx := t.Context()

			// Sign in: a new browser goes through the hosted page.
			first := goRPSignIn(t, c, party, browser, email, true)
			sub, _ := first.Claims["sub"].(string)
			checkIDClaims(t, "id_token", first.Claims, issuer, clientID, email)
			if strings.Contains(s.stderr.String(), first.Access) || strings.Contains(s.stderr.String(), first.IDToken) {
				t.Error("a token is in the server's log")
			}

			ui, err := party.userinfo(ctx, first.Access, sub)
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			if ui["sub"] != sub || ui["email"] != email || ui["email_verified"] != true {
				t.Errorf("userinfo %v: want sub %s, email %s, email_verified true", ui, sub, email)
			}

			// Refresh: the refresh token rotates, and the new access token works.
			refreshed, err := party.refresh(ctx, first.Refresh)
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if refreshed.Refresh == "" || refreshed.Refresh == first.Refresh {
				t.Fatal("the refresh did not rotate the refresh token")
			}
			if refreshed.Claims != nil && refreshed.Claims["sub"] != sub {
				t.Errorf("the refreshed id_token's sub %v, want %s", refreshed.Claims["sub"], sub)
			}
			if _, err := party.userinfo(ctx, refreshed.Access, sub); err != nil {
				t.Errorf("userinfo with the refreshed access token: %v", err)
			}

			// Revoke (RFC 7009): 200, and the revoked refresh token no longer refreshes.
			if err := party.revoke(ctx, refreshed.Refresh); err != nil {
				t.Fatalf("revoke: %v", err)
			}
			if _, err := party.refresh(ctx, refreshed.Refresh); !isInvalidGrant(err) {
				t.Fatalf("refresh with the revoked refresh token: %v, want invalid_grant", err)
			}

			// Sign in again in the same browser (revoking ended the session the browser's
			// sign-in was tied to, so the hosted page may ask again), then log out.
			second := goRPSignIn(t, c, party, browser, email, false)
			checkIDClaims(t, "second id_token", second.Claims, issuer, clientID, email)
			if second.Claims["sub"] != sub {
				t.Errorf("the second sign-in's sub %v, want %s", second.Claims["sub"], sub)
			}
			live, err := party.refresh(ctx, second.Refresh)
			if err != nil {
				t.Fatalf("refresh before logout: %v", err)
			}
			state := randomString(t)
			landing, err := party.logout(ctx, browser, second.IDToken, state)
			if err != nil {
				t.Fatalf("logout: %v", err)
			}
			if landing == nil || landing.Scheme+"://"+landing.Host+landing.Path != postLogout || landing.Query().Get("state") != state {
				t.Fatalf("logout sent the user to %v, want %s with the RP's state", landing, postLogout)
			}

			// After logout the session is over: its refresh token is refused, and the browser
			// is no longer signed in (prompt=none answers login_required).
			if _, err := party.refresh(ctx, live.Refresh); !isInvalidGrant(err) {
				t.Errorf("refresh after logout: %v, want invalid_grant", err)
			}
			state = randomString(t)
			b := &hostedBrowser{t: t, client: noRedirects(browser), origin: issuer}
			pg, leave := b.open(party.authURL(state, randomString(t), oauth2.GenerateVerifier(), "none"))
			if pg != nil {
				t.Fatalf("prompt=none after logout showed the %q page (%s), want a redirect with login_required", pg.Screen, pg.URL.Path)
			}
			u, err := url.Parse(leave)
			if err != nil {
				t.Fatalf("prompt=none redirect: %v", err)
			}
			if u.Scheme+"://"+u.Host+u.Path != redirectURI || u.Query().Get("state") != state {
				t.Fatalf("prompt=none after logout went to %s://%s%s (state ok %v), want %s with the state",
					u.Scheme, u.Host, u.Path, u.Query().Get("state") == state, redirectURI)
			}
			if u.Query().Get("error") != "login_required" || u.Query().Has("code") {
				// With backChannelLogout no cookie reached the OP: single sign-on ends only
				// because the hint's session links to the login session it came from.
				t.Errorf("prompt=none after logout (server-side end session: %v) answered error=%q, code %v; want error=login_required and no code",
					party.backChannelLogout, u.Query().Get("error"), u.Query().Has("code"))
			}
		})
	}
}

// goRPSignIn starts an authorization with party in browser, signs email in on the hosted page
// when the OP shows it (a new browser must see it: fresh), checks the redirect back to the
// application (its state, no error, a code) and exchanges the code with the PKCE verifier.
func goRPSignIn(t *testing.T, c rpClient, party goRP, browser *http.Client, email string, fresh bool) rpTokens {
	t.Helper()
	state, nonce, verifier := randomString(t), randomString(t), oauth2.GenerateVerifier()
	b := &hostedBrowser{t: t, client: noRedirects(browser), origin: c.issuer}
	pg, callback := b.open(party.authURL(state, nonce, verifier, ""))
	switch {
	case pg != nil:
		if pg.URL.Path != "/login" || pg.URL.Query().Get("authRequest") == "" {
			t.Fatalf("the authorization URL led to %s (screen %q), want the hosted page /login?authRequest=…", pg.URL.Path, pg.Screen)
		}
		callback = signInWithEmailCode(t, browser, pg.URL.String(), email)
	case fresh:
		t.Fatal("a browser that never signed in was sent back to the application without the hosted page")
	default:
		t.Log("signed in again without a prompt: the browser's session outlived the revoked refresh token")
	}
	cb, err := url.Parse(callback)
	if err != nil {
		t.Fatalf("callback URL: %v", err)
	}
	q := cb.Query()
	if cb.Scheme+"://"+cb.Host+cb.Path != c.redirectURI || q.Get("error") != "" || q.Get("state") != state || q.Get("code") == "" {
		t.Fatalf("the OP sent the browser to %s://%s%s with error=%q (%s), state ok %v, code %v; want %s with the state and a code",
			cb.Scheme, cb.Host, cb.Path, q.Get("error"), q.Get("error_description"), q.Get("state") == state, q.Get("code") != "", c.redirectURI)
	}
	if iss := q.Get("iss"); iss != "" && iss != c.issuer {
		t.Errorf("the callback's iss (RFC 9207) is %q, want %s", iss, c.issuer)
	}
	tokens, err := party.exchange(t.Context(), q.Get("code"), verifier, nonce)
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	if tokens.Access == "" || tokens.Refresh == "" || tokens.IDToken == "" {
		t.Fatalf("the code exchange gave access %v, refresh %v, id_token %v: want all three (offline_access was asked)",
			tokens.Access != "", tokens.Refresh != "", tokens.IDToken != "")
	}
	return tokens
}

// checkIDClaims checks the id_token claims a library verified against what Latchkey knows.
func checkIDClaims(t *testing.T, what string, claims map[string]any, issuer, clientID, email string) {
	t.Helper()
	aud := claims["aud"]
	audOK := aud == clientID
	if list, ok := aud.([]any); ok {
		audOK = slices.Contains(list, any(clientID))
	}
	if sub, _ := claims["sub"].(string); sub == "" || claims["iss"] != issuer || !audOK {
		t.Errorf("%s: sub %v, iss %v, aud %v; want a subject, %s, %s", what, claims["sub"], claims["iss"], aud, issuer, clientID)
	}
	if claims["email"] != email || claims["email_verified"] != true {
		t.Errorf("%s: email %v (verified %v), want %s verified: an email-code login verifies the address",
			what, claims["email"], claims["email_verified"], email)
	}
}

// isInvalidGrant reports whether err is the token endpoint's invalid_grant, as either library
// reports it.
func isInvalidGrant(err error) bool {
	if err == nil {
		return false
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode == "invalid_grant"
	}
	var oe *oidc.Error
	if errors.As(err, &oe) {
		return oe.ErrorType == oidc.InvalidGrant
	}
	return strings.Contains(err.Error(), "invalid_grant")
}

// asMap is v (a library's claims type) as the JSON object it was decoded from.
func asMap(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// randomString is an unguessable state or nonce.
func randomString(t *testing.T) string {
	t.Helper()
	return rand.Text()
}
