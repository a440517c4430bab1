package oidcprovider

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"
)

const (
	spikeClientID = "spa"
	spikeRedirect = "https://app.example/cb"
)

// spikeOP is the Authorizer the authorize route is served with: op's own checks, then ours.
// op accepts code_challenge_method=plain (and an empty method, which RFC 7636 reads as plain)
// and lets a public client in without PKCE; AuthorizeValidator is the hook that runs after
// the redirect_uri is known to be registered, so these errors redirect to the client.
type spikeOP struct{ *op.Provider }

func (p spikeOP) ValidateAuthRequest(ctx context.Context, r *oidc.AuthRequest, s op.Storage, v *op.IDTokenHintVerifier) (string, error) {
	client, err := s.GetClientByClientID(ctx, r.ClientID)
	if err != nil {
		return "", oidc.ErrInvalidRequestRedirectURI().WithDescription("unknown client_id").WithParent(err)
	}
	sub, err := op.ValidateAuthRequestClient(ctx, r, client, v)
	if err != nil {
		return "", err
	}
	switch {
	case hasRequestURI(ctx):
		return "", oidc.ErrRequestNotSupported().WithDescription("request_uri is not supported")
	case r.CodeChallenge == "" && client.AuthMethod() == oidc.AuthMethodNone:
		return "", oidc.ErrInvalidRequest().WithDescription("code_challenge with code_challenge_method=S256 is required")
	case r.CodeChallenge != "" && r.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return "", oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	return sub, nil
}

// requestURIKey marks a request that carried request_uri: op's oidc.AuthRequest has no field
// for it and its decoder drops it, so the route notes it before op parses the request.
type requestURIKey struct{}

func hasRequestURI(ctx context.Context) bool { v, _ := ctx.Value(requestURIKey{}).(bool); return v }

// tokenEndpoint stands for tokenhttp's POST /api/v1/oauth2/token: it keeps dispatching on
// grant_type, lets op's exported steps do the protocol checks and the id_token, and mints the
// access and refresh tokens itself (in Latchkey: token.SessionStarter.Start and
// token.Service.Refresh, the one rotation path).
type tokenEndpoint struct {
	op     *op.Provider
	store  *memStorage
	issuer string
}

func (t tokenEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// op reads the issuer (iss of the id_token) from the context its own router would set.
	ctx := op.ContextWithIssuer(r.Context(), t.issuer)
	r = r.WithContext(ctx)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, oidc.ErrInvalidRequest().WithDescription("the body must be a form"))
		return
	}
	var resp *oidc.AccessTokenResponse
	var err error
	switch r.PostForm.Get("grant_type") {
	case string(oidc.GrantTypeCode):
		resp, err = t.exchangeCode(ctx, r)
	case string(oidc.GrantTypeRefreshToken):
		resp, err = t.refresh(ctx, r)
	default:
		// client_credentials stays on our existing code path.
		err = oidc.ErrUnsupportedGrantType()
	}
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

func (t tokenEndpoint) exchangeCode(ctx context.Context, r *http.Request) (*oidc.AccessTokenResponse, error) {
	tr, err := op.ParseAccessTokenRequest(r, t.op.Decoder())
	if err != nil {
		return nil, err
	}
	if tr.Code == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("code is required")
	}
	// Code lookup, PKCE, client, redirect_uri and grant checks, all op's.
	req, client, err := op.ValidateAccessTokenRequest(ctx, tr, t.op)
	if err != nil {
		return nil, err
	}
	a, ok := req.(*authRequest)
	if !ok {
		return nil, oidc.ErrServerError()
	}
	accessID, refresh, exp, err := t.store.exchangeCode(a)
	if err != nil {
		return nil, err
	}
	return t.respond(ctx, a, client, accessID, refresh, exp, tr.Code)
}

