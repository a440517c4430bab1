package directoryhttp_test

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/directory/directoryhttp"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

const testSecret = "sk_directoryhttp_test_secret_0123456789abcdef"

// testAuth is the smallest ProjectAuthenticator: one project, one secret. The real one (with
// hashed secrets) belongs to package project; these tests are about the directory routes.
type testAuth struct{ project store.Project }

func (a testAuth) ProjectByClientID(_ context.Context, clientID string) (store.Project, error) {
	if clientID != a.project.ClientID {
		return store.Project{}, failure.New(failure.Unauthenticated, "invalid_client", "unknown client")
	}
	return a.project, nil
}

func (a testAuth) AuthenticateSecret(_ context.Context, clientID, secret string) (store.Project, error) {
	if subtle.ConstantTimeCompare([]byte(secret), []byte(testSecret)) != 1 || (clientID != "" && clientID != a.project.ClientID) {
		return store.Project{}, failure.New(failure.Unauthenticated, "invalid_client", "wrong client secret")
	}
	return a.project, nil
}

// api serves the directory routes over a real SQLite store with one project.
type api struct {
	t       *testing.T
	st      store.Store
	project store.Project
	router  *httpserver.Router
}

func newAPI(t *testing.T) *api {
	t.Helper()
	t.Parallel()
	st := testdb.SQLite(t)
	gen := ident.NewGenerator()
	now := time.Now().UTC().Truncate(time.Microsecond)
	p := store.Project{ID: gen.New(), ClientID: "cli_" + gen.New(), Name: "Test", Settings: []byte(`{}`), CreatedAt: now, UpdatedAt: now}
	if err := st.CreateProject(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	rt := httpserver.NewRouter(testAuth{p}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	directoryhttp.Handler{Directory: directory.New(directory.Deps{Store: st})}.Mount(rt)
	return &api{t: t, st: st, project: p, router: rt}
}

// call sends body (a string of raw JSON, or nil) with the project secret and returns the
// status and the decoded JSON answer.
func (a *api) call(method, path string, body any) (int, any) {
	a.t.Helper()
	return a.callAs(testSecret, method, path, body)
}

func (a *api) callAs(secret, method, path string, body any) (int, any) {
	a.t.Helper()
	var r io.Reader
	if s, ok := body.(string); ok {
		r = strings.NewReader(s)
	}
	req := httptest.NewRequest(method, path, r)
	if secret != "" {
		req.Header.Set("X-Client-Secret", secret)
	}
	rec := httptest.NewRecorder()
	a.router.ServeHTTP(rec, req)
	var out any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		a.t.Fatalf("%s %s: answer is not JSON: %q", method, path, rec.Body.String())
	}
	return rec.Code, out
}

// ok calls and fails the test unless the status is want; it returns the answer as an object.
func (a *api) ok(want int, method, path string, body any) map[string]any {
	a.t.Helper()
	status, out := a.call(method, path, body)
	if status != want {
		a.t.Fatalf("%s %s = %d %v, want %d", method, path, status, out, want)
	}
	obj, _ := out.(map[string]any)
	return obj
}

// fails calls and checks the documented error shape, code and (if not "") field.
func (a *api) fails(status int, code, field, method, path string, body any) {
	a.t.Helper()
	got, out := a.call(method, path, body)
	obj, _ := out.(map[string]any)
	if got != status || obj["error_code"] != code || (field != "" && obj["field"] != field) ||
		obj["error"] != float64(status) || obj["error_description"] == "" {
		a.t.Errorf("%s %s %v = %d %v, want %d %s (field %q)", method, path, body, got, out, status, code, field)
	}
}

func wantKeys(t *testing.T, what string, v any, keys ...string) {
	t.Helper()
	obj, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s is %T, want an object", what, v)
	}
	var got []string
	for k := range obj {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(keys)
	if !slices.Equal(got, keys) {
		t.Errorf("%s keys = %v, want %v", what, got, keys)
	}
}

var userKeys = []string{"_id", "id", "account_id", "connection_id", "email", "phone_id", "first_name", "last_name",
	"groups", "raw_attributes", "roles", "created_at", "modified_at", "email_verified", "phone_verified", "is_active",
	"LastLoginAt", "tenants", "identities"}

var orgKeys = []string{"id", "name", "Name", "WhiteListDomains", "allow_profiles_outside_organization", "domain",
	"WorkspaceName", "is_active", "mfa_policy", "sso_connection_token", "created_at", "modified_at"}

func wantTime(t *testing.T, what string, v any) {
	t.Helper()
	s, _ := v.(string)
	if ts, err := time.Parse(time.RFC3339, s); err != nil || !strings.HasSuffix(s, "Z") || time.Since(ts) > time.Hour {
		t.Errorf("%s = %v, want a recent RFC 3339 UTC time", what, v)
	}
}

func TestRoutesRequireTheSecret(t *testing.T) {
	a := newAPI(t)
	for _, path := range []string{"/api/v1/users", "/api/v1/organizations", "/api/v1/roles", "/api/v1/permissions"} {
		status, out := a.callAs("", "GET", path, nil)
		if status != http.StatusUnauthorized || out.(map[string]any)["error_code"] != "missing_credentials" {
			t.Errorf("GET %s without a secret = %d %v", path, status, out)
		}
		status, _ = a.callAs("sk_wrong", "GET", path, nil)
		if status != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong secret = %d", path, status)
		}
	}
}

