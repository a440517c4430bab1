package directory_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/store"
)

func TestCreateUserValidation(t *testing.T) {
	sqlite(t, func(t *testing.T, e *env) {
		cases := []struct {
			name        string
			in          directory.UserInput
			code, field string
		}{
			{"neither email nor phone", directory.UserInput{FirstName: ptr("A")}, "invalid_request", "email"},
			{"empty email and phone", directory.UserInput{Email: ptr(" "), Phone: ptr("")}, "invalid_request", "email"},
			{"display-name email", directory.UserInput{Email: ptr("A <a@example.com>")}, "invalid_email", "email"},
			{"email without dot", directory.UserInput{Email: ptr("a@localhost")}, "invalid_email", "email"},
			{"phone without plus", directory.UserInput{Phone: ptr("4155552671")}, "invalid_phone", "phone_id"},
			{"name too long", directory.UserInput{Email: ptr("a@example.com"), FirstName: ptr(strings.Repeat("x", 201))}, "invalid_request", "first_name"},
			{"name with control", directory.UserInput{Email: ptr("a@example.com"), LastName: ptr("a\x00b")}, "invalid_request", "last_name"},
			{"name with bidi override", directory.UserInput{Email: ptr("a@example.com"), FirstName: ptr("evil\u202egnp.exe")}, "invalid_request", "first_name"},
			{"empty group", directory.UserInput{Email: ptr("a@example.com"), Groups: &[]string{"ok", " "}}, "invalid_request", "groups[1]"},
			{"raw attributes not an object", directory.UserInput{Email: ptr("a@example.com"), RawAttributes: json.RawMessage(`[1]`)}, "invalid_request", "raw_attributes"},
			{"raw attributes too large", directory.UserInput{Email: ptr("a@example.com"),
				RawAttributes: json.RawMessage(`{"k":"` + strings.Repeat("x", 16<<10) + `"}`)}, "invalid_request", "raw_attributes"},
			// Stored, these would fail every later read of the user (the store decodes numbers as
			// float64), so they are refused here too, not only by the HTTP layer.
			{"raw attributes number beyond float64", directory.UserInput{Email: ptr("a@example.com"),
				RawAttributes: json.RawMessage(`{"n":1e999999}`)}, "invalid_request", "raw_attributes.n"},
			{"raw attributes nested number beyond float64", directory.UserInput{Email: ptr("a@example.com"),
				RawAttributes: json.RawMessage(`{"l":[1,{"m":-1e400}]}`)}, "invalid_request", "raw_attributes.l[1].m"},
			{"raw attributes too deep", directory.UserInput{Email: ptr("a@example.com"),
				RawAttributes: json.RawMessage(strings.Repeat(`{"a":`, 33) + `1` + strings.Repeat(`}`, 33))}, "invalid_request", "raw_attributes" + strings.Repeat(".a", 32)},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, err := e.svc.CreateUser(e.ctx, operator, e.pid, c.in)
				wantFailure(t, err, failure.Invalid, c.code, c.field)
			})
		}
	})
}

