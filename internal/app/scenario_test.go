package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// The scenario tests drive every management route through the whole server (router,
// authentication, handlers, services, a real database) on SQLite and PostgreSQL. Each route gets
// the same battery: success; no secret, a wrong secret and another project's secret; another
// project's credentials on this project's ids; malformed, mistyped and oversized bodies; an unknown
// id; and the route's own invalid-email and conflict cases. Every failure asserts the exact status
// and error_code, and that it changed nothing.

// credentials are one project's client id and secret.
type credentials struct{ clientID, secret string }

// world is one running server with two projects: A, whose data the scenarios act on, and B, the
// other tenant.
type world struct {
	t    *testing.T
	srv  *httptest.Server
	st   store.Store // for what no management route makes, such as passkeys
	aID  string      // project A's id
	a, b credentials
	seq  *int // fixtures made so far; shared by every copy from with
}

// fixture is a fresh set of entities in project A, made for one scenario so that scenarios never
// see each other's changes.
type fixture struct {
	user, user2, org, role, perm string
	email, email2                string // the users' emails
	roleSlug, permSlug           string
	roleSlug2, permSlug2         string // slugs of a second role and permission
}

// failCase is a request that must fail with exactly this status, error_code and (when set) field.
type failCase struct {
	name   string
	path   string
	body   string
	status int
	code   string
	field  string
}

// scenario describes one route. path and body build a successful request from a fixture; check
// (optional) asserts what that request did.
type scenario struct {
	route  string
	status int
	path   func(f fixture) string
	body   func(f fixture) string
	check  func(w *world, f fixture, got any)
	// notFound is the error_code for an unknown id in the path; "" for routes without one.
	notFound string
	// typedField is a body field that, sent with the wrong JSON type, must be named in the 400.
	typedField string
	// extra lists the route's own failures: invalid email, conflicts, bad settings.
	extra func(f fixture) []failCase
	// prepare (optional) adds to the fixture what the route needs and no management route
	// makes, before any request is sent.
	prepare func(w *world, f fixture)
}