func TestUserRoutes(t *testing.T) {
	a := newAPI(t)
	u := a.ok(201, "POST", "/api/v1/users", `{"email":" Ann@Example.COM ","FirstName":"Ann","LastName":"Lee","phone":"+1 (415) 555-2671"}`)
	wantKeys(t, "created user", u, userKeys...)
	id, _ := u["id"].(string)
	if !ident.Valid(id) || u["_id"] != id || u["account_id"] != a.project.ID || u["connection_id"] != "ManualUser" ||
		u["email"] != "Ann@example.com" || u["phone_id"] != "+14155552671" || u["first_name"] != "Ann" || u["last_name"] != "Lee" ||
		u["LastLoginAt"] != nil || u["is_active"] != true || u["email_verified"] != false {
		t.Errorf("created user = %v", u)
	}
	for _, k := range []string{"groups", "roles", "tenants", "identities"} {
		if l, ok := u[k].([]any); !ok || len(l) != 0 {
			t.Errorf("%s = %#v, want []", k, u[k])
		}
	}
	if m, ok := u["raw_attributes"].(map[string]any); !ok || len(m) != 0 {
		t.Errorf("raw_attributes = %#v, want {}", u["raw_attributes"])
	}
	wantTime(t, "created_at", u["created_at"])
	wantTime(t, "modified_at", u["modified_at"])

	a.ok(201, "POST", "/api/v1/users", `{"phone_id":"+442079460958","first_name":"Bo"}`)
	a.fails(409, "email_exists", "email", "POST", "/api/v1/users", `{"email":"Ann@example.com"}`)

	list := a.ok(200, "GET", "/api/v1/users", nil)
	wantKeys(t, "user list", list, "users", "next_cursor")
	if users, _ := list["users"].([]any); len(users) != 2 || list["next_cursor"] != nil {
		t.Errorf("list = %v", list)
	}
	page := a.ok(200, "GET", "/api/v1/users?limit=1", nil)
	next, _ := page["next_cursor"].(string)
	if users, _ := page["users"].([]any); len(users) != 1 || next == "" {
		t.Fatalf("limit=1 page = %v", page)
	}
	page = a.ok(200, "GET", "/api/v1/users?limit=1&cursor="+next, nil)
	if users, _ := page["users"].([]any); len(users) != 1 || page["next_cursor"] != nil {
		t.Errorf("second page = %v", page)
	}
	status, legacy := a.call("GET", "/api/v1/users?format=legacy&email=Ann@EXAMPLE.com", nil)
	if arr, ok := legacy.([]any); status != 200 || !ok || len(arr) != 1 {
		t.Fatalf("legacy list = %d %v", status, legacy)
	} else {
		wantKeys(t, "legacy user", arr[0], userKeys...)
	}

	a.ok(200, "GET", "/api/v1/users/"+id, nil)
	if got := a.ok(200, "GET", "/api/v1/users/Ann%40example.com/email", nil); got["id"] != id {
		t.Errorf("by email = %v", got)
	}
	a.fails(404, "user_not_found", "", "GET", "/api/v1/users/nobody@example.com/email", nil)
	a.fails(400, "invalid_email", "email", "GET", "/api/v1/users/not-an-email/email", nil)

	got := a.ok(200, "PUT", "/api/v1/users/"+id, `{"last_name":"Park","raw_attributes":{"plan":"pro"},"groups":["eng"]}`)
	if got["first_name"] != "Ann" || got["last_name"] != "Park" || got["email"] != "Ann@example.com" ||
		got["raw_attributes"].(map[string]any)["plan"] != "pro" || len(got["groups"].([]any)) != 1 {
		t.Errorf("after a partial PUT = %v", got)
	}

	for _, c := range []struct {
		body string
		want bool
	}{{`{"verification_status":"true"}`, true}, {`{"verification_status":false}`, false}, {`{"verification_status":true}`, true}, {`{"verification_status":"false"}`, false}} {
		if got := a.ok(200, "POST", "/api/v1/users/"+id+"/verify", c.body); got["email_verified"] != c.want {
			t.Errorf("verify %s: email_verified = %v", c.body, got["email_verified"])
		}
	}
	for _, body := range []string{`{"verification_status":"yes"}`, `{"verification_status":1}`, `{"verification_status":null}`, `{}`} {
		a.fails(400, "invalid_request", "verification_status", "POST", "/api/v1/users/"+id+"/verify", body)
	}
	a.fails(404, "user_not_found", "", "POST", "/api/v1/users/"+ident.NewGenerator().New()+"/verify", `{"verification_status":"true"}`)

	if got := a.ok(200, "DELETE", "/api/v1/users/"+id, nil); len(got) != 1 || got["is_deleted"] != true {
		t.Errorf("DELETE = %v", got)
	}
	a.fails(404, "user_not_found", "", "GET", "/api/v1/users/"+id, nil)
	a.fails(404, "user_not_found", "", "DELETE", "/api/v1/users/"+id, nil)
	a.fails(404, "user_not_found", "", "GET", "/api/v1/users/not-an-id", nil)
}

