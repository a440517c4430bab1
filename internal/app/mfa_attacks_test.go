package app_test

import (
	"bytes"
	"encoding/base32"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// enrolled signs the user in for the first time under a required policy, enrolls an
// authenticator app with the mfa_token and confirms it; it returns the app's secret and the
// user's recovery codes.
func (w *mfaWorld) enrolled(email string) (string, []string) {
	w.t.Helper()
	tok := w.challenged(w.emailLogin(email))
	enr := w.call("POST", mfaBase+"enroll", fmt.Sprintf(`{"authenticator_types":["otp"],"mfa_token":%q}`, tok), w.cid())
	w.want(enr, 200, "")
	secret := enr.body["secret"].(string)
	var codes []string
	for _, c := range enr.body["recovery_codes"].([]any) {
		codes = append(codes, c.(string))
	}
	w.authenticated(w.validate(fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, tok, w.code(secret))))
	// Later codes come from later steps.
	w.clock.Advance(30 * time.Second)
	return secret, codes
}

// serverToken starts a second-factor step the way an application's back end does.
func (w *mfaWorld) serverToken(identifier string) string {
	w.t.Helper()
	r := w.call("POST", mfaBase+"token", fmt.Sprintf(`{"identifier":%q}`, identifier), w.secret())
	w.want(r, 200, "")
	if r.body["expires_in"] != float64(300) {
		w.t.Errorf("expires_in = %v, want 300", r.body["expires_in"])
	}
	return r.body["mfa_token"].(string)
}

func TestMFAWrongAnswersAreLimited(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newMFAWorld(t, st, `{"policy":"required","factors":["otp","recovery-code"]}`)
		secret, _ := w.enrolled("ada@example.com")
		right := w.code(secret)
		wrong := fmt.Sprintf("%06d", (atoi(right)+1)%1000000)

		// Four wrong codes on one mfa_token are refused one by one; the fifth locks the step.
		tok := w.challenged(w.emailLogin("ada@example.com"))
		for range 4 {
			w.want(w.validate(fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, tok, wrong)), 401, "invalid_otp")
			// At a person's pace: quicker guesses are slowed down by attack protection.
			w.clock.Advance(30 * time.Second)
		}
		locked := w.validate(fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, tok, wrong))
		w.want(locked, 429, "too_many_attempts")
		if ra := atoi(locked.header.Get("Retry-After")); ra < 14*60 || ra > 15*60 {
			t.Errorf("Retry-After = %q, want about 15 minutes", locked.header.Get("Retry-After"))
		}
		// The right code is refused on that token, and for the user on a new one too: the
		// limit is per user across tokens. Nothing is sent for a locked user either.
		w.want(w.validate(fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, tok, right)), 429, "too_many_attempts")
		fresh := w.serverToken("ada@example.com")
		w.want(w.validate(fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, fresh, right)), 429, "too_many_attempts")
		w.want(w.call("POST", mfaBase+"initiate", fmt.Sprintf(`{"mfa_token":%q,"authenticator_type":"otp"}`, fresh), w.cid()), 429, "too_many_attempts")
		events, err := st.ListAuditEvents(t.Context(), w.proj.Project.ID, store.AuditFilter{Type: "mfa.failed"}, 20, "")
		if err != nil || len(events) != 5 {
			t.Errorf("mfa.failed events = %d, %v; want 5", len(events), err)
		}
		for _, e := range events {
			if strings.Contains(fmt.Sprint(e.Detail), wrong) {
				t.Errorf("an audit event holds the code: %v", e.Detail)
			}
		}

		// After the window, the right code on a new token passes.
		w.clock.Advance(15 * time.Minute)
		fresh = w.serverToken("ada@example.com")
		w.authenticated(w.validate(fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, fresh, w.code(secret))))
	})
}