func scenarios() []scenario {
	noBody := func(fixture) string { return "" }
	return []scenario{
		// Users.
		{
			route: "GET /api/v1/users", status: 200,
			path: func(f fixture) string { return "/api/v1/users?limit=100&email=" + strings.ToUpper(f.email) },
			body: noBody,
			check: func(w *world, f fixture, got any) {
				users := field[[]any](w.t, got, "users")
				if len(users) != 1 || field[string](w.t, users[0], "id") != f.user {
					w.t.Errorf("filter by email %s = %v, want only user %s", f.email, users, f.user)
				}
			},
			extra: func(f fixture) []failCase {
				return []failCase{
					{"invalid email filter", "/api/v1/users?email=not-an-email", "", 400, "invalid_email", "email"},
					{"limit over 100", "/api/v1/users?limit=101", "", 400, "invalid_limit", "limit"},
					{"bad cursor", "/api/v1/users?cursor=%21", "", 400, "invalid_cursor", "cursor"},
				}
			},
		},
		{
			route: "POST /api/v1/users", status: 201,
			path: func(fixture) string { return "/api/v1/users" },
			body: func(f fixture) string {
				return `{"email":"  New.` + f.email + ` ","first_name":"Nia","phone_id":"+1 415 555 0100"}`
			},
			check: func(w *world, f fixture, got any) {
				id := field[string](w.t, got, "id")
				user := w.okJSON("GET", "/api/v1/users/"+id, "")
				if e := field[string](w.t, user, "email"); e != "New."+f.email {
					w.t.Errorf("stored email = %q, want the trimmed %q", e, "New."+f.email)
				}
				if p := field[string](w.t, user, "phone_id"); p != "+14155550100" {
					w.t.Errorf("stored phone = %q, want E.164", p)
				}
			},
			typedField: "email",
			extra: func(f fixture) []failCase {
				return []failCase{
					{"invalid email", "/api/v1/users", `{"email":"ann@"}`, 400, "invalid_email", "email"},
					{"invalid phone", "/api/v1/users", `{"email":"p` + f.email + `","phone_id":"12"}`, 400, "invalid_phone", "phone_id"},
					{"duplicate email", "/api/v1/users", `{"email":"` + strings.ToUpper(f.email[:1]) + f.email[1:] + `"}`, 409, "email_exists", "email"},
				}
			},
		},
		{
			route: "GET /api/v1/users/{id}", status: 200,
			path: func(f fixture) string { return "/api/v1/users/" + f.user }, body: noBody,
			check: func(w *world, f fixture, got any) {
				if e := field[string](w.t, got, "email"); e != f.email {
					w.t.Errorf("email = %q, want %q", e, f.email)
				}
			},
			notFound: "user_not_found",
		},
		{
			route: "PUT /api/v1/users/{id}", status: 200,
			path: func(f fixture) string { return "/api/v1/users/" + f.user },
			body: func(fixture) string { return `{"last_name":"Park"}` },
			check: func(w *world, f fixture, _ any) {
				user := w.okJSON("GET", "/api/v1/users/"+f.user, "")
				if field[string](w.t, user, "last_name") != "Park" || field[string](w.t, user, "email") != f.email {
					w.t.Errorf("after PUT user = %v", user)
				}
			},
			notFound: "user_not_found", typedField: "last_name",
			extra: func(f fixture) []failCase {
				return []failCase{
					{"invalid email", "/api/v1/users/" + f.user, `{"email":"a b@example.com"}`, 400, "invalid_email", "email"},
					{"email of another user", "/api/v1/users/" + f.user, `{"email":"` + f.email2 + `"}`, 409, "email_exists", "email"},
				}
			},
		},
		{
			route: "DELETE /api/v1/users/{id}", status: 200,
			path: func(f fixture) string { return "/api/v1/users/" + f.user }, body: noBody,
			check: func(w *world, f fixture, _ any) {
				w.fails("GET", "/api/v1/users/"+f.user, "", 404, "user_not_found")
				members := field[[]any](w.t, w.okJSON("GET", "/api/v1/organization/"+f.org+"/users", ""), "users")
				if len(members) != 1 {
					w.t.Errorf("members after deleting one of two = %v", members)
				}
			},
			notFound: "user_not_found",
		},
		{
			route: "GET /api/v1/users/{email}/email", status: 200,
			path: func(f fixture) string { return "/api/v1/users/" + strings.ToUpper(f.email) + "/email" }, body: noBody,
			check: func(w *world, f fixture, got any) {
				if id := field[string](w.t, got, "id"); id != f.user {
					w.t.Errorf("by email = %s, want %s", id, f.user)
				}
			},
			extra: func(f fixture) []failCase {
				return []failCase{
					{"invalid email", "/api/v1/users/not-an-email/email", "", 400, "invalid_email", "email"},
					{"unknown email", "/api/v1/users/nobody-" + f.email + "/email", "", 404, "user_not_found", ""},
				}
			},
		},
		{
			route: "POST /api/v1/users/{id}/verify", status: 200,
			path: func(f fixture) string { return "/api/v1/users/" + f.user + "/verify" },
			body: func(fixture) string { return `{"verification_status":"true"}` },
			check: func(w *world, f fixture, _ any) {
				if !field[bool](w.t, w.okJSON("GET", "/api/v1/users/"+f.user, ""), "email_verified") {
					w.t.Error("email_verified is still false")
				}
			},
			notFound: "user_not_found", typedField: "verification_status",
			extra: func(f fixture) []failCase {
				return []failCase{{"not a boolean", "/api/v1/users/" + f.user + "/verify", `{"verification_status":"yes"}`, 400, "invalid_request", "verification_status"}}
			},
		},
		{
			route: "PUT /api/v1/users/{id}/roles", status: 200,
			path: func(f fixture) string { return "/api/v1/users/" + f.user + "/roles" },
			body: func(f fixture) string { return `{"organization_id":"` + f.org + `","role_id":["` + f.role + `"]}` },
			check: func(w *world, f fixture, _ any) {
				orgs := w.okJSON("GET", "/api/v1/users/"+f.user+"/organizations", "")
				if !strings.Contains(mustJSON(w.t, orgs), f.role) {
					w.t.Errorf("the user's organizations do not show role %s: %v", f.role, orgs)
				}
			},
			notFound: "user_not_found", typedField: "role_id",
			extra: func(f fixture) []failCase {
				return []failCase{
					{"unknown role", "/api/v1/users/" + f.user + "/roles", `{"organization_id":"` + f.org + `","role_id":["` + ident.NewGenerator().New() + `"]}`, 404, "role_not_found", "role_id"},
					{"unknown organization", "/api/v1/users/" + f.user + "/roles", `{"organization_id":"` + ident.NewGenerator().New() + `","role_id":[]}`, 404, "organization_not_found", "organization_id"},
				}
			},
		},
		{
			route: "GET /api/v1/users/{id}/loginlogs", status: 200,
			path: func(f fixture) string { return "/api/v1/users/" + f.user + "/loginlogs" }, body: noBody,
			check: func(w *world, _ fixture, got any) {
				if logs := field[[]any](w.t, got, "login_logs"); len(logs) != 0 {
					w.t.Errorf("login logs of a user who never logged in = %v", logs)
				}
			},
			notFound: "user_not_found",
		},
		{
			route: "GET /api/v1/users/{id}/organizations", status: 200,
			path: func(f fixture) string { return "/api/v1/users/" + f.user + "/organizations" }, body: noBody,
			check:    expectOrg,
			notFound: "user_not_found",
		},
		{
			route: "GET /api/account/identity/users/{id}/organizations", status: 200,
			path: func(f fixture) string { return "/api/account/identity/users/" + f.user + "/organizations" }, body: noBody,
			check:    expectOrg,
			notFound: "user_not_found",
		},

		{
			route: "GET /api/v1/users/{id}/sessions", status: 200,
			path: func(f fixture) string { return "/api/v1/users/" + f.user + "/sessions" }, body: noBody,
			check: func(w *world, _ fixture, got any) {
				if ss := field[[]any](w.t, got, "sessions"); len(ss) != 0 {
					w.t.Errorf("sessions of a user who never logged in = %v", ss)
				}
			},
			notFound: "user_not_found",
		},
		{
			route: "DELETE /api/v1/users/{id}/sessions", status: 200,
			path: func(f fixture) string { return "/api/v1/users/" + f.user + "/sessions" }, body: noBody,
			check: func(w *world, _ fixture, got any) {
				if n := field[float64](w.t, got, "revoked"); n != 0 {
					w.t.Errorf("revoked = %v, want 0 for a user without sessions", n)
				}
			},
			notFound: "user_not_found",
		},

		// Passkeys: registering one takes a browser (passkey_test.go), so the fixture's are stored
		// directly.
		{
			route: "GET /api/v1/users/{id}/passkeys", status: 200,
			path: func(f fixture) string { return "/api/v1/users/" + f.user + "/passkeys" }, body: noBody,
			prepare: addPasskeys,
			check: func(w *world, f fixture, got any) {
				list, ok := got.([]any)
				if !ok || len(list) != 2 {
					w.t.Fatalf("passkeys = %v, want the user's 2 as an array", got)
				}
				first := list[0]
				if field[string](w.t, first, "Name") != "iCloud Keychain" || field[string](w.t, list[1], "Name") != "YubiKey" {
					w.t.Errorf("passkeys not oldest first: %v", got)
				}
				if field[float64](w.t, first, "SignCount") != 7 || field[string](w.t, first, "aaguid") != "fbfc3007-154e-4ecc-8c0b-6e020557d7bd" ||
					field[string](w.t, first, "credential_id") != base64.RawURLEncoding.EncodeToString([]byte("first credential of "+f.user)) ||
					field[bool](w.t, first, "clone_suspected") ||
					!field[bool](w.t, first, "backup_eligible") || field[string](w.t, first, "attestation_type") != "none" {
					w.t.Errorf("first passkey = %v", first)
				}
				for _, k := range []string{"id", "LastUsedAt", "CreatedAt", "UpdatedAt", "public_key", "transports", "backup_state"} {
					if _, ok := first.(map[string]any)[k]; !ok {
						w.t.Errorf("passkey lacks %q: %v", k, first)
					}
				}
				// A user without passkeys has an empty list, not null.
				if other := w.okJSON("GET", "/api/v1/users/"+f.user2+"/passkeys", ""); mustJSON(w.t, other) != "[]" {
					w.t.Errorf("passkeys of a user without any = %s, want []", mustJSON(w.t, other))
				}
			},
			notFound: "user_not_found",
		},
		{
			route: "DELETE /api/v1/users/{id}/passkeys", status: 200,
			path: func(f fixture) string { return "/api/v1/users/" + f.user + "/passkeys" }, body: noBody,
			prepare: addPasskeys,
			check: func(w *world, f fixture, got any) {
				if field[string](w.t, got, "status") != "success" || field[string](w.t, got, "message") == "" ||
					field[float64](w.t, got, "deleted") != 2 {
					w.t.Errorf("DELETE passkeys = %v, want success with deleted 2", got)
				}
				if left := w.okJSON("GET", "/api/v1/users/"+f.user+"/passkeys", ""); mustJSON(w.t, left) != "[]" {
					w.t.Errorf("passkeys after DELETE = %s", mustJSON(w.t, left))
				}
				again := w.okJSON("DELETE", "/api/v1/users/"+f.user+"/passkeys", "")
				if field[float64](w.t, again, "deleted") != 0 {
					w.t.Errorf("second DELETE = %v, want deleted 0", again)
				}
			},
			notFound: "user_not_found",
		},

		// Passwords: the management API sets one, or imports a hash.
		{
			route: "PUT /api/v1/users/{id}/password", status: 200,
			path: func(f fixture) string { return "/api/v1/users/" + f.user + "/password" },
			body: func(fixture) string { return `{"password":"a fine long passphrase"}` },
			check: func(w *world, f fixture, got any) {
				hash, err := w.st.GetPasswordHash(context.Background(), w.aID, f.user)
				if err != nil || !strings.HasPrefix(hash, "$argon2id$") || strings.Contains(hash, "passphrase") {
					w.t.Errorf("stored password = %q, %v; want an argon2id hash", hash, err)
				}
			},
			notFound:   "user_not_found",
			typedField: "password",
			extra: func(f fixture) []failCase {
				path := "/api/v1/users/" + f.user + "/password"
				return []failCase{
					{"neither password nor hash", path, `{}`, 400, "invalid_request", ""},
					{"both password and hash", path, `{"password":"a fine long passphrase","password_hash":"$2b$10$x"}`, 400, "invalid_request", ""},
					{"common password", path, `{"password":"password123"}`, 400, "password_breached", "password"},
					{"short password", path, `{"password":"short"}`, 400, "password_too_short", "password"},
					{"unusable hash", path, `{"password_hash":"md5:5f4dcc3b5aa765d61d8327deb882cf99"}`, 400, "invalid_password_hash", "password_hash"},
				}
			},
		},

		// MFA: enrolling takes an authenticator app (mfa_test.go), so the fixture's factors are
		// stored directly.
		{
			route: "GET /api/v1/users/{id}/mfa", status: 200,
			path: func(f fixture) string { return "/api/v1/users/" + f.user + "/mfa" }, body: noBody,
			prepare: addMFA,
			check: func(w *world, f fixture, got any) {
				list := field[[]any](w.t, got, "authenticators")
				if field[string](w.t, got, "user_id") != f.user || len(list) != 2 ||
					field[string](w.t, list[0], "authenticator_type") != "otp" || !field[bool](w.t, list[0], "active") ||
					field[string](w.t, list[1], "authenticator_type") != "recovery-code" ||
					field[string](w.t, list[1], "name") != "2 recovery codes left" {
					w.t.Errorf("MFA of the user = %v, want an active otp and 2 recovery codes", got)
				}
				other := w.okJSON("GET", "/api/v1/users/"+f.user2+"/mfa", "")
				if mustJSON(w.t, field[[]any](w.t, other, "authenticators")) != "[]" {
					w.t.Errorf("MFA of a user without factors = %v, want []", other)
				}
			},
			notFound: "user_not_found",
		},
		{
			route: "DELETE /api/v1/users/{id}/mfa", status: 200,
			path: func(f fixture) string { return "/api/v1/users/" + f.user + "/mfa" }, body: noBody,
			prepare: addMFA,
			check: func(w *world, f fixture, got any) {
				if field[string](w.t, got, "status") != "success" || field[float64](w.t, got, "deleted") != 1 {
					w.t.Errorf("DELETE mfa = %v, want success with deleted 1", got)
				}
				left := w.okJSON("GET", "/api/v1/users/"+f.user+"/mfa", "")
				if mustJSON(w.t, field[[]any](w.t, left, "authenticators")) != "[]" {
					w.t.Errorf("MFA after a reset = %v, want none", left)
				}
				events, err := w.st.ListAuditEvents(context.Background(), w.aID, store.AuditFilter{Type: "mfa.reset", UserID: f.user}, 10, "")
				if err != nil || len(events) != 1 {
					w.t.Errorf("mfa.reset audit events = %v, %v; want 1", events, err)
				}
			},
			notFound: "user_not_found",
		},

		// Organizations.
		{
			route: "POST /api/v1/organization", status: 201,
			path: func(fixture) string { return "/api/v1/organization" },
			body: func(fixture) string {
				return `{"name":"Globex","WhiteListDomains":["Globex.COM"],"mfa_policy":" Required "}`
			},
			check: func(w *world, _ fixture, got any) {
				org := w.okJSON("GET", "/api/v1/organization/"+field[string](w.t, got, "id"), "")
				if !strings.Contains(mustJSON(w.t, org), `"globex.com"`) {
					w.t.Errorf("stored organization = %v, want the domain lower-cased", org)
				}
				if p := field[string](w.t, org, "mfa_policy"); p != "required" {
					w.t.Errorf("stored mfa_policy = %q, want the trimmed, lower-cased \"required\"", p)
				}
			},
			typedField: "name",
			extra: func(fixture) []failCase {
				return []failCase{
					{"invalid domain", "/api/v1/organization", `{"name":"X","WhiteListDomains":["not a domain"]}`, 400, "invalid_domain", "WhiteListDomains[0]"},
					{"no name", "/api/v1/organization", `{}`, 400, "invalid_request", "name"},
					{"invalid mfa_policy", "/api/v1/organization", `{"name":"X","mfa_policy":"sometimes"}`, 400, "invalid_request", "mfa_policy"},
				}
			},
		},
		{
			route: "GET /api/v1/organization/{id}", status: 200, path: func(f fixture) string { return "/api/v1/organization/" + f.org }, body: noBody,
			check: func(w *world, f fixture, got any) {
				expectID(func(f fixture) string { return f.org })(w, f, got)
				// An organization made without one follows the project's policy.
				if p := field[string](w.t, got, "mfa_policy"); p != "inherit" {
					w.t.Errorf("mfa_policy = %q, want inherit", p)
				}
			},
			notFound: "organization_not_found",
		},
		{
			route: "PUT /api/v1/organization/{id}", status: 200,
			path: func(f fixture) string { return "/api/v1/organization/" + f.org },
			body: func(fixture) string {
				return `{"name":"Renamed","allow_profiles_outside_organization":true,"mfa_policy":"optional"}`
			},
			check: func(w *world, f fixture, got any) {
				expectOrgName("Renamed")(w, f, got)
				expectOrgMFAPolicy(w, f, "optional")
				// Setting it back to inherit (in any case) round-trips too.
				w.okJSON("PUT", "/api/v1/organization/"+f.org, `{"mfa_policy":"INHERIT"}`)
				expectOrgMFAPolicy(w, f, "inherit")
			},
			notFound: "organization_not_found", typedField: "allow_profiles_outside_organization",
			extra: func(f fixture) []failCase {
				return []failCase{
					{"invalid domain", "/api/v1/organization/" + f.org, `{"WhiteListDomains":["-bad-.com"]}`, 400, "invalid_domain", "WhiteListDomains[0]"},
					{"invalid mfa_policy", "/api/v1/organization/" + f.org, `{"name":"Not Renamed","mfa_policy":"always"}`, 400, "invalid_request", "mfa_policy"},
					{"mfa_policy not a string", "/api/v1/organization/" + f.org, `{"mfa_policy":true}`, 400, "invalid_request", "mfa_policy"},
				}
			},
		},
		{
			route: "PUT /api/account/organization/{id}", status: 200,
			path:     func(f fixture) string { return "/api/account/organization/" + f.org },
			body:     func(fixture) string { return `{"Name":"Renamed Again"}` },
			check:    expectOrgName("Renamed Again"),
			notFound: "organization_not_found", typedField: "Name",
		},
		{
			route: "DELETE /api/v1/organization/{id}", status: 200,
			path: func(f fixture) string { return "/api/v1/organization/" + f.org }, body: noBody,
			check: func(w *world, f fixture, _ any) {
				w.fails("GET", "/api/v1/organization/"+f.org, "", 404, "organization_not_found")
				if orgs := field[[]any](w.t, w.okJSON("GET", "/api/v1/users/"+f.user+"/organizations", ""), "organizations"); len(orgs) != 0 {
					w.t.Errorf("user still in deleted organization: %v", orgs)
				}
			},
			notFound: "organization_not_found",
		},
		{
			route: "GET /api/v1/organizations", status: 200,
			path: func(fixture) string { return "/api/v1/organizations?limit=100" }, body: noBody,
			extra: func(fixture) []failCase {
				return []failCase{{"limit zero", "/api/v1/organizations?limit=0", "", 400, "invalid_limit", "limit"}}
			},
		},
		{
			route: "GET /api/v1/organization/{id}/users", status: 200,
			path: func(f fixture) string { return "/api/v1/organization/" + f.org + "/users" }, body: noBody,
			check: func(w *world, f fixture, got any) {
				if users := field[[]any](w.t, got, "users"); len(users) != 2 {
					w.t.Errorf("members = %v, want the fixture's two users", users)
				}
			},
			notFound: "organization_not_found",
		},
		{
			route: "POST /api/v1/organization/{id}/users", status: 200,
			path: func(f fixture) string { return "/api/v1/organization/" + f.org + "/users" }, body: func(f fixture) string { return `{"user_ids":["` + f.user + `"]}` },
			check: func(w *world, f fixture, _ any) {
				// Adding a member twice is idempotent.
				if users := field[[]any](w.t, w.okJSON("GET", "/api/v1/organization/"+f.org+"/users", ""), "users"); len(users) != 2 {
					w.t.Errorf("members after re-adding one = %v", users)
				}
			},
			notFound: "organization_not_found", typedField: "user_ids",
			extra: func(f fixture) []failCase {
				return []failCase{
					{"unknown user", "/api/v1/organization/" + f.org + "/users", `{"user_ids":["` + ident.NewGenerator().New() + `"]}`, 404, "user_not_found", "user_ids"},
					{"no users", "/api/v1/organization/" + f.org + "/users", `{"user_ids":[]}`, 400, "invalid_request", "user_ids"},
				}
			},
		},
		{
			route: "DELETE /api/v1/organization/{id}/users", status: 200,
			path: func(f fixture) string { return "/api/v1/organization/" + f.org + "/users" },
			body: func(f fixture) string { return `{"user_ids":["` + f.user + `"]}` },
			check: func(w *world, f fixture, _ any) {
				if users := field[[]any](w.t, w.okJSON("GET", "/api/v1/organization/"+f.org+"/users", ""), "users"); len(users) != 1 {
					w.t.Errorf("members after removing one of two = %v", users)
				}
			},
			notFound: "organization_not_found", typedField: "user_ids",
		},

		// Roles and permissions.
		{
			route: "GET /api/v1/roles", status: 200,
			path: func(fixture) string { return "/api/v1/roles?limit=100" }, body: noBody,
			check: func(w *world, _ fixture, got any) {
				text := mustJSON(w.t, got)
				for _, slug := range []string{`"owner"`, `"admin"`, `"developer"`} {
					if !strings.Contains(text, slug) {
						w.t.Errorf("seeded role %s missing from %s", slug, text)
					}
				}
			},
		},
		{
			route: "POST /api/v1/roles", status: 201,
			path: func(fixture) string { return "/api/v1/roles" }, body: func(f fixture) string { return `{"name":"Auditor","permission_id":["` + f.perm + `"]}` },
			check: func(w *world, f fixture, got any) {
				role := w.okJSON("GET", "/api/v1/roles/"+field[string](w.t, got, "id"), "")
				if field[string](w.t, role, "slug") != "auditor" || !strings.Contains(mustJSON(w.t, role), f.perm) {
					w.t.Errorf("stored role = %v", role)
				}
			},
			typedField: "permission_id",
			extra: func(f fixture) []failCase {
				return []failCase{
					{"duplicate slug", "/api/v1/roles", `{"name":"Copy","slug":"` + f.roleSlug + `"}`, 409, "slug_exists", "slug"},
					{"unknown permission", "/api/v1/roles", `{"name":"X","permission_id":["` + ident.NewGenerator().New() + `"]}`, 404, "permission_not_found", "permission_id"},
				}
			},
		},
		{
			route: "GET /api/v1/roles/{id}", status: 200, path: func(f fixture) string { return "/api/v1/roles/" + f.role }, body: noBody,
			check:    expectID(func(f fixture) string { return f.role }),
			notFound: "role_not_found",
		},
		{
			route: "PUT /api/v1/roles/{id}", status: 200, path: func(f fixture) string { return "/api/v1/roles/" + f.role },
			body:     func(fixture) string { return `{"description":"changed"}` },
			check:    expectDescription(func(f fixture) string { return "/api/v1/roles/" + f.role }),
			notFound: "role_not_found", typedField: "description",
			extra: func(f fixture) []failCase {
				return []failCase{{"slug of another role", "/api/v1/roles/" + f.role, `{"slug":"` + f.roleSlug2 + `"}`, 409, "slug_exists", "slug"}}
			},
		},
		{
			route: "DELETE /api/v1/roles/{id}", status: 200,
			path: func(f fixture) string { return "/api/v1/roles/" + f.role }, body: noBody,
			check: func(w *world, f fixture, _ any) {
				w.fails("GET", "/api/v1/roles/"+f.role, "", 404, "role_not_found")
			},
			notFound: "role_not_found",
		},
		{
			route: "GET /api/v1/permissions", status: 200,
			path: func(fixture) string { return "/api/v1/permissions" }, body: noBody,
		},
		{
			route: "POST /api/v1/permissions", status: 201,
			path: func(fixture) string { return "/api/v1/permissions" }, body: func(fixture) string { return `{"name":"Export Reports"}` },
			check: func(w *world, _ fixture, got any) {
				perm := w.okJSON("GET", "/api/v1/permissions/"+field[string](w.t, got, "id"), "")
				if field[string](w.t, perm, "slug") != "export-reports" {
					w.t.Errorf("stored permission = %v", perm)
				}
			},
			typedField: "name",
			extra: func(f fixture) []failCase {
				return []failCase{{"duplicate slug", "/api/v1/permissions", `{"name":"Copy","slug":"` + f.permSlug + `"}`, 409, "slug_exists", "slug"}}
			},
		},
		{
			route: "GET /api/v1/permissions/{id}", status: 200, path: func(f fixture) string { return "/api/v1/permissions/" + f.perm }, body: noBody,
			check:    expectID(func(f fixture) string { return f.perm }),
			notFound: "permission_not_found",
		},
		{
			route: "PUT /api/v1/permissions/{id}", status: 200, path: func(f fixture) string { return "/api/v1/permissions/" + f.perm },
			body:     func(fixture) string { return `{"description":"changed"}` },
			check:    expectDescription(func(f fixture) string { return "/api/v1/permissions/" + f.perm }),
			notFound: "permission_not_found", typedField: "description",
			extra: func(f fixture) []failCase {
				return []failCase{{"slug of another permission", "/api/v1/permissions/" + f.perm, `{"slug":"` + f.permSlug2 + `"}`, 409, "slug_exists", "slug"}}
			},
		},
		{
			route: "DELETE /api/v1/permissions/{id}", status: 200,
			path: func(f fixture) string { return "/api/v1/permissions/" + f.perm }, body: noBody,
			check: func(w *world, f fixture, _ any) {
				if strings.Contains(mustJSON(w.t, w.okJSON("GET", "/api/v1/roles/"+f.role, "")), f.perm) {
					w.t.Error("the deleted permission is still on its role")
				}
			},
			notFound: "permission_not_found",
		},

		// The audit log and webhooks (webhook_test.go delivers).
		{
			route: "GET /api/v1/logs", status: 200,
			path: func(f fixture) string { return "/api/v1/logs?type=mfa.&limit=5&user_id=" + f.user }, body: noBody,
			prepare: func(w *world, f fixture) { w.okJSON("DELETE", "/api/v1/users/"+f.user+"/mfa", "") },
			check: func(w *world, f fixture, got any) {
				logs := field[[]any](w.t, got, "logs")
				if len(logs) != 1 || field[string](w.t, logs[0], "type") != "mfa.reset" || field[string](w.t, logs[0], "user_id") != f.user {
					w.t.Errorf("logs = %v, want the user's mfa.reset", logs)
				}
			},
			extra: func(fixture) []failCase {
				return []failCase{
					{"limit over 100", "/api/v1/logs?limit=101", "", 400, "invalid_limit", "limit"},
					{"bad cursor", "/api/v1/logs?cursor=%21", "", 400, "invalid_cursor", "cursor"},
					{"bad type", "/api/v1/logs?type=*", "", 400, "invalid_request", "type"},
					{"bad from", "/api/v1/logs?from=2025-01-01", "", 400, "invalid_request", "from"},
				}
			},
		},
		{
			route: "POST /api/v1/webhooks", status: 201,
			path: func(fixture) string { return "/api/v1/webhooks" },
			body: func(fixture) string {
				return `{"url":" https://hooks.example.com/latchkey ","events":["user.deleted","mfa.","mfa."]}`
			},
			check: func(w *world, _ fixture, got any) {
				if s := field[string](w.t, got, "secret"); !strings.HasPrefix(s, "whsec_") || len(s) != 6+43 {
					w.t.Errorf("secret = %q, want whsec_ and 32 random bytes", s)
				}
				hook := w.okJSON("GET", "/api/v1/webhooks/"+field[string](w.t, got, "id"), "")
				if mustJSON(w.t, hook.(map[string]any)["events"]) != `["mfa.","user.deleted"]` || field[string](w.t, hook, "url") != "https://hooks.example.com/latchkey" ||
					!field[bool](w.t, hook, "enabled") || hook.(map[string]any)["secret"] != nil {
					w.t.Errorf("stored webhook = %v", hook)
				}
			},
			typedField: "url",
			extra: func(fixture) []failCase {
				return []failCase{
					{"no url", "/api/v1/webhooks", `{"events":["*"]}`, 400, "invalid_url", "url"},
					{"plain http", "/api/v1/webhooks", `{"url":"http://hooks.example.com/x","events":["*"]}`, 400, "invalid_url", "url"},
					{"not http", "/api/v1/webhooks", `{"url":"ftp://hooks.example.com/x","events":["*"]}`, 400, "invalid_url", "url"},
					{"user info", "/api/v1/webhooks", `{"url":"https://a:b@hooks.example.com/x","events":["*"]}`, 400, "invalid_url", "url"},
					{"no events", "/api/v1/webhooks", `{"url":"https://hooks.example.com/x"}`, 400, "invalid_events", "events"},
					{"empty events", "/api/v1/webhooks", `{"url":"https://hooks.example.com/x","events":[]}`, 400, "invalid_events", "events"},
					{"bad event", "/api/v1/webhooks", `{"url":"https://hooks.example.com/x","events":["mfa.","MFA"]}`, 400, "invalid_events", "events[1]"},
				}
			},
		},
		{
			route: "GET /api/v1/webhooks", status: 200,
			path: func(fixture) string { return "/api/v1/webhooks?limit=100" }, body: noBody, prepare: addWebhook,
			check: func(w *world, f fixture, got any) {
				if s := mustJSON(w.t, field[[]any](w.t, got, "webhooks")); !strings.Contains(s, hookOf(w, f)) || strings.Contains(s, "whsec_") {
					w.t.Errorf("webhooks = %s, want the fixture's without secrets", s)
				}
			},
			extra: func(fixture) []failCase {
				return []failCase{{"limit over 100", "/api/v1/webhooks?limit=101", "", 400, "invalid_limit", "limit"}}
			},
		},
		{
			route: "GET /api/v1/webhooks/{id}", status: 200, prepare: addWebhook,
			path: func(f fixture) string { return "/api/v1/webhooks/" + webhookOf(f) }, body: noBody,
			check: func(w *world, f fixture, got any) {
				if field[string](w.t, got, "id") != hookOf(w, f) || got.(map[string]any)["secret"] != nil {
					w.t.Errorf("webhook = %v", got)
				}
			},
			notFound: "webhook_not_found",
		},
		{
			route: "PATCH /api/v1/webhooks/{id}", status: 200, prepare: addWebhook,
			path: func(f fixture) string { return "/api/v1/webhooks/" + webhookOf(f) },
			body: func(fixture) string { return `{"enabled":false,"events":["*","mfa."]}` },
			check: func(w *world, f fixture, _ any) {
				hook := w.okJSON("GET", "/api/v1/webhooks/"+hookOf(w, f), "")
				if field[bool](w.t, hook, "enabled") || mustJSON(w.t, hook.(map[string]any)["events"]) != `["*"]` ||
					field[string](w.t, hook, "url") != "https://hooks.example.com/"+f.user {
					w.t.Errorf("webhook after PATCH = %v", hook)
				}
			},
			notFound: "webhook_not_found", typedField: "enabled",
			extra: func(f fixture) []failCase {
				return []failCase{{"plain http", "/api/v1/webhooks/" + webhookOf(f), `{"url":"http://10.0.0.1/x"}`, 400, "invalid_url", "url"}}
			},
		},
		{
			route: "DELETE /api/v1/webhooks/{id}", status: 200, prepare: addWebhook,
			path: func(f fixture) string { return "/api/v1/webhooks/" + webhookOf(f) }, body: noBody,
			check: func(w *world, f fixture, _ any) {
				w.fails("GET", "/api/v1/webhooks/"+hookOf(w, f), "", 404, "webhook_not_found")
			},
			notFound: "webhook_not_found",
		},
		{
			route: "POST /api/v1/webhooks/{id}/rotate-secret", status: 200, prepare: addWebhook,
			path: func(f fixture) string { return "/api/v1/webhooks/" + webhookOf(f) + "/rotate-secret" },
			// No body is needed (webhook_test.go sends none); one that is sent must be JSON.
			body: func(fixture) string { return `{}` },
			check: func(w *world, f fixture, got any) {
				if s := field[string](w.t, got, "secret"); !strings.HasPrefix(s, "whsec_") || field[string](w.t, got, "id") != hookOf(w, f) {
					w.t.Errorf("rotate-secret = %v", got)
				}
			},
			notFound: "webhook_not_found",
		},
		{
			route: "GET /api/v1/webhooks/{id}/deliveries", status: 200, prepare: addWebhook,
			path: func(f fixture) string { return "/api/v1/webhooks/" + webhookOf(f) + "/deliveries" }, body: noBody,
			check: func(w *world, f fixture, got any) {
				ds := field[[]any](w.t, got, "deliveries")
				if len(ds) != 1 || field[string](w.t, ds[0], "event_type") != "mfa.reset" || field[string](w.t, ds[0], "status") != "pending" {
					w.t.Errorf("deliveries = %v, want the pending mfa.reset", ds)
				}
			},
			notFound: "webhook_not_found",
			extra: func(f fixture) []failCase {
				return []failCase{{"limit 0", "/api/v1/webhooks/" + webhookOf(f) + "/deliveries?limit=0", "", 400, "invalid_limit", "limit"}}
			},
		},

		// The project itself.
		{
			route: "GET /api/v1/project", status: 200,
			path: func(fixture) string { return "/api/v1/project" }, body: noBody,
			check: func(w *world, _ fixture, got any) {
				if field[string](w.t, got, "client_id") != w.a.clientID || strings.Contains(mustJSON(w.t, got), w.a.secret) {
					w.t.Errorf("project document = %v", got)
				}
			},
		},
		{
			route: "PATCH /api/v1/project", status: 200,
			path: func(fixture) string { return "/api/v1/project" },
			body: func(fixture) string { return `{"settings":{"codes":{"length":8}}}` },
			check: func(w *world, _ fixture, got any) {
				settings := field[map[string]any](w.t, got, "settings")
				if codes := settings["codes"].(map[string]any); codes["length"] != float64(8) {
					w.t.Errorf("codes after PATCH = %v", codes)
				}
			},
			typedField: "name",
			extra: func(fixture) []failCase {
				return []failCase{
					{"bad setting", "/api/v1/project", `{"settings":{"codes":{"length":3}}}`, 400, "invalid_setting", "codes.length"},
					{"unknown algorithm", "/api/v1/project", `{"settings":{"tokens":{"signing_algorithm":"none"}}}`, 400, "invalid_setting", "tokens.signing_algorithm"},
				}
			},
		},
	}
}