func TestCreateUser(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		u := must(e.svc.CreateUser(e.ctx, operator, e.pid, directory.UserInput{
			Email: ptr("  Bob@Example.COM "), Phone: ptr("+1 (415) 555-2671"), FirstName: ptr(" Bob "),
			Groups: &[]string{"eng", "eng", " ops "}, RawAttributes: json.RawMessage(`{"n": 12345678901234567890, "s": "x"}`),
		}))(t)
		if u.Email != "Bob@example.com" || u.Phone != "+14155552671" || u.FirstName != "Bob" {
			t.Errorf("normalised fields = %q %q %q", u.Email, u.Phone, u.FirstName)
		}
		if !u.Active || u.EmailVerified || u.ConnectionType != directory.ConnectionManualUser || u.ProjectID != e.pid {
			t.Errorf("defaults: %+v", u.User)
		}
		if !slices.Equal(u.Groups, []string{"eng", "ops"}) || len(u.Roles) != 0 || len(u.Tenants) != 0 {
			t.Errorf("groups %q roles %q tenants %v", u.Groups, u.Roles, u.Tenants)
		}
		got := must(e.svc.GetUser(e.ctx, e.pid, u.ID))(t)
		if got.Email != u.Email || !got.CreatedAt.Equal(u.CreatedAt) {
			t.Errorf("GetUser = %+v, want %+v", got.User, u.User)
		}
		// The service keeps large integers exact (reading them back exactly is the store's part).
		if n, _ := json.Marshal(u.RawAttributes["n"]); string(n) != "12345678901234567890" {
			t.Errorf("raw_attributes n = %s, want the exact integer", n)
		}

		// Emails that differ only in case are one address, in the domain and the local part alike.
		_, err := e.svc.CreateUser(e.ctx, operator, e.pid, directory.UserInput{Email: ptr("Bob@EXAMPLE.com")})
		wantFailure(t, err, failure.Conflict, "email_exists", "email")
		_, err = e.svc.CreateUser(e.ctx, operator, e.pid, directory.UserInput{Email: ptr("bob@example.com")})
		wantFailure(t, err, failure.Conflict, "email_exists", "email")
		_, err = e.svc.CreateUser(e.ctx, operator, e.pid, directory.UserInput{Email: ptr("other@example.com"), Phone: ptr("+14155552671")})
		wantFailure(t, err, failure.Conflict, "phone_exists", "phone_id")
		_, err = e.svc.CreateUser(e.ctx, operator, e.pid, directory.UserInput{Phone: ptr("+1 415 555 2671")})
		wantFailure(t, err, failure.Conflict, "phone_exists", "phone_id")

		byEmail := must(e.svc.GetUserByEmail(e.ctx, e.pid, " Bob@example.COM"))(t)
		if byEmail.ID != u.ID {
			t.Errorf("GetUserByEmail found %s, want %s", byEmail.ID, u.ID)
		}
		_, err = e.svc.GetUserByEmail(e.ctx, e.pid, "nobody@example.com")
		wantFailure(t, err, failure.NotFound, "user_not_found", "")
		_, err = e.svc.GetUserByEmail(e.ctx, e.pid, "not-an-email")
		wantFailure(t, err, failure.Invalid, "invalid_email", "email")
	})
}

func TestUserNotFound(t *testing.T) {
	sqlite(t, func(t *testing.T, e *env) {
		other := newEnv(t, e.st)
		foreign := other.user("x@example.com")
		for _, id := range []string{"", "abc", strings.Repeat("Z", 24), ids.New(), foreign.ID} {
			_, err := e.svc.GetUser(e.ctx, e.pid, id)
			wantFailure(t, err, failure.NotFound, "user_not_found", "")
			_, err = e.svc.UpdateUser(e.ctx, operator, e.pid, id, directory.UserInput{FirstName: ptr("x")})
			wantFailure(t, err, failure.NotFound, "user_not_found", "")
			wantFailure(t, e.svc.DeleteUser(e.ctx, operator, e.pid, id), failure.NotFound, "user_not_found", "")
			_, err = e.svc.ListLoginLogs(e.ctx, e.pid, id, directory.PageQuery{})
			wantFailure(t, err, failure.NotFound, "user_not_found", "")
			_, err = e.svc.ListUserOrganizations(e.ctx, e.pid, id)
			wantFailure(t, err, failure.NotFound, "user_not_found", "")
		}
		if _, err := other.svc.GetUser(e.ctx, other.pid, foreign.ID); err != nil {
			t.Errorf("the foreign user is gone from its own project: %v", err)
		}
	})
}