func TestBadRequests(t *testing.T) {
	a := newAPI(t)
	cases := []struct {
		method, path, body string
		status             int
		code, field        string
	}{
		{"POST", "/api/v1/users", `{"email":5}`, 400, "invalid_request", "email"},
		{"POST", "/api/v1/users", `{"email":"a@example.com","groups":"eng"}`, 400, "invalid_request", "groups"},
		{"POST", "/api/v1/users", `{"email":"a@example.com","raw_attributes":"x"}`, 400, "invalid_request", "raw_attributes"},
		{"POST", "/api/v1/users", `{"email":"a@example.com","is_active":"yes"}`, 400, "invalid_request", "is_active"},
		{"POST", "/api/v1/users", `{"email":`, 400, "invalid_request", ""},
		{"POST", "/api/v1/users", ``, 400, "invalid_request", ""},
		{"POST", "/api/v1/users", `{"email":"A <a@example.com>"}`, 400, "invalid_email", "email"},
		{"POST", "/api/v1/users", `{"phone":"555-2671"}`, 400, "invalid_phone", "phone_id"},
		{"POST", "/api/v1/users", `{"first_name":"only"}`, 400, "invalid_request", "email"},
		{"POST", "/api/v1/users", `{"email":"a@example.com","raw_attributes":{"k":"` + strings.Repeat("x", 17<<10) + `"}}`, 400, "invalid_request", "raw_attributes"},
		{"GET", "/api/v1/users?limit=0", "", 400, "invalid_limit", "limit"},
		{"GET", "/api/v1/users?limit=101", "", 400, "invalid_limit", "limit"},
		{"GET", "/api/v1/organizations?limit=x", "", 400, "invalid_limit", "limit"},
		{"GET", "/api/v1/roles?cursor=%21%21", "", 400, "invalid_cursor", "cursor"},
		{"GET", "/api/v1/permissions?cursor=abc", "", 400, "invalid_cursor", "cursor"},
		{"POST", "/api/v1/organization", `{"Name":3}`, 400, "invalid_request", "Name"},
		{"POST", "/api/v1/organization", `{"domain":"acme.com"}`, 400, "invalid_request", "name"},
		{"POST", "/api/v1/organization", `{"name":"A","domain":"acme"}`, 400, "invalid_domain", "domain"},
		{"POST", "/api/v1/organization", `{"name":"A","whitelist_domains":["ok.com","bad_domain.com"]}`, 400, "invalid_domain", "WhiteListDomains[1]"},
		{"POST", "/api/v1/roles", `{"name":"A","permission_id":"x"}`, 400, "invalid_request", "permission_id"},
		{"POST", "/api/v1/roles", `{"name":"A","slug":"Not A Slug"}`, 400, "invalid_request", "slug"},
		{"POST", "/api/v1/roles", `{"name":"A","permission_id":["` + ident.NewGenerator().New() + `"]}`, 404, "permission_not_found", "permission_id"},
		{"POST", "/api/v1/permissions", `{"slug":"x"}`, 400, "invalid_request", "name"},
		{"POST", "/api/v1/users", `{"email":"a@example.com"}` + strings.Repeat(" ", httpserver.MaxBodyBytes), 413, "request_too_large", ""},
	}
	for _, c := range cases {
		var body any
		if c.body != "" || c.method == "POST" {
			body = c.body
		}
		a.fails(c.status, c.code, c.field, c.method, c.path, body)
	}
}

