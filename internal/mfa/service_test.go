package mfa_test

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/login/logintest"
	"github.com/latchkey-dev/latchkey/internal/mfa"
	"github.com/latchkey-dev/latchkey/internal/mfa/mfatest"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

const userEmail = "ada@example.com"

var userMeta = audit.Meta{IPAddress: "192.0.2.10", UserAgent: "test"}

// second is the MFA service on a real login stack, for a project that requires a second
// factor from factors (a JSON list), with one user whose email is verified.
type second struct {
	*logintest.Stack
	svc  *mfa.Service
	p    store.Project
	user string
}

func newSecond(t *testing.T, st *sqlstore.Store, factors string) *second {
	t.Helper()
	s := logintest.New(t, st)
	now := s.Clock.Now
	svc := mfa.New(mfa.Deps{Store: st, Login: s.Login, Settings: s.Projects.Settings, Tokens: s.MFATokens,
		TOTP:    mfa.NewTOTP(mfa.TOTPDeps{Store: st, Sealer: s.Ring, Now: now}),
		Codes:   mfa.NewRecoveryCodes(mfa.RecoveryCodesDeps{Store: st, Now: now}),
		Protect: s.Protect, Notices: s.Notices, Sealer: s.Ring, Delivery: logintest.Delivery, Now: now})
	w := &second{Stack: s, svc: svc, p: s.Project(t, `{"mfa":{"policy":"required","factors":`+factors+`}}`)}
	e, verified := userEmail, true
	u, err := s.Directory.CreateUser(t.Context(), audit.Actor{Kind: audit.ActorCLI}, w.p.ID, directory.UserInput{Email: &e, EmailVerified: &verified})
	if err != nil {
		t.Fatal(err)
	}
	w.user = u.ID
	return w
}

// step starts a second-factor step as an application's back end does, and returns its token
// and the subject it stands for.
func (w *second) step(t *testing.T) (string, mfa.Subject) {
	t.Helper()
	iss, err := w.svc.StartStep(t.Context(), w.p, " ADA@example.com ")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := w.svc.TokenSubject(t.Context(), w.p, iss.Token)
	if err != nil || sub.UserID != w.user {
		t.Fatalf("subject %+v, %v", sub, err)
	}
	return iss.Token, sub
}

func (w *second) code(t *testing.T, secret string) string {
	return mfatest.Code(t, secret, w.Clock.Now())
}