func TestUpdateUserIsPartial(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		u := must(e.svc.CreateUser(e.ctx, operator, e.pid, directory.UserInput{
			Email: ptr("carol@example.com"), FirstName: ptr("Carol"), LastName: ptr("King"),
			Groups: &[]string{"a"}, RawAttributes: json.RawMessage(`{"k":1}`), EmailVerified: ptr(true),
		}))(t)
		got := must(e.svc.UpdateUser(e.ctx, operator, e.pid, u.ID, directory.UserInput{LastName: ptr("Queen")}))(t)
		if got.FirstName != "Carol" || got.LastName != "Queen" || got.Email != u.Email || !got.EmailVerified ||
			!slices.Equal(got.Groups, []string{"a"}) || len(got.RawAttributes) != 1 || !got.CreatedAt.Equal(u.CreatedAt) {
			t.Errorf("after updating last_name only: %+v", got.User)
		}

		// A new email is not verified, unless the same request says so.
		got = must(e.svc.UpdateUser(e.ctx, operator, e.pid, u.ID, directory.UserInput{Email: ptr("carol@Example.org")}))(t)
		if got.Email != "carol@example.org" || got.EmailVerified {
			t.Errorf("after changing the email: %q verified=%v", got.Email, got.EmailVerified)
		}
		got = must(e.svc.SetEmailVerified(e.ctx, operator, e.pid, u.ID, true))(t)
		if !got.EmailVerified {
			t.Error("SetEmailVerified(true) left the email unverified")
		}

		_, err := e.svc.UpdateUser(e.ctx, operator, e.pid, u.ID, directory.UserInput{Email: ptr("")})
		wantFailure(t, err, failure.Invalid, "invalid_request", "email")
		got = must(e.svc.UpdateUser(e.ctx, operator, e.pid, u.ID, directory.UserInput{Email: ptr(""), Phone: ptr("+442079460958"),
			RawAttributes: json.RawMessage(`null`), Active: ptr(false)}))(t)
		if got.Email != "" || got.Phone != "+442079460958" || len(got.RawAttributes) != 0 || got.Active {
			t.Errorf("after swapping email for phone: %+v", got.User)
		}

		e.user("taken@example.com")
		_, err = e.svc.UpdateUser(e.ctx, operator, e.pid, u.ID, directory.UserInput{Email: ptr("taken@example.com")})
		wantFailure(t, err, failure.Conflict, "email_exists", "email")
		if again := must(e.svc.GetUser(e.ctx, e.pid, u.ID))(t); again.Email != "" {
			t.Errorf("a refused update changed the email to %q", again.Email)
		}
	})
}

func TestListUsersPaging(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		var want []string
		for i := range 5 {
			want = append(want, e.user(string(rune('a'+i))+"@example.com").ID)
		}
		slices.Sort(want) // pages are by id
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			page := must(e.svc.ListUsers(e.ctx, e.pid, directory.UserQuery{Page: directory.PageQuery{Limit: "2", Cursor: cursor}}))(t)
			for _, u := range page.Users {
				got = append(got, u.ID)
			}
			if page.NextCursor == "" {
				if pages != 2 || len(page.Users) != 1 {
					t.Errorf("last page is page %d with %d users, want page 2 with 1", pages, len(page.Users))
				}
				break
			}
			if len(page.Users) != 2 || pages > 2 {
				t.Fatalf("page %d has %d users and a next cursor", pages, len(page.Users))
			}
			cursor = page.NextCursor
		}
		if !slices.Equal(got, want) {
			t.Errorf("paged ids = %v, want %v", got, want)
		}

		// A page that ends exactly at the last row has no next cursor.
		page := must(e.svc.ListUsers(e.ctx, e.pid, directory.UserQuery{Page: directory.PageQuery{Limit: "5"}}))(t)
		if len(page.Users) != 5 || page.NextCursor != "" {
			t.Errorf("limit=5 of 5: %d users, next %q", len(page.Users), page.NextCursor)
		}
		page = must(e.svc.ListUsers(e.ctx, e.pid, directory.UserQuery{}))(t)
		if len(page.Users) != 5 || page.NextCursor != "" {
			t.Errorf("default limit: %d users, next %q", len(page.Users), page.NextCursor)
		}

		page = must(e.svc.ListUsers(e.ctx, e.pid, directory.UserQuery{Email: " C@EXAMPLE.COM "}))(t)
		if len(page.Users) != 1 || page.Users[0].Email != "c@example.com" {
			t.Errorf("email filter in another case: %v, want the one user", page.Users)
		}
		page = must(e.svc.ListUsers(e.ctx, e.pid, directory.UserQuery{Email: " c@EXAMPLE.COM "}))(t)
		if len(page.Users) != 1 || page.Users[0].Email != "c@example.com" {
			t.Errorf("email filter: %v", page.Users)
		}
	})
}