// webhookIDs holds the webhook addWebhook made for each fixture, by the fixture's user id; path
// funcs read it (webhookOf) after prepare wrote it.
var webhookIDs sync.Map

// webhookOf is the fixture's webhook id; "" when it has none.
func webhookOf(f fixture) string {
	id, _ := webhookIDs.Load(f.user)
	s, _ := id.(string)
	return s
}

// addWebhook gives the fixture a webhook (at https://hooks.example.com/<user id>, for every
// "mfa." event) with one pending delivery, of the user's MFA reset.
func addWebhook(w *world, f fixture) {
	w.t.Helper()
	hook := w.okJSON("POST", "/api/v1/webhooks", `{"url":"https://hooks.example.com/`+f.user+`","events":["mfa."]}`)
	webhookIDs.Store(f.user, field[string](w.t, hook, "id"))
	w.okJSON("DELETE", "/api/v1/users/"+f.user+"/mfa", "")
}

// hookOf is the fixture's webhook.
func hookOf(w *world, f fixture) string {
	w.t.Helper()
	id := webhookOf(f)
	if id == "" {
		w.t.Fatal("the fixture has no webhook")
	}
	return id
}

// addPasskeys stores two passkeys of the fixture's first user, a day apart, through the store:
// making one through the API takes an authenticator. Credential ids are unique per project, so
// they are made from the user id.
// addMFA gives the fixture's user a confirmed authenticator app and two recovery codes.
func addMFA(w *world, f fixture) {
	w.t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	err := w.st.CreateMFAFactor(ctx, store.MFAFactor{ID: ident.NewGenerator().New(), ProjectID: w.aID, UserID: f.user,
		Type: store.MFAFactorOTP, Secret: []byte("sealed secret"), Confirmed: true, CreatedAt: now, ConfirmedAt: &now})
	if err != nil {
		w.t.Fatalf("store an MFA factor: %v", err)
	}
	codes := []store.RecoveryCode{
		{ID: ident.NewGenerator().New(), ProjectID: w.aID, UserID: f.user, Hash: []byte("hash 1"), CreatedAt: now},
		{ID: ident.NewGenerator().New(), ProjectID: w.aID, UserID: f.user, Hash: []byte("hash 2"), CreatedAt: now},
	}
	if err := w.st.ReplaceRecoveryCodes(ctx, w.aID, f.user, codes); err != nil {
		w.t.Fatalf("store recovery codes: %v", err)
	}
}

