package mfa_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/mfa"
	"github.com/latchkey-dev/latchkey/internal/mfa/mfatest"
	"github.com/latchkey-dev/latchkey/internal/secretbox"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testclock"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// t0 is 10 s into a 30 s time step, so that whole steps added to it stay inside a step.
var t0 = time.Date(2026, time.November, 29, 7, 0, 10, 0, time.UTC)

const step = 30 * time.Second

type env struct {
	st      *sqlstore.Store
	svc     *mfa.TOTP
	clock   *testclock.Clock
	ring    *secretbox.Keyring
	project store.Project
	user    store.User
}

func newEnv(t *testing.T, st *sqlstore.Store) *env {
	t.Helper()
	key, err := secretbox.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secretbox.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, clock: testclock.New(t0), ring: ring}
	e.svc = mfa.NewTOTP(mfa.TOTPDeps{Store: st, Sealer: ring, Now: e.clock.Now, Rand: rand.Reader, IDs: ident.NewGenerator()})
	e.project = newProject(t, st)
	e.user = newUser(t, st, e.project.ID)
	return e
}

func newProject(t *testing.T, st *sqlstore.Store) store.Project {
	t.Helper()
	id := ident.NewGenerator().New()
	p := store.Project{ID: id, ClientID: "cli_" + id, Name: "Acme", Settings: []byte(`{}`), CreatedAt: t0, UpdatedAt: t0}
	if err := st.CreateProject(t.Context(), p); err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	return p
}

func newUser(t *testing.T, st *sqlstore.Store, projectID string) store.User {
	t.Helper()
	id := ident.NewGenerator().New()
	u := store.User{ID: id, ProjectID: projectID, Email: "user-" + id + "@example.com", EmailVerified: true,
		Active: true, ConnectionType: "ManualUser", CreatedAt: t0, UpdatedAt: t0}
	if err := st.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	return u
}

// wantFailure reports an error unless err is a failure with that code.
func wantFailure(t *testing.T, err error, code, what string) {
	t.Helper()
	fe, ok := failure.As(err)
	if !ok || fe.Code != code {
		t.Errorf("%s: err = %v, want failure %q", what, err, code)
	}
}

// enrolled returns the enrollment of a confirmed factor, confirmed with the code of t0.
func (e *env) enrolled(t *testing.T) mfa.Enrollment {
	t.Helper()
	en, err := e.svc.Enroll(t.Context(), e.project, "", e.user.Email, e.user.ID)
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	if err := e.svc.Confirm(t.Context(), e.project.ID, e.user.ID, en.FactorID, mfatest.Code(t, en.Secret, t0)); err != nil {
		t.Fatalf("Confirm: %v", err)
	}
	return en
}

