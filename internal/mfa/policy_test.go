package mfa_test

import (
	"testing"

	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/mfa"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

func TestPolicy(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		tokens := mfa.NewTokens(mfa.TokensDeps{Store: st, Now: e.clock.Now, IDs: ident.NewGenerator()})
		policy := mfa.NewPolicy(mfa.PolicyDeps{Settings: func(p store.Project) (project.Settings, error) {
			return project.DecodeSettings(p.Settings)
		}, Tokens: tokens})
		withPolicy := func(doc string) store.Project {
			p := e.project
			p.Settings = []byte(doc)
			return p
		}
		// The policy runs inside the login's transaction, as login.Complete calls it: on SQLite
		// a write outside that transaction would wait on its lock for ever.
		askAs := func(r login.Request) *login.Challenge {
			t.Helper()
			var ch *login.Challenge
			err := st.InTx(t.Context(), func(tx store.Store) error {
				var err error
				r.UserID = e.user.ID
				ch, err = policy.Challenge(t.Context(), tx, r, e.user)
				return err
			})
			if err != nil {
				t.Fatalf("Challenge: %v", err)
			}
			return ch
		}
		ask := func(p store.Project, amr ...string) *login.Challenge {
			t.Helper()
			return askAs(login.Request{Project: p, ConnectionType: "EmailOTP", AMR: amr})
		}
		types := func(ch *login.Challenge) []string {
			var out []string
			for _, a := range ch.Authenticators {
				out = append(out, a.(mfa.Authenticator).AuthenticatorType)
			}
			return out
		}

		off := withPolicy(`{}`)
		optional := withPolicy(`{"mfa":{"policy":"optional","factors":["otp","email","recovery-code"]}}`)
		required := withPolicy(`{"mfa":{"policy":"required"}}`)
		if ch := ask(off, "otp"); ch != nil {
			t.Errorf("policy off: %+v", ch)
		}
		if ch := ask(optional, "otp"); ch != nil {
			t.Errorf("optional, nothing enrolled (a verified email is no choice of the user's): %+v", ch)
		}
		// Required: a user without factors still gets a challenge, to enroll with.
		ch := ask(required, "otp")
		if ch == nil || len(ch.Authenticators) != 0 {
			t.Fatalf("required without factors: %+v", ch)
		}
		c, err := tokens.Check(t.Context(), e.project.ID, ch.MFAToken)
		if err != nil || c.UserID != e.user.ID || c.ConnectionType != "EmailOTP" || len(c.AMR) != 1 {
			t.Fatalf("the challenge's mfa_token: %+v %v", c, err)
		}
		// A passkey that verified its user is two factors already.
		if ch := ask(required, "pk", "mfa"); ch != nil {
			t.Errorf("required after a verified passkey: %+v", ch)
		}

		e.enrolled(t)
		codes := mfa.NewRecoveryCodes(mfa.RecoveryCodesDeps{Store: st, Now: e.clock.Now})
		if _, err := codes.Generate(t.Context(), e.project.ID, e.user.ID); err != nil {
			t.Fatal(err)
		}
		ch = askAs(login.Request{Project: optional, ConnectionType: "PhoneOTP", AMR: []string{"otp", "sms"}})
		if got := types(ch); ch == nil || len(got) != 3 || got[0] != "otp" || got[1] != "oob" || got[2] != "recovery-code" {
			t.Fatalf("optional with a TOTP factor, after an SMS code: %v", got)
		}
		// After an email code, a second code to the same inbox is not offered.
		if got := types(ask(optional, "otp")); len(got) != 2 || got[0] != "otp" || got[1] != "recovery-code" {
			t.Errorf("optional with a TOTP factor, after an email code: %v", got)
		}
		oob := ch.Authenticators[1].(mfa.Authenticator)
		if oob.OOBChannel != "email" || oob.Name == e.user.Email || oob.Name[len(oob.Name)-len("@example.com"):] != "@example.com" {
			t.Errorf("email authenticator %+v: the address must be masked", oob)
		}
		if got := types(ask(required, "otp")); len(got) != 2 || got[0] != "otp" || got[1] != "recovery-code" {
			t.Errorf("required with the default factors: %v", got)
		}

		// Organizations: a login into one follows its own policy; a login into none the
		// strictest of the project's and the user's organizations'.
		now := e.clock.Now()
		strict := store.Organization{ID: ident.NewGenerator().New(), ProjectID: e.project.ID, Name: "Strict",
			WhiteListDomains: []string{}, MFAPolicy: project.MFARequired, Active: true, CreatedAt: now, UpdatedAt: now}
		lax := strict
		lax.ID, lax.Name, lax.MFAPolicy = ident.NewGenerator().New(), "Lax", project.MFAOff
		for _, o := range []store.Organization{strict, lax} {
			if err := st.CreateOrganization(t.Context(), o); err != nil {
				t.Fatal(err)
			}
		}
		if ch := askAs(login.Request{Project: required, OrganizationID: lax.ID, ConnectionType: "EmailOTP"}); ch != nil {
			t.Errorf("required project, login into an organization with policy off: %+v", ch)
		}
		if ch := ask(off, "otp"); ch != nil {
			t.Errorf("policy off, user in no organization: %+v", ch)
		}
		if err := st.AddMembers(t.Context(), e.project.ID, strict.ID, []string{e.user.ID}, now); err != nil {
			t.Fatal(err)
		}
		if ch := ask(off, "otp"); ch == nil {
			t.Errorf("policy off, login into no organization by a member of one that requires MFA: no challenge")
		}
		ch = askAs(login.Request{Project: off, OrganizationID: strict.ID, ConnectionType: "EmailOTP"})
		if ch == nil {
			t.Fatal("policy off, login into an organization that requires MFA: no challenge")
		}
		if c, err := tokens.Check(t.Context(), e.project.ID, ch.MFAToken); err != nil || c.OrganizationID != strict.ID {
			t.Errorf("the challenge of a login into an organization: %+v %v", c, err)
		}
	})
}
