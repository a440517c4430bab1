package passkey_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/login/logintest"
	"github.com/latchkey-dev/latchkey/internal/passkey"
	"github.com/latchkey-dev/latchkey/internal/passkey/passkeytest"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

const email = "ada@example.com"

var meta = audit.Meta{IPAddress: "192.0.2.10", UserAgent: "test"}

// rp is the relying party as the browser sees it: the project names no origin, so the RP id
// is the server's host.
var rp = virtualwebauthn.RelyingParty{ID: "auth.example.com", Name: "Acme", Origin: logintest.Issuer}

// keys is the passkey service on a real login stack, with one user.
type keys struct {
	*logintest.Stack
	svc  *passkey.Service
	p    store.Project
	user string
}

func newKeys(t *testing.T, st *sqlstore.Store) *keys {
	t.Helper()
	s := logintest.New(t, st)
	svc, err := passkey.New(passkey.Deps{Store: st, Login: s.Login, Guard: s.Protect, Notices: s.Notices, Settings: s.Projects.Settings,
		PublicURL: logintest.Issuer, EnumerationKey: []byte("a test enumeration key, 32 bytes"), Now: s.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	k := &keys{Stack: s, svc: svc, p: s.Project(t, "")}
	e := email
	u, err := s.Directory.CreateUser(t.Context(), audit.Actor{Kind: audit.ActorCLI}, k.p.ID, directory.UserInput{Email: &e})
	if err != nil {
		t.Fatal(err)
	}
	k.user = u.ID
	return k
}

func optionsJSON(t *testing.T, o passkey.Options) []byte {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// register adds a passkey to the user and returns the authenticator holding it.
func (k *keys) register(t *testing.T) (virtualwebauthn.Authenticator, virtualwebauthn.Credential, store.Passkey) {
	t.Helper()
	opts, err := k.svc.BeginRegistration(t.Context(), k.p, k.user, k.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	raw := optionsJSON(t, opts)
	auth, cred := passkeytest.NewAuthenticator(raw, nil)
	pk, err := k.svc.FinishRegistration(t.Context(), k.p, k.user, opts.AuthCode, []byte(passkeytest.Attest(t, rp, auth, cred, raw)))
	if err != nil {
		t.Fatal(err)
	}
	return auth, cred, pk
}

// login runs a login ceremony with cred at counter.
func (k *keys) login(t *testing.T, identifier string, auth virtualwebauthn.Authenticator, cred virtualwebauthn.Credential, counter uint32) error {
	t.Helper()
	opts, err := k.svc.BeginLogin(t.Context(), k.p, identifier)
	if err != nil {
		t.Fatal(err)
	}
	cred.Counter = counter
	res, err := k.svc.FinishLogin(t.Context(), k.p, opts.AuthCode, []byte(passkeytest.Assert(t, rp, auth, cred, optionsJSON(t, opts))), meta)
	if err == nil && (!res.Authenticated || res.User.ID != k.user) {
		t.Fatalf("login result %+v", res)
	}
	return err
}

func TestRegisterAndLogin(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		k := newKeys(t, st)
		ctx := t.Context()

		_, err := k.svc.BeginRegistration(ctx, k.p, k.user, k.Clock.Now().Add(-passkey.FreshSignIn-time.Second))
		logintest.WantCode(t, err, "reauthentication_required", "")

		auth, cred, pk := k.register(t)
		if pk.UserID != k.user || !pk.BackupEligible || len(pk.Transports) == 0 {
			t.Errorf("stored passkey %+v", pk)
		}
		if n := len(k.Messages(t, email)); n != 1 {
			t.Errorf("%d notices of the new passkey, want 1", n)
		}
		if st, err := k.svc.Status(ctx, k.p, email); err != nil || st.Status != "not_found" {
			t.Errorf("status before any login = %+v, %v; registrations are not reported", st, err)
		}

		// By identifier, and discoverable; a replayed counter is a clone.
		if err := k.login(t, email, auth, cred, 1); err != nil {
			t.Fatal(err)
		}
		if st, err := k.svc.Status(ctx, k.p, " ADA@example.com"); err != nil || st.Status != store.CeremonyCompleted {
			t.Errorf("status after the login = %+v, %v", st, err)
		}
		if err := k.login(t, "", auth, cred, 2); err != nil {
			t.Fatal(err)
		}
		logintest.WantCode(t, k.login(t, "", auth, cred, 2), "passkey_clone_suspected", "")

		list, err := k.svc.List(ctx, k.p, k.user)
		if err != nil || len(list) != 1 || list[0].SignCount != 2 || list[0].LastUsedAt == nil {
			t.Fatalf("list %+v, %v", list, err)
		}
	})
}

func TestCeremonyCodes(t *testing.T) {
	k := newKeys(t, testdb.SQLite(t))
	ctx := t.Context()
	opts, err := k.svc.BeginRegistration(ctx, k.p, k.user, k.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	raw := optionsJSON(t, opts)
	auth, cred := passkeytest.NewAuthenticator(raw, nil)
	answer := []byte(passkeytest.Attest(t, rp, auth, cred, raw))

	_, err = k.svc.FinishRegistration(ctx, k.p, k.user, opts.AuthCode, []byte(`{"not":"a credential"}`))
	logintest.WantCode(t, err, "invalid_passkey_response", "")
	_, err = k.svc.FinishRegistration(ctx, k.p, k.user, "", answer)
	logintest.WantCode(t, err, "missing_auth_code", "auth_code")
	_, err = k.svc.FinishRegistration(ctx, k.p, k.user, "not-the-code", answer)
	logintest.WantCode(t, err, "invalid_auth_code", "")
	// Another user's options prove nothing about this one.
	e := "bob@example.com"
	bob, err := k.Directory.CreateUser(ctx, audit.Actor{Kind: audit.ActorCLI}, k.p.ID, directory.UserInput{Email: &e})
	if err != nil {
		t.Fatal(err)
	}
	_, err = k.svc.FinishRegistration(ctx, k.p, bob.ID, opts.AuthCode, answer)
	logintest.WantCode(t, err, "invalid_auth_code", "")
	// The code was used by that attempt: it does not work twice.
	_, err = k.svc.FinishRegistration(ctx, k.p, k.user, opts.AuthCode, answer)
	logintest.WantCode(t, err, "invalid_auth_code", "")

	// Options die after CeremonyTTL.
	opts, err = k.svc.BeginRegistration(ctx, k.p, k.user, k.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	raw = optionsJSON(t, opts)
	auth, cred = passkeytest.NewAuthenticator(raw, nil)
	k.Clock.Advance(passkey.CeremonyTTL + time.Second)
	_, err = k.svc.FinishRegistration(ctx, k.p, k.user, opts.AuthCode, []byte(passkeytest.Attest(t, rp, auth, cred, raw)))
	logintest.WantCode(t, err, "invalid_auth_code", "")

	// A credential that is not the user's does not sign in.
	stranger := virtualwebauthn.NewAuthenticatorWithOptions(virtualwebauthn.AuthenticatorOptions{UserHandle: []byte("nobody")})
	other := passkeytest.NewCredential()
	stranger.AddCredential(other)
	logintest.WantCode(t, k.login(t, "", stranger, other, 1), "passkey_not_registered", "")

	_, err = k.svc.Status(ctx, k.p, "  ")
	logintest.WantCode(t, err, "invalid_identifier", "identifier")
}

func TestManageCredentials(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		k := newKeys(t, st)
		ctx := t.Context()
		auth, cred, first := k.register(t)

		_, err := k.svc.Rename(ctx, k.p, k.user, first.ID, "  ")
		logintest.WantCode(t, err, "invalid_name", "name")
		_, err = k.svc.Rename(ctx, k.p, k.user, "6b1300000000000000000000", "Laptop")
		logintest.WantCode(t, err, "passkey_not_found", "")
		if pk, err := k.svc.Rename(ctx, k.p, k.user, first.ID, " Work laptop "); err != nil || pk.Name != "Work laptop" {
			t.Fatalf("rename: %+v, %v", pk, err)
		}
		// The only passkey of a user with no verified email or phone is their only way in.
		logintest.WantCode(t, k.svc.Delete(ctx, k.p, k.user, first.ID), "last_sign_in_method", "")
		k.register(t)
		if err := k.svc.Delete(ctx, k.p, k.user, first.ID); err != nil {
			t.Fatal(err)
		}
		logintest.WantCode(t, k.svc.Delete(ctx, k.p, k.user, first.ID), "passkey_not_found", "")
		logintest.WantCode(t, k.login(t, email, auth, cred, 1), "passkey_not_registered", "")

		n, err := k.svc.DeleteAll(ctx, k.p, k.user)
		if err != nil || n != 1 {
			t.Fatalf("DeleteAll = %d, %v; want the one left", n, err)
		}
		_, err = k.svc.DeleteAll(ctx, k.p, "6b1300000000000000000000")
		logintest.WantCode(t, err, "user_not_found", "")
	})
}

func TestPasskeysOff(t *testing.T) {
	k := newKeys(t, testdb.SQLite(t))
	off := k.Project(t, `{"login_methods":{"passkey":false}}`)
	_, err := k.svc.BeginLogin(t.Context(), off, email)
	logintest.WantCode(t, err, "passkeys_disabled", "")
	_, err = k.svc.Status(t.Context(), off, email)
	logintest.WantCode(t, err, "passkeys_disabled", "")
}
