package passwordauth_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/breach"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/login/logintest"
	"github.com/latchkey-dev/latchkey/internal/password"
	"github.com/latchkey-dev/latchkey/internal/passwordauth"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

const (
	email = "ada@example.com"
	good  = "correct horse battery staple"
	newer = "a different long passphrase"
)

var meta = audit.Meta{IPAddress: "192.0.2.10", UserAgent: "test"}

// passwords is the service on a real login stack, for a project with passwords on.
type passwords struct {
	*logintest.Stack
	svc *passwordauth.Service
	p   store.Project
}

func newPasswords(t *testing.T, st *sqlstore.Store, settings string) *passwords {
	t.Helper()
	s := logintest.New(t, st)
	hasher, err := password.New(password.DefaultParams(), nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := passwordauth.New(passwordauth.Deps{Store: st, Login: s.Login, Protect: s.Protect, Notices: s.Notices,
		Breached: breach.NewChecker(breach.NewOffline(), nil), Sessions: s.Sessions, Hasher: hasher,
		Settings: s.Projects.Settings, Sealer: s.Ring, Delivery: logintest.Delivery, Now: s.Clock.Now,
		EnumerationKey: []byte("a test enumeration key, 32 bytes")})
	return &passwords{Stack: s, svc: svc, p: s.Project(t, settings)}
}

// signUp signs the user up with the good password.
func (w *passwords) signUp(t *testing.T) login.Result {
	t.Helper()
	res, err := w.svc.SignUp(t.Context(), w.p, passwordauth.Signup{Email: email, Password: good}, meta)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

const passwordsOn = `{"login_methods":{"password":true}}`

func TestSignUpAndLogin(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newPasswords(t, st, passwordsOn)
		ctx := t.Context()

		for _, tc := range []struct{ email, pw, code, field string }{
			{email, "short", "password_too_short", "password"},
			{email, strings.Repeat("x", 129), "password_too_long", "password"},
			{email, "Password123", "password_breached", "password"},
			{"not-an-email", good, "invalid_email", "email"},
		} {
			_, err := w.svc.SignUp(ctx, w.p, passwordauth.Signup{Email: tc.email, Password: tc.pw}, meta)
			logintest.WantCode(t, err, tc.code, tc.field)
		}
		res, err := w.svc.SignUp(ctx, w.p, passwordauth.Signup{Email: " Ada@Example.com ", Password: good, FirstName: " Ada "}, meta)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Authenticated || res.Tokens.AccessToken == "" || res.User.Email != "Ada@example.com" || res.User.FirstName != "Ada" {
			t.Fatalf("sign-up result %+v", res)
		}
		hash, err := st.GetPasswordHash(ctx, w.p.ID, res.User.ID)
		if err != nil || !strings.HasPrefix(hash, "$argon2id$") || strings.Contains(hash, good) {
			t.Fatalf("stored hash %q, %v", hash, err)
		}
		_, err = w.svc.SignUp(ctx, w.p, passwordauth.Signup{Email: "ADA@example.com", Password: good}, meta)
		logintest.WantCode(t, err, "email_exists", "email")

		// A wrong password and an unknown email get the same answer.
		_, err = w.svc.Login(ctx, w.p, email, "wrong horse battery staple", meta)
		logintest.WantCode(t, err, "invalid_credentials", "")
		_, err = w.svc.Login(ctx, w.p, "nobody@example.com", good, meta)
		logintest.WantCode(t, err, "invalid_credentials", "")
		w.Clock.Advance(time.Minute) // past the slow-down the failures earned
		res, err = w.svc.LoginDevice(ctx, w.p, "  ADA@example.com", good, "", meta)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Authenticated || res.Device == "" {
			t.Fatalf("login %+v, device %q", res, res.Device)
		}
		events, err := st.ListAuditEvents(ctx, w.p.ID, store.AuditFilter{Type: passwordauth.AuditFailed}, 10, "")
		if err != nil || len(events) != 2 {
			t.Errorf("%d %s events, %v; want 2", len(events), passwordauth.AuditFailed, err)
		}
	})
}

func TestPasswordsOffOrSignUpClosed(t *testing.T) {
	st := testdb.SQLite(t)
	w := newPasswords(t, st, "")
	_, err := w.svc.SignUp(t.Context(), w.p, passwordauth.Signup{Email: email, Password: good}, meta)
	logintest.WantCode(t, err, "login_method_disabled", "")
	_, err = w.svc.Login(t.Context(), w.p, email, good, meta)
	logintest.WantCode(t, err, "login_method_disabled", "")
	logintest.WantCode(t, w.svc.SendReset(t.Context(), w.p, email, "https://app.acme.test/done", meta.IPAddress), "login_method_disabled", "")

	closed := w.Project(t, `{"login_methods":{"password":true},"allow_signup":false}`)
	_, err = w.svc.SignUp(t.Context(), closed, passwordauth.Signup{Email: email, Password: good}, meta)
	logintest.WantCode(t, err, "signup_disabled", "")
}

var resetToken = regexp.MustCompile(`https://app\.acme\.test/done\?token=[A-Za-z0-9_-]+`)

// lastResetToken is the token of the newest reset link sent to email.
func (w *passwords) lastResetToken(t *testing.T) string {
	t.Helper()
	msgs := w.Messages(t, email)
	for _, m := range msgs {
		if link := resetToken.FindString(m.Text); link != "" {
			u, err := url.Parse(link)
			if err != nil {
				t.Fatal(err)
			}
			return u.Query().Get("token")
		}
	}
	t.Fatalf("no reset link among %d messages", len(msgs))
	return ""
}