func TestPagingValidation(t *testing.T) {
	sqlite(t, func(t *testing.T, e *env) {
		for _, l := range []string{"0", "101", "-1", "abc", "1.5", "1e2"} {
			_, err := e.svc.ListUsers(e.ctx, e.pid, directory.UserQuery{Page: directory.PageQuery{Limit: l}})
			wantFailure(t, err, failure.Invalid, "invalid_limit", "limit")
			_, err = e.svc.ListRoles(e.ctx, e.pid, directory.PageQuery{Limit: l})
			wantFailure(t, err, failure.Invalid, "invalid_limit", "limit")
		}
		for _, l := range []string{"1", "100", " 7 "} {
			if _, err := e.svc.ListOrganizations(e.ctx, e.pid, directory.PageQuery{Limit: l}); err != nil {
				t.Errorf("limit %q: %v", l, err)
			}
		}
		b64 := base64.RawURLEncoding.EncodeToString
		for _, c := range []string{"!!!", b64([]byte("not-an-id")), b64([]byte(strings.Repeat("Z", 24))), ids.New()} {
			_, err := e.svc.ListUsers(e.ctx, e.pid, directory.UserQuery{Page: directory.PageQuery{Cursor: c}})
			wantFailure(t, err, failure.Invalid, "invalid_cursor", "cursor")
			_, err = e.svc.ListPermissions(e.ctx, e.pid, directory.PageQuery{Cursor: c})
			wantFailure(t, err, failure.Invalid, "invalid_cursor", "cursor")
		}
		if _, err := e.svc.ListUsers(e.ctx, e.pid, directory.UserQuery{Page: directory.PageQuery{Cursor: b64([]byte(ids.New()))}}); err != nil {
			t.Errorf("a well-formed cursor: %v", err)
		}
	})
}

