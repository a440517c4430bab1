package login_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/secretbox"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// askForMFA is an MFA policy that challenges every login of one user.
type askForMFA struct{ userID string }

func (p askForMFA) Challenge(_ context.Context, _ store.Store, _ login.Request, u store.User) (*login.Challenge, error) {
	if u.ID != p.userID {
		return nil, nil
	}
	return &login.Challenge{MFAToken: "mfa_test", Authenticators: []any{"otp"}}, nil
}

type fixture struct {
	ctx     context.Context
	st      store.Store
	svc     *login.Service
	dir     *directory.Service
	project store.Project
}

func newFixture(t *testing.T, st *sqlstore.Store, mfa login.MFAPolicy) fixture {
	t.Helper()
	ctx := t.Context()
	dir := directory.New(directory.Deps{Store: st})
	projects := project.New(project.Deps{Store: st, SeedRoles: dir.SeedRoles})
	issued, err := projects.Create(ctx, project.NewProject{Name: "Login"})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := secretbox.GenerateKey(rand.Reader)
	ring, err := secretbox.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	keys := token.NewKeyManager(token.KeyManagerDeps{Store: st, Sealer: ring})
	sessions := token.NewService(token.ServiceDeps{Store: st, Projects: projects, Keys: keys, Issuer: "https://auth.example.com",
		Policy: func(p store.Project) (token.Policy, error) {
			return token.Policy{Algorithm: token.EdDSA, AccessTTL: 15 * time.Minute, RefreshTTL: time.Hour, IdleTimeout: time.Hour, AbsoluteTimeout: 2 * time.Hour}, nil
		}})
	svc := login.New(login.Deps{Store: st, Sessions: sessions, Users: dir, MFA: mfa})
	return fixture{ctx: ctx, st: st, svc: svc, dir: dir, project: issued.Project}
}

func (f fixture) user(t *testing.T, email string) directory.User {
	t.Helper()
	u, err := f.dir.CreateUser(f.ctx, audit.Actor{Kind: audit.ActorCLI}, f.project.ID, directory.UserInput{Email: &email})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// nothingWritten checks that a refused login left no session and no login log.
func (f fixture) nothingWritten(t *testing.T, userID string) {
	t.Helper()
	sessions, err := f.st.ListUserSessions(f.ctx, f.project.ID, userID, timeNow())
	if err != nil {
		t.Fatal(err)
	}
	logs, err := f.st.ListLoginLogs(f.ctx, f.project.ID, userID, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	u, err := f.st.GetUser(f.ctx, f.project.ID, userID)
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 0 || len(logs) != 0 || u.LastLoginAt != nil {
		t.Errorf("a login that did not complete wrote %d sessions, %d login logs, last login %v", len(sessions), len(logs), u.LastLoginAt)
	}
}

func TestComplete(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		f := newFixture(t, st, nil)
		u := f.user(t, "ada@example.com")
		r, err := f.svc.Complete(f.ctx, login.Request{Project: f.project, UserID: u.ID, ConnectionType: login.MagicLink,
			AMR: []string{"email"}, Meta: audit.Meta{IPAddress: "2001:db8::1",
				UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"}})
		if err != nil {
			t.Fatal(err)
		}
		if !r.Authenticated || r.Tokens.AccessToken == "" || r.Tokens.RefreshToken == "" || r.User.ID != u.ID ||
			r.User.LastLoginAt == nil || r.User.ConnectionType != login.MagicLink {
			t.Fatalf("result = %+v", r)
		}
		logs, err := st.ListLoginLogs(f.ctx, f.project.ID, u.ID, 10, "")
		if err != nil || len(logs) != 1 {
			t.Fatalf("login logs = %v, %v", logs, err)
		}
		if l := logs[0]; l.IPAddress != "2001:db8::1" || l.ConnectionType != login.MagicLink || l.OS != "iOS" ||
			l.Device != "Mobile" || l.Browser != "Safari" {
			t.Errorf("login log = %+v", l)
		}
	})
}

func TestCompleteRefuses(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		f := newFixture(t, st, nil)
		u := f.user(t, "bo@example.com")
		inactive := false
		if _, err := f.dir.UpdateUser(f.ctx, audit.Actor{Kind: audit.ActorCLI}, f.project.ID, u.ID, directory.UserInput{Active: &inactive}); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.Complete(f.ctx, login.Request{Project: f.project, UserID: u.ID, ConnectionType: login.EmailOTP})
		if fe, ok := failure.As(err); !ok || fe.Code != "user_inactive" || fe.Kind != failure.Forbidden {
			t.Fatalf("inactive user: err = %v, want user_inactive", err)
		}
		f.nothingWritten(t, u.ID)
		_, err = f.svc.Complete(f.ctx, login.Request{Project: f.project, UserID: "ffffffffffffffffffffffff", ConnectionType: login.EmailOTP})
		if fe, ok := failure.As(err); !ok || fe.Code != "user_not_found" {
			t.Fatalf("unknown user: err = %v, want user_not_found", err)
		}
	})
}

func TestMFAPolicyStopsTheLogin(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		probe := newFixture(t, st, nil)
		u := probe.user(t, "cy@example.com")
		f := probe
		f.svc = newFixture(t, st, askForMFA{userID: u.ID}).svc
		r, err := f.svc.Complete(f.ctx, login.Request{Project: f.project, UserID: u.ID, ConnectionType: login.EmailOTP})
		if err != nil {
			t.Fatal(err)
		}
		if r.Authenticated || r.Challenge == nil || r.Challenge.MFAToken != "mfa_test" || r.Tokens.AccessToken != "" {
			t.Fatalf("result = %+v, want an MFA challenge and no tokens", r)
		}
		f.nothingWritten(t, u.ID)
	})
}

func timeNow() time.Time { return time.Now() }