func TestMFATokenAbuse(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newMFAWorld(t, st, `{"policy":"required","factors":["otp","recovery-code"]}`)
		secret, codes := w.enrolled("ada@example.com")

		// Expired: five minutes after it was issued.
		tok := w.challenged(w.emailLogin("ada@example.com"))
		w.clock.Advance(5*time.Minute + time.Second)
		w.want(w.validate(fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, tok, w.code(secret))), 401, "mfa_token_expired")

		// An mfa_token is not an access token, a refresh token or a secret anywhere else.
		tok = w.challenged(w.emailLogin("ada@example.com"))
		for _, r := range []response{
			w.call("GET", "/api/v1/auth/status", "", bearer(tok)),
			w.call("GET", "/api/v1/auth/sessions", "", bearer(tok)),
			w.call("GET", mfaBase+"backupcode", "", bearer(tok)),
			w.call("GET", "/api/v1/auth/passwordless/passkey/credentials", "", bearer(tok)),
		} {
			w.want(r, 401, "invalid_token")
		}
		w.want(w.call("GET", "/api/v1/users", "", w.withToken(tok)), 401, "")
		w.want(w.call("POST", "/api/v1/accesstoken/refresh", fmt.Sprintf(`{"refresh_token":%q}`, tok), w.cid()), 401, "")
		// An mfa_token of a user with a factor cannot enroll another one.
		w.want(w.call("POST", mfaBase+"enroll", `{"authenticator_types":["otp"]}`, w.withToken(tok)), 403, "mfa_enrollment_not_allowed")

		// Another project's client id does not find the token.
		other, err := w.a.Projects().Create(t.Context(), project.NewProject{Name: "Other"})
		if err != nil {
			t.Fatal(err)
		}
		otherCID := map[string]string{"X-Client-Id": other.Project.ClientID, "Content-Type": "application/json"}
		w.want(w.call("POST", mfaBase+"validate", fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, tok, w.code(secret)), otherCID), 401, "invalid_mfa_token")
		otherCID["Authorization"] = "Bearer " + tok
		w.want(w.call("GET", mfaBase+"authenticators", "", otherCID), 401, "invalid_mfa_token")
		// Still good for its own project, once.
		w.authenticated(w.validate(fmt.Sprintf(`{"mfa_token":%q,"recovery_code":%q}`, tok, codes[0])))
		w.want(w.validate(fmt.Sprintf(`{"mfa_token":%q,"recovery_code":%q}`, tok, codes[1])), 401, "invalid_mfa_token")

		// Malformed answers change nothing.
		for _, body := range []string{`{"otp":"123456"}`, fmt.Sprintf(`{"mfa_token":%q}`, tok),
			fmt.Sprintf(`{"mfa_token":%q,"otp":"1","recovery_code":"x"}`, tok), fmt.Sprintf(`{"mfa_token":%q,"oob_code":"oob_x"}`, tok)} {
			w.want(w.validate(body), 400, "invalid_request")
		}
		w.want(w.call("POST", mfaBase+"token", `{"identifier":"nobody@example.com"}`, w.secret()), 404, "user_not_found")
		w.want(w.call("POST", mfaBase+"token", `{"identifier":"ada@example.com"}`, w.cid()), 401, "missing_credentials")
	})
}

func TestMFAOneCodeRacedFiftyWays(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newMFAWorld(t, st, `{"policy":"required","factors":["otp"]}`)
		secret, _ := w.enrolled("ada@example.com")
		toks := make([]string, 50)
		for i := range toks {
			toks[i] = w.serverToken("ada@example.com")
		}
		code := w.code(secret)
		results := make([]response, len(toks))
		var wg sync.WaitGroup
		for i, tok := range toks {
			wg.Go(func() { results[i] = w.validate(fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, tok, code)) })
		}
		wg.Wait()
		ok, other := 0, map[string]int{}
		for _, r := range results {
			switch {
			case r.status == 200 && r.body["authenticated"] == true:
				ok++
			case r.status == 401 && r.body["error_code"] == "otp_already_used", r.status == 429 && r.body["error_code"] == "too_many_attempts":
			default:
				other[fmt.Sprintf("%d %s", r.status, r.raw)]++
			}
		}
		if ok != 1 || len(other) > 0 {
			t.Errorf("50 concurrent answers with one code: %d signed in, unexpected %v; want exactly 1", ok, other)
		}
	})
}