func TestUserRolesAndMemberships(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		u := e.user("dana@example.com")
		acme, globex := e.org("Acme"), e.org("Globex")
		read, write := e.permission("Read"), e.permission("Write")
		viewer, editor := e.role("Viewer", read.ID), e.role("Editor", read.ID, write.ID)
		dormant := must(e.svc.CreateRole(e.ctx, operator, e.pid, directory.RoleInput{Name: ptr("Dormant"), Active: ptr(false)}))(t)

		got := must(e.svc.SetUserRoles(e.ctx, operator, e.pid, u.ID, directory.UserRolesInput{
			OrganizationID: acme.ID, RoleIDs: []string{editor.ID, viewer.ID, editor.ID, dormant.ID}}))(t)
		must(e.svc.SetUserRoles(e.ctx, operator, e.pid, u.ID, directory.UserRolesInput{OrganizationID: globex.ID, RoleIDs: []string{viewer.ID}}))(t)
		got = must(e.svc.GetUser(e.ctx, e.pid, u.ID))(t)

		// The inactive role is assigned but grants nothing, so the user view leaves it out.
		if !slices.Equal(got.Roles, []string{"editor", "viewer"}) {
			t.Errorf("roles = %q, want [editor viewer]", got.Roles)
		}
		if len(got.Tenants) != 2 {
			t.Fatalf("tenants = %+v, want 2", got.Tenants)
		}
		for _, tn := range got.Tenants {
			switch tn.OrganizationID {
			case acme.ID:
				if tn.OrganizationName != "Acme" || len(tn.Roles) != 2 {
					t.Errorf("acme tenant = %+v", tn)
				}
				for _, r := range tn.Roles {
					want := map[string][]string{editor.ID: {"read", "write"}, viewer.ID: {"read"}}[r.ID]
					if !slices.Equal(r.Permissions, want) {
						t.Errorf("role %s permissions = %q, want %q", r.Slug, r.Permissions, want)
					}
				}
			case globex.ID:
				if len(tn.Roles) != 1 || tn.Roles[0].ID != viewer.ID || tn.Roles[0].Name != "Viewer" {
					t.Errorf("globex tenant = %+v", tn)
				}
			default:
				t.Errorf("unexpected tenant %+v", tn)
			}
		}

		// The organization listings show every assigned role, the inactive one too.
		uos := must(e.svc.ListUserOrganizations(e.ctx, e.pid, u.ID))(t)
		if len(uos) != 2 {
			t.Fatalf("user organizations = %+v", uos)
		}
		for _, uo := range uos {
			if uo.ID == acme.ID && len(uo.Roles) != 3 {
				t.Errorf("acme roles = %+v, want 3", uo.Roles)
			}
		}
		members := must(e.svc.ListMembers(e.ctx, e.pid, acme.ID, directory.PageQuery{}))(t)
		if len(members.Members) != 1 || len(members.Members[0].RoleIDs) != 3 {
			t.Errorf("acme members = %+v", members.Members)
		}

		// An empty list removes every role but keeps the membership.
		got = must(e.svc.SetUserRoles(e.ctx, operator, e.pid, u.ID, directory.UserRolesInput{OrganizationID: globex.ID, RoleIDs: []string{}}))(t)
		if len(got.Tenants) != 2 || !slices.Equal(got.Roles, []string{"editor", "viewer"}) {
			t.Errorf("after clearing globex: roles %q tenants %d", got.Roles, len(got.Tenants))
		}

		// Deleting a role takes it from every membership.
		if err := e.svc.DeleteRole(e.ctx, operator, e.pid, editor.ID); err != nil {
			t.Fatal(err)
		}
		got = must(e.svc.GetUser(e.ctx, e.pid, u.ID))(t)
		if !slices.Equal(got.Roles, []string{"viewer"}) {
			t.Errorf("after deleting editor: roles %q", got.Roles)
		}

		errCases := []struct {
			name        string
			user        string
			in          directory.UserRolesInput
			kind        failure.Kind
			code, field string
		}{
			{"no organization", u.ID, directory.UserRolesInput{RoleIDs: []string{}}, failure.Invalid, "invalid_request", "organization_id"},
			{"no role list", u.ID, directory.UserRolesInput{OrganizationID: acme.ID}, failure.Invalid, "invalid_request", "role_id"},
			{"unknown user", ids.New(), directory.UserRolesInput{OrganizationID: acme.ID, RoleIDs: []string{}}, failure.NotFound, "user_not_found", ""},
			{"malformed user", "nope", directory.UserRolesInput{OrganizationID: acme.ID, RoleIDs: []string{}}, failure.NotFound, "user_not_found", ""},
			{"unknown organization", u.ID, directory.UserRolesInput{OrganizationID: ids.New(), RoleIDs: []string{}}, failure.NotFound, "organization_not_found", ""},
			{"unknown role", u.ID, directory.UserRolesInput{OrganizationID: acme.ID, RoleIDs: []string{viewer.ID, ids.New()}}, failure.NotFound, "role_not_found", "role_id"},
			{"deleted role", u.ID, directory.UserRolesInput{OrganizationID: acme.ID, RoleIDs: []string{editor.ID}}, failure.NotFound, "role_not_found", "role_id"},
			{"malformed role", u.ID, directory.UserRolesInput{OrganizationID: acme.ID, RoleIDs: []string{"owner"}}, failure.NotFound, "role_not_found", "role_id"},
		}
		for _, c := range errCases {
			t.Run(c.name, func(t *testing.T) {
				_, err := e.svc.SetUserRoles(e.ctx, operator, e.pid, c.user, c.in)
				wantFailure(t, err, c.kind, c.code, c.field)
			})
		}
		// A refused call wrote nothing.
		if got := must(e.svc.GetUser(e.ctx, e.pid, u.ID))(t); !slices.Equal(got.Roles, []string{"viewer"}) {
			t.Errorf("after refused calls: roles %q", got.Roles)
		}
	})
}

func TestListUsersResolvesRolesPerUser(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		acme := e.org("Acme")
		admin, dev := e.role("Admin"), e.role("Dev")
		a, b, c := e.user("a@example.com"), e.user("b@example.com"), e.user("c@example.com")
		must(e.svc.SetUserRoles(e.ctx, operator, e.pid, a.ID, directory.UserRolesInput{OrganizationID: acme.ID, RoleIDs: []string{admin.ID}}))(t)
		must(e.svc.SetUserRoles(e.ctx, operator, e.pid, b.ID, directory.UserRolesInput{OrganizationID: acme.ID, RoleIDs: []string{dev.ID, admin.ID}}))(t)
		page := must(e.svc.ListUsers(e.ctx, e.pid, directory.UserQuery{}))(t)
		want := map[string][]string{a.ID: {"admin"}, b.ID: {"admin", "dev"}, c.ID: {}}
		for _, u := range page.Users {
			if !slices.Equal(u.Roles, want[u.ID]) {
				t.Errorf("user %s roles = %q, want %q", u.Email, u.Roles, want[u.ID])
			}
			if u.ID == c.ID && (u.Tenants == nil || len(u.Tenants) != 0) {
				t.Errorf("user without memberships has tenants %#v", u.Tenants)
			}
		}
	})
}

