package app_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// The auth scenarios drive every route a user signing in calls (passwordless, passkey, MFA and
// password) through the whole server on SQLite and PostgreSQL, as the management scenarios do for
// the management API: success, then the refusals every such route shares (no or a foreign
// credential for the route's guard, malformed, mistyped and oversized bodies), each with its
// exact status and error_code. The success request is sent after the refusals, so it also shows
// that they spent nothing: the state, code or token they carried still works.

// guard is how a route authenticates its caller, which decides the credential refusals.
type guard int

const (
	byClientID guard = iota // X-Client-Id (or client_id) names the project
	byUser                  // a user's access token
	byMFAToken              // an mfa_token, or a user's access token
	bySecret                // the project's client secret
)

// authRequest is a successful request, made ready on its own fresh world.
type authRequest struct {
	w            *tokenWorld
	method, path string
	body         string
	header       map[string]string
}

// authScenario is one route: start builds the world and the request that must succeed with
// status; check (optional) asserts what it did.
type authScenario struct {
	route  string
	guard  guard
	status int
	start  func(t *testing.T, st *sqlstore.Store) authRequest
	check  func(t *testing.T, req authRequest, r response)
	// badBody is the error_code for a body that is not the JSON asked for, when the route has
	// its own ("" means invalid_request).
	badBody string
	// clientInQuery marks a route whose client id travels in the query, as a link's does.
	clientInQuery bool
}

// withDev turns on the dev inbox, from which the scenarios read codes and links.
var withDev = app.WithDev(true)

const (
	scenarioEmail = "ada@example.com"
	scenarioPhone = "+14155550100"
	goodPassword  = "correct horse battery staple"
)

func jsonHeader(h map[string]string) map[string]string {
	out := map[string]string{"Content-Type": "application/json"}
	for k, v := range h {
		out[k] = v
	}
	return out
}

func pwlRoute(w *flowWorld, method, path, body string) authRequest {
	return authRequest{w: w.tokenWorld, method: method, path: "/api/v1/auth/passwordless/" + path, body: body, header: w.cid()}
}

// sent starts a passwordless flow on path to the destination field=value and returns its state.
func (w *flowWorld) sent(path, field, value string) string {
	w.t.Helper()
	r := w.post(path, fmt.Sprintf(`{%q:%q}`, field, value))
	w.want(r, 200, "")
	return r.body["state"].(string)
}

func hasState(t *testing.T, _ authRequest, r response) {
	t.Helper()
	if s, _ := r.body["state"].(string); s == "" {
		t.Errorf("no state in %s", r.raw)
	}
}

func signedIn(t *testing.T, _ authRequest, r response) {
	t.Helper()
	if r.body["authenticated"] != true || r.body["access_token"] == nil {
		t.Errorf("want tokens, got %s", r.raw)
	}
}

// mfaScenarioWorld is a world whose project requires a second factor, with the user signed in
// by email as far as the challenge; it returns the mfa_token.
func mfaScenarioWorld(t *testing.T, st *sqlstore.Store) (*mfaWorld, string) {
	w := newMFAWorld(t, st, `{"policy":"required","factors":["otp","email","sms","recovery-code"]}`)
	return w, w.challenged(w.emailLogin(scenarioEmail))
}

// mfaEnrolled is an MFA world whose user has confirmed an authenticator app; it returns the
// app's secret and an access token of the session that did so.
func mfaEnrolled(t *testing.T, st *sqlstore.Store) (*mfaWorld, string, string) {
	w, tok := mfaScenarioWorld(t, st)
	enr := w.call("POST", mfaBase+"enroll", `{"authenticator_types":["otp"]}`, w.withToken(tok))
	w.want(enr, 200, "")
	secret := enr.body["secret"].(string)
	access := w.accessToken(w.validate(fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, tok, w.code(secret))))
	w.clock.Advance(30 * time.Second)
	return w, secret, access
}

// secondApp enrolls another authenticator app with the signed-in user's access token and
// returns the body that confirms it.
func secondApp(w *mfaWorld, access string) string {
	w.t.Helper()
	enr := w.call("POST", mfaBase+"enroll", `{"authenticator_types":["otp"]}`, userJSON(access))
	w.want(enr, 200, "")
	return fmt.Sprintf(`{"authenticator_id":%q,"otp":%q}`, enr.body["authenticator_id"], w.code(enr.body["secret"].(string)))
}

