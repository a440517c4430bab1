package token_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/secretbox"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testclock"
	"github.com/latchkey-dev/latchkey/internal/testdb"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// env is a project with a user, on a real store, with real key, session and directory services.
type env struct {
	t       *testing.T
	ctx     context.Context
	st      store.Store
	clock   *testclock.Clock
	keys    *token.KeyManager
	svc     *token.Service
	dir     *directory.Service
	project store.Project
	userID  string
	policy  token.Policy
}

const issuer = "https://auth.example.com"

func newEnv(t *testing.T, st *sqlstore.Store) *env {
	t.Helper()
	e := &env{t: t, ctx: t.Context(), st: st, clock: testclock.New(time.Now().UTC().Truncate(time.Second))}
	key, err := secretbox.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secretbox.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	e.dir = directory.New(directory.Deps{Store: st, Now: e.clock.Now})
	projects := project.New(project.Deps{Store: st, SeedRoles: e.dir.SeedRoles, Now: e.clock.Now})
	issued, err := projects.Create(e.ctx, project.NewProject{Name: "Tokens"})
	if err != nil {
		t.Fatal(err)
	}
	e.project = issued.Project
	e.policy = token.Policy{Algorithm: token.ES256, AccessTTL: 15 * time.Minute, RefreshTTL: 30 * 24 * time.Hour,
		IdleTimeout: 7 * 24 * time.Hour, AbsoluteTimeout: 30 * 24 * time.Hour}
	e.keys = token.NewKeyManager(token.KeyManagerDeps{Store: st, Sealer: ring, Now: e.clock.Now})
	e.svc = token.NewService(token.ServiceDeps{
		Store: st, Projects: projects, Keys: e.keys, Access: e.dir,
		Policy: func(store.Project) (token.Policy, error) { return e.policy, nil },
		Issuer: issuer, Now: e.clock.Now,
	})
	u, err := e.dir.CreateUser(e.ctx, audit.Actor{Kind: audit.ActorCLI}, e.project.ID, directory.UserInput{Email: ptr("ada@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	e.userID = u.ID
	return e
}

func ptr[T any](v T) *T { return &v }

func (e *env) login() token.Tokens {
	e.t.Helper()
	var out token.Tokens
	starter, err := e.svc.PrepareSession(e.ctx, e.project)
	if err != nil {
		e.t.Fatal(err)
	}
	err = e.st.InTx(e.ctx, func(tx store.Store) error {
		var err error
		out, err = starter.Start(e.ctx, tx, token.Grant{UserID: e.userID,
			ConnectionType: "EmailOTP", AMR: []string{"otp"}, Meta: audit.Meta{IPAddress: "192.0.2.7", UserAgent: "test"}})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	fe, ok := failure.As(err)
	if !ok || fe.Code != code {
		t.Fatalf("err = %v, want %s", err, code)
	}
}

func TestRefreshRotates(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		first := e.login()
		if _, err := e.svc.Authenticate(e.ctx, e.project, first.AccessToken); err != nil {
			t.Fatalf("the first access token: %v", err)
		}
		e.clock.Advance(time.Minute)
		second, err := e.svc.Refresh(e.ctx, e.project, first.RefreshToken, audit.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken ||
			second.Session.ID != first.Session.ID || second.Claims.SessionID != first.Session.ID {
			t.Errorf("refresh did not rotate within the session: first %+v, second %+v", first.Session, second.Session)
		}
		if !second.Session.LastSeenAt.Equal(e.clock.Now()) {
			t.Errorf("refresh did not record use of the session: last seen %v", second.Session.LastSeenAt)
		}
		third, err := e.svc.Refresh(e.ctx, e.project, second.RefreshToken, audit.Meta{})
		if err != nil {
			t.Fatalf("refreshing with the new token: %v", err)
		}
		if _, err := e.svc.Authenticate(e.ctx, e.project, third.AccessToken); err != nil {
			t.Fatalf("the rotated access token: %v", err)
		}
		for _, bad := range []string{"", "rt_unknown", "sk_" + first.RefreshToken, first.RefreshToken + "x"} {
			_, err := e.svc.Refresh(e.ctx, e.project, bad, audit.Meta{})
			wantCode(t, err, "invalid_grant")
		}
	})
}

func TestReusedRefreshTokenRevokesTheSession(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		first := e.login()
		other := e.login() // another session of the same user stays alive
		second, err := e.svc.Refresh(e.ctx, e.project, first.RefreshToken, audit.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Refresh(e.ctx, e.project, first.RefreshToken, audit.Meta{IPAddress: "203.0.113.9", UserAgent: "thief"})
		wantCode(t, err, "invalid_grant")

		// The whole family is dead: the newest refresh token and the access tokens too.
		_, err = e.svc.Refresh(e.ctx, e.project, second.RefreshToken, audit.Meta{})
		wantCode(t, err, "invalid_grant")
		for _, at := range []string{first.AccessToken, second.AccessToken} {
			_, err := e.svc.Authenticate(e.ctx, e.project, at)
			wantCode(t, err, "invalid_token")
		}
		if _, err := e.svc.Authenticate(e.ctx, e.project, other.AccessToken); err != nil {
			t.Errorf("another session of the user was ended too: %v", err)
		}
		sess, err := st.GetSession(e.ctx, e.project.ID, first.Session.ID)
		if err != nil || sess.RevokedAt == nil || sess.RevokeReason != "refresh_token_reused" {
			t.Errorf("session after reuse = %+v, %v", sess, err)
		}
		events, err := st.ListAuditEvents(e.ctx, e.project.ID, store.AuditFilter{Type: "refresh_token.reused"}, 10, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 1 || events[0].SessionID != first.Session.ID || events[0].UserID != e.userID ||
			events[0].IPAddress != "203.0.113.9" || events[0].UserAgent != "thief" {
			t.Errorf("audit events = %+v, want one reuse event for the session with the reuser's address", events)
		}
	})
}

func TestRefreshRace(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		first := e.login()
		const racers = 50
		var wg sync.WaitGroup
		start := make(chan struct{})
		results := make([]token.Tokens, racers)
		errs := make([]error, racers)
		for i := range racers {
			wg.Go(func() {
				<-start
				results[i], errs[i] = e.svc.Refresh(e.ctx, e.project, first.RefreshToken, audit.Meta{})
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch fe, ok := failure.As(err); {
			case err == nil:
				won++
			case ok && fe.Code == "invalid_grant":
			default:
				t.Errorf("racer %d: unexpected error %v", i, err)
			}
		}
		if won != 1 {
			t.Fatalf("%d of %d concurrent refreshes with one token succeeded, want exactly 1", won, racers)
		}
		// The other 49 were reuse: the session is over, the winner's tokens included.
		for i, r := range results {
			if errs[i] == nil {
				_, err := e.svc.Authenticate(e.ctx, e.project, r.AccessToken)
				wantCode(t, err, "invalid_token")
				_, err = e.svc.Refresh(e.ctx, e.project, r.RefreshToken, audit.Meta{})
				wantCode(t, err, "invalid_grant")
			}
		}
		events, err := st.ListAuditEvents(e.ctx, e.project.ID, store.AuditFilter{Type: "refresh_token.reused"}, 100, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != racers-1 {
			t.Errorf("%d reuse events, want %d (one per losing request)", len(events), racers-1)
		}
	})
}

func TestSessionExpiry(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		e.policy.IdleTimeout = time.Hour
		e.policy.AbsoluteTimeout = 3 * time.Hour
		e.policy.AccessTTL = 24 * time.Hour // longer than the session: capped to it
		tok := e.login()
		if !tok.Claims.ExpiresAt.Equal(tok.Session.ExpiresAt) {
			t.Errorf("access token expires %v, after its session %v", tok.Claims.ExpiresAt, tok.Session.ExpiresAt)
		}
		// Use within the idle timeout keeps the session alive...
		for range 4 {
			e.clock.Advance(50 * time.Minute)
			if _, err := e.svc.Authenticate(e.ctx, e.project, tok.AccessToken); err != nil && e.clock.Now().Before(tok.Session.ExpiresAt) {
				t.Fatalf("at +%v: %v", e.clock.Now().Sub(tok.Session.CreatedAt), err)
			}
		}
		// ...until its absolute end, whatever the token's own exp.
		_, err := e.svc.Authenticate(e.ctx, e.project, tok.AccessToken)
		wantCode(t, err, "invalid_token")

		idle := e.login()
		e.clock.Advance(61 * time.Minute)
		_, err = e.svc.Authenticate(e.ctx, e.project, idle.AccessToken)
		wantCode(t, err, "invalid_token")
		_, err = e.svc.Refresh(e.ctx, e.project, idle.RefreshToken, audit.Meta{})
		wantCode(t, err, "invalid_grant")
	})
}

func TestRevocation(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		a, b := e.login(), e.login()
		sessions, err := e.svc.ListSessions(e.ctx, e.project.ID, e.userID)
		if err != nil || len(sessions) != 2 {
			t.Fatalf("sessions = %v, %v", sessions, err)
		}
		err = e.svc.RevokeSession(e.ctx, e.project.ID, "someone-else", a.Session.ID, "user_revoked", audit.Meta{})
		wantCode(t, err, "session_not_found")
		if err := e.svc.RevokeSession(e.ctx, e.project.ID, e.userID, a.Session.ID, "user_revoked", audit.Meta{}); err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Authenticate(e.ctx, e.project, a.AccessToken)
		wantCode(t, err, "invalid_token")
		if _, err := e.svc.Authenticate(e.ctx, e.project, b.AccessToken); err != nil {
			t.Fatalf("the other session: %v", err)
		}
		// Deactivating the user ends every session at once.
		if _, err := e.dir.UpdateUser(e.ctx, audit.Actor{Kind: audit.ActorCLI}, e.project.ID, e.userID, directory.UserInput{Active: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Authenticate(e.ctx, e.project, b.AccessToken)
		wantCode(t, err, "invalid_token")
		_, err = e.svc.Refresh(e.ctx, e.project, b.RefreshToken, audit.Meta{})
		wantCode(t, err, "invalid_grant")

		if _, err := e.dir.UpdateUser(e.ctx, audit.Actor{Kind: audit.ActorCLI}, e.project.ID, e.userID, directory.UserInput{Active: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		c := e.login()
		if err := e.dir.DeleteUser(e.ctx, audit.Actor{Kind: audit.ActorCLI}, e.project.ID, e.userID); err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Authenticate(e.ctx, e.project, c.AccessToken)
		wantCode(t, err, "invalid_token")
	})
}

func TestRolesAndPermissionsInTheToken(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		org, err := e.dir.CreateOrganization(e.ctx, audit.Actor{Kind: audit.ActorCLI}, e.project.ID, directory.OrganizationInput{Name: ptr("Acme")})
		if err != nil {
			t.Fatal(err)
		}
		perm, err := e.dir.CreatePermission(e.ctx, audit.Actor{Kind: audit.ActorCLI}, e.project.ID, directory.PermissionInput{Name: ptr("Read Invoices")})
		if err != nil {
			t.Fatal(err)
		}
		role, err := e.dir.CreateRole(e.ctx, audit.Actor{Kind: audit.ActorCLI}, e.project.ID, directory.RoleInput{Name: ptr("Billing"), PermissionIDs: &[]string{perm.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.dir.SetUserRoles(e.ctx, audit.Actor{Kind: audit.ActorCLI}, e.project.ID, e.userID, directory.UserRolesInput{OrganizationID: org.ID, RoleIDs: []string{role.ID}}); err != nil {
			t.Fatal(err)
		}
		var tok token.Tokens
		starter, err := e.svc.PrepareSession(e.ctx, e.project)
		if err != nil {
			t.Fatal(err)
		}
		err = st.InTx(e.ctx, func(tx store.Store) error {
			tok, err = starter.Start(e.ctx, tx, token.Grant{UserID: e.userID, OrganizationID: org.ID,
				ConnectionType: "Passkey", AMR: []string{"hwk", "user"}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		c, err := e.svc.Authenticate(e.ctx, e.project, tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if c.Claims.OrgID != org.ID || len(c.Claims.Roles) != 1 || c.Claims.Roles[0] != "billing" ||
			len(c.Claims.Permissions) != 1 || c.Claims.Permissions[0] != "read-invoices" ||
			len(c.Claims.AMR) != 2 || c.Claims.Subject != e.userID || c.Claims.Issuer != issuer {
			t.Errorf("claims = %+v", c.Claims)
		}
	})
}

func TestClientCredentials(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		tok, err := e.svc.ClientCredentials(e.ctx, e.project, "users:read")
		if err != nil {
			t.Fatal(err)
		}
		c, err := e.svc.Authenticate(e.ctx, e.project, tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if !c.Machine() || c.Claims.Subject != e.project.ClientID || c.Claims.SessionID != "" || c.Claims.Scope != "users:read" {
			t.Errorf("machine caller = %+v", c.Claims)
		}
		e.clock.Advance(e.policy.AccessTTL + 3*time.Minute)
		_, err = e.svc.Authenticate(e.ctx, e.project, tok.AccessToken)
		wantCode(t, err, "invalid_token")
	})
}

// start begins a session for g on the env's project, in one transaction as a login does.
func (e *env) start(g token.Grant) token.Tokens {
	e.t.Helper()
	starter, err := e.svc.PrepareSession(e.ctx, e.project)
	if err != nil {
		e.t.Fatal(err)
	}
	var out token.Tokens
	err = e.st.InTx(e.ctx, func(tx store.Store) error {
		var err error
		out, err = starter.Start(e.ctx, tx, g)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// payload decodes the claims of a compact JWT without verifying it, to see the wire form.
func payload(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestGrantScope checks that the scope an OpenID Connect client was granted is kept by the
// session and carried by every access token of it, the first and the refreshed ones, and that
// the API's own logins (no scope) mint no scope claim at all.
func TestGrantScope(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		const scope = "openid email offline_access"
		first := e.start(token.Grant{UserID: e.userID, ConnectionType: "EmailOTP", AMR: []string{"otp"}, Scope: scope})
		if first.RefreshToken == "" {
			t.Fatal("a grant with a refresh token got none")
		}
		sess, err := st.GetSession(e.ctx, e.project.ID, first.Session.ID)
		if err != nil {
			t.Fatal(err)
		}
		if sess.Scope != scope {
			t.Errorf("stored session scope = %q, want %q", sess.Scope, scope)
		}
		if got := payload(t, first.AccessToken)["scope"]; got != scope {
			t.Errorf("first access token's scope claim = %v, want %q", got, scope)
		}
		caller, err := e.svc.Authenticate(e.ctx, e.project, first.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if caller.Claims.Scope != scope || caller.Session.Scope != scope {
			t.Errorf("verified claims scope %q, session scope %q; want %q", caller.Claims.Scope, caller.Session.Scope, scope)
		}

		e.clock.Advance(time.Minute)
		second, err := e.svc.Refresh(e.ctx, e.project, first.RefreshToken, audit.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		if got := payload(t, second.AccessToken)["scope"]; got != scope {
			t.Errorf("refreshed access token's scope claim = %v, want %q", got, scope)
		}

		api := e.login()
		if _, ok := payload(t, api.AccessToken)["scope"]; ok {
			t.Errorf("an API login's access token has a scope claim: %v", payload(t, api.AccessToken))
		}
		if api.Session.Scope != "" {
			t.Errorf("an API login's session scope = %q, want none", api.Session.Scope)
		}
	})
}

// TestGrantWithoutRefreshToken checks that a grant without offline_access starts a session
// whose access token works but that has no refresh token to rotate.
func TestGrantWithoutRefreshToken(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		tok := e.start(token.Grant{UserID: e.userID, ConnectionType: "EmailOTP", AMR: []string{"otp"},
			Scope: "openid", NoRefreshToken: true})
		if tok.RefreshToken != "" {
			t.Errorf("RefreshToken = %q, want none", tok.RefreshToken)
		}
		if tok.AccessToken == "" || tok.Session.ID == "" {
			t.Fatalf("no access token or session: %+v", tok)
		}
		if _, err := e.svc.Authenticate(e.ctx, e.project, tok.AccessToken); err != nil {
			t.Errorf("the access token of a session without refresh token: %v", err)
		}
		if _, err := st.GetSession(e.ctx, e.project.ID, tok.Session.ID); err != nil {
			t.Errorf("the session was not stored: %v", err)
		}
		// Refreshing with nothing is refused as any unknown token is, never a server error.
		_, err := e.svc.Refresh(e.ctx, e.project, "", audit.Meta{})
		wantCode(t, err, "invalid_grant")
	})
}

// TestGrantParentSession checks that a grant's ParentSessionID is stored as the session's
// ParentID (the link RP-initiated logout follows to end single sign-on) and that a refresh
// keeps it, while a grant without one has no parent.
func TestGrantParentSession(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		parent := e.login()
		if parent.Session.ParentID != "" {
			t.Errorf("a login without a parent got ParentID %q", parent.Session.ParentID)
		}
		child := e.start(token.Grant{UserID: e.userID, ConnectionType: "EmailOTP", AMR: []string{"otp"},
			Scope: "openid offline_access", ParentSessionID: parent.Session.ID})
		if child.Session.ParentID != parent.Session.ID {
			t.Errorf("started session's ParentID = %q, want %q", child.Session.ParentID, parent.Session.ID)
		}
		e.clock.Advance(time.Minute)
		next, err := e.svc.Refresh(e.ctx, e.project, child.RefreshToken, audit.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := st.GetSession(e.ctx, e.project.ID, next.Session.ID)
		if err != nil {
			t.Fatal(err)
		}
		if next.Session.ID != child.Session.ID || stored.ParentID != parent.Session.ID {
			t.Errorf("after refresh: session %s with ParentID %q, want session %s with ParentID %q",
				stored.ID, stored.ParentID, child.Session.ID, parent.Session.ID)
		}
	})
}
