package login_test

import (
	"testing"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/login/logintest"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestRefresh: a refresh token is spent for new tokens in a login result's shape, once; a
// spent or made-up one is invalid_grant.
func TestRefresh(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := logintest.New(t, st)
		ctx := t.Context()
		p := s.Project(t, "")
		e := "ada@example.com"
		u, err := s.Directory.CreateUser(ctx, audit.Actor{Kind: audit.ActorCLI}, p.ID, directory.UserInput{Email: &e})
		if err != nil {
			t.Fatal(err)
		}
		meta := audit.Meta{IPAddress: "192.0.2.10"}
		first, err := s.Login.Complete(ctx, login.Request{Project: p, UserID: u.ID, ConnectionType: login.EmailOTP, AMR: []string{"otp"}, Meta: meta})
		if err != nil {
			t.Fatal(err)
		}
		next, err := s.Login.Refresh(ctx, p, first.Tokens.RefreshToken, meta)
		if err != nil {
			t.Fatal(err)
		}
		if !next.Authenticated || next.User.ID != u.ID || next.Tokens.RefreshToken == "" || next.Tokens.RefreshToken == first.Tokens.RefreshToken ||
			next.Tokens.Session.ID != first.Tokens.Session.ID {
			t.Fatalf("refreshed %+v", next)
		}
		_, err = s.Login.Refresh(ctx, p, "rt_made-up", meta)
		logintest.WantCode(t, err, "invalid_grant", "")
		// The spent token is refused, and its reuse ends the session.
		_, err = s.Login.Refresh(ctx, p, first.Tokens.RefreshToken, meta)
		logintest.WantCode(t, err, "invalid_grant", "")
		_, err = s.Login.Refresh(ctx, p, next.Tokens.RefreshToken, meta)
		logintest.WantCode(t, err, "invalid_grant", "")
	})
}