// passkeyRegistered is a passkey world whose user holds one passkey; it returns the
// registration's answer.
func passkeyRegistered(t *testing.T, st *sqlstore.Store) (*passkeyWorld, response) {
	w := newPasskeyWorld(t, st)
	opts := w.beginRegistration(w.token)
	auth, cred := newAuthenticator(opts, nil)
	r := w.register(w.token, opts, w.rp, auth, cred)
	w.want(r, 201, "")
	return w, r
}

func firstPasskeyID(w *passkeyWorld) string {
	w.t.Helper()
	list := w.call("GET", passkeyBase+"credentials", "", w.userAuth(w.token))
	w.want(list, 200, "")
	id := codeOrID(w.t, string(list.raw))
	return id
}

// codeOrID returns the first "id" in a JSON array of objects.
func codeOrID(t *testing.T, raw string) string {
	t.Helper()
	_, rest, ok := strings.Cut(raw, `"id":"`)
	id, _, _ := strings.Cut(rest, `"`)
	if !ok || id == "" {
		t.Fatalf("no id in %s", raw)
	}
	return id
}

// sendScenarios are a passwordless channel's send and resend routes and, for a code, its verify
// route; field names the destination in the body.
func sendScenarios(channel, field, dest string, code bool) []authScenario {
	base := "POST /api/v1/auth/passwordless/" + channel + "/"
	sent := func(t *testing.T, st *sqlstore.Store) (*flowWorld, string) {
		w := newFlowWorld(t, st, withDev)
		return w, w.sent(channel+"/send", field, dest)
	}
	out := []authScenario{
		{route: base + "send", status: 200, check: hasState,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				return pwlRoute(newFlowWorld(t, st, withDev), "POST", channel+"/send", fmt.Sprintf(`{%q:%q}`, field, dest))
			}},
		{route: base + "resend", status: 200,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w, state := sent(t, st)
				w.clock.Advance(31 * time.Second)
				return pwlRoute(w, "POST", channel+"/resend", `{"state":"`+state+`"}`)
			}},
	}
	if code {
		out = append(out, authScenario{route: base + "verify", status: 200, check: signedIn,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w, state := sent(t, st)
				return pwlRoute(w, "POST", channel+"/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, state, w.lastCode(dest)))
			}})
	}
	return out
}

