package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/passkey/passkeytest"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

const passkeyBase = "/api/v1/auth/passwordless/passkey/"

// passkeyWorld is a token world whose user holds software authenticators.
type passkeyWorld struct {
	*tokenWorld
	rp    virtualwebauthn.RelyingParty
	token string // the user's access token
}

func newPasskeyWorld(t *testing.T, st *sqlstore.Store) *passkeyWorld {
	t.Helper()
	w := &passkeyWorld{tokenWorld: newTokenWorld(t, st),
		// The project names no origin: the RP id is the server's host and its origin the only one.
		rp: virtualwebauthn.RelyingParty{ID: "auth.example.com", Name: "Tokens", Origin: testIssuer}}
	w.token = w.login().Tokens.AccessToken
	return w
}

func (w *passkeyWorld) cid() map[string]string {
	return map[string]string{"X-Client-Id": w.proj.Project.ClientID, "Content-Type": "application/json"}
}

func (w *passkeyWorld) userAuth(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
}

// newAuthenticator returns a software authenticator for the user handle of a registration's
// options, and a new credential in it.
func newAuthenticator(opts response, mod func(*virtualwebauthn.AuthenticatorOptions)) (virtualwebauthn.Authenticator, virtualwebauthn.Credential) {
	return passkeytest.NewAuthenticator(opts.raw, mod)
}

// beginRegistration asks for creation options as the signed-in user tok.
func (w *passkeyWorld) beginRegistration(tok string) response {
	w.t.Helper()
	r := w.call("GET", passkeyBase+"register", "", w.userAuth(tok))
	w.want(r, 200, "")
	return r
}

// attest answers creation options with cred from auth as rp sees it.
func attest(t testing.TB, rp virtualwebauthn.RelyingParty, auth virtualwebauthn.Authenticator, cred virtualwebauthn.Credential, opts response) string {
	t.Helper()
	return passkeytest.Attest(t, rp, auth, cred, opts.raw)
}

// register adds cred to the user tok, returning the finish call's answer.
func (w *passkeyWorld) register(tok string, opts response, rp virtualwebauthn.RelyingParty, auth virtualwebauthn.Authenticator, cred virtualwebauthn.Credential) response {
	w.t.Helper()
	body := fmt.Sprintf(`{"auth_code":%q,"publicKey":%s}`, opts.body["auth_code"], attest(w.t, rp, auth, cred, opts))
	return w.call("POST", passkeyBase+"register", body, w.userAuth(tok))
}

// beginLogin asks for request options, for identifier or ("") any passkey.
func (w *passkeyWorld) beginLogin(identifier string) response {
	w.t.Helper()
	path := passkeyBase + "login"
	if identifier != "" {
		path += "?identifier=" + identifier
	}
	r := w.call("GET", path, "", w.cid())
	w.want(r, 200, "")
	return r
}

// assertion answers request options with cred.
func assertion(t testing.TB, rp virtualwebauthn.RelyingParty, auth virtualwebauthn.Authenticator, cred virtualwebauthn.Credential, opts response) string {
	t.Helper()
	return passkeytest.Assert(t, rp, auth, cred, opts.raw)
}

// finishLogin posts a raw credential with the auth_code in the query, as SSOJet's SDK does.
func (w *passkeyWorld) finishLogin(opts response, credentialJSON string) response {
	w.t.Helper()
	return w.call("POST", passkeyBase+"login?auth_code="+opts.body["auth_code"].(string), credentialJSON, w.cid())
}

// loginWith runs a whole login with cred at counter.
func (w *passkeyWorld) loginWith(identifier string, auth virtualwebauthn.Authenticator, cred virtualwebauthn.Credential, counter uint32) response {
	w.t.Helper()
	opts := w.beginLogin(identifier)
	cred.Counter = counter
	return w.finishLogin(opts, assertion(w.t, w.rp, auth, cred, opts))
}