func TestMFAManagingFactors(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newMFAWorld(t, st, `{"policy":"required","factors":["otp","recovery-code"]}`)
		secret, _ := w.enrolled("ada@example.com")
		tok := w.serverToken("ada@example.com")
		access := w.accessToken(w.validate(fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, tok, w.code(secret))))
		list := func() []any {
			r := w.call("GET", "/api/v1/users/"+claims(t, access)["sub"].(string)+"/mfa", "", w.secret())
			w.want(r, 200, "")
			return r.body["authenticators"].([]any)
		}
		first := list()[0].(map[string]any)["id"].(string)

		// The only app of a user who must use MFA stays.
		w.want(w.call("DELETE", mfaBase+"authenticators/"+first, "", bearer(access)), 409, "last_second_factor")
		// A second app, enrolled and confirmed while signed in, lets the first go.
		enr := w.call("POST", mfaBase+"enroll", `{"authenticator_types":["otp"]}`, userJSON(access))
		w.want(enr, 200, "")
		if rc := enr.body["recovery_codes"].([]any); len(rc) != 0 {
			t.Errorf("a second enrollment issued recovery codes again: %v", rc)
		}
		second, secret2 := enr.body["authenticator_id"].(string), enr.body["secret"].(string)
		w.want(w.call("POST", mfaBase+"confirm", fmt.Sprintf(`{"authenticator_id":%q,"otp":"000000"}`, second), userJSON(access)), 401, "")
		w.want(w.call("POST", mfaBase+"confirm", fmt.Sprintf(`{"authenticator_id":%q,"otp":%q}`, second, w.code(secret2)), userJSON(access)), 200, "")
		w.want(w.call("DELETE", mfaBase+"authenticators/"+first, "", bearer(access)), 200, "")
		w.want(w.call("DELETE", mfaBase+"authenticators/"+first, "", bearer(access)), 404, "authenticator_not_found")
		// A stale session may not remove factors, nor add one.
		w.clock.Advance(11 * time.Minute)
		w.want(w.call("DELETE", mfaBase+"authenticators/recovery-code", "", bearer(access)), 403, "reauthentication_required")
		w.want(w.call("POST", mfaBase+"enroll", `{"authenticator_types":["otp"]}`, userJSON(access)), 403, "reauthentication_required")

		// The management reset removes everything; the next sign-in enrolls again.
		r := w.call("DELETE", "/api/v1/users/"+claims(t, access)["sub"].(string)+"/mfa", "", w.secret())
		if r.status != 200 || r.body["deleted"] != float64(1) {
			t.Fatalf("reset: %d %s", r.status, r.raw)
		}
		if got := list(); len(got) != 0 {
			t.Errorf("factors after a reset: %v", got)
		}
		w.challenged(w.emailLogin("ada@example.com"))
	})
}

// TestMFASecretsAreNotInTheDatabaseFile reads the SQLite files byte by byte for the secret of
// an enrolled authenticator app, in base32 and raw.
func TestMFASecretsAreNotInTheDatabaseFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	st, err := sqlstore.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	w := newMFAWorld(t, st, `{"policy":"required","factors":["otp"]}`)
	secret, _ := w.enrolled("ada@example.com")
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil || len(raw) != 20 {
		t.Fatalf("secret %q: %v", secret, err)
	}
	files, _ := filepath.Glob(path + "*")
	seen := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		seen += len(b)
		if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, raw) || bytes.Contains(b, []byte(strings.ToLower(secret))) {
			t.Errorf("%s holds the TOTP secret", filepath.Base(f))
		}
	}
	if seen == 0 {
		t.Fatal("no database file was read")
	}
}

// userJSON is a signed-in user's access token with a JSON body.
func userJSON(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
}