func TestOrganizationRoutes(t *testing.T) {
	a := newAPI(t)
	o := a.ok(201, "POST", "/api/v1/organization", `{"Name":"Acme","whitelist_domains":["Acme.com","acme.com"],"workspace_name":"acme-ws","domain":"ACME.com"}`)
	wantKeys(t, "organization", o, orgKeys...)
	oid, _ := o["id"].(string)
	if o["name"] != "Acme" || o["Name"] != "Acme" || o["WorkspaceName"] != "acme-ws" || o["domain"] != "acme.com" ||
		o["is_active"] != true || o["allow_profiles_outside_organization"] != false || o["sso_connection_token"] != "" ||
		o["mfa_policy"] != "inherit" || len(o["WhiteListDomains"].([]any)) != 1 {
		t.Errorf("organization = %v", o)
	}
	got := a.ok(200, "PUT", "/api/account/organization/"+oid, `{"white_list_domains":["b.com"],"allow_profiles_outside_organization":true}`)
	if got["name"] != "Acme" || got["allow_profiles_outside_organization"] != true || got["WhiteListDomains"].([]any)[0] != "b.com" {
		t.Errorf("after the alias PUT = %v", got)
	}
	got = a.ok(200, "PUT", "/api/v1/organization/"+oid, `{"WhiteListDomains":[],"name":"Acme Corp"}`)
	if got["Name"] != "Acme Corp" || len(got["WhiteListDomains"].([]any)) != 0 {
		t.Errorf("after PUT = %v", got)
	}
	got = a.ok(200, "PUT", "/api/v1/organization/"+oid, `{"mfa_policy":" Required "}`)
	if got["mfa_policy"] != "required" || got["Name"] != "Acme Corp" {
		t.Errorf("after setting mfa_policy = %v", got)
	}
	a.fails(400, "invalid_request", "mfa_policy", "PUT", "/api/v1/organization/"+oid, `{"mfa_policy":"always"}`)
	if got = a.ok(200, "GET", "/api/v1/organization/"+oid, nil); got["mfa_policy"] != "required" {
		t.Errorf("mfa_policy after a refused PUT = %v", got["mfa_policy"])
	}
	if got = a.ok(200, "PUT", "/api/v1/organization/"+oid, `{"mfa_policy":"inherit"}`); got["mfa_policy"] != "inherit" {
		t.Errorf("mfa_policy after PUT inherit = %v", got["mfa_policy"])
	}
	list := a.ok(200, "GET", "/api/v1/organizations", nil)
	wantKeys(t, "organization list", list, "organizations", "next_cursor")
	wantKeys(t, "listed organization", list["organizations"].([]any)[0], orgKeys...)

	uid := a.ok(201, "POST", "/api/v1/users", `{"email":"m@example.com"}`)["id"].(string)
	role := a.ok(201, "POST", "/api/v1/roles", `{"name":"Admin"}`)
	rid := role["id"].(string)

	added := a.ok(200, "POST", "/api/v1/organization/"+oid+"/users", `{"user_ids":["`+uid+`","`+uid+`"]}`)
	wantKeys(t, "members result", added, "organization_id", "user_ids")
	if added["organization_id"] != oid || len(added["user_ids"].([]any)) != 1 {
		t.Errorf("add members = %v", added)
	}
	a.fails(400, "invalid_request", "user_ids", "POST", "/api/v1/organization/"+oid+"/users", `{"user_ids":[]}`)
	a.fails(400, "invalid_request", "user_ids", "DELETE", "/api/v1/organization/"+oid+"/users", `{}`)
	a.fails(404, "user_not_found", "user_ids", "POST", "/api/v1/organization/"+oid+"/users", `{"user_ids":["`+ident.NewGenerator().New()+`"]}`)
	a.fails(404, "organization_not_found", "", "POST", "/api/v1/organization/"+ident.NewGenerator().New()+"/users", `{"user_ids":["`+uid+`"]}`)

	a.fails(400, "invalid_request", "role_id", "PUT", "/api/v1/users/"+uid+"/roles", `{"organization_id":"`+oid+`"}`)
	a.fails(400, "invalid_request", "organization_id", "PUT", "/api/v1/users/"+uid+"/roles", `{"role_id":[]}`)
	a.fails(404, "role_not_found", "role_id", "PUT", "/api/v1/users/"+uid+"/roles", `{"organization_id":"`+oid+`","role_id":["`+ident.NewGenerator().New()+`"]}`)
	u := a.ok(200, "PUT", "/api/v1/users/"+uid+"/roles", `{"organization_id":"`+oid+`","role_id":["`+rid+`"]}`)
	wantKeys(t, "user after roles", u, userKeys...)
	tenants := u["tenants"].([]any)
	if len(tenants) != 1 || !slices.Equal(u["roles"].([]any), []any{"admin"}) {
		t.Fatalf("user after roles = %v", u)
	}
	wantKeys(t, "tenant", tenants[0], "tenant_id", "tenant_name", "roles", "status")
	tn := tenants[0].(map[string]any)
	if tn["tenant_id"] != oid || tn["tenant_name"] != "Acme Corp" || tn["status"] != "active" {
		t.Errorf("tenant = %v", tn)
	}
	wantKeys(t, "tenant role", tn["roles"].([]any)[0], "role_id", "role_name", "permissions")

	members := a.ok(200, "GET", "/api/v1/organization/"+oid+"/users", nil)
	wantKeys(t, "member list", members, "users", "next_cursor")
	m := members["users"].([]any)[0]
	wantKeys(t, "member", m, "user_id", "role_id", "created_at")
	if mm := m.(map[string]any); mm["user_id"] != uid || !slices.Equal(mm["role_id"].([]any), []any{rid}) {
		t.Errorf("member = %v", mm)
	}

	for _, path := range []string{"/api/v1/users/" + uid + "/organizations", "/api/account/identity/users/" + uid + "/organizations"} {
		uos := a.ok(200, "GET", path, nil)
		wantKeys(t, path, uos, "organizations")
		uo := uos["organizations"].([]any)[0]
		wantKeys(t, "user organization", uo, append(slices.Clone(orgKeys), "roles")...)
		r := uo.(map[string]any)["roles"].([]any)[0]
		wantKeys(t, "user organization role", r, "role_id", "role_name", "slug")
		if r.(map[string]any)["slug"] != "admin" {
			t.Errorf("user organization role = %v", r)
		}
	}
	a.fails(404, "user_not_found", "", "GET", "/api/account/identity/users/"+ident.NewGenerator().New()+"/organizations", nil)

	removed := a.ok(200, "DELETE", "/api/v1/organization/"+oid+"/users", `{"user_ids":["`+uid+`"]}`)
	if removed["organization_id"] != oid {
		t.Errorf("remove members = %v", removed)
	}
	if got := a.ok(200, "DELETE", "/api/v1/organization/"+oid, nil); got["is_deleted"] != true {
		t.Errorf("DELETE = %v", got)
	}
	a.fails(404, "organization_not_found", "", "GET", "/api/v1/organization/"+oid, nil)
	a.fails(404, "organization_not_found", "", "PUT", "/api/account/organization/"+oid, `{}`)
}