func addPasskeys(w *world, f fixture) {
	w.t.Helper()
	// The store lists passkeys in id order, and ids made in the same second compare at random:
	// the older passkey gets the smaller one.
	ids := []string{ident.NewGenerator().New(), ident.NewGenerator().New()}
	slices.Sort(ids)
	created := time.Now().UTC().Truncate(time.Microsecond).Add(-48 * time.Hour)
	used := created.Add(time.Hour)
	pks := []store.Passkey{
		{
			ID: ids[0], ProjectID: w.aID, UserID: f.user, CredentialID: []byte("first credential of " + f.user),
			PublicKey: []byte("cose key 1"), SignCount: 7,
			AAGUID:     []byte{0xfb, 0xfc, 0x30, 0x07, 0x15, 0x4e, 0x4e, 0xcc, 0x8c, 0x0b, 0x6e, 0x02, 0x05, 0x57, 0xd7, 0xbd},
			Transports: []string{"hybrid", "internal"}, BackupEligible: true, BackupState: true, UserVerified: true,
			AttestationType: "none", AttestationFormat: "none", Name: "iCloud Keychain",
			CreatedAt: created, UpdatedAt: used, LastUsedAt: &used,
		},
		{
			ID: ids[1], ProjectID: w.aID, UserID: f.user, CredentialID: []byte("second credential of " + f.user),
			PublicKey: []byte("cose key 2"), AAGUID: make([]byte, 16), Transports: []string{"usb"},
			AttestationType: "none", AttestationFormat: "none", Name: "YubiKey",
			CreatedAt: created.Add(24 * time.Hour), UpdatedAt: created.Add(24 * time.Hour),
		},
	}
	for _, pk := range pks {
		if err := w.st.CreatePasskey(context.Background(), pk); err != nil {
			w.t.Fatalf("store a passkey: %v", err)
		}
	}
}