func TestEnrollAndConfirm(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		ctx := t.Context()
		en, err := e.svc.Enroll(ctx, e.project, "", e.user.Email, e.user.ID)
		if err != nil {
			t.Fatalf("Enroll: %v", err)
		}
		// Read as the Key URI Format (google-authenticator's wiki) says, with net/url rather
		// than the library that wrote it.
		u, err := url.Parse(en.URI)
		if err != nil {
			t.Fatalf("the otpauth URI %q does not parse: %v", en.URI, err)
		}
		q := u.Query()
		if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Acme:"+e.user.Email || q.Get("issuer") != "Acme" ||
			q.Get("secret") != en.Secret || q.Get("period") != "30" || q.Get("digits") != "6" || q.Get("algorithm") != "SHA1" {
			t.Errorf("otpauth URI %q: want totp, issuer Acme, the user's email, the secret, 30 s, 6 digits, SHA1", en.URI)
		}
		raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(en.Secret)
		if err != nil || len(raw) != 20 {
			t.Fatalf("secret %d bytes (%v), want 20", len(raw), err)
		}

		// The secret is not in the database in clear, in base32 or raw.
		f, err := st.GetMFAFactor(ctx, e.project.ID, e.user.ID, en.FactorID)
		if err != nil {
			t.Fatalf("GetMFAFactor: %v", err)
		}
		if f.Confirmed || f.Type != store.MFAFactorOTP {
			t.Errorf("factor after Enroll: confirmed %v, type %q; want an unconfirmed otp factor", f.Confirmed, f.Type)
		}
		if bytes.Contains(f.Secret, []byte(en.Secret)) || bytes.Contains(f.Secret, raw) ||
			bytes.Contains(bytes.ToUpper(f.Secret), []byte(strings.ToUpper(en.Secret))) {
			t.Errorf("the stored secret column holds the secret in clear")
		}
		// It is bound to its row: under another user's or factor's AAD it does not open.
		if _, err := e.ring.Open(f.Secret, []byte("latchkey totp secret\x00"+e.project.ID+"\x00other\x00"+f.ID)); err == nil {
			t.Errorf("the sealed secret opens for another user")
		}

		// An unconfirmed factor is not a second factor yet.
		_, err = e.svc.Verify(ctx, e.project.ID, e.user.ID, mfatest.Code(t, en.Secret, t0))
		wantFailure(t, err, "invalid_otp", "Verify with an unconfirmed factor")

		wantFailure(t, e.svc.Confirm(ctx, e.project.ID, e.user.ID, en.FactorID, mfatest.Code(t, en.Secret, t0.Add(2*step))),
			"invalid_otp", "Confirm with the code of 2 steps ahead")
		wantFailure(t, e.svc.Confirm(ctx, e.project.ID, e.user.ID, en.FactorID, "12345"), "invalid_otp", "Confirm with 5 digits")
		wantFailure(t, e.svc.Confirm(ctx, e.project.ID, e.user.ID, "nope", mfatest.Code(t, en.Secret, t0)),
			"authenticator_not_found", "Confirm of an unknown factor")
		other := newUser(t, st, e.project.ID)
		wantFailure(t, e.svc.Confirm(ctx, e.project.ID, other.ID, en.FactorID, mfatest.Code(t, en.Secret, t0)),
			"authenticator_not_found", "Confirm through another user")

		// A code one step late still confirms (±1 skew).
		if err := e.svc.Confirm(ctx, e.project.ID, e.user.ID, en.FactorID, mfatest.Code(t, en.Secret, t0.Add(-step))); err != nil {
			t.Fatalf("Confirm with the previous step's code: %v", err)
		}
		wantFailure(t, e.svc.Confirm(ctx, e.project.ID, e.user.ID, en.FactorID, mfatest.Code(t, en.Secret, t0)),
			"authenticator_already_confirmed", "Confirm again")
		// The confirming code cannot then log in too.
		_, err = e.svc.Verify(ctx, e.project.ID, e.user.ID, mfatest.Code(t, en.Secret, t0.Add(-step)))
		wantFailure(t, err, "otp_already_used", "Verify with the confirming code")

		_, err = e.svc.Enroll(ctx, e.project, "", e.user.Email, "no-such-user")
		wantFailure(t, err, "user_not_found", "Enroll for an unknown user")
	})
}