func TestResetByEmail(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newPasswords(t, st, passwordsOn)
		ctx := t.Context()
		signed := w.signUp(t)

		logintest.WantCode(t, w.svc.SendReset(ctx, w.p, email, "https://evil.example/", meta.IPAddress), "invalid_redirect_url", "redirect_url")
		logintest.WantCode(t, w.svc.SendReset(ctx, w.p, "nope", "https://app.acme.test/done", meta.IPAddress), "invalid_email", "email")
		// An unknown address gets the same answer and no mail.
		if err := w.svc.SendReset(ctx, w.p, "nobody@example.com", "https://app.acme.test/done", meta.IPAddress); err != nil {
			t.Fatal(err)
		}
		if n := len(w.Messages(t, "nobody@example.com")); n != 0 {
			t.Errorf("%d messages to an unknown address", n)
		}
		if err := w.svc.SendReset(ctx, w.p, email, "https://app.acme.test/done", meta.IPAddress); err != nil {
			t.Fatal(err)
		}
		tok := w.lastResetToken(t)

		// A refused password does not spend the link; the link works once.
		logintest.WantCode(t, w.svc.Reset(ctx, w.p, tok, "qwertyuiop", meta), "password_breached", "password")
		logintest.WantCode(t, w.svc.Reset(ctx, w.p, "not-a-token", newer, meta), "invalid_reset_token", "")
		if err := w.svc.Reset(ctx, w.p, tok, newer, meta); err != nil {
			t.Fatal(err)
		}
		logintest.WantCode(t, w.svc.Reset(ctx, w.p, tok, newer, meta), "invalid_reset_token", "")

		// The reset verified the email, ended the session and changed the password.
		u, err := st.GetUser(ctx, w.p.ID, signed.User.ID)
		if err != nil || !u.EmailVerified {
			t.Errorf("after reset: email_verified %v, %v", u.EmailVerified, err)
		}
		if _, err := w.Sessions.Authenticate(ctx, w.p, signed.Tokens.AccessToken); err == nil {
			t.Error("the session from before the reset still authenticates")
		}
		w.Clock.Advance(time.Minute)
		_, err = w.svc.Login(ctx, w.p, email, good, meta)
		logintest.WantCode(t, err, "invalid_credentials", "")
		if _, err := w.svc.Login(ctx, w.p, email, newer, meta); err != nil {
			t.Fatalf("login with the new password: %v", err)
		}
	})
}

func TestChange(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newPasswords(t, st, passwordsOn)
		ctx := t.Context()
		signed := w.signUp(t)
		sess := signed.Tokens.Session
		logintest.WantCode(t, w.svc.Change(ctx, w.p, sess, "not the password", newer, meta), "invalid_credentials", "")
		logintest.WantCode(t, w.svc.Change(ctx, w.p, sess, good, "short", meta), "password_too_short", "password")
		w.Clock.Advance(time.Minute)
		if err := w.svc.Change(ctx, w.p, sess, good, newer, meta); err != nil {
			t.Fatal(err)
		}
		w.Clock.Advance(time.Minute)
		if _, err := w.svc.Login(ctx, w.p, email, newer, meta); err != nil {
			t.Fatalf("login with the changed password: %v", err)
		}
		// A sign-in older than FreshSession may not change it.
		w.Clock.Advance(passwordauth.FreshSession)
		logintest.WantCode(t, w.svc.Change(ctx, w.p, sess, newer, good, meta), "reauthentication_required", "")
		events, err := st.ListAuditEvents(ctx, w.p.ID, store.AuditFilter{Type: passwordauth.AuditChanged}, 10, "")
		if err != nil || len(events) != 1 {
			t.Errorf("%d %s events, %v; want 1", len(events), passwordauth.AuditChanged, err)
		}
	})
}

func TestSetByAdmin(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newPasswords(t, st, passwordsOn)
		ctx := t.Context()
		u, err := w.Directory.CreateUser(ctx, audit.Actor{Kind: audit.ActorCLI}, w.p.ID, directory.UserInput{Email: ptr(email)})
		if err != nil {
			t.Fatal(err)
		}
		logintest.WantCode(t, w.svc.SetByAdmin(ctx, w.p, u.ID, "", "", meta), "invalid_request", "")
		logintest.WantCode(t, w.svc.SetByAdmin(ctx, w.p, u.ID, good, "$2b$12$x", meta), "invalid_request", "")
		logintest.WantCode(t, w.svc.SetByAdmin(ctx, w.p, u.ID, "", "$md5$nope", meta), "invalid_password_hash", "password_hash")
		logintest.WantCode(t, w.svc.SetByAdmin(ctx, w.p, u.ID, "short", "", meta), "password_too_short", "password")
		logintest.WantCode(t, w.svc.SetByAdmin(ctx, w.p, "6b1300000000000000000000", good, "", meta), "user_not_found", "")
		if err := w.svc.SetByAdmin(ctx, w.p, u.ID, good, "", meta); err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.Login(ctx, w.p, email, good, meta); err != nil {
			t.Fatalf("login with the password an admin set: %v", err)
		}
		// The user hears of a password set for them.
		if msgs := w.Messages(t, email); len(msgs) != 1 {
			t.Errorf("%d notices to the user, want 1", len(msgs))
		}
	})
}

func ptr[T any](v T) *T { return &v }