func (t tokenEndpoint) refresh(ctx context.Context, r *http.Request) (*oidc.AccessTokenResponse, error) {
	tr, err := op.ParseRefreshTokenRequest(r, t.op.Decoder())
	if err != nil {
		return nil, err
	}
	// A public client only names itself; a confidential one is authenticated here by our
	// Secrets path before anything else.
	client, err := t.op.Storage().GetClientByClientID(ctx, tr.ClientID)
	if err != nil {
		return nil, oidc.ErrInvalidClient().WithParent(err)
	}
	a, accessID, next, exp, err := t.store.rotateRefresh(client.GetID(), tr.RefreshToken)
	if err != nil {
		return nil, err
	}
	return t.respond(ctx, a, client, accessID, next, exp, "")
}

// respond wraps our tokens in op's response type with op's id_token. The access token here is
// op's encrypted "id:subject" so that op's userinfo can read it; Latchkey's is its at+jwt.
func (t tokenEndpoint) respond(ctx context.Context, a *authRequest, client op.Client, accessID, refresh string, exp time.Time, code string) (*oidc.AccessTokenResponse, error) {
	at, err := op.CreateBearerToken(accessID, a.subject, t.op.Crypto())
	if err != nil {
		return nil, err
	}
	resp := &oidc.AccessTokenResponse{AccessToken: at, TokenType: oidc.BearerToken, RefreshToken: refresh,
		ExpiresIn: uint64(time.Until(exp).Seconds()), Scope: a.scopes}
	if slices.Contains(a.scopes, oidc.ScopeOpenID) {
		if resp.IDToken, err = op.CreateIDToken(ctx, t.issuer, a, client.IDTokenLifetime(), at, code, t.op.Storage(), client); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// writeOAuthError stands for httpserver.WriteOAuthError: op's errors are *oidc.Error, which
// the real handler turns into failure errors so the one mapping writes them.
func writeOAuthError(w http.ResponseWriter, err error) {
	e := oidc.DefaultToServerError(err, "server error")
	status := http.StatusBadRequest
	switch e.ErrorType {
	case oidc.InvalidClient:
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Basic realm="latchkey"`)
	case oidc.ServerError:
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": string(e.ErrorType), "error_description": e.Description})
}

type spikeServer struct {
	url   string
	store *memStorage
	http  *http.Client
}

func newSpikeServer(t *testing.T) *spikeServer {
	t.Helper()
	st := newMemStorage()
	st.users["user-1"] = userRow{email: "ada@example.com", emailVerified: true, orgID: "org-1", roles: []string{"admin"}}

	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	issuer := srv.URL
	st.clients[spikeClientID] = &spikeClient{id: spikeClientID, redirectURIs: []string{spikeRedirect}, loginURL: issuer + "/login"}

	cfg := &op.Config{CodeMethodS256: true, GrantTypeRefreshToken: true, AuthMethodPost: true}
	if _, err := rand.Read(cfg.CryptoKey[:]); err != nil {
		t.Fatal(err)
	}
	p, err := op.NewProvider(cfg, st, op.StaticIssuer(issuer),
		op.WithAllowInsecure(), // the spike serves http on loopback
		op.WithCustomAuthEndpoint(op.NewEndpoint("/v1/authorize")),
		op.WithCustomTokenEndpoint(op.NewEndpoint("/api/v1/oauth2/token")),
		op.WithCustomUserinfoEndpoint(op.NewEndpoint("/api/v1/userinfo")),
		op.WithCustomKeysEndpoint(op.NewEndpoint("/.well-known/jwks.json")),
		op.WithCustomEndSessionEndpoint(op.NewEndpoint("/v1/logout")),
	)
	if err != nil {
		t.Fatal(err)
	}
	authorize := func(w http.ResponseWriter, r *http.Request) {
		ctx := op.ContextWithIssuer(r.Context(), issuer)
		if r.FormValue("request_uri") != "" {
			ctx = context.WithValue(ctx, requestURIKey{}, true)
		}
		op.Authorize(w, r.WithContext(ctx), spikeOP{p})
	}
	mux := http.NewServeMux()
	mux.Handle("/", p) // discovery, jwks, userinfo, the authorize callback: op's own router
	mux.HandleFunc("/v1/authorize", authorize)
	mux.HandleFunc("/oidc/authorize", authorize) // an alias is just another pattern
	mux.Handle("POST /api/v1/oauth2/token", tokenEndpoint{op: p, store: st, issuer: issuer})
	// The hosted login page, skipped: it approves the request and hands it back to op.
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		if err := st.approve(id, "user-1", []string{"otp"}, time.Now()); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, op.AuthCallbackURL(p)(op.ContextWithIssuer(r.Context(), issuer), id), http.StatusFound)
	})
	handler = mux

	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &spikeServer{url: issuer, store: st, http: c}
}

// authorize follows the redirects of an authorization request until one leaves for the
// client's redirect_uri, and returns that URL's query.
func (s *spikeServer) authorize(t *testing.T, u string) url.Values {
	t.Helper()
	for range 5 {
		resp, err := s.http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("GET %s: status %d, want a redirect", u, resp.StatusCode)
		}
		loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(loc.String(), spikeRedirect) {
			return loc.Query()
		}
		u = loc.String()
	}
	t.Fatal("too many redirects")
	return nil
}

func (s *spikeServer) rp(t *testing.T) (context.Context, *gooidc.Provider, oauth2.Config) {
	t.Helper()
	ctx := gooidc.ClientContext(context.Background(), s.http)
	provider, err := gooidc.NewProvider(ctx, s.url)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	ep := provider.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams // a public client sends only client_id
	return ctx, provider, oauth2.Config{
		ClientID: spikeClientID, Endpoint: ep, RedirectURL: spikeRedirect,
		Scopes: []string{gooidc.ScopeOpenID, "email", gooidc.ScopeOfflineAccess, "organization", "roles"},
	}
}

func (s *spikeServer) postToken(form url.Values) (int, map[string]any) {
	resp, err := s.http.PostForm(s.url+"/api/v1/oauth2/token", form)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func (s *spikeServer) userinfoStatus(t *testing.T, accessToken string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+"/api/v1/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSpikeStockRelyingParty runs go-oidc with x/oauth2 through discovery, authorize with
// PKCE S256, the code exchange on our own token endpoint, the id_token verified against the
// JWKS from discovery, userinfo, and a refresh that rotates.
func TestSpikeStockRelyingParty(t *testing.T) {
	s := newSpikeServer(t)
	ctx, provider, cfg := s.rp(t)

	verifier := oauth2.GenerateVerifier()
	q := s.authorize(t, cfg.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "n-1")))
	if q.Get("state") != "st-1" || q.Get("code") == "" {
		t.Fatalf("callback query %v, want a code and state st-1", q)
	}
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&gooidc.Config{ClientID: spikeClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("id_token: %v", err)
	}
	var claims struct {
		Email         string   `json:"email"`
		EmailVerified bool     `json:"email_verified"`
		OrgID         string   `json:"org_id"`
		Roles         []string `json:"roles"`
		AMR           []string `json:"amr"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Issuer != s.url || idt.Subject != "user-1" || idt.Nonce != "n-1" || !claims.EmailVerified ||
		claims.Email != "ada@example.com" || claims.OrgID != "org-1" || len(claims.Roles) != 1 || len(claims.AMR) != 1 {
		t.Fatalf("id_token iss=%q sub=%q nonce=%q claims=%+v", idt.Issuer, idt.Subject, idt.Nonce, claims)
	}
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Email != "ada@example.com" || !ui.EmailVerified {
		t.Fatalf("userinfo %+v, %v", ui, err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("offline_access granted no refresh token")
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
	// Replaying the spent refresh token fails and revokes the family: the rotated one too.
	status, body := s.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old}, "client_id": {spikeClientID}})
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("replayed refresh token: %d %v, want 400 invalid_grant", status, body)
	}
	if status, _ := s.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next.RefreshToken}, "client_id": {spikeClientID}}); status != http.StatusBadRequest {
		t.Fatalf("refresh token of a revoked family: status %d, want 400", status)
	}
	if got := s.userinfoStatus(t, next.AccessToken); got == http.StatusOK {
		t.Fatal("access token of a revoked family still works at userinfo")
	}
}

