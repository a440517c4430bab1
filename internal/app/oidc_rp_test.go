package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/oidcprovider"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestOIDCGoOIDCRoundTrip runs coreos/go-oidc with x/oauth2, configured with nothing but the
// issuer and the client id, through discovery, authorize with PKCE S256, the hosted page's
// approval, the code exchange, the id_token verified against the JWKS from discovery, a
// refresh that rotates, and RP-initiated logout, which ends the session.
func TestOIDCGoOIDCRoundTrip(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newOIDCWorld(t, st, "")
		ctx := context.WithValue(gooidc.ClientContext(t.Context(), w.browser), oauth2.HTTPClient, w.browser)
		provider, err := gooidc.NewProvider(ctx, w.srv.URL)
		if err != nil {
			t.Fatalf("discovery: %v", err)
		}
		ep := provider.Endpoint()
		ep.AuthStyle = oauth2.AuthStyleInParams // a public client sends only client_id
		cfg := oauth2.Config{ClientID: w.clientID(), Endpoint: ep, RedirectURL: oidcRedirect,
			Scopes: []string{gooidc.ScopeOpenID, "email", "profile", "made-up"}}

		res := w.signIn("ada@example.com")
		verifier := oauth2.GenerateVerifier()
		id, at := w.startAuthorize(cfg.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "n-1")))
		if at != nil {
			t.Fatalf("authorize went to the client: %s", at)
		}
		q := w.approve(id, res, false)
		if q.Get("state") != "st-1" || q.Get("code") == "" {
			t.Fatalf("callback query %v", q)
		}
		tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := provider.Verifier(&gooidc.Config{ClientID: w.clientID()}).Verify(ctx, raw)
		if err != nil {
			t.Fatalf("id_token: %v", err)
		}
		var claims struct {
			Email         string   `json:"email"`
			EmailVerified bool     `json:"email_verified"`
			SID           string   `json:"sid"`
			AMR           []string `json:"amr"`
		}
		if err := idt.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if idt.Issuer != w.srv.URL || idt.Subject != res.User.ID || idt.Nonce != "n-1" || !claims.EmailVerified ||
			claims.Email != "ada@example.com" || claims.SID == "" || claims.SID == res.Tokens.Session.ID || len(claims.AMR) == 0 {
			t.Fatalf("id_token iss=%q sub=%q nonce=%q claims=%+v", idt.Issuer, idt.Subject, idt.Nonce, claims)
		}
		if got := tok.Extra("scope"); got != "openid email profile offline_access" {
			t.Errorf("granted scope %q: the unknown scope must be dropped, offline_access added for a first-party project", got)
		}
		if access := claimsOf(t, tok.AccessToken); access["sid"] != claims.SID || access["scope"] != tok.Extra("scope") {
			t.Errorf("access token sid=%v scope=%v, want the id_token's session and the granted scope", access["sid"], access["scope"])
		}
		if got := w.statusOf(tok.AccessToken); got != http.StatusOK {
			t.Fatalf("the access token at /api/v1/auth/status: %d", got)
		}
		ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil || ui.Subject != res.User.ID || ui.Email != "ada@example.com" || !ui.EmailVerified {
			t.Fatalf("userinfo %+v, %v", ui, err)
		}

		// x/oauth2 refreshes an expired token by itself; the refresh token must rotate.
		old := tok.RefreshToken
		tok.Expiry = time.Now().Add(-time.Minute)
		next, err := cfg.TokenSource(ctx, tok).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if next.RefreshToken == "" || next.RefreshToken == old || next.AccessToken == tok.AccessToken {
			t.Fatal("refresh did not rotate the tokens")
		}
		if raw2, _ := next.Extra("id_token").(string); raw2 == "" {
			t.Error("refresh of an openid grant gave no id_token")
		} else if _, err := provider.Verifier(&gooidc.Config{ClientID: w.clientID()}).Verify(ctx, raw2); err != nil {
			t.Errorf("refreshed id_token: %v", err)
		}

		// RP-initiated logout with the hint returns to the registered URI with state and ends
		// the session: its tokens die at once.
		logout := w.srv.URL + "/v1/logout?" + url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {oidcGoodbye}, "state": {"bye"}}.Encode()
		loc := w.location(w.get(logout))
		if !strings.HasPrefix(loc.String(), oidcGoodbye) || loc.Query().Get("state") != "bye" {
			t.Fatalf("logout went to %s", loc)
		}
		if got := w.statusOf(next.AccessToken); got != http.StatusUnauthorized {
			t.Errorf("access token after logout: %d, want 401", got)
		}
		if r := w.token("", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next.RefreshToken}, "client_id": {w.clientID()}}, nil); r.status != 400 {
			t.Errorf("refresh after logout: %d %s, want 400", r.status, r.raw)
		}
		if got := w.statusOf(res.Tokens.AccessToken); got != http.StatusUnauthorized {
			t.Errorf("the browser's own session after logout: %d, want 401", got)
		}
		if w.cookie("__Host-lk_session") != "" {
			t.Error("logout left the browser session cookie")
		}
	})
}