func expectOrg(w *world, f fixture, got any) {
	orgs := field[[]any](w.t, got, "organizations")
	if len(orgs) != 1 || !strings.Contains(mustJSON(w.t, orgs[0]), f.org) {
		w.t.Errorf("organizations = %v, want only %s", orgs, f.org)
	}
}

func expectID(id func(fixture) string) func(*world, fixture, any) {
	return func(w *world, f fixture, got any) {
		if g := field[string](w.t, got, "id"); g != id(f) {
			w.t.Errorf("id = %s, want %s", g, id(f))
		}
	}
}

func expectDescription(path func(fixture) string) func(*world, fixture, any) {
	return func(w *world, f fixture, _ any) {
		if d := field[string](w.t, w.okJSON("GET", path(f), ""), "description"); d != "changed" {
			w.t.Errorf("description after PUT = %q", d)
		}
	}
}

func expectOrgName(name string) func(*world, fixture, any) {
	return func(w *world, f fixture, _ any) {
		org := w.okJSON("GET", "/api/v1/organization/"+f.org, "")
		if !strings.Contains(mustJSON(w.t, org), `"`+name+`"`) {
			w.t.Errorf("organization after update = %v, want name %q", org, name)
		}
	}
}

// expectOrgMFAPolicy checks the fixture organization's mfa_policy as read back, alone and in the
// list.
func expectOrgMFAPolicy(w *world, f fixture, want string) {
	if p := field[string](w.t, w.okJSON("GET", "/api/v1/organization/"+f.org, ""), "mfa_policy"); p != want {
		w.t.Errorf("mfa_policy after update = %q, want %q", p, want)
	}
	// Project A holds every scenario's organizations, so the fixture's may be on any page.
	for path := "/api/v1/organizations?limit=100"; ; {
		page := w.okJSON("GET", path, "")
		for _, o := range field[[]any](w.t, page, "organizations") {
			if field[string](w.t, o, "id") == f.org {
				if p := field[string](w.t, o, "mfa_policy"); p != want {
					w.t.Errorf("listed mfa_policy after update = %q, want %q", p, want)
				}
				return
			}
		}
		next, _ := page.(map[string]any)["next_cursor"].(string)
		if next == "" {
			w.t.Errorf("organization %s is not listed", f.org)
			return
		}
		path = "/api/v1/organizations?limit=100&cursor=" + url.QueryEscape(next)
	}
}