// TestSpikeRefusesPlainPKCE shows op's gaps closed by spikeOP: plain, an empty method (which
// means plain) and a public client without PKCE are redirected back with invalid_request,
// request and request_uri with request_not_supported, while an unknown client is never
// redirected.
func TestSpikeRefusesPlainPKCE(t *testing.T) {
	s := newSpikeServer(t)
	base := url.Values{"response_type": {"code"}, "client_id": {spikeClientID}, "redirect_uri": {spikeRedirect}, "scope": {"openid"}, "state": {"st"}}
	for name, extra := range map[string]url.Values{
		"request_uri":  {"request_uri": {"https://app.example/req.jwt"}, "want": {"request_not_supported"}},
		"request":      {"request": {"eyJhbGciOiJub25lIn0.e30."}, "want": {"request_not_supported"}},
		"plain":        {"code_challenge": {"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq"}, "code_challenge_method": {"plain"}},
		"empty method": {"code_challenge": {"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq"}},
		"no pkce":      {},
	} {
		t.Run(name, func(t *testing.T) {
			v := url.Values{}
			for k, vs := range base {
				v[k] = vs
			}
			want := "invalid_request"
			for k, vs := range extra {
				if k == "want" {
					want = vs[0]
					continue
				}
				v[k] = vs
			}
			if v.Get("code_challenge") == "" && want != "invalid_request" {
				v.Set("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
				v.Set("code_challenge_method", "S256")
			}
			resp, err := s.http.Get(s.url + "/v1/authorize?" + v.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), spikeRedirect) ||
				loc.Query().Get("error") != want || loc.Query().Get("state") != "st" {
				t.Fatalf("status %d Location %q, want a redirect with error=%s", resp.StatusCode, loc, want)
			}
		})
	}
	v := url.Values{"response_type": {"code"}, "client_id": {"nobody"}, "redirect_uri": {"https://evil.example/cb"}, "scope": {"openid"}}
	resp, err := s.http.Get(s.url + "/oidc/authorize?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Fatalf("unknown client: status %d Location %q, want 400 without a redirect", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestSpikeCodeExchangedOnce sends 50 concurrent exchanges of one code: exactly one wins,
// and the later attempts revoke what it got.
func TestSpikeCodeExchangedOnce(t *testing.T) {
	s := newSpikeServer(t)
	_, _, cfg := s.rp(t)
	verifier := oauth2.GenerateVerifier()
	q := s.authorize(t, cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {spikeRedirect},
		"client_id": {spikeClientID}, "code_verifier": {verifier}}

	const n = 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	var wins []string
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			status, body := s.postToken(form)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case status == http.StatusOK:
				at, _ := body["access_token"].(string)
				wins = append(wins, at)
			case status != http.StatusBadRequest || body["error"] != "invalid_grant":
				t.Errorf("loser got %d %v, want 400 invalid_grant", status, body)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d exchanges of one code succeeded, want exactly 1", len(wins))
	}
	if got := s.userinfoStatus(t, wins[0]); got == http.StatusOK {
		t.Fatal("the winner's access token survived the code's reuse")
	}
}

// TestSpikeIssuerIgnoresForgedHost: with a static issuer, neither Host nor X-Forwarded-Host
// changes what discovery says.
func TestSpikeIssuerIgnoresForgedHost(t *testing.T) {
	s := newSpikeServer(t)
	req, _ := http.NewRequest(http.MethodGet, s.url+"/.well-known/openid-configuration", nil)
	req.Host = "evil.example"
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("Forwarded", "host=evil.example;proto=https")
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d oidc.DiscoveryConfiguration
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != s.url || d.TokenEndpoint != s.url+"/api/v1/oauth2/token" || d.JwksURI != s.url+"/.well-known/jwks.json" {
		t.Fatalf("discovery issuer %q token %q jwks %q", d.Issuer, d.TokenEndpoint, d.JwksURI)
	}
	t.Logf("code_challenge_methods_supported=%v response_types_supported=%v grant_types=%v auth_methods=%v",
		d.CodeChallengeMethodsSupported, d.ResponseTypesSupported, d.GrantTypesSupported, d.TokenEndpointAuthMethodsSupported)
}