func TestRoleAndPermissionRoutes(t *testing.T) {
	a := newAPI(t)
	p := a.ok(201, "POST", "/api/v1/permissions", `{"name":"Read Users","description":"d"}`)
	wantKeys(t, "permission", p, "id", "name", "slug", "description", "created_at", "modified_at")
	if p["slug"] != "read-users" {
		t.Errorf("permission = %v", p)
	}
	pid := p["id"].(string)
	r := a.ok(201, "POST", "/api/v1/roles", `{"name":"Editor","permission_id":["`+pid+`"]}`)
	wantKeys(t, "role", r, "id", "name", "slug", "description", "permission_id", "is_active", "is_deleted", "created_at", "modified_at")
	if r["slug"] != "editor" || r["is_active"] != true || r["is_deleted"] != false || !slices.Equal(r["permission_id"].([]any), []any{pid}) {
		t.Errorf("role = %v", r)
	}
	rid := r["id"].(string)
	a.fails(409, "slug_exists", "slug", "POST", "/api/v1/roles", `{"name":"Other","slug":"editor"}`)
	a.fails(409, "slug_exists", "slug", "POST", "/api/v1/permissions", `{"name":"read users"}`)

	got := a.ok(200, "PUT", "/api/v1/roles/"+rid, `{"is_active":false}`)
	if got["name"] != "Editor" || got["is_active"] != false || len(got["permission_id"].([]any)) != 1 {
		t.Errorf("after PUT = %v", got)
	}
	got = a.ok(200, "PUT", "/api/v1/permissions/"+pid, `{"name":"Read"}`)
	if got["name"] != "Read" || got["slug"] != "read-users" || got["description"] != "d" {
		t.Errorf("permission after PUT = %v", got)
	}

	roles := a.ok(200, "GET", "/api/v1/roles", nil)
	wantKeys(t, "role list", roles, "roles", "next_cursor")
	perms := a.ok(200, "GET", "/api/v1/permissions?limit=1", nil)
	wantKeys(t, "permission list", perms, "permissions", "next_cursor")
	if perms["next_cursor"] != nil {
		t.Errorf("one permission, limit 1: next_cursor = %v", perms["next_cursor"])
	}

	if got := a.ok(200, "DELETE", "/api/v1/permissions/"+pid, nil); got["is_deleted"] != true {
		t.Errorf("DELETE permission = %v", got)
	}
	if got := a.ok(200, "GET", "/api/v1/roles/"+rid, nil); len(got["permission_id"].([]any)) != 0 {
		t.Errorf("role after deleting its permission = %v", got)
	}
	a.fails(404, "permission_not_found", "", "GET", "/api/v1/permissions/"+pid, nil)
	a.ok(200, "DELETE", "/api/v1/roles/"+rid, nil)
	a.fails(404, "role_not_found", "", "GET", "/api/v1/roles/"+rid, nil)
	a.fails(404, "role_not_found", "", "PUT", "/api/v1/roles/x", `{}`)
}

