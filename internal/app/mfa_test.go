package app_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/mfa/mfatest"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

const mfaBase = "/api/v1/auth/mfa/"

// mfaWorld is a flow world whose project asks for a second factor.
type mfaWorld struct {
	*flowWorld
}

func newMFAWorld(t *testing.T, st *sqlstore.Store, mfaSettings string, opts ...app.Option) *mfaWorld {
	t.Helper()
	w := &mfaWorld{newFlowWorld(t, st, append([]app.Option{app.WithDev(true)}, opts...)...)}
	w.setMFA(mfaSettings)
	return w
}

func (w *mfaWorld) setMFA(mfaSettings string) {
	w.t.Helper()
	w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"mfa":`+mfaSettings+`}}`, w.secret()), 200, "")
}

// emailLogin signs in by email code, as far as the first factor goes.
func (w *mfaWorld) emailLogin(email string) response {
	w.t.Helper()
	// The dev inbox orders messages by time: a second between logins keeps "newest" exact.
	w.clock.Advance(time.Second)
	r := w.post("email-otp/send", fmt.Sprintf(`{"email":%q}`, email))
	w.want(r, 200, "")
	return w.post("email-otp/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, r.body["state"], w.lastCode(email)))
}

// challenged asserts that r is an MFA challenge and returns its mfa_token.
func (w *mfaWorld) challenged(r response) string {
	w.t.Helper()
	if r.status != 200 || r.body["authenticated"] != false || r.body["mfa_required"] != true || r.body["access_token"] != nil {
		w.t.Fatalf("want an MFA challenge, got %d %s", r.status, r.raw)
	}
	tok, _ := r.body["mfa_token"].(string)
	if !strings.HasPrefix(tok, "mfa_") {
		w.t.Fatalf("mfa_token = %q", tok)
	}
	return tok
}

// withToken is the client id with an mfa_token as the Bearer credential.
func (w *mfaWorld) withToken(tok string) map[string]string {
	return map[string]string{"X-Client-Id": w.proj.Project.ClientID, "Authorization": "Bearer " + tok,
		"Content-Type": "application/json"}
}

func (w *mfaWorld) validate(body string) response {
	w.t.Helper()
	return w.call("POST", mfaBase+"validate", body, w.cid())
}

// code is the authenticator app's code now, on the server's clock.
func (w *mfaWorld) code(secret string) string {
	return mfatest.Code(w.t, secret, w.clock.Now())
}

// authenticated asserts that r is a login result with tokens, and returns its amr.
func (w *mfaWorld) authenticated(r response) []string {
	w.t.Helper()
	if r.status != 200 || r.body["authenticated"] != true || r.body["access_token"] == nil || r.body["mfa_required"] != nil {
		w.t.Fatalf("want tokens, got %d %s", r.status, r.raw)
	}
	return amrOf(w.t, r)
}

// accessToken asserts that r is a login result with tokens, and returns its access token.
func (w *mfaWorld) accessToken(r response) string {
	w.t.Helper()
	w.authenticated(r)
	return r.body["access_token"].(string)
}

func types(list []any) []string {
	var out []string
	for _, a := range list {
		out = append(out, a.(map[string]any)["authenticator_type"].(string))
	}
	return out
}

func TestMFARequiredEndToEnd(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newMFAWorld(t, st, `{"policy":"required","factors":["otp","email","recovery-code"]}`)
		const email = "ada@example.com"

		// First login: a challenge with nothing to answer with yet (the email that signed in
		// is not offered again), so the user enrolls with the mfa_token.
		first := w.emailLogin(email)
		tok := w.challenged(first)
		if got := first.body["authenticators"].([]any); len(got) != 0 {
			t.Errorf("authenticators of a user without factors = %v, want []", got)
		}
		list := w.call("GET", mfaBase+"authenticators", "", w.withToken(tok))
		w.want(list, 200, "")
		if string(list.raw) != "[]\n" && string(list.raw) != "[]" {
			t.Errorf("GET authenticators = %s, want []", list.raw)
		}
		enr := w.call("POST", mfaBase+"enroll", `{"authenticator_types":["otp"]}`, w.withToken(tok))
		w.want(enr, 200, "")
		if enr.header.Get("Cache-Control") != "no-store" {
			t.Errorf("enroll Cache-Control = %q", enr.header.Get("Cache-Control"))
		}
		factorID, secret, uri := enr.body["authenticator_id"].(string), enr.body["secret"].(string), enr.body["barcode_uri"].(string)
		key, err := otp.NewKeyFromURL(uri)
		if err != nil || key.Issuer() != "Acme" || key.AccountName() != email || key.Secret() != secret {
			t.Fatalf("barcode_uri %q: %v", uri, err)
		}
		var codes []string
		for _, c := range enr.body["recovery_codes"].([]any) {
			codes = append(codes, c.(string))
		}
		if len(codes) != 10 || len(strings.ReplaceAll(codes[0], "-", "")) < 10 {
			t.Fatalf("recovery_codes = %v, want 10 codes of at least 10 characters", codes)
		}

		// The QR code is a PNG that decodes, with an independent decoder, to the same URI.
		qr := w.call("GET", mfaBase+"qr-code?authenticator_id="+factorID, "", w.withToken(tok))
		if qr.status != 200 || qr.header.Get("Content-Type") != "image/png" || qr.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("qr-code: %d %v", qr.status, qr.header)
		}
		if got := mfatest.DecodeQR(t, qr.raw); got != uri {
			t.Errorf("QR code holds %q, want %q", got, uri)
		}

		// The first code confirms the app and completes the sign-in with both factors.
		firstCode := w.code(secret)
		res := w.validate(fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, tok, firstCode))
		amr := w.authenticated(res)
		for _, v := range []string{"email", "otp", "mfa"} {
			if !slices.Contains(amr, v) {
				t.Errorf("amr %v lacks %q", amr, v)
			}
		}
		if ct := res.body["profile"].(map[string]any)["connection_type"]; ct != "EmailOTP" {
			t.Errorf("connection_type = %v, want the first factor's", ct)
		}
		access := res.body["access_token"].(string)
		notified := 0
		for _, m := range w.inbox(email) {
			if m["subject"] == "A change to your Acme account" && strings.Contains(m["text"].(string), "An authenticator app was added") {
				notified++
			}
		}
		if notified != 1 {
			t.Errorf("%d notices of the new authenticator app, want 1", notified)
		}
		w.want(w.call("GET", "/api/v1/auth/status", "", bearer(access)), 200, "")
		// The mfa_token is spent, and confirmed apps no longer show their QR code.
		w.want(w.validate(fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, tok, w.code(secret))), 401, "invalid_mfa_token")
		w.want(w.call("GET", mfaBase+"qr-code?authenticator_id="+factorID, "", bearer(access)), 409, "authenticator_already_confirmed")

		// Next login: the app answers. The step just used is not accepted again (it is still
		// within the ±1 step window a second later); the next step is.
		next := w.emailLogin(email)
		tok = w.challenged(next)
		if got := types(next.body["authenticators"].([]any)); !slices.Equal(got, []string{"otp", "recovery-code"}) {
			t.Errorf("authenticators = %v, want [otp recovery-code]", got)
		}
		w.want(w.validate(fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, tok, firstCode)), 401, "otp_already_used")
		w.clock.Advance(30 * time.Second)
		w.authenticated(w.validate(fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, tok, w.code(secret))))

		// A backup code answers once.
		tok = w.challenged(w.emailLogin(email))
		amr = w.authenticated(w.validate(fmt.Sprintf(`{"mfa_token":%q,"recovery_code":%q}`, tok, strings.ToLower(codes[0]))))
		if !slices.Contains(amr, "mfa") {
			t.Errorf("amr after a recovery code = %v", amr)
		}
		tok = w.challenged(w.emailLogin(email))
		w.want(w.validate(fmt.Sprintf(`{"mfa_token":%q,"recovery_code":%q}`, tok, codes[0])), 401, "invalid_recovery_code")
		used, err := st.ListAuditEvents(t.Context(), w.proj.Project.ID, store.AuditFilter{Type: "mfa.recovery_code_used"}, 10, "")
		if err != nil || len(used) != 1 || used[0].Detail["remaining"] != float64(9) {
			t.Errorf("recovery code audit events = %+v, %v; want one with 9 remaining", used, err)
		}

		// A fresh session may issue a new set, which voids the old one.
		access = w.accessToken(w.validate(fmt.Sprintf(`{"mfa_token":%q,"recovery_code":%q}`, tok, codes[1])))
		fresh := w.call("GET", mfaBase+"backupcode", "", bearer(access))
		w.want(fresh, 200, "")
		newCodes := fresh.body["backup_codes"].([]any)
		if len(newCodes) != 10 || slices.Contains(newCodes, any(codes[2])) {
			t.Fatalf("backup_codes = %v", newCodes)
		}
		tok = w.challenged(w.emailLogin(email))
		w.want(w.validate(fmt.Sprintf(`{"mfa_token":%q,"recovery_code":%q}`, tok, codes[2])), 401, "invalid_recovery_code")
		w.authenticated(w.validate(fmt.Sprintf(`{"mfa_token":%q,"recovery_code":%q}`, tok, newCodes[0])))
		// Eleven minutes on, the same session is too old for it.
		w.clock.Advance(11 * time.Minute)
		w.want(w.call("GET", mfaBase+"backupcode", "", bearer(access)), 403, "reauthentication_required")

		// The user's authenticators, as the user and as the management API see them.
		mine := w.call("GET", mfaBase+"authenticators", "", bearer(access))
		w.want(mine, 200, "")
		var all []any
		if err := json.Unmarshal(mine.raw, &all); err != nil || !slices.Equal(types(all), []string{"otp", "oob", "recovery-code"}) {
			t.Errorf("GET authenticators as the user = %s", mine.raw)
		}
		mgmt := w.call("GET", "/api/v1/users/"+claims(t, access)["sub"].(string)+"/mfa", "", w.secret())
		w.want(mgmt, 200, "")
		if got := types(mgmt.body["authenticators"].([]any)); !slices.Equal(got, []string{"otp", "oob", "recovery-code"}) {
			t.Errorf("management list = %v", got)
		}
	})
}

func TestMFASMSChallengeThroughATwilioCompatibleAPI(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		twilio := newTwilioFake(t, "AC0123", "secret-token")
		sms, err := notify.NewTwilioSender(notify.TwilioConfig{BaseURL: twilio.srv.URL, AccountSID: "AC0123", AuthToken: "secret-token", From: "+15005550006"})
		if err != nil {
			t.Fatal(err)
		}
		w := newMFAWorld(t, st, `{"policy":"off","factors":["otp","sms","email"]}`,
			app.WithSenders(map[notify.Channel]notify.Sender{notify.SMS: sms}))
		// The user verifies a phone by signing in with it, and has a verified email too.
		r := w.post("phone-otp/send", `{"phone_id":"+14155550100"}`)
		w.want(r, 200, "")
		w.deliver()
		code := codeRE.FindStringSubmatch(twilio.last().Get("Body"))[1]
		res := w.post("phone-otp/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, r.body["state"], code))
		userID := res.body["profile"].(map[string]any)["id"].(string)
		w.want(w.call("PUT", "/api/v1/users/"+userID, `{"email":"ada@example.com","email_verified":true}`, w.secret()), 200, "")
		w.setMFA(`{"policy":"required","factors":["otp","sms","email"]}`)

		// After an email code, the second factor may be an SMS code (not another email).
		first := w.emailLogin("ada@example.com")
		tok := w.challenged(first)
		auths := first.body["authenticators"].([]any)
		if len(auths) != 1 || auths[0].(map[string]any)["oob_channel"] != "sms" || auths[0].(map[string]any)["name"] != "+1••••••00" {
			t.Fatalf("authenticators = %v, want the masked phone only", auths)
		}
		w.want(w.call("POST", mfaBase+"initiate", fmt.Sprintf(`{"mfa_token":%q,"authenticator_type":"oob","oob_channels":"email"}`, tok), w.cid()), 400, "invalid_request")
		before := len(twilio.messages)
		ini := w.call("POST", mfaBase+"initiate", fmt.Sprintf(`{"mfa_token":%q,"authenticator_type":"oob","oob_channels":["sms"]}`, tok), w.cid())
		w.want(ini, 200, "")
		oob, _ := ini.body["oob_code"].(string)
		if ini.body["challenge_type"] != "oob" || ini.body["binding_method"] != "prompt" || !strings.HasPrefix(oob, "oob_") {
			t.Fatalf("initiate = %s", ini.raw)
		}
		w.deliver()
		msg := twilio.last()
		if len(twilio.messages) != before+1 || msg.Get("To") != "+14155550100" {
			t.Fatalf("twilio got %v", msg)
		}
		sent := codeRE.FindStringSubmatch(msg.Get("Body"))[1]
		if strings.Contains(string(ini.raw), sent) {
			t.Error("the initiate answer shows the code it sent")
		}
		// A resend within 30 s is refused with Retry-After.
		again := w.call("POST", mfaBase+"initiate", fmt.Sprintf(`{"mfa_token":%q,"oob_channels":"sms"}`, tok), w.cid())
		w.want(again, 429, "too_many_sends")
		if ra := again.header.Get("Retry-After"); ra == "" || atoi(ra) < 1 || atoi(ra) > 30 {
			t.Errorf("Retry-After = %q", ra)
		}
		wrong := "000000"
		if sent == wrong {
			wrong = "111111"
		}
		w.want(w.validate(fmt.Sprintf(`{"mfa_token":%q,"oob_code":%q,"otp":%q}`, tok, "oob_forged", sent)), 401, "invalid_oob_code")
		w.want(w.validate(fmt.Sprintf(`{"mfa_token":%q,"oob_code":%q,"otp":%q}`, tok, oob, wrong)), 401, "invalid_otp")
		amr := w.authenticated(w.validate(fmt.Sprintf(`{"mfa_token":%q,"oob_code":%q,"otp":%q}`, tok, oob, sent)))
		for _, v := range []string{"email", "sms", "otp", "mfa"} {
			if !slices.Contains(amr, v) {
				t.Errorf("amr %v lacks %q", amr, v)
			}
		}
	})
}

func TestMFAPasskeyLoginSkipsTheStep(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newPasskeyWorld(t, st)
		opts := w.beginRegistration(w.token)
		auth, cred := newAuthenticator(opts, nil)
		w.want(w.register(w.token, opts, w.rp, auth, cred), 201, "")
		w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"mfa":{"policy":"required"}}}`, w.secret()), 200, "")

		// Another first factor now needs a second; a passkey that verified its user does not.
		if r := w.login(); r.Challenge == nil || r.Authenticated {
			t.Fatalf("email code login under a required policy: %+v", r)
		}
		res := w.loginWith("ada@example.com", auth, cred, 1)
		if res.status != 200 || res.body["authenticated"] != true {
			t.Fatalf("passkey login: %d %s", res.status, res.raw)
		}
		if amr := amrOf(t, res); !slices.Contains(amr, "mfa") || !slices.Contains(amr, "pk") {
			t.Errorf("amr = %v, want pk and mfa", amr)
		}
	})
}