func authScenarios() []authScenario {
	all := slices.Concat(sendScenarios("magic-link", "email", scenarioEmail, false), sendScenarios("email-otp", "email", scenarioEmail, true),
		sendScenarios("phone-otp", "phone_id", scenarioPhone, true))
	return append(all, []authScenario{
		// Passwordless: the rest.
		{route: "POST /api/v1/auth/passwordless/magic-otp/send", status: 200, check: hasState,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				return pwlRoute(newFlowWorld(t, st, withDev), "POST", "magic-otp/send", `{"email":"`+scenarioEmail+`"}`)
			}},
		{route: "GET /api/v1/auth/passwordless/magic-link/verify", status: 200, clientInQuery: true,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w := newFlowWorld(t, st, withDev)
				w.sent("magic-link/send", "email", scenarioEmail)
				link := linkRE.FindString(w.inbox(scenarioEmail)[0]["text"].(string))
				if link == "" {
					t.Fatal("no link in the message")
				}
				return authRequest{w: w.tokenWorld, method: "GET", path: strings.TrimPrefix(link, "http://auth.test")}
			},
			check: func(t *testing.T, req authRequest, r response) {
				if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
					t.Errorf("verify answered %s, want the HTML page", r.header.Get("Content-Type"))
				}
			}},
		{route: "GET /api/v1/auth/passwordless/magic-link/status", status: 200,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w := newFlowWorld(t, st, withDev)
				state := w.sent("magic-link/send", "email", scenarioEmail)
				return pwlRoute(w, "GET", "magic-link/status?state="+state, "")
			},
			check: func(t *testing.T, _ authRequest, r response) {
				if r.body["authenticated"] != false {
					t.Errorf("status before the click = %s", r.raw)
				}
			}},
		// Passkeys.
		{route: "GET /api/v1/auth/passwordless/passkey/register", guard: byUser, status: 200,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w := newPasskeyWorld(t, st)
				return authRequest{w: w.tokenWorld, method: "GET", path: passkeyBase + "register", header: w.userAuth(w.token)}
			},
			check: func(t *testing.T, _ authRequest, r response) {
				if r.body["auth_code"] == nil || r.body["publicKey"] == nil {
					t.Errorf("creation options = %s", r.raw)
				}
			}},
		{route: "POST /api/v1/auth/passwordless/passkey/register", guard: byUser, status: 201, badBody: "invalid_passkey_response",
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w := newPasskeyWorld(t, st)
				opts := w.beginRegistration(w.token)
				auth, cred := newAuthenticator(opts, nil)
				body := fmt.Sprintf(`{"auth_code":%q,"publicKey":%s}`, opts.body["auth_code"], attest(t, w.rp, auth, cred, opts))
				return authRequest{w: w.tokenWorld, method: "POST", path: passkeyBase + "register", body: body, header: w.userAuth(w.token)}
			}},
		{route: "GET /api/v1/auth/passwordless/passkey/login", status: 200,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w, _ := passkeyRegistered(t, st)
				return authRequest{w: w.tokenWorld, method: "GET", path: passkeyBase + "login?identifier=" + scenarioEmail, header: w.cid()}
			}},
		{route: "POST /api/v1/auth/passwordless/passkey/login", status: 200, check: signedIn, badBody: "invalid_passkey_response",
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w := newPasskeyWorld(t, st)
				opts := w.beginRegistration(w.token)
				auth, cred := newAuthenticator(opts, nil)
				w.want(w.register(w.token, opts, w.rp, auth, cred), 201, "")
				login := w.beginLogin(scenarioEmail)
				cred.Counter = 1
				return authRequest{w: w.tokenWorld, method: "POST", path: passkeyBase + "login?auth_code=" + login.body["auth_code"].(string),
					body: assertion(t, w.rp, auth, cred, login), header: w.cid()}
			}},
		{route: "GET /api/v1/auth/passwordless/passkey/status", status: 200,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w, _ := passkeyRegistered(t, st)
				return authRequest{w: w.tokenWorld, method: "GET", path: passkeyBase + "status?identifier=" + scenarioEmail, header: w.cid()}
			}},
		{route: "GET /api/v1/auth/passwordless/passkey/credentials", guard: byUser, status: 200,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w, _ := passkeyRegistered(t, st)
				return authRequest{w: w.tokenWorld, method: "GET", path: passkeyBase + "credentials", header: w.userAuth(w.token)}
			},
			check: func(t *testing.T, _ authRequest, r response) {
				if !strings.Contains(string(r.raw), `"credential_id"`) {
					t.Errorf("credentials = %s, want the user's one passkey", r.raw)
				}
			}},
		{route: "PATCH /api/v1/auth/passwordless/passkey/credentials/{id}", guard: byUser, status: 200,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w, _ := passkeyRegistered(t, st)
				return authRequest{w: w.tokenWorld, method: "PATCH", path: passkeyBase + "credentials/" + firstPasskeyID(w),
					body: `{"name":"Work laptop"}`, header: w.userAuth(w.token)}
			},
			check: func(t *testing.T, req authRequest, _ response) {
				list := req.w.call("GET", passkeyBase+"credentials", "", req.header)
				if !strings.Contains(string(list.raw), `"Name":"Work laptop"`) {
					t.Errorf("after rename: %s", list.raw)
				}
			}},
		{route: "DELETE /api/v1/auth/passwordless/passkey/credentials/{id}", guard: byUser, status: 200,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w, _ := passkeyRegistered(t, st)
				id := firstPasskeyID(w)
				// A second passkey, so that the first is not the user's only way in.
				opts := w.beginRegistration(w.token)
				auth, cred := newAuthenticator(opts, nil)
				w.want(w.register(w.token, opts, w.rp, auth, cred), 201, "")
				return authRequest{w: w.tokenWorld, method: "DELETE", path: passkeyBase + "credentials/" + id, header: w.userAuth(w.token)}
			},
			check: func(t *testing.T, req authRequest, _ response) {
				req.w.want(req.w.call("DELETE", req.path, "", req.header), 404, "passkey_not_found")
			}},

		// MFA.
		{route: "POST /api/v1/auth/mfa/token", guard: bySecret, status: 200,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w, _, _ := mfaEnrolled(t, st)
				return authRequest{w: w.tokenWorld, method: "POST", path: mfaBase + "token", body: `{"identifier":"` + scenarioEmail + `"}`,
					header: jsonHeader(w.secret())}
			},
			check: func(t *testing.T, _ authRequest, r response) {
				if tok, _ := r.body["mfa_token"].(string); !strings.HasPrefix(tok, "mfa_") {
					t.Errorf("mfa_token in %s", r.raw)
				}
			}},
		{route: "GET /api/v1/auth/mfa/authenticators", guard: byMFAToken, status: 200,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w, _, access := mfaEnrolled(t, st)
				return authRequest{w: w.tokenWorld, method: "GET", path: mfaBase + "authenticators", header: bearer(access)}
			},
			check: func(t *testing.T, _ authRequest, r response) {
				if !strings.Contains(string(r.raw), `"otp"`) {
					t.Errorf("authenticators = %s, want the app", r.raw)
				}
			}},
		{route: "DELETE /api/v1/auth/mfa/authenticators/{id}", guard: byUser, status: 200,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w, _, access := mfaEnrolled(t, st)
				// A second app, so that the first is not the last second factor.
				w.want(w.call("POST", mfaBase+"confirm", secondApp(w, access), userJSON(access)), 200, "")
				list := w.call("GET", mfaBase+"authenticators", "", bearer(access))
				return authRequest{w: w.tokenWorld, method: "DELETE", path: mfaBase + "authenticators/" + codeOrID(t, string(list.raw)), header: bearer(access)}
			}},
		{route: "POST /api/v1/auth/mfa/enroll", guard: byMFAToken, status: 200,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w, tok := mfaScenarioWorld(t, st)
				return authRequest{w: w.tokenWorld, method: "POST", path: mfaBase + "enroll", body: `{"authenticator_types":["otp"]}`, header: w.withToken(tok)}
			},
			check: func(t *testing.T, _ authRequest, r response) {
				if r.body["secret"] == nil || r.body["authenticator_id"] == nil {
					t.Errorf("enroll = %s", r.raw)
				}
			}},
		{route: "POST /api/v1/auth/mfa/confirm", guard: byUser, status: 200,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w, _, access := mfaEnrolled(t, st)
				return authRequest{w: w.tokenWorld, method: "POST", path: mfaBase + "confirm", header: userJSON(access), body: secondApp(w, access)}
			}},
		{route: "GET /api/v1/auth/mfa/qr-code", guard: byMFAToken, status: 200,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w, tok := mfaScenarioWorld(t, st)
				enr := w.call("POST", mfaBase+"enroll", `{"authenticator_types":["otp"]}`, w.withToken(tok))
				w.want(enr, 200, "")
				return authRequest{w: w.tokenWorld, method: "GET", path: mfaBase + "qr-code?authenticator_id=" + enr.body["authenticator_id"].(string),
					header: w.withToken(tok)}
			},
			check: func(t *testing.T, _ authRequest, r response) {
				if r.header.Get("Content-Type") != "image/png" {
					t.Errorf("qr-code Content-Type = %q", r.header.Get("Content-Type"))
				}
			}},
		{route: "POST /api/v1/auth/mfa/initiate", status: 200,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				// A step the application's back end starts may be answered by the email that
				// signed the user in before.
				w, _, _ := mfaEnrolled(t, st)
				tok := w.serverToken(scenarioEmail)
				return authRequest{w: w.tokenWorld, method: "POST", path: mfaBase + "initiate", header: w.cid(),
					body: fmt.Sprintf(`{"mfa_token":%q,"authenticator_type":"oob","oob_channels":["email"]}`, tok)}
			},
			check: func(t *testing.T, _ authRequest, r response) {
				if r.body["oob_code"] == nil {
					t.Errorf("initiate = %s, want an oob_code", r.raw)
				}
			}},
		{route: "POST /api/v1/auth/mfa/validate", status: 200, check: signedIn,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w, secret, _ := mfaEnrolled(t, st)
				tok := w.challenged(w.emailLogin(scenarioEmail))
				return authRequest{w: w.tokenWorld, method: "POST", path: mfaBase + "validate", header: w.cid(),
					body: fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, tok, w.code(secret))}
			}},
		{route: "GET /api/v1/auth/mfa/backupcode", guard: byUser, status: 200,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w, _, access := mfaEnrolled(t, st)
				return authRequest{w: w.tokenWorld, method: "GET", path: mfaBase + "backupcode", header: bearer(access)}
			}},

		// Passwords.
		{route: "POST /api/v1/auth/password/signup", status: 200, check: signedIn,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w := newPasswordWorld(t, st)
				return authRequest{w: w.tokenWorld, method: "POST", path: passwordBase + "signup", header: w.cid(),
					body: fmt.Sprintf(`{"email":%q,"password":%q}`, scenarioEmail, goodPassword)}
			}},
		{route: "POST /api/v1/auth/password/login", status: 200, check: signedIn,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w := newPasswordWorld(t, st)
				w.want(w.pw("signup", fmt.Sprintf(`{"email":%q,"password":%q}`, scenarioEmail, goodPassword)), 200, "")
				return authRequest{w: w.tokenWorld, method: "POST", path: passwordBase + "login", header: w.cid(),
					body: fmt.Sprintf(`{"email":%q,"password":%q}`, scenarioEmail, goodPassword)}
			}},
		{route: "POST /api/v1/auth/password/reset/send", status: 200,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w := newPasswordWorld(t, st)
				w.want(w.pw("signup", fmt.Sprintf(`{"email":%q,"password":%q}`, scenarioEmail, goodPassword)), 200, "")
				return authRequest{w: w.tokenWorld, method: "POST", path: passwordBase + "reset/send", header: w.cid(),
					body: fmt.Sprintf(`{"email":%q,"redirect_url":"https://app.acme.test/done"}`, scenarioEmail)}
			}},
		{route: "POST /api/v1/auth/password/reset/verify", status: 200,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w := newPasswordWorld(t, st)
				w.want(w.pw("signup", fmt.Sprintf(`{"email":%q,"password":%q}`, scenarioEmail, goodPassword)), 200, "")
				w.want(w.pw("reset/send", fmt.Sprintf(`{"email":%q,"redirect_url":"https://app.acme.test/done"}`, scenarioEmail)), 200, "")
				link := resetLinkRE.FindString(w.inbox(scenarioEmail)[0]["text"].(string))
				u, err := url.Parse(link)
				if err != nil || link == "" {
					t.Fatalf("no reset link: %q", link)
				}
				return authRequest{w: w.tokenWorld, method: "POST", path: passwordBase + "reset/verify", header: w.cid(),
					body: fmt.Sprintf(`{"token":%q,"password":"a different long passphrase"}`, u.Query().Get("token"))}
			}},
		{route: "POST /api/v1/auth/password/change", guard: byUser, status: 200,
			start: func(t *testing.T, st *sqlstore.Store) authRequest {
				w := newPasswordWorld(t, st)
				r := w.pw("signup", fmt.Sprintf(`{"email":%q,"password":%q}`, scenarioEmail, goodPassword))
				w.want(r, 200, "")
				return authRequest{w: w.tokenWorld, method: "POST", path: passwordBase + "change", header: userJSON(r.body["access_token"].(string)),
					body: fmt.Sprintf(`{"current_password":%q,"new_password":"a different long passphrase"}`, goodPassword)}
			}},
	}...)
}