func TestLoginLogRoute(t *testing.T) {
	a := newAPI(t)
	uid := a.ok(201, "POST", "/api/v1/users", `{"email":"l@example.com"}`)["id"].(string)
	empty := a.ok(200, "GET", "/api/v1/users/"+uid+"/loginlogs", nil)
	if l, ok := empty["login_logs"].([]any); !ok || len(l) != 0 || empty["next_cursor"] != nil {
		t.Errorf("no logs = %v", empty)
	}
	log := store.LoginLog{ID: ident.NewGenerator().New(), ProjectID: a.project.ID, UserID: uid, IPAddress: "192.0.2.7",
		Country: "NL", City: "Amsterdam", UserAgent: "UA", ConnectionType: "Passkey", OS: "Linux", Device: "Desktop",
		Browser: "Firefox", CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if err := a.st.AddLoginLog(context.Background(), log); err != nil {
		t.Fatal(err)
	}
	got := a.ok(200, "GET", "/api/v1/users/"+uid+"/loginlogs", nil)
	wantKeys(t, "login log list", got, "login_logs", "next_cursor")
	l := got["login_logs"].([]any)[0]
	wantKeys(t, "login log", l, "id", "IpAddress", "Country", "City", "UserAgent", "Name", "Os", "Device", "Browser", "CreatedAt")
	if lm := l.(map[string]any); lm["Name"] != "Passkey" || lm["IpAddress"] != "192.0.2.7" || lm["Os"] != "Linux" {
		t.Errorf("login log = %v", lm)
	}
	wantTime(t, "CreatedAt", l.(map[string]any)["CreatedAt"])
	a.fails(404, "user_not_found", "", "GET", "/api/v1/users/"+ident.NewGenerator().New()+"/loginlogs", nil)
}

// TestEmptyListWithBearerSecret checks that an empty list is [] (never null) and that the
// secret may come as a bearer token.
func TestEmptyListWithBearerSecret(t *testing.T) {
	a := newAPI(t)
	req := httptest.NewRequest("GET", "/api/v1/roles", nil)
	req.Header.Set("Authorization", "Bearer "+testSecret)
	rec := httptest.NewRecorder()
	a.router.ServeHTTP(rec, req)
	if rec.Code != 200 || !bytes.HasPrefix(rec.Body.Bytes(), []byte(`{"roles":[]`)) ||
		!strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Errorf("GET /api/v1/roles = %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}
}