func TestEveryManagementRouteHasAScenario(t *testing.T) {
	a, err := app.NewWithStore(testdb.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, s := range scenarios() {
		if covered[s.route] {
			t.Errorf("two scenarios for %s", s.route)
		}
		covered[s.route] = true
	}
	// Routes outside the management API, each tested on its own.
	own := map[string]bool{
		"GET /healthz": true, "GET /readyz": true, "GET /metrics": true,
		"GET /api/v1/openapi.json": true, "GET /api/v1/config": true,
		// Token and session routes: tokens_test.go.
		"GET /api/v1/.well-known/jwks.json": true, "GET /.well-known/jwks.json": true,
		"GET /oidc/.well-known/jwks.json": true, // the union and its aliases: jwks_test.go
		"GET /api/v1/accesstoken/refresh": true, "POST /api/v1/accesstoken/refresh": true,
		"POST /api/v1/oauth2/token": true, "GET /api/v1/auth/status": true, "GET /api/v1/auth/sessions": true,
		"DELETE /api/v1/auth/sessions/{id}": true, "POST /api/v1/auth/logout": true,
		// Passwordless and template routes: passwordless_test.go.
		"GET /api/v1/templates/{name}": true, "PUT /api/v1/templates/{name}": true, "DELETE /api/v1/templates/{name}": true,
		// Public passkey routes: /.well-known/webauthn in passkey_test.go, the sign-in page and its
		// script in passkey_browser_test.go.
		"GET /.well-known/webauthn": true, "GET /login/passkey": true, "GET /login/passkey.js": true,
		// The hosted login page: internal/web/login's tests (every screen, both backends, and in
		// Chromium), oidc_spa_browser_test.go and cmd/latchkey's relying parties, which sign in
		// through it without JavaScript.
		"GET /login": true, "POST /login": true, "GET /login/status": true, "POST /login/passkey/begin": true,
		"POST /login/passkey/finish": true, "GET /login/assets/{file}": true,
		// The login widget's script: internal/web/widget's tests and widget_browser_test.go.
		"GET /login/widget.js": true,
		// The bot check's challenge: botcheck_test.go.
		"GET /api/v1/protect/challenge": true,
	}
	// The OpenID Provider's routes and the token endpoint's aliases: oidc_*_test.go.
	for _, p := range []string{"/v1/authorize", "/oidc/authorize", "/oauth2/authorize", "/v1/logout", "/oidc/logout"} {
		own["GET "+p], own["POST "+p] = true, true
	}
	for _, p := range []string{"/v1/authorize/resume", "/v1/authorize/callback", "/.well-known/openid-configuration",
		"/v1/.well-known/openid-configuration", "/oidc/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		own["GET "+p] = true
	}
	for _, p := range []string{"/oidc/token", "/oauth2/token", "/oauth/token", "/token"} {
		own["POST "+p] = true
	}
	// Userinfo, introspection and revocation: internal/token/tokenhttp's tests, and the relying
	// parties' round trips in oidc_rp_test.go.
	for _, p := range []string{"GET /api/v1/userinfo", "POST /api/v1/userinfo", "GET /oidc/userinfo", "POST /oidc/userinfo",
		"POST /api/v1/oauth2/introspection", "POST /api/v1/oauth2/revoke"} {
		own[p] = true
	}
	// The routes users signing in call: scenario_auth_test.go.
	for _, s := range authScenarios() {
		if covered[s.route] {
			t.Errorf("two scenarios for %s", s.route)
		}
		covered[s.route] = true
	}
	for _, p := range a.Router().Patterns() {
		if !covered[p] && !own[p] {
			t.Errorf("route %s has no scenario", p)
		}
		delete(covered, p)
	}
	for p := range covered {
		t.Errorf("scenario for %s, which is not a registered route", p)
	}
}

func TestManagementScenarios(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newWorld(t, st)
		for _, s := range scenarios() {
			t.Run(s.route, func(t *testing.T) {
				w := w.with(t)
				runScenario(w, s)
			})
		}
	})
}