func TestAuthScenarios(t *testing.T) {
	for _, s := range authScenarios() {
		t.Run(s.route, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
				runAuthScenario(t, st, s)
			})
		})
	}
}

func runAuthScenario(t *testing.T, st *sqlstore.Store, s authScenario) {
	req := s.start(t, st)
	w := req.w
	type refusal struct {
		name       string
		path, body string
		header     map[string]string
		status     int
		code       string
	}
	with := func(change func(h map[string]string)) map[string]string {
		h := map[string]string{}
		for k, v := range req.header {
			h[k] = v
		}
		change(h)
		return h
	}
	var refusals []refusal
	unknownClient := "cli_" + strings.Repeat("0", 24)
	switch {
	case s.clientInQuery:
		u, err := url.Parse(req.path)
		if err != nil {
			t.Fatal(err)
		}
		withClient := func(id string) string {
			q := u.Query()
			if id == "" {
				q.Del("client_id")
			} else {
				q.Set("client_id", id)
			}
			return u.Path + "?" + q.Encode()
		}
		refusals = append(refusals,
			refusal{name: "no client id", path: withClient(""), header: req.header, status: 400, code: "missing_client_id"},
			refusal{name: "unknown client id", path: withClient(unknownClient), header: req.header, status: 401, code: "invalid_client"},
			refusal{name: "mismatched client ids", path: req.path, header: with(func(h map[string]string) { h["X-Client-Id"] = unknownClient }),
				status: 400, code: "client_id_mismatch"})
	case s.guard == byClientID:
		refusals = append(refusals,
			refusal{name: "no client id", path: req.path, body: req.body, header: with(func(h map[string]string) { delete(h, "X-Client-Id") }),
				status: 400, code: "missing_client_id"},
			refusal{name: "unknown client id", path: req.path, body: req.body,
				header: with(func(h map[string]string) { h["X-Client-Id"] = unknownClient }), status: 401, code: "invalid_client"},
			refusal{name: "mismatched client ids", path: req.path + sep(req.path) + "client_id=" + unknownClient, body: req.body,
				header: req.header, status: 400, code: "client_id_mismatch"})
	case s.guard == byUser || s.guard == byMFAToken:
		refusals = append(refusals,
			refusal{name: "no token", path: req.path, body: req.body, header: with(func(h map[string]string) { delete(h, "Authorization") }), status: 401, code: "missing_token"},
			refusal{name: "a token that is not one", path: req.path, body: req.body,
				header: with(func(h map[string]string) { h["Authorization"] = "Bearer not-a-token" }), status: 401, code: "invalid_token"})
	case s.guard == bySecret:
		refusals = append(refusals,
			refusal{name: "no secret", path: req.path, body: req.body, header: with(func(h map[string]string) { delete(h, "X-Client-Secret") }), status: 401, code: "missing_credentials"},
			refusal{name: "wrong secret", path: req.path, body: req.body,
				header: with(func(h map[string]string) { h["X-Client-Secret"] = "sk_" + strings.Repeat("x", 43) }), status: 401, code: "invalid_client"})
	}
	badBody := s.badBody
	if badBody == "" {
		badBody = "invalid_request"
	}
	if req.body != "" {
		refusals = append(refusals,
			refusal{name: "malformed JSON", path: req.path, body: `{"x":`, header: req.header, status: 400, code: badBody},
			refusal{name: "not an object", path: req.path, body: `[1,2]`, header: req.header, status: 400, code: badBody},
			refusal{name: "trailing data", path: req.path, body: req.body + ` {}`, header: req.header, status: 400, code: badBody},
			refusal{name: "oversized body", path: req.path, body: req.body + strings.Repeat(" ", httpserver.MaxBodyBytes), header: req.header, status: 413, code: "request_too_large"})
	}
	for _, rf := range refusals {
		r := w.call(req.method, rf.path, rf.body, rf.header)
		if code, _ := errorOf(r.status, r.body); r.status != rf.status || code != rf.code {
			t.Errorf("%s: %s %s = %d %s, want %d %s; body %.300s", rf.name, req.method, rf.path, r.status, code, rf.status, rf.code, r.raw)
		}
	}
	r := w.call(req.method, req.path, req.body, req.header)
	if r.status != s.status {
		t.Fatalf("%s %s = %d %.500s, want %d", req.method, req.path, r.status, r.raw, s.status)
	}
	if s.check != nil {
		s.check(t, req, r)
	}
}
