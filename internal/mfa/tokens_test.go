package mfa_test

import (
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/mfa"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testclock"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

func wantCode(t *testing.T, err error, code, what string) {
	t.Helper()
	if fe, ok := failure.As(err); !ok || fe.Code != code {
		t.Fatalf("%s: %v, want %s", what, err, code)
	}
}

func TestMFATokens(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		clk := testclock.New(t0)
		svc := mfa.NewTokens(mfa.TokensDeps{Store: st, Now: clk.Now, IDs: ident.NewGenerator()})
		p, other := newProject(t, st), newProject(t, st)
		u := newUser(t, st, p.ID)

		iss, err := svc.Issue(t.Context(), mfa.Step{ProjectID: p.ID, UserID: u.ID, ConnectionType: "EmailOTP", AMR: []string{"otp"}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(iss.Token, "mfa_") || len(iss.Token) < 40 || iss.ExpiresIn != 300 {
			t.Fatalf("issued %+v", iss)
		}
		c, err := svc.Check(t.Context(), p.ID, iss.Token)
		if err != nil || c.UserID != u.ID || c.ConnectionType != "EmailOTP" || len(c.AMR) != 1 || c.AMR[0] != "otp" {
			t.Fatalf("Check: %+v %v", c, err)
		}
		// Only an mfa_token of this project is one.
		_, err = svc.Check(t.Context(), other.ID, iss.Token)
		wantCode(t, err, "invalid_mfa_token", "another project's token")
		_, err = svc.Check(t.Context(), p.ID, "eyJhbGciOiJFZERTQSJ9.e30.sig")
		wantCode(t, err, "invalid_mfa_token", "an access token")
		_, err = svc.Check(t.Context(), p.ID, "mfa_"+strings.Repeat("A", 43))
		wantCode(t, err, "invalid_mfa_token", "an unknown token")
		_, err = svc.Issue(t.Context(), mfa.Step{ProjectID: p.ID, UserID: "nobody", ConnectionType: "EmailOTP"})
		wantCode(t, err, "user_not_found", "Issue for an unknown user")

		// Expiry on the service's clock.
		clk.Set(t0.Add(mfa.TokenTTL))
		_, err = svc.Check(t.Context(), p.ID, iss.Token)
		wantCode(t, err, "mfa_token_expired", "an expired token")
		_, err = svc.Complete(t.Context(), c)
		wantCode(t, err, "invalid_mfa_token", "completing an expired token")
		clk.Set(t0)

		// Wrong answers: the caller's error until the last try, then too_many_attempts for good.
		wrong := failure.New(failure.Unauthenticated, "invalid_otp", "wrong")
		for i := 1; i < mfa.MaxTokenAttempts; i++ {
			wantCode(t, svc.Fail(t.Context(), c, wrong), "invalid_otp", "a wrong answer")
		}
		wantCode(t, svc.Fail(t.Context(), c, wrong), "too_many_attempts", "the last wrong answer")
		_, err = svc.Check(t.Context(), p.ID, iss.Token)
		wantCode(t, err, "too_many_attempts", "Check after the limit")
		_, err = svc.Complete(t.Context(), c)
		wantCode(t, err, "invalid_mfa_token", "completing a dead token")

		// A fresh token completes once, however many answer at the same moment.
		iss, err = svc.Issue(t.Context(), mfa.Step{ProjectID: p.ID, UserID: u.ID, ConnectionType: "MagicLink", AMR: []string{"email"}})
		if err != nil {
			t.Fatal(err)
		}
		c, err = svc.Check(t.Context(), p.ID, iss.Token)
		if err != nil {
			t.Fatal(err)
		}
		checkOneWins(t, 50, "invalid_mfa_token", func() error {
			_, err := svc.Complete(t.Context(), c)
			return err
		})
		_, err = svc.Check(t.Context(), p.ID, iss.Token)
		wantCode(t, err, "invalid_mfa_token", "Check of a used token")
	})
}