// claims decodes an access token's payload (its signature is checked by the server's tests).
func claims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func amrOf(t *testing.T, r response) []string {
	t.Helper()
	var out []string
	for _, v := range claims(t, r.body["access_token"].(string))["amr"].([]any) {
		out = append(out, v.(string))
	}
	return out
}

func TestPasskeyRegisterLoginAndManage(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newPasskeyWorld(t, st)

		opts := w.beginRegistration(w.token)
		if opts.header.Get("Cache-Control") != "no-store" {
			t.Errorf("options Cache-Control = %q, want no-store", opts.header.Get("Cache-Control"))
		}
		pk := opts.body["publicKey"].(map[string]any)
		user := pk["user"].(map[string]any)
		handle, _ := base64.RawURLEncoding.DecodeString(user["id"].(string))
		if len(handle) != 32 || strings.Contains(string(handle), "ada") {
			t.Errorf("user handle %q: want 32 random bytes, never the email", user["id"])
		}
		if rp := pk["rp"].(map[string]any); rp["id"] != "auth.example.com" || rp["name"] != "Tokens" {
			t.Errorf("rp = %v", rp)
		}
		sel := pk["authenticatorSelection"].(map[string]any)
		if sel["residentKey"] != "required" || sel["userVerification"] != "preferred" {
			t.Errorf("authenticatorSelection = %v", sel)
		}
		var algs []float64
		for _, p := range pk["pubKeyCredParams"].([]any) {
			algs = append(algs, p.(map[string]any)["alg"].(float64))
		}
		if !slices.Equal(algs, []float64{-7, -8, -257}) {
			t.Errorf("algorithms = %v, want ES256, EdDSA, RS256", algs)
		}
		if ex, _ := pk["excludeCredentials"].([]any); len(ex) != 0 {
			t.Errorf("excludeCredentials of a user without passkeys = %v", ex)
		}

		auth, cred := newAuthenticator(opts, nil)
		reg := w.register(w.token, opts, w.rp, auth, cred)
		w.want(reg, 201, "")
		for _, k := range []string{"id", "Name", "SignCount", "LastUsedAt", "CreatedAt", "UpdatedAt", "public_key",
			"attestation_type", "aaguid", "transports", "backup_eligible", "backup_state"} {
			if _, ok := reg.body[k]; !ok {
				t.Errorf("credential lacks %q: %s", k, reg.raw)
			}
		}
		if reg.body["Name"] != "Passkey" || reg.body["backup_eligible"] != true || reg.body["credential_id"] != base64.RawURLEncoding.EncodeToString(cred.ID) {
			t.Errorf("credential = %s", reg.raw)
		}
		// The auth_code was used.
		w.want(w.register(w.token, opts, w.rp, auth, cred), 401, "invalid_auth_code")

		// A second registration excludes the first passkey.
		again := w.beginRegistration(w.token)
		ex := again.body["publicKey"].(map[string]any)["excludeCredentials"].([]any)
		if len(ex) != 1 || ex[0].(map[string]any)["id"] != base64.RawURLEncoding.EncodeToString(cred.ID) {
			t.Errorf("excludeCredentials = %v", ex)
		}

		// Login naming the user lists their passkey; UV performed gives "mfa" too.
		w.clock.Advance(time.Second) // the status route reports the newest ceremony
		opts = w.beginLogin("Ada@Example.com")
		allow := opts.body["publicKey"].(map[string]any)["allowCredentials"].([]any)
		if len(allow) != 1 || allow[0].(map[string]any)["id"] != base64.RawURLEncoding.EncodeToString(cred.ID) {
			t.Fatalf("allowCredentials = %v", allow)
		}
		cred.Counter = 1
		res := w.finishLogin(opts, assertion(t, w.rp, auth, cred, opts))
		w.want(res, 200, "")
		if res.body["authenticated"] != true || !slices.Equal(amrOf(t, res), []string{"pk", "mfa"}) {
			t.Fatalf("login: %s (amr %v)", res.raw, amrOf(t, res))
		}
		if ct := res.body["profile"].(map[string]any)["connection_type"]; ct != "Passkey" {
			t.Errorf("connection_type = %v", ct)
		}
		status := w.call("GET", passkeyBase+"status?identifier=ada@example.com", "", w.cid())
		if status.status != 200 || status.body["status"] != "completed" || status.body["expires_at"] == nil {
			t.Errorf("status = %d %s", status.status, status.raw)
		}

		// Discoverable (usernameless) login: no allowCredentials; the user handle finds the user.
		opts = w.beginLogin("")
		if allow, _ := opts.body["publicKey"].(map[string]any)["allowCredentials"].([]any); len(allow) != 0 {
			t.Errorf("discoverable login lists credentials: %v", allow)
		}
		noUV := auth
		noUV.Options.UserNotVerified = true
		cred.Counter = 2
		res = w.finishLogin(opts, assertion(t, w.rp, noUV, cred, opts))
		w.want(res, 200, "")
		if !slices.Equal(amrOf(t, res), []string{"pk"}) {
			t.Errorf("amr without user verification = %v, want [pk]", amrOf(t, res))
		}

		// Management of the user's own passkeys.
		list := w.call("GET", passkeyBase+"credentials", "", w.userAuth(w.token))
		w.want(list, 200, "")
		var creds []map[string]any
		_ = json.Unmarshal(list.raw, &creds)
		if len(creds) != 1 || creds[0]["SignCount"] != float64(2) || creds[0]["LastUsedAt"] == nil {
			t.Fatalf("credentials = %s", list.raw)
		}
		id := creds[0]["id"].(string)
		w.want(w.call("PATCH", passkeyBase+"credentials/"+id, `{"name":"  "}`, w.userAuth(w.token)), 400, "invalid_name")
		w.want(w.call("PATCH", passkeyBase+"credentials/"+id, `{"name":"Work laptop"}`, w.userAuth(w.token)), 200, "")
		list = w.call("GET", passkeyBase+"credentials", "", w.userAuth(w.token))
		if !strings.Contains(string(list.raw), `"Name":"Work laptop"`) {
			t.Errorf("after rename: %s", list.raw)
		}
		// The only passkey of a user without a verified email or phone is their only way in.
		w.want(w.call("DELETE", passkeyBase+"credentials/"+id, "", w.userAuth(w.token)), 409, "last_sign_in_method")
		opts = w.beginRegistration(w.token)
		auth2, cred2 := newAuthenticator(opts, nil)
		w.want(w.register(w.token, opts, w.rp, auth2, cred2), 201, "")
		w.want(w.call("DELETE", passkeyBase+"credentials/"+id, "", w.userAuth(w.token)), 200, "")
		w.want(w.call("DELETE", passkeyBase+"credentials/"+id, "", w.userAuth(w.token)), 404, "passkey_not_found")
		// The deleted passkey no longer signs in.
		w.want(w.loginWith("", auth, cred, 3), 401, "passkey_not_registered")

		// The management API sees and removes them.
		mgmt := w.call("GET", "/api/v1/users/"+w.userID+"/passkeys", "", w.secret())
		w.want(mgmt, 200, "")
		if !strings.Contains(string(mgmt.raw), base64.RawURLEncoding.EncodeToString(cred2.ID)) {
			t.Errorf("management list = %s", mgmt.raw)
		}
		del := w.call("DELETE", "/api/v1/users/"+w.userID+"/passkeys", "", w.secret())
		if del.status != 200 || del.body["deleted"] != float64(1) {
			t.Errorf("management delete = %d %s", del.status, del.raw)
		}
		w.want(w.loginWith("ada@example.com", auth2, cred2, 1), 401, "passkey_not_registered")
	})
}