func TestLoginLogs(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		u := e.user("logs@example.com")
		base := time.Now().UTC().Truncate(time.Second)
		var want []string
		for i := range 3 {
			id := ids.New()
			// The store pages by id; make creation order and id order agree.
			id = id[:8] + strings.Repeat("0", 15) + string(rune('1'+i))
			l := store.LoginLog{ID: id, ProjectID: e.pid, UserID: u.ID, IPAddress: "192.0.2.1", ConnectionType: "MagicLink",
				CreatedAt: base.Add(time.Duration(i) * time.Minute)}
			if err := e.st.AddLoginLog(e.ctx, l); err != nil {
				t.Fatal(err)
			}
			want = append([]string{id}, want...) // newest first
		}
		p1 := must(e.svc.ListLoginLogs(e.ctx, e.pid, u.ID, directory.PageQuery{Limit: "2"}))(t)
		p2 := must(e.svc.ListLoginLogs(e.ctx, e.pid, u.ID, directory.PageQuery{Limit: "2", Cursor: p1.NextCursor}))(t)
		var got []string
		for _, l := range append(p1.Logs, p2.Logs...) {
			got = append(got, l.ID)
		}
		if !slices.Equal(got, want) || p1.NextCursor == "" || p2.NextCursor != "" {
			t.Errorf("logs = %v (next %q, %q), want %v", got, p1.NextCursor, p2.NextCursor, want)
		}
		if p1.Logs[0].ConnectionType != "MagicLink" {
			t.Errorf("log = %+v", p1.Logs[0])
		}
	})
}

func TestDeleteUser(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		u := e.user("gone@example.com")
		acme := e.org("Acme")
		must(e.svc.AddMembers(e.ctx, operator, e.pid, acme.ID, []string{u.ID}))(t)
		if err := e.svc.DeleteUser(e.ctx, operator, e.pid, u.ID); err != nil {
			t.Fatal(err)
		}
		_, err := e.svc.GetUser(e.ctx, e.pid, u.ID)
		wantFailure(t, err, failure.NotFound, "user_not_found", "")
		wantFailure(t, e.svc.DeleteUser(e.ctx, operator, e.pid, u.ID), failure.NotFound, "user_not_found", "")
		if m := must(e.svc.ListMembers(e.ctx, e.pid, acme.ID, directory.PageQuery{}))(t); len(m.Members) != 0 {
			t.Errorf("members after deleting the user: %+v", m.Members)
		}
		// The email is free again.
		e.user("gone@example.com")
	})
}

// countingStore is the real store with a count of the calls that a user listing makes. It
// forwards every call; it only watches.
type countingStore struct {
	store.Store
	calls map[string]int
}

func (c *countingStore) ListUsers(ctx context.Context, pid string, f store.UserFilter, p store.Page) ([]store.User, error) {
	c.calls["ListUsers"]++
	return c.Store.ListUsers(ctx, pid, f, p)
}

func (c *countingStore) ListMemberships(ctx context.Context, pid string, userIDs []string) ([]store.Membership, error) {
	c.calls["ListMemberships"]++
	return c.Store.ListMemberships(ctx, pid, userIDs)
}

func (c *countingStore) GetOrganization(ctx context.Context, pid, id string) (store.Organization, error) {
	c.calls["GetOrganization"]++
	return c.Store.GetOrganization(ctx, pid, id)
}

func (c *countingStore) GetRoles(ctx context.Context, pid string, ids []string) ([]store.Role, error) {
	c.calls["GetRoles"]++
	return c.Store.GetRoles(ctx, pid, ids)
}

func (c *countingStore) GetPermissions(ctx context.Context, pid string, ids []string) ([]store.Permission, error) {
	c.calls["GetPermissions"]++
	return c.Store.GetPermissions(ctx, pid, ids)
}

func (c *countingStore) GetUser(ctx context.Context, pid, id string) (store.User, error) {
	c.calls["GetUser"]++
	return c.Store.GetUser(ctx, pid, id)
}