func runScenario(w *world, s scenario) {
	t := w.t
	method, _, _ := strings.Cut(s.route, " ")
	f := w.newFixture()
	if s.prepare != nil {
		s.prepare(w, f)
	}
	path, body := s.path(f), s.body(f)
	hasBody := method == "POST" || method == "PUT" || method == "PATCH" || body != ""

	failures := []struct {
		failCase
		creds  *credentials
		header map[string]string
	}{}
	add := func(fc failCase, creds *credentials, header map[string]string) {
		failures = append(failures, struct {
			failCase
			creds  *credentials
			header map[string]string
		}{fc, creds, header})
	}
	wrong := credentials{clientID: w.a.clientID, secret: "sk_" + strings.Repeat("x", 43)}
	crossed := credentials{clientID: w.a.clientID, secret: w.b.secret}
	add(failCase{name: "no secret", path: path, body: body, status: 401, code: "missing_credentials"}, &credentials{clientID: w.a.clientID}, nil)
	add(failCase{name: "wrong secret", path: path, body: body, status: 401, code: "invalid_client"}, &wrong, nil)
	add(failCase{name: "other project's secret", path: path, body: body, status: 403, code: "client_secret_mismatch"}, &crossed, nil)
	add(failCase{name: "mismatched client ids", path: path + sep(path) + "client_id=" + w.b.clientID, body: body, status: 400, code: "client_id_mismatch"}, nil, nil)
	if s.notFound != "" {
		unknown := ident.NewGenerator().New()
		add(failCase{name: "unknown id", path: replaceID(t, path, unknown), body: body, status: 404, code: s.notFound}, nil, nil)
		add(failCase{name: "id that is not an id", path: replaceID(t, path, "not-an-id"), body: body, status: 404, code: s.notFound}, nil, nil)
		// Project B's own credentials reach none of project A's rows, even by exact id.
		add(failCase{name: "other project's id", path: path, body: body, status: 404, code: s.notFound}, &w.b, nil)
	}
	if hasBody {
		add(failCase{name: "malformed JSON", path: path, body: `{"x":`, status: 400, code: "invalid_request"}, nil, nil)
		add(failCase{name: "not an object", path: path, body: `[1,2]`, status: 400, code: "invalid_request"}, nil, nil)
		add(failCase{name: "trailing data", path: path, body: body + ` {}`, status: 400, code: "invalid_request"}, nil, nil)
		add(failCase{name: "oversized body", path: path, body: body + strings.Repeat(" ", httpserver.MaxBodyBytes), status: 413, code: "request_too_large"}, nil, nil)
		if s.typedField != "" {
			add(failCase{name: "wrong type", path: path, body: `{"` + s.typedField + `":{"nested":1}}`, status: 400, code: "invalid_request", field: s.typedField}, nil, nil)
		}
	}
	if s.extra != nil {
		for _, fc := range s.extra(f) {
			add(fc, nil, nil)
		}
	}

	before := w.snapshot(f)
	for _, fc := range failures {
		creds := w.a
		if fc.creds != nil {
			creds = *fc.creds
		}
		status, got := w.do(method, fc.path, fc.body, creds)
		code, fieldName := errorOf(status, got)
		if status != fc.status || code != fc.code || (fc.field != "" && fieldName != fc.field) {
			t.Errorf("%s: %s %s = %d %s (field %q), want %d %s (field %q); body %s",
				fc.name, method, fc.path, status, code, fieldName, fc.status, fc.code, fc.field, mustJSON(t, got))
		}
		if after := w.snapshot(f); after != before {
			t.Errorf("%s: the refused request changed the project's data:\nbefore %s\nafter  %s", fc.name, before, after)
			before = after
		}
	}

	status, got := w.do(method, path, body, w.a)
	if status != s.status {
		t.Fatalf("%s %s = %d %s, want %d", method, path, status, mustJSON(t, got), s.status)
	}
	if s.check != nil {
		s.check(w, f, got)
	}
}