func TestPasskeyCeremonyAttacks(t *testing.T) {
	w := newPasskeyWorld(t, testdb.SQLite(t))
	opts := w.beginRegistration(w.token)
	auth, cred := newAuthenticator(opts, nil)
	w.want(w.register(w.token, opts, w.rp, auth, cred), 201, "")

	t.Run("wrong origin", func(t *testing.T) {
		rp := w.rp
		rp.Origin = "https://evil.example"
		opts := w.beginLogin("")
		w.want(w.finishLogin(opts, assertion(t, rp, auth, cred, opts)), 401, "passkey_verification_failed")
		events, err := w.a.Store().ListAuditEvents(t.Context(), w.proj.Project.ID, store.AuditFilter{Type: "login.failed"}, 10, "")
		if err != nil || len(events) != 1 || events[0].Detail["connection_type"] != "Passkey" ||
			events[0].Detail["reason"] != "passkey_verification_failed" {
			t.Errorf("login.failed events after a wrong-origin assertion = %+v, %v", events, err)
		}
		// Registration too.
		ro := w.beginRegistration(w.token)
		a, c := newAuthenticator(ro, nil)
		w.want(w.register(w.token, ro, rp, a, c), 401, "passkey_verification_failed")
	})
	t.Run("wrong RP id", func(t *testing.T) {
		rp := w.rp
		rp.ID = "evil.example"
		opts := w.beginLogin("")
		w.want(w.finishLogin(opts, assertion(t, rp, auth, cred, opts)), 401, "passkey_verification_failed")
	})
	t.Run("replayed auth_code", func(t *testing.T) {
		opts := w.beginLogin("")
		cred.Counter = 10
		body := assertion(t, w.rp, auth, cred, opts)
		w.want(w.finishLogin(opts, body), 200, "")
		w.want(w.finishLogin(opts, body), 401, "invalid_auth_code")
	})
	t.Run("expired auth_code", func(t *testing.T) {
		opts := w.beginLogin("")
		w.clock.Advance(5*time.Minute + time.Second)
		cred.Counter = 11
		w.want(w.finishLogin(opts, assertion(t, w.rp, auth, cred, opts)), 401, "invalid_auth_code")
		w.beginLogin("ada@example.com")
		st := w.call("GET", passkeyBase+"status?identifier=ada@example.com", "", w.cid())
		if st.body["status"] != "pending" {
			t.Errorf("status of a fresh ceremony = %s", st.raw)
		}
		w.clock.Advance(5*time.Minute + time.Second)
		st = w.call("GET", passkeyBase+"status?identifier=ada@example.com", "", w.cid())
		if st.body["status"] != "expired" {
			t.Errorf("status of an expired ceremony = %s", st.raw)
		}
	})
	t.Run("auth_code of another kind", func(t *testing.T) {
		ro := w.beginRegistration(w.login().Tokens.AccessToken) // the clock moved past w.token's sign-in
		lo := w.beginLogin("")
		cred.Counter = 12
		body := assertion(t, w.rp, auth, cred, lo)
		w.want(w.finishLogin(ro, body), 401, "invalid_auth_code")
		w.want(w.finishLogin(lo, body), 200, "")
	})
	t.Run("tampered signature", func(t *testing.T) {
		opts := w.beginLogin("")
		cred.Counter = 13
		var a map[string]any
		_ = json.Unmarshal([]byte(assertion(t, w.rp, auth, cred, opts)), &a)
		resp := a["response"].(map[string]any)
		sig, _ := base64.RawURLEncoding.DecodeString(resp["signature"].(string))
		sig[len(sig)-1] ^= 1
		resp["signature"] = base64.RawURLEncoding.EncodeToString(sig)
		w.want(w.finishLogin(opts, mustJSON(t, a)), 401, "passkey_verification_failed")
	})
	t.Run("user presence missing", func(t *testing.T) {
		absent := auth
		absent.Options.UserNotPresent = true
		opts := w.beginLogin("")
		cred.Counter = 14
		w.want(w.finishLogin(opts, assertion(t, w.rp, absent, cred, opts)), 401, "passkey_verification_failed")
	})
	t.Run("backup eligibility changed", func(t *testing.T) {
		changed := auth
		changed.Options.BackupEligible, changed.Options.BackupState = false, false
		opts := w.beginLogin("")
		cred.Counter = 15
		w.want(w.finishLogin(opts, assertion(t, w.rp, changed, cred, opts)), 401, "passkey_verification_failed")
	})
	t.Run("malformed response", func(t *testing.T) {
		opts := w.beginLogin("")
		w.want(w.finishLogin(opts, `{"id":"x","type":"public-key","response":{}}`), 400, "invalid_passkey_response")
		w.want(w.finishLogin(opts, `not json`), 400, "invalid_passkey_response")
	})
	t.Run("another user's credential id at registration", func(t *testing.T) {
		email := "bob@example.com"
		bob, err := w.a.Directory().CreateUser(t.Context(), audit.Actor{Kind: audit.ActorCLI}, w.proj.Project.ID, directory.UserInput{Email: &email})
		if err != nil {
			t.Fatal(err)
		}
		bobToken := w.loginAs(bob.ID)
		ro := w.beginRegistration(bobToken)
		a, _ := newAuthenticator(ro, nil)
		// Bob's authenticator presents Ada's credential id with a key of its own.
		stolen := passkeytest.NewCredential()
		stolen.ID = cred.ID
		w.want(w.register(bobToken, ro, w.rp, a, stolen), 409, "passkey_exists")
		if n, _ := w.a.Store().ListPasskeys(t.Context(), w.proj.Project.ID, bob.ID); len(n) != 0 {
			t.Errorf("bob has %d passkeys", len(n))
		}
		// An auth_code issued to Ada cannot register for Bob.
		ao := w.beginRegistration(w.login().Tokens.AccessToken)
		a2, c2 := newAuthenticator(ao, nil)
		w.want(w.register(bobToken, ao, w.rp, a2, c2), 401, "invalid_auth_code")
	})
	t.Run("credential of another project", func(t *testing.T) {
		other, err := w.a.Projects().Create(t.Context(), project.NewProject{Name: "Other"})
		if err != nil {
			t.Fatal(err)
		}
		opts := w.call("GET", passkeyBase+"login", "", map[string]string{"X-Client-Id": other.Project.ClientID})
		cred.Counter = 16
		res := w.call("POST", passkeyBase+"login?auth_code="+opts.body["auth_code"].(string),
			assertion(t, w.rp, auth, cred, opts), map[string]string{"X-Client-Id": other.Project.ClientID})
		w.want(res, 401, "passkey_not_registered")
		// Nor does this project's auth_code work through the other project.
		opts = w.beginLogin("")
		res = w.call("POST", passkeyBase+"login?auth_code="+opts.body["auth_code"].(string),
			assertion(t, w.rp, auth, cred, opts), map[string]string{"X-Client-Id": other.Project.ClientID})
		w.want(res, 401, "invalid_auth_code")
	})
	t.Run("deactivated user", func(t *testing.T) {
		email := "carol@example.com"
		carol, err := w.a.Directory().CreateUser(t.Context(), audit.Actor{Kind: audit.ActorCLI}, w.proj.Project.ID, directory.UserInput{Email: &email})
		if err != nil {
			t.Fatal(err)
		}
		tok := w.loginAs(carol.ID)
		ro := w.beginRegistration(tok)
		a, c := newAuthenticator(ro, nil)
		w.want(w.register(tok, ro, w.rp, a, c), 201, "")
		active := false
		if _, err := w.a.Directory().UpdateUser(t.Context(), audit.Actor{Kind: audit.ActorCLI}, w.proj.Project.ID, carol.ID, directory.UserInput{Active: &active}); err != nil {
			t.Fatal(err)
		}
		// A forged assertion learns nothing about the account's state; the real key does.
		opts := w.beginLogin("")
		c.Counter = 1
		var forged map[string]any
		_ = json.Unmarshal([]byte(assertion(t, w.rp, a, c, opts)), &forged)
		forged["response"].(map[string]any)["signature"] = base64.RawURLEncoding.EncodeToString([]byte("forged"))
		w.want(w.finishLogin(opts, mustJSON(t, forged)), 401, "passkey_verification_failed")
		w.want(w.loginWith("", a, c, 2), 403, "user_inactive")
	})
	t.Run("sign count rolled back", func(t *testing.T) {
		w.want(w.loginWith("", auth, cred, 50), 200, "")
		w.want(w.loginWith("", auth, cred, 40), 401, "passkey_clone_suspected")
		// Flagged for good: even a higher count is refused now.
		w.want(w.loginWith("", auth, cred, 60), 401, "passkey_clone_suspected")
		pks, err := w.a.Store().ListPasskeys(t.Context(), w.proj.Project.ID, w.userID)
		if err != nil || len(pks) != 1 || !pks[0].CloneSuspected || pks[0].SignCount != 50 {
			t.Fatalf("passkeys after the rollback: %+v %v", pks, err)
		}
		events, err := w.a.Store().ListAuditEvents(t.Context(), w.proj.Project.ID, store.AuditFilter{Type: "passkey.clone_suspected"}, 10, "")
		if err != nil || len(events) != 1 || events[0].UserID != w.userID {
			t.Fatalf("audit events: %+v %v", events, err)
		}
	})
}