// TestOIDCZitadelRP runs zitadel/oidc's certified relying party, as a confidential client
// (client_secret_basic, with PKCE too), through the same round trip, with userinfo and the
// revocation of its refresh token.
func TestOIDCZitadelRP(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newOIDCWorld(t, st, `{"token_endpoint_auth_method":"client_secret_basic"}`)
		ctx := t.Context()
		// The RP checks the nonce of the authentication it started; an id_token of a refresh
		// has none (OIDC Core §12.2).
		nonce := "zn"
		party, err := rp.NewRelyingPartyOIDC(ctx, w.srv.URL, w.clientID(), w.proj.ClientSecret, oidcRedirect,
			[]string{oidc.ScopeOpenID, oidc.ScopeEmail, oidc.ScopeOfflineAccess}, rp.WithHTTPClient(w.browser),
			rp.WithVerifierOpts(rp.WithNonce(func(context.Context) string { return nonce })))
		if err != nil {
			t.Fatalf("discovery: %v", err)
		}
		res := w.signIn("grace@example.com")
		verifier := oauth2.GenerateVerifier()
		id, at := w.startAuthorize(rp.AuthURL("zs", party, rp.WithCodeChallenge(oidc.NewSHACodeChallenge(verifier)), rp.AuthURLOpt(rp.WithURLParam("nonce", "zn"))))
		if at != nil {
			t.Fatalf("authorize went to the client: %s", at)
		}
		q := w.approve(id, res, false)
		tokens, err := rp.CodeExchange[*oidc.IDTokenClaims](ctx, q.Get("code"), party, rp.WithCodeVerifier(verifier))
		if err != nil {
			t.Fatalf("code exchange: %v", err)
		}
		c := tokens.IDTokenClaims
		if c.Issuer != w.srv.URL || c.Subject != res.User.ID || c.Email != "grace@example.com" || !bool(c.EmailVerified) || c.SessionID == "" {
			t.Fatalf("id_token claims %+v", c)
		}
		nonce = ""
		next, err := rp.RefreshTokens[*oidc.IDTokenClaims](ctx, party, tokens.RefreshToken, "", "")
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if next.RefreshToken == tokens.RefreshToken || next.IDTokenClaims == nil || next.IDTokenClaims.SessionID != c.SessionID {
			t.Fatal("refresh did not rotate, or lost the session")
		}
		ui, err := rp.Userinfo[*oidc.UserInfo](ctx, next.AccessToken, oidc.BearerToken, c.Subject, party)
		if err != nil || ui.Email != "grace@example.com" || !bool(ui.EmailVerified) {
			t.Fatalf("userinfo %+v, %v", ui, err)
		}
		if err := rp.RevokeToken(ctx, party, next.RefreshToken, "refresh_token"); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		if _, err := rp.RefreshTokens[*oidc.IDTokenClaims](ctx, party, next.RefreshToken, "", ""); err == nil {
			t.Fatal("a revoked refresh token still refreshes")
		}
		u, err := rp.EndSession(ctx, party, tokens.IDToken, oidcGoodbye, "zbye", "", nil)
		if err != nil {
			t.Fatalf("end session: %v", err)
		}
		if u == nil || !strings.HasPrefix(u.String(), oidcGoodbye) || u.Query().Get("state") != "zbye" {
			t.Fatalf("end session went to %v", u)
		}
		if got := w.statusOf(next.AccessToken); got != http.StatusUnauthorized {
			t.Errorf("access token after logout: %d, want 401", got)
		}
	})
}

// TestOIDCOrganizationClaims: an organization picked on the page, with the organization and
// roles scopes, puts org_id, roles and permissions in the id_token (verified by go-oidc against
// the discovered JWKS) and org_id in the access token.
func TestOIDCOrganizationClaims(t *testing.T) {
	w := newOIDCWorld(t, testdb.SQLite(t), "")
	res := w.signIn("ada@example.com")
	name := "Acme"
	org, err := w.a.Directory().CreateOrganization(t.Context(), audit.Actor{Kind: audit.ActorCLI}, w.proj.Project.ID, directory.OrganizationInput{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	roles, err := w.a.Directory().ListRoles(t.Context(), w.proj.Project.ID, directory.PageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var admin string
	for _, r := range roles.Roles {
		if r.Slug == "admin" {
			admin = r.ID
		}
	}
	if _, err := w.a.Directory().SetUserRoles(t.Context(), audit.Actor{Kind: audit.ActorCLI}, w.proj.Project.ID, res.User.ID,
		directory.UserRolesInput{OrganizationID: org.ID, RoleIDs: []string{admin}}); err != nil {
		t.Fatal(err)
	}
	id, _ := w.startAuthorize(w.authorizeURL(url.Values{"scope": {"openid organization roles"}}, testVerifier))
	a, err := w.a.OIDC().Approve(t.Context(), id, w.cookie(oidcprovider.BindingCookieName(id)), oidcprovider.Approval{Result: res, OrganizationID: org.ID})
	if err != nil {
		t.Fatal(err)
	}
	q := w.location(w.get(a.RedirectURL)).Query()
	r := w.token("", w.exchangeForm(q.Get("code"), testVerifier), nil)
	w.want(r, 200, "")
	ctx := gooidc.ClientContext(t.Context(), w.browser)
	provider, err := gooidc.NewProvider(ctx, w.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := provider.Verifier(&gooidc.Config{ClientID: w.clientID()}).Verify(ctx, r.body["id_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		OrgID string   `json:"org_id"`
		Roles []string `json:"roles"`
		Email string   `json:"email"`
	}
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.OrgID != org.ID || len(c.Roles) != 1 || c.Roles[0] != "admin" || c.Email != "" {
		t.Fatalf("id_token claims %+v: want the organization and its roles, and no email (not granted)", c)
	}
	if got := claimsOf(t, r.body["access_token"].(string))["org_id"]; got != org.ID {
		t.Errorf("access token org_id %v", got)
	}
}