func TestEnrollValidateAndManage(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		// The verified email is no factor here, so the user may enroll with the mfa_token.
		w := newSecond(t, st, `["otp","recovery-code"]`)
		ctx := t.Context()
		tok, sub := w.step(t)

		_, err := w.svc.Enroll(ctx, sub, []string{"sms"})
		logintest.WantCode(t, err, "unsupported_authenticator_type", "")
		enr, err := w.svc.Enroll(ctx, sub, []string{"otp"})
		if err != nil {
			t.Fatal(err)
		}
		if enr.Secret == "" || len(enr.RecoveryCodes) != 10 {
			t.Fatalf("enrolled %+v", enr)
		}
		png, err := w.svc.QRCode(ctx, sub, enr.AuthenticatorID)
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
			t.Fatalf("QR code %.8q, %v", png, err)
		}
		logintest.WantCode(t, w.svc.Confirm(ctx, sub, enr.AuthenticatorID, w.code(t, enr.Secret)), "user_token_required", "")

		// The app's first code answers the challenge and confirms the app.
		_, err = w.svc.Validate(ctx, w.p, mfa.Answer{MFAToken: tok, OTP: "000000"}, userMeta)
		logintest.WantCode(t, err, "invalid_otp", "")
		res, err := w.svc.Validate(ctx, w.p, mfa.Answer{MFAToken: tok, OTP: w.code(t, enr.Secret)}, userMeta)
		if err != nil || !res.Authenticated {
			t.Fatalf("validate: %+v, %v", res, err)
		}
		_, err = w.svc.Validate(ctx, w.p, mfa.Answer{MFAToken: tok, OTP: w.code(t, enr.Secret)}, userMeta)
		logintest.WantCode(t, err, "invalid_mfa_token", "")
		_, err = w.svc.QRCode(ctx, sub, enr.AuthenticatorID)
		logintest.WantCode(t, err, "authenticator_already_confirmed", "")

		// A backup code answers once.
		tok, _ = w.step(t)
		if _, err := w.svc.Validate(ctx, w.p, mfa.Answer{MFAToken: tok, RecoveryCode: enr.RecoveryCodes[0]}, userMeta); err != nil {
			t.Fatal(err)
		}
		tok, _ = w.step(t)
		_, err = w.svc.Validate(ctx, w.p, mfa.Answer{MFAToken: tok, RecoveryCode: enr.RecoveryCodes[0]}, userMeta)
		logintest.WantCode(t, err, "invalid_recovery_code", "")

		// Signed in: a second app, confirmed; the first then may go, the last may not.
		signedIn := mfa.Subject{Project: w.p, UserID: w.user, Session: &res.Tokens.Session}
		second, err := w.svc.Enroll(ctx, signedIn, []string{"otp"})
		if err != nil {
			t.Fatal(err)
		}
		if len(second.RecoveryCodes) != 0 {
			t.Errorf("a second app came with %d new backup codes; the user has unused ones", len(second.RecoveryCodes))
		}
		logintest.WantCode(t, w.svc.Confirm(ctx, signedIn, second.AuthenticatorID, "000000"), "invalid_otp", "")
		if err := w.svc.Confirm(ctx, signedIn, second.AuthenticatorID, w.code(t, second.Secret)); err != nil {
			t.Fatal(err)
		}
		if err := w.svc.DeleteAuthenticator(ctx, signedIn, enr.AuthenticatorID); err != nil {
			t.Fatal(err)
		}
		logintest.WantCode(t, w.svc.DeleteAuthenticator(ctx, signedIn, second.AuthenticatorID), "last_second_factor", "")

		fresh, err := w.svc.NewRecoveryCodes(ctx, signedIn)
		if err != nil || len(fresh) != 10 {
			t.Fatalf("new backup codes: %d, %v", len(fresh), err)
		}
		w.Clock.Advance(mfa.FreshSession + time.Second)
		_, err = w.svc.NewRecoveryCodes(ctx, signedIn)
		logintest.WantCode(t, err, "reauthentication_required", "")

		list, err := w.svc.UserAuthenticators(ctx, w.p, w.user)
		if err != nil || len(list) == 0 {
			t.Fatalf("authenticators %+v, %v", list, err)
		}
		n, err := w.svc.Reset(ctx, w.p, w.user)
		if err != nil || n == 0 {
			t.Fatalf("reset removed %d, %v", n, err)
		}
		events, err := st.ListAuditEvents(ctx, w.p.ID, store.AuditFilter{TypePrefix: "mfa."}, 100, "")
		if err != nil || len(events) < 5 {
			t.Errorf("%d mfa events, %v", len(events), err)
		}
	})
}

var oobCode = regexp.MustCompile(`\b(\d{6})\b`)

func TestEmailChallenge(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newSecond(t, st, `["otp","email"]`)
		ctx := t.Context()
		tok, _ := w.step(t)
		_, err := w.svc.Initiate(ctx, w.p, tok, "oob", "fax", userMeta.IPAddress)
		logintest.WantCode(t, err, "invalid_request", "oob_channels")
		_, err = w.svc.Initiate(ctx, w.p, "mfa_not-a-token", "oob", "email", userMeta.IPAddress)
		logintest.WantCode(t, err, "invalid_mfa_token", "")
		ini, err := w.svc.Initiate(ctx, w.p, tok, "", "email", userMeta.IPAddress)
		if err != nil || ini.ChallengeType != "oob" || ini.OOBCode == "" {
			t.Fatalf("initiate: %+v, %v", ini, err)
		}
		msgs := w.Messages(t, userEmail)
		if len(msgs) != 1 {
			t.Fatalf("%d messages, want the code", len(msgs))
		}
		code := oobCode.FindStringSubmatch(msgs[0].Text)
		if code == nil {
			t.Fatalf("no code in %q", msgs[0].Text)
		}
		_, err = w.svc.Validate(ctx, w.p, mfa.Answer{MFAToken: tok, OOBCode: ini.OOBCode, OTP: "000000"}, userMeta)
		logintest.WantCode(t, err, "invalid_otp", "")
		res, err := w.svc.Validate(ctx, w.p, mfa.Answer{MFAToken: tok, OOBCode: ini.OOBCode, OTP: code[1]}, userMeta)
		if err != nil || !res.Authenticated {
			t.Fatalf("validate: %+v, %v", res, err)
		}
	})
}

func TestStartStepRefuses(t *testing.T) {
	w := newSecond(t, testdb.SQLite(t), `["otp"]`)
	_, err := w.svc.StartStep(t.Context(), w.p, "nobody@example.com")
	logintest.WantCode(t, err, "user_not_found", "")
	_, err = w.svc.StartStep(t.Context(), w.p, "   ")
	logintest.WantCode(t, err, "invalid_identifier", "identifier")
	_, err = w.svc.TokenSubject(t.Context(), w.p, "mfa_forged")
	logintest.WantCode(t, err, "invalid_mfa_token", "")
}