// loginAs signs in another user of the project and returns their access token.
func (w *passkeyWorld) loginAs(userID string) string {
	w.t.Helper()
	saved := w.userID
	w.userID = userID
	defer func() { w.userID = saved }()
	return w.login().Tokens.AccessToken
}

func TestPasskeyLoginOptionsDoNotRevealAccounts(t *testing.T) {
	w := newPasskeyWorld(t, testdb.SQLite(t))
	opts := w.beginRegistration(w.token)
	auth, cred := newAuthenticator(opts, nil)
	w.want(w.register(w.token, opts, w.rp, auth, cred), 201, "")
	email := "nopasskey@example.com"
	if _, err := w.a.Directory().CreateUser(t.Context(), audit.Actor{Kind: audit.ActorCLI}, w.proj.Project.ID, directory.UserInput{Email: &email}); err != nil {
		t.Fatal(err)
	}

	shape := func(identifier string) (keys []string, ids []string) {
		r := w.beginLogin(identifier)
		pk := r.body["publicKey"].(map[string]any)
		for k := range pk {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, c := range pk["allowCredentials"].([]any) {
			c := c.(map[string]any)
			ids = append(ids, c["id"].(string))
			if c["type"] != "public-key" || c["transports"] == nil {
				t.Errorf("%s: credential descriptor %v", identifier, c)
			}
		}
		return keys, ids
	}
	known, _ := shape("ada@example.com")
	for _, identifier := range []string{"ghost@example.com", "nopasskey@example.com", "+15555550123"} {
		keys, ids := shape(identifier)
		if !slices.Equal(keys, known) || len(ids) == 0 {
			t.Errorf("%s: options %v with %d credentials, a known user's have %v", identifier, keys, len(ids), known)
		}
		_, again := shape(identifier)
		if !slices.Equal(ids, again) {
			t.Errorf("%s: stand-in credentials change between calls: %v then %v", identifier, ids, again)
		}
		for _, id := range ids {
			raw, _ := base64.RawURLEncoding.DecodeString(id)
			if len(raw) < 15 {
				t.Errorf("%s: stand-in credential id of %d bytes", identifier, len(raw))
			}
		}
		st := w.call("GET", passkeyBase+"status?identifier="+identifier, "", w.cid())
		if st.body["status"] != "pending" {
			t.Errorf("%s: status %s, want pending like a known user's", identifier, st.raw)
		}
	}
	// Ada's real passkey cannot answer options made for somebody else.
	opts = w.beginLogin("ghost@example.com")
	cred.Counter = 1
	w.want(w.finishLogin(opts, assertion(t, w.rp, auth, cred, opts)), 401, "passkey_not_registered")
	w.want(w.call("GET", passkeyBase+"status", "", w.cid()), 400, "invalid_identifier")
	if st := w.call("GET", passkeyBase+"status?identifier=never@example.com", "", w.cid()); st.body["status"] != "not_found" {
		t.Errorf("status of an identifier never asked about = %s", st.raw)
	}
}

func TestPasskeyProjectSettings(t *testing.T) {
	w := newPasskeyWorld(t, testdb.SQLite(t))
	// Required user verification: an authenticator that does not verify the user is refused.
	w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"passkey":{"user_verification":"required"},
		"allowed_origins":["https://app.example.com","https://shop.example.org"]}}`, w.secret()), 200, "")
	opts := w.beginRegistration(w.token)
	pk := opts.body["publicKey"].(map[string]any)
	if pk["rp"].(map[string]any)["id"] != "app.example.com" || pk["authenticatorSelection"].(map[string]any)["userVerification"] != "required" {
		t.Fatalf("options after the settings change: %s", opts.raw)
	}
	rp := virtualwebauthn.RelyingParty{ID: "app.example.com", Name: "Tokens", Origin: "https://shop.example.org"}
	a, c := newAuthenticator(opts, func(o *virtualwebauthn.AuthenticatorOptions) { o.UserNotVerified = true })
	w.want(w.register(w.token, opts, rp, a, c), 401, "passkey_verification_failed")
	opts = w.beginRegistration(w.token)
	a, c = newAuthenticator(opts, nil)
	w.want(w.register(w.token, opts, rp, a, c), 201, "") // a related origin of the RP id

	// The related origins document, found by the host browsers ask at.
	req, _ := http.NewRequest("GET", w.srv.URL+"/.well-known/webauthn", nil)
	req.Host = "app.example.com"
	resp, err := w.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Origins []string }
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if resp.StatusCode != 200 || !slices.Equal(doc.Origins, []string{testIssuer, "https://app.example.com", "https://shop.example.org"}) {
		t.Errorf("/.well-known/webauthn = %d %v", resp.StatusCode, doc.Origins)
	}
	w.want(w.call("GET", "/.well-known/webauthn", "", nil), 404, "project_not_found") // host 127.0.0.1
	w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"passkey":{"rp_id":"https://x.example"}}}`, w.secret()), 400, "invalid_setting")

	// Passkeys switched off.
	w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"login_methods":{"passkey":false}}}`, w.secret()), 200, "")
	w.want(w.call("GET", passkeyBase+"login", "", w.cid()), 403, "passkeys_disabled")
}

// BenchmarkPasskeyLogin measures, over HTTP on SQLite with EdDSA tokens, the login options
// (one ceremony INSERT) and the login finish (the ceremony's single-use UPDATE, the ES256
// assertion check, the sign count UPDATE and the login: login log, session and tokens).
//
//	go test -run '^$' -bench PasskeyLogin -benchmem ./internal/app
func BenchmarkPasskeyLogin(b *testing.B) {
	a, p := newBenchApp(b, `{"tokens":{"signing_algorithm":"EdDSA"}}`, app.WithPublicURL(testIssuer))
	ctx := context.Background()
	email := "bench@example.com"
	u, err := a.Directory().CreateUser(ctx, audit.Actor{Kind: audit.ActorCLI}, p.ID, directory.UserInput{Email: &email})
	if err != nil {
		b.Fatal(err)
	}
	res, err := a.Login().Complete(ctx, login.Request{Project: p, UserID: u.ID, ConnectionType: login.EmailOTP, AMR: []string{"otp"}})
	if err != nil {
		b.Fatal(err)
	}
	h := a.Handler()
	do := func(method, path, body string, header map[string]string, want int) response {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req := httptest.NewRequest(method, path, rd)
		req.Header.Set("X-Client-Id", p.ClientID)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			b.Fatalf("%s %s = %d %s", method, path, rec.Code, rec.Body)
		}
		out := response{status: rec.Code, raw: rec.Body.Bytes()}
		_ = json.Unmarshal(out.raw, &out.body)
		return out
	}
	rp := virtualwebauthn.RelyingParty{ID: "auth.example.com", Name: "Bench", Origin: testIssuer}
	opts := do("GET", passkeyBase+"register", "", bearer(res.Tokens.AccessToken), 200)
	auth, cred := newAuthenticator(opts, nil)
	do("POST", passkeyBase+"register", fmt.Sprintf(`{"auth_code":%q,"publicKey":%s}`, opts.body["auth_code"],
		attest(b, rp, auth, cred, opts)), bearer(res.Tokens.AccessToken), 201)

	b.Run("options", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			do("GET", passkeyBase+"login", "", nil, 200)
		}
	})
	b.Run("finish", func(b *testing.B) {
		type attempt struct{ code, body string }
		attempts := make([]attempt, b.N)
		for i := range attempts {
			opts := do("GET", passkeyBase+"login", "", nil, 200)
			cred.Counter++
			attempts[i] = attempt{opts.body["auth_code"].(string), assertion(b, rp, auth, cred, opts)}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for _, at := range attempts {
			do("POST", passkeyBase+"login?auth_code="+at.code, at.body, nil, 200)
		}
	})
}

// Synced passkeys (iCloud Keychain, Google Password Manager) keep no signature counter: they
// always report 0, and the same passkey signing in on two devices at once must work.
func TestPasskeyConcurrentLoginsWithoutACounter(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newPasskeyWorld(t, st)
		opts := w.beginRegistration(w.token)
		auth, cred := newAuthenticator(opts, nil)
		w.want(w.register(w.token, opts, w.rp, auth, cred), 201, "")
		const n = 8
		bodies := make([]string, n)
		codes := make([]string, n)
		for i := range bodies {
			o := w.beginLogin("")
			codes[i], bodies[i] = o.body["auth_code"].(string), assertion(t, w.rp, auth, cred, o)
		}
		var wg sync.WaitGroup
		statuses := make([]int, n)
		for i := range bodies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("POST", w.srv.URL+passkeyBase+"login?auth_code="+codes[i], strings.NewReader(bodies[i]))
				req.Header.Set("X-Client-Id", w.proj.Project.ClientID)
				resp, err := w.srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			}()
		}
		wg.Wait()
		for i, s := range statuses {
			if s != 200 {
				t.Errorf("concurrent login %d: %d, want 200", i, s)
			}
		}
		pks, err := w.a.Store().ListPasskeys(t.Context(), w.proj.Project.ID, w.userID)
		if err != nil || len(pks) != 1 || pks[0].CloneSuspected || pks[0].SignCount != 0 {
			t.Errorf("passkey after concurrent logins: %+v %v", pks, err)
		}
	})
}

// A passkey is a lasting way in that also counts as two factors: an access token from an old
// sign-in cannot add one.
func TestPasskeyRegistrationNeedsARecentSignIn(t *testing.T) {
	w := newPasskeyWorld(t, testdb.SQLite(t))
	w.clock.Advance(10*time.Minute + time.Second)
	w.want(w.call("GET", passkeyBase+"register", "", w.userAuth(w.token)), 403, "reauthentication_required")
	fresh := w.login().Tokens.AccessToken
	w.want(w.call("GET", passkeyBase+"register", "", w.userAuth(fresh)), 200, "")
}