func newWorld(t *testing.T, st *sqlstore.Store) *world {
	a, err := app.NewWithStore(st)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	checkAgainstOpenAPI(t, srv)
	t.Cleanup(srv.Close)
	w := &world{t: t, srv: srv, st: st, seq: new(int)}
	for _, c := range []*credentials{&w.a, &w.b} {
		issued, err := a.Projects().Create(context.Background(), project.NewProject{Name: "Scenario"})
		if err != nil {
			t.Fatal(err)
		}
		*c = credentials{clientID: issued.Project.ClientID, secret: issued.ClientSecret}
		if c == &w.a {
			w.aID = issued.Project.ID
		}
	}
	return w
}

// with returns a copy of w that reports to t.
func (w *world) with(t *testing.T) *world {
	c := *w
	c.t = t
	return &c
}

// newFixture creates two users in one organization, a role holding a permission, and a second
// role and permission whose slugs the conflict cases reuse.
func (w *world) newFixture() fixture {
	*w.seq++
	n := fmt.Sprint(*w.seq)
	f := fixture{email: "ann" + n + "@example.com", email2: "bob" + n + "@example.com"}
	f.user = field[string](w.t, w.okJSON("POST", "/api/v1/users", `{"email":"`+f.email+`"}`), "id")
	f.user2 = field[string](w.t, w.okJSON("POST", "/api/v1/users", `{"email":"`+f.email2+`"}`), "id")
	f.org = field[string](w.t, w.okJSON("POST", "/api/v1/organization", `{"name":"Acme `+n+`"}`), "id")
	w.okJSON("POST", "/api/v1/organization/"+f.org+"/users", `{"user_ids":["`+f.user+`","`+f.user2+`"]}`)
	perm := w.okJSON("POST", "/api/v1/permissions", `{"name":"Read `+n+`"}`)
	f.perm, f.permSlug = field[string](w.t, perm, "id"), field[string](w.t, perm, "slug")
	f.permSlug2 = field[string](w.t, w.okJSON("POST", "/api/v1/permissions", `{"name":"Write `+n+`"}`), "slug")
	role := w.okJSON("POST", "/api/v1/roles", `{"name":"Reader `+n+`","permission_id":["`+f.perm+`"]}`)
	f.role, f.roleSlug = field[string](w.t, role, "id"), field[string](w.t, role, "slug")
	f.roleSlug2 = field[string](w.t, w.okJSON("POST", "/api/v1/roles", `{"name":"Writer `+n+`"}`), "slug")
	return f
}

// snapshot is everything a management request could change in project A, as text.
func (w *world) snapshot(f fixture) string {
	var b strings.Builder
	for _, p := range []string{
		"/api/v1/project", "/api/v1/users?limit=100", "/api/v1/organizations?limit=100",
		"/api/v1/roles?limit=100", "/api/v1/permissions?limit=100",
		"/api/v1/organization/" + f.org + "/users", "/api/v1/users/" + f.user + "/organizations",
		"/api/v1/users/" + f.user + "/passkeys", "/api/v1/webhooks?limit=100",
	} {
		status, got := w.do("GET", p, "", w.a)
		fmt.Fprintf(&b, "%s %d %s\n", p, status, mustJSON(w.t, got))
	}
	return b.String()
}

func (w *world) do(method, path, body string, c credentials) (int, any) {
	w.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, w.srv.URL+path, rd)
	if err != nil {
		w.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.clientID != "" {
		req.Header.Set("X-Client-Id", c.clientID)
	}
	if c.secret != "" {
		req.Header.Set("X-Client-Secret", c.secret)
	}
	resp, err := w.srv.Client().Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&v); err != nil {
		w.t.Fatalf("%s %s answered %d with a body that is not JSON: %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, v
}

func (w *world) okJSON(method, path, body string) any {
	w.t.Helper()
	status, got := w.do(method, path, body, w.a)
	if status/100 != 2 {
		w.t.Fatalf("%s %s = %d %s", method, path, status, mustJSON(w.t, got))
	}
	return got
}

func (w *world) fails(method, path, body string, status int, code string) {
	w.t.Helper()
	gotStatus, got := w.do(method, path, body, w.a)
	if gotCode, _ := errorOf(gotStatus, got); gotStatus != status || gotCode != code {
		w.t.Errorf("%s %s = %d %s, want %d %s", method, path, gotStatus, gotCode, status, code)
	}
}

// errorOf reads error_code and field from an error body, after checking the documented shape:
// "error" repeats the HTTP status and error_description explains.
func errorOf(status int, v any) (code, fieldName string) {
	m, ok := v.(map[string]any)
	if !ok {
		return "", ""
	}
	code, _ = m["error_code"].(string)
	fieldName, _ = m["field"].(string)
	if m["error"] != float64(status) {
		return fmt.Sprintf("error is %v, not the status %d", m["error"], status), fieldName
	}
	if d, _ := m["error_description"].(string); d == "" {
		return "no error_description", fieldName
	}
	return code, fieldName
}

// field returns v[name] as a T, failing the test when it is missing or of another type.
func field[T any](t *testing.T, v any, name string) T {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("want an object with %q, got %v", name, v)
	}
	got, ok := m[name].(T)
	if !ok {
		t.Fatalf("%q = %#v, want a %T", name, m[name], *new(T))
	}
	return got
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// replaceID puts id where the path's first 24-hex id is.
func replaceID(t *testing.T, path, id string) string {
	t.Helper()
	re := regexp.MustCompile(`/[0-9a-f]{24}(/|$|\?)`)
	loc := re.FindStringIndex(path)
	if loc == nil {
		t.Fatalf("no id in %s", path)
	}
	end := loc[1]
	if strings.ContainsAny(path[end-1:end], "/?") {
		end--
	}
	return path[:loc[0]+1] + id + path[end:]
}

func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}