func TestVerify(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		ctx := t.Context()
		en := e.enrolled(t) // step S (t0) is used

		// The clock is at S+2: S+1, S+2 and S+3 are allowed, each once, in order.
		now := t0.Add(2 * step)
		e.clock.Set(now)
		for _, c := range []struct {
			at   time.Time
			what string
		}{{now.Add(-step), "the previous step"}, {now, "the current step"}, {now.Add(step), "the next step"}} {
			id, err := e.svc.Verify(ctx, e.project.ID, e.user.ID, mfatest.Code(t, en.Secret, c.at))
			if err != nil || id != en.FactorID {
				t.Errorf("Verify with the code of %s = %q, %v; want factor %s", c.what, id, err, en.FactorID)
			}
		}

		now = t0.Add(10 * step)
		e.clock.Set(now)
		_, err := e.svc.Verify(ctx, e.project.ID, e.user.ID, mfatest.Code(t, en.Secret, now.Add(-2*step)))
		wantFailure(t, err, "invalid_otp", "Verify with the code of 2 steps ago")
		_, err = e.svc.Verify(ctx, e.project.ID, e.user.ID, mfatest.Code(t, en.Secret, now.Add(2*step)))
		wantFailure(t, err, "invalid_otp", "Verify with the code of 2 steps ahead")
		for _, bad := range []string{"", "12345", "1234567", "abcdef"} {
			_, err = e.svc.Verify(ctx, e.project.ID, e.user.ID, bad)
			wantFailure(t, err, "invalid_otp", "Verify with "+bad)
		}

		code := mfatest.Code(t, en.Secret, now)
		other := newUser(t, st, e.project.ID)
		_, err = e.svc.Verify(ctx, e.project.ID, other.ID, code)
		wantFailure(t, err, "invalid_otp", "Verify through another user")
		_, err = e.svc.Verify(ctx, newProject(t, st).ID, e.user.ID, code)
		wantFailure(t, err, "invalid_otp", "Verify through another project")

		if _, err := e.svc.Verify(ctx, e.project.ID, e.user.ID, code); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		_, err = e.svc.Verify(ctx, e.project.ID, e.user.ID, code)
		wantFailure(t, err, "otp_already_used", "Verify replaying a code")
		// An older step that was never used is stale once a newer one was.
		_, err = e.svc.Verify(ctx, e.project.ID, e.user.ID, mfatest.Code(t, en.Secret, now.Add(-step)))
		wantFailure(t, err, "otp_already_used", "Verify with an older step after a newer one")
	})
}

func TestVerifyRace(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		en := e.enrolled(t)
		now := t0.Add(5 * step)
		e.clock.Set(now)
		code := mfatest.Code(t, en.Secret, now)

		checkOneWins(t, 50, "otp_already_used", func() error {
			_, err := e.svc.Verify(t.Context(), e.project.ID, e.user.ID, code)
			return err
		})
	})
}

// TestVerifyMatchesRFC6238 checks our own code path, not a test helper, against RFC 6238
// Appendix B: a factor whose secret is the RFC's key accepts each vector's code (its last 6
// digits) at the vector's time, and refuses the same code with one digit changed.
func TestVerifyMatchesRFC6238(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		ctx := t.Context()
		// The secret is the first 20 bytes of the randomness: the RFC's key.
		svc := mfa.NewTOTP(mfa.TOTPDeps{Store: st, Sealer: e.ring, Now: e.clock.Now,
			Rand: strings.NewReader(mfatest.RFC6238Key), IDs: ident.NewGenerator()})
		en, err := svc.Enroll(ctx, e.project, "", e.user.Email, e.user.ID)
		if err != nil {
			t.Fatalf("Enroll: %v", err)
		}
		if want := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(mfatest.RFC6238Key)); en.Secret != want {
			t.Fatalf("secret %q, want the RFC key %q", en.Secret, want)
		}
		// The vectors' times increase, so each is a newer step than the one before it.
		for i, v := range mfatest.RFC6238Vectors {
			e.clock.Set(time.Unix(v.Unix, 0).UTC())
			code := v.Code[2:]
			wrong := code[:5] + string('0'+(code[5]-'0'+1)%10)
			if i == 0 {
				wantFailure(t, svc.Confirm(ctx, e.project.ID, e.user.ID, en.FactorID, wrong), "invalid_otp",
					"Confirm at 59 with a changed digit")
				if err := svc.Confirm(ctx, e.project.ID, e.user.ID, en.FactorID, code); err != nil {
					t.Fatalf("Confirm at %d with %s: %v", v.Unix, code, err)
				}
				continue
			}
			_, err := svc.Verify(ctx, e.project.ID, e.user.ID, wrong)
			wantFailure(t, err, "invalid_otp", fmt.Sprintf("Verify at %d with a changed digit", v.Unix))
			if id, err := svc.Verify(ctx, e.project.ID, e.user.ID, code); err != nil || id != en.FactorID {
				t.Errorf("Verify at %d with %s = %q, %v; want factor %s", v.Unix, code, id, err, en.FactorID)
			}
		}
	})
}
