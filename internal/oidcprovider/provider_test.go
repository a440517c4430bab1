package oidcprovider_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/login/logintest"
	"github.com/latchkey-dev/latchkey/internal/oidcprovider"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
	"github.com/latchkey-dev/latchkey/internal/token"
)

const redirect = "https://app.acme.test/done"

type fixture struct {
	t    *testing.T
	s    *logintest.Stack
	keys *token.KeyManager
	p    *oidcprovider.Provider
	proj store.Project
	user string
}

func newFixture(t *testing.T, st *sqlstore.Store, settings string) *fixture {
	t.Helper()
	s := logintest.New(t, st)
	f := &fixture{t: t, s: s, keys: token.NewKeyManager(token.KeyManagerDeps{Store: st, Sealer: s.Ring, Now: s.Clock.Now})}
	var err error
	f.p, err = oidcprovider.New(oidcprovider.Deps{Store: st, Projects: s.Projects, Sessions: s.Sessions, Refresher: s.Login, Keys: f.keys,
		Policy: func(store.Project) (token.Policy, error) { return token.Policy{Algorithm: token.ES256}, nil },
		Users:  s.Directory, Access: s.Directory, Issuer: logintest.Issuer, CodeKey: []byte("oidcprovider test code key 32 b!"),
		Now: s.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if settings == "" {
		settings = `{"oidc":{"token_endpoint_auth_method":"none"}}`
	}
	f.proj = s.Project(t, settings)
	email := "ada@example.com"
	u, err := s.Directory.CreateUser(t.Context(), audit.Actor{Kind: audit.ActorCLI}, f.proj.ID, directory.UserInput{Email: &email})
	if err != nil {
		t.Fatal(err)
	}
	f.user = u.ID
	return f
}

// authRequest is a public client's authorization request with PKCE S256.
func (f *fixture) authRequest(mod func(*oidc.AuthRequest)) *oidc.AuthRequest {
	r := &oidc.AuthRequest{ResponseType: oidc.ResponseTypeCode, ClientID: f.proj.ClientID, RedirectURI: redirect,
		Scopes: []string{"openid", "email"}, State: "st", Nonce: "n",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", CodeChallengeMethod: oidc.CodeChallengeMethodS256}
	if mod != nil {
		mod(r)
	}
	return r
}

// start runs the authorize route's steps: the binding, op's validation (ours), the stored request.
func (f *fixture) start(form url.Values, r *oidc.AuthRequest) (ctx context.Context, id, binding string, err error) {
	if form == nil {
		form = url.Values{}
	}
	form.Set("client_id", r.ClientID)
	form.Set("redirect_uri", r.RedirectURI)
	a, err := f.p.StartAuthorization(f.t.Context(), form, "198.51.100.1")
	if err != nil {
		return nil, "", "", err
	}
	if _, err := f.p.ValidateAuthRequest(a.Context, r, f.p.Storage(), f.p.IDTokenHintVerifier(a.Context)); err != nil {
		return nil, "", "", err
	}
	ar, err := f.p.Storage().CreateAuthRequest(a.Context, r, "")
	if err != nil {
		f.t.Fatal(err)
	}
	return a.Context, ar.GetID(), a.Binding, nil
}

func (f *fixture) login() login.Result {
	f.t.Helper()
	r, err := f.s.Login.Complete(f.t.Context(), login.Request{Project: f.proj, UserID: f.user, ConnectionType: login.EmailOTP, AMR: []string{"otp"}})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// code approves the request and mints its code as op's callback does.
func (f *fixture) code(ctx context.Context, id, binding string) string {
	f.t.Helper()
	if _, err := f.p.Approve(ctx, id, binding, oidcprovider.Approval{Result: f.login()}); err != nil {
		f.t.Fatal(err)
	}
	code, err := f.p.Crypto().Encrypt(id)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.p.Storage().SaveAuthCode(ctx, id, code); err != nil {
		f.t.Fatal(err)
	}
	return code
}

func wantOIDCError(t *testing.T, err error, want string) {
	t.Helper()
	var oe *oidc.Error
	if !errors.As(err, &oe) || string(oe.ErrorType) != want {
		t.Fatalf("error %v, want %s", err, want)
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var fe *failure.Error
	if !errors.As(err, &fe) || fe.Code != code {
		t.Fatalf("error %v, want %s", err, code)
	}
}

// TestValidateAuthRequestClosesStockGaps: each request here passes op's stock validation
// (op.ValidateAuthRequestClient), which is the proof that op alone would send it on to the
// login page; Provider.ValidateAuthRequest refuses it with an error op redirects.
func TestValidateAuthRequestClosesStockGaps(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		f := newFixture(t, st, "")
		client, err := f.p.Storage().GetClientByClientID(t.Context(), f.proj.ClientID)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			form url.Values
			mod  func(*oidc.AuthRequest)
			want string
		}{
			{"plain", nil, func(r *oidc.AuthRequest) { r.CodeChallengeMethod = oidc.CodeChallengeMethodPlain }, "invalid_request"},
			{"empty method", nil, func(r *oidc.AuthRequest) { r.CodeChallengeMethod = "" }, "invalid_request"},
			{"no PKCE for a public client", nil, func(r *oidc.AuthRequest) { r.CodeChallenge, r.CodeChallengeMethod = "", "" }, "invalid_request"},
			{"request_uri", url.Values{"request_uri": {"https://app.acme.test/r.jwt"}}, nil, "request_not_supported"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				stock := f.authRequest(tc.mod)
				if _, err := op.ValidateAuthRequestClient(t.Context(), stock, client, nil); err != nil {
					t.Fatalf("stock op refused it already (%v): the gap this test pins is gone", err)
				}
				_, _, _, err := f.start(tc.form, f.authRequest(tc.mod))
				wantOIDCError(t, err, tc.want)
			})
		}
	})
}

// TestNoOfflineAccessNoRefreshToken: without offline_access the exchange starts a session with
// no refresh token.
func TestNoOfflineAccessNoRefreshToken(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), `{"oidc":{"token_endpoint_auth_method":"none","offline_access_by_default":false}}`)
	ctx, id, binding, err := f.start(nil, f.authRequest(nil))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := f.p.ExchangeCode(t.Context(), f.proj, oidcprovider.CodeRequest{Code: f.code(ctx, id, binding), RedirectURI: redirect,
		CodeVerifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"}, audit.Meta{})
	if err != nil || tr.RefreshToken != "" || tr.Scope != "openid email" || tr.IDToken == "" {
		t.Fatalf("%+v, %v", tr, err)
	}
}

// TestApproveChecks: the login page's calls need the binding of the browser that started the
// request, before it expires (10 min), once.
func TestApproveChecks(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		f := newFixture(t, st, "")
		ctx, id, binding, err := f.start(nil, f.authRequest(nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.p.Pending(ctx, id, "someone else's"); err == nil {
			t.Fatal("pending with a wrong binding")
		}
		pl, err := f.p.Pending(ctx, id, binding)
		if err != nil || pl.Project.ID != f.proj.ID || pl.RedirectURI != redirect {
			t.Fatalf("pending %+v, %v", pl, err)
		}
		res := f.login()
		if _, err := f.p.Approve(ctx, id, binding, oidcprovider.Approval{Result: login.Result{}}); err == nil {
			t.Fatal("approved without a finished login")
		}
		_, err = f.p.Approve(ctx, id, binding, oidcprovider.Approval{Result: res, OrganizationID: "000000000000000000000000"})
		wantCode(t, err, "organization_not_member")
		a, err := f.p.Approve(ctx, id, binding, oidcprovider.Approval{Result: res})
		if err != nil || !strings.Contains(a.RedirectURL, "/v1/authorize/callback?id="+id) || len(a.BrowserSession) < 40 ||
			!a.BrowserExpires.Equal(res.Tokens.Session.ExpiresAt) {
			t.Fatalf("approved %+v, %v", a, err)
		}
		_, err = f.p.Approve(ctx, id, binding, oidcprovider.Approval{Result: res})
		wantCode(t, err, "auth_request_done")

		_, id2, binding2, err := f.start(nil, f.authRequest(nil))
		if err != nil {
			t.Fatal(err)
		}
		f.s.Clock.Advance(oidcprovider.RequestLifetime)
		_, err = f.p.Approve(ctx, id2, binding2, oidcprovider.Approval{Result: res})
		wantCode(t, err, "auth_request_expired")
	})
}

// TestExchangeCodeOnce: 50 concurrent exchanges of one code on the real store: exactly one
// wins; the reuse revokes its session; the id_token is signed with the project's own key.
func TestExchangeCodeOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		f := newFixture(t, st, "")
		ctx, id, binding, err := f.start(nil, f.authRequest(nil))
		if err != nil {
			t.Fatal(err)
		}
		code := f.code(ctx, id, binding)
		req := oidcprovider.CodeRequest{Code: code, RedirectURI: redirect}
		// RFC 7636 appendix B's verifier for the challenge above.
		req.CodeVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
		var mu sync.Mutex
		var wins []oidcprovider.TokenResponse
		var wg sync.WaitGroup
		startc := make(chan struct{})
		for range 50 {
			wg.Go(func() {
				<-startc
				tr, err := f.p.ExchangeCode(t.Context(), f.proj, req, audit.Meta{})
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins = append(wins, tr)
					return
				}
				var fe *failure.Error
				if !errors.As(err, &fe) || fe.Code != "invalid_grant" {
					t.Errorf("a loser got %v", err)
				}
			})
		}
		close(startc)
		wg.Wait()
		if len(wins) != 1 {
			t.Fatalf("%d winners, want 1", len(wins))
		}
		if _, err := f.s.Sessions.AuthenticateBearer(t.Context(), f.proj.ClientID, wins[0].AccessToken); err == nil {
			t.Error("the winner's access token survived the reuse")
		}
		if wins[0].Scope != "openid email offline_access" || wins[0].RefreshToken == "" {
			t.Errorf("scope %q refresh token %t: a first-party project gets offline_access by default", wins[0].Scope, wins[0].RefreshToken != "")
		}
		kid := headerKID(t, wins[0].IDToken)
		doc, err := f.keys.ProjectJWKS(t.Context(), f.proj.ID)
		if err != nil || !strings.Contains(string(doc.Body), `"kid":"`+kid+`"`) {
			t.Errorf("the id_token's kid %s is not among the project's keys (%v)", kid, err)
		}
		// The code is single-use for 60 s at most.
		_, id2, binding2, _ := f.start(nil, f.authRequest(nil))
		code2 := f.code(ctx, id2, binding2)
		f.s.Clock.Advance(oidcprovider.CodeLifetime)
		_, err = f.p.ExchangeCode(t.Context(), f.proj, oidcprovider.CodeRequest{Code: code2, RedirectURI: redirect, CodeVerifier: req.CodeVerifier}, audit.Meta{})
		wantCode(t, err, "invalid_grant")
	})
}

func headerKID(t *testing.T, jwt string) string {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.SplitN(jwt, ".", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(h, &v); err != nil || v.KID == "" {
		t.Fatalf("id_token header %s", h)
	}
	return v.KID
}