func TestListUsersQueriesPerPage(t *testing.T) {
	sqlite(t, func(t *testing.T, e *env) {
		acme := e.org("Acme")
		perm := e.permission("Read")
		admin, dev := e.role("Admin", perm.ID), e.role("Dev", perm.ID)
		for i := range 10 {
			u := e.user(strings.Repeat("u", i+1) + "@example.com")
			must(e.svc.SetUserRoles(e.ctx, operator, e.pid, u.ID, directory.UserRolesInput{OrganizationID: acme.ID, RoleIDs: []string{admin.ID, dev.ID}}))(t)
		}
		cs := &countingStore{Store: e.st, calls: map[string]int{}}
		svc := directory.New(directory.Deps{Store: cs})
		page := must(svc.ListUsers(e.ctx, e.pid, directory.UserQuery{}))(t)
		if len(page.Users) != 10 || !slices.Equal(page.Users[9].Roles, []string{"admin", "dev"}) {
			t.Fatalf("page = %d users, last roles %q", len(page.Users), page.Users[9].Roles)
		}
		want := map[string]int{"ListUsers": 1, "ListMemberships": 1, "GetOrganization": 1, "GetRoles": 1, "GetPermissions": 1}
		if !maps.Equal(cs.calls, want) {
			t.Errorf("store calls for a page of 10 users = %v, want %v", cs.calls, want)
		}
	})
}

// TestLookalikeEmailsAreNotTheirVictims creates kim and bill, then users with every kind of
// look-alike and case variant of their addresses: case and IDNA variants are duplicates (409),
// Unicode look-alikes are refused (400 invalid_email, naming the field) and, where the project
// allows them, become accounts of their own; neither ever updates or reaches kim or bill.
func TestLookalikeEmailsAreNotTheirVictims(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		kim := must(e.svc.CreateUser(e.ctx, operator, e.pid, directory.UserInput{Email: ptr("kim@acme.example")}))(t)
		bill := must(e.svc.CreateUser(e.ctx, operator, e.pid, directory.UserInput{Email: ptr("bill@b\u00fccher.example")}))(t)
		for _, dup := range []string{"KIM@acme.example", "Kim@ACME.EXAMPLE.", "bill@xn--bcher-kva.example", "Bill@B\u00dcCHER.example"} {
			_, err := e.svc.CreateUser(e.ctx, operator, e.pid, directory.UserInput{Email: ptr(dup)})
			wantFailure(t, err, failure.Conflict, "email_exists", "email")
		}
		lookalikes := []string{"\u212aim@acme.example", "b\u0130ll@b\u00fccher.example", "k\u0131m@acme.example",
			"\u017fkim@acme.example", "\uff4bim@acme.example", "bi\ufb00@acme.example", "k\u0456m@acme.example",
			"\u03baim@acme.example", "kim@\u0430cme.example"}
		for _, l := range lookalikes {
			_, err := e.svc.CreateUser(e.ctx, operator, e.pid, directory.UserInput{Email: ptr(l)})
			wantFailure(t, err, failure.Invalid, "invalid_email", "email")
			// Nor may an existing user take one on.
			_, err = e.svc.UpdateUser(e.ctx, operator, e.pid, bill.ID, directory.UserInput{Email: ptr(l)})
			wantFailure(t, err, failure.Invalid, "invalid_email", "email")
		}
		// A project that opts in gets them as accounts of their own.
		allowing := directory.New(directory.Deps{Store: e.st,
			AllowLookalikes: func(context.Context, string) (bool, error) { return true, nil }})
		for _, l := range lookalikes {
			u := must(allowing.CreateUser(e.ctx, operator, e.pid, directory.UserInput{Email: ptr(l)}))(t)
			if u.ID == kim.ID || u.ID == bill.ID {
				t.Fatalf("%q became %s", l, u.ID)
			}
			found := must(e.svc.GetUserByEmail(e.ctx, e.pid, l))(t)
			if found.ID != u.ID {
				t.Errorf("GetUserByEmail(%q) = %s, want its own user %s", l, found.ID, u.ID)
			}
		}
		if got := must(e.svc.GetUserByEmail(e.ctx, e.pid, "KIM@acme.example."))(t); got.ID != kim.ID || got.Email != "kim@acme.example" {
			t.Errorf("kim = %+v", got.User)
		}
	})
}
