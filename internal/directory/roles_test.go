package directory_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/store"
)

func TestRoleValidation(t *testing.T) {
	sqlite(t, func(t *testing.T, e *env) {
		cases := []struct {
			name        string
			in          directory.RoleInput
			kind        failure.Kind
			code, field string
		}{
			{"no name", directory.RoleInput{Slug: ptr("x")}, failure.Invalid, "invalid_request", "name"},
			{"blank name", directory.RoleInput{Name: ptr(" ")}, failure.Invalid, "invalid_request", "name"},
			{"upper-case slug", directory.RoleInput{Name: ptr("A"), Slug: ptr("Admin")}, failure.Invalid, "invalid_request", "slug"},
			{"slug with space", directory.RoleInput{Name: ptr("A"), Slug: ptr("a b")}, failure.Invalid, "invalid_request", "slug"},
			{"slug starting with dash", directory.RoleInput{Name: ptr("A"), Slug: ptr("-a")}, failure.Invalid, "invalid_request", "slug"},
			{"slug too long", directory.RoleInput{Name: ptr("A"), Slug: ptr(strings.Repeat("a", 65))}, failure.Invalid, "invalid_request", "slug"},
			{"empty slug", directory.RoleInput{Name: ptr("A"), Slug: ptr("")}, failure.Invalid, "invalid_request", "slug"},
			{"underivable slug", directory.RoleInput{Name: ptr("管理者")}, failure.Invalid, "invalid_request", "slug"},
			{"long description", directory.RoleInput{Name: ptr("A"), Description: ptr(strings.Repeat("d", 1001))}, failure.Invalid, "invalid_request", "description"},
			{"unknown permission", directory.RoleInput{Name: ptr("A"), PermissionIDs: &[]string{ids.New()}}, failure.NotFound, "permission_not_found", "permission_id"},
			{"malformed permission", directory.RoleInput{Name: ptr("A"), PermissionIDs: &[]string{"read"}}, failure.NotFound, "permission_not_found", "permission_id"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, err := e.svc.CreateRole(e.ctx, operator, e.pid, c.in)
				wantFailure(t, err, c.kind, c.code, c.field)
			})
		}
		_, err := e.svc.CreatePermission(e.ctx, operator, e.pid, directory.PermissionInput{Slug: ptr("x")})
		wantFailure(t, err, failure.Invalid, "invalid_request", "name")
		_, err = e.svc.CreatePermission(e.ctx, operator, e.pid, directory.PermissionInput{Name: ptr("X"), Slug: ptr("X")})
		wantFailure(t, err, failure.Invalid, "invalid_request", "slug")
	})
}

func TestRoleCRUD(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		read, write := e.permission("Read Users"), e.permission("write:users")
		if read.Slug != "read-users" || write.Slug != "write-users" {
			t.Errorf("derived permission slugs %q %q", read.Slug, write.Slug)
		}
		r := must(e.svc.CreateRole(e.ctx, operator, e.pid, directory.RoleInput{
			Name: ptr(" Support Agent "), Description: ptr("Helps.\nKindly."), PermissionIDs: &[]string{write.ID, read.ID, read.ID},
		}))(t)
		wantPerms := []string{read.ID, write.ID}
		slices.Sort(wantPerms)
		if r.Name != "Support Agent" || r.Slug != "support-agent" || !r.Active || !slices.Equal(r.PermissionIDs, wantPerms) {
			t.Errorf("created = %+v", r)
		}
		_, err := e.svc.CreateRole(e.ctx, operator, e.pid, directory.RoleInput{Name: ptr("Other"), Slug: ptr("support-agent")})
		wantFailure(t, err, failure.Conflict, "slug_exists", "slug")
		_, err = e.svc.CreatePermission(e.ctx, operator, e.pid, directory.PermissionInput{Name: ptr("read users")})
		wantFailure(t, err, failure.Conflict, "slug_exists", "slug")

		// A partial update: the new name keeps the slug; absent fields stay.
		got := must(e.svc.UpdateRole(e.ctx, operator, e.pid, r.ID, directory.RoleInput{Name: ptr("Agent")}))(t)
		if got.Name != "Agent" || got.Slug != "support-agent" || got.Description != "Helps.\nKindly." || len(got.PermissionIDs) != 2 {
			t.Errorf("after renaming = %+v", got)
		}
		got = must(e.svc.UpdateRole(e.ctx, operator, e.pid, r.ID, directory.RoleInput{PermissionIDs: &[]string{}, Active: ptr(false), Slug: ptr("agent")}))(t)
		if len(got.PermissionIDs) != 0 || got.Active || got.Slug != "agent" || got.Name != "Agent" {
			t.Errorf("after clearing = %+v", got)
		}
		if read := must(e.svc.GetRole(e.ctx, e.pid, r.ID))(t); read.Slug != "agent" || read.PermissionIDs == nil {
			t.Errorf("read back = %#v", read)
		}
		other := e.role("Other")
		_, err = e.svc.UpdateRole(e.ctx, operator, e.pid, other.ID, directory.RoleInput{Slug: ptr("agent")})
		wantFailure(t, err, failure.Conflict, "slug_exists", "slug")
		_, err = e.svc.UpdateRole(e.ctx, operator, e.pid, other.ID, directory.RoleInput{PermissionIDs: &[]string{read.ID, ids.New()}})
		wantFailure(t, err, failure.NotFound, "permission_not_found", "permission_id")
		if o := must(e.svc.GetRole(e.ctx, e.pid, other.ID))(t); o.Slug != "other" || len(o.PermissionIDs) != 0 {
			t.Errorf("refused updates changed the role: %+v", o)
		}

		p := must(e.svc.UpdatePermission(e.ctx, operator, e.pid, read.ID, directory.PermissionInput{Description: ptr("See users")}))(t)
		if p.Name != "Read Users" || p.Slug != "read-users" || p.Description != "See users" {
			t.Errorf("permission after update = %+v", p)
		}
		_, err = e.svc.UpdatePermission(e.ctx, operator, e.pid, read.ID, directory.PermissionInput{Slug: ptr("write-users")})
		wantFailure(t, err, failure.Conflict, "slug_exists", "slug")

		for _, id := range []string{"x", ids.New()} {
			_, err = e.svc.GetRole(e.ctx, e.pid, id)
			wantFailure(t, err, failure.NotFound, "role_not_found", "")
			_, err = e.svc.UpdateRole(e.ctx, operator, e.pid, id, directory.RoleInput{Name: ptr("n")})
			wantFailure(t, err, failure.NotFound, "role_not_found", "")
			wantFailure(t, e.svc.DeleteRole(e.ctx, operator, e.pid, id), failure.NotFound, "role_not_found", "")
			_, err = e.svc.GetPermission(e.ctx, e.pid, id)
			wantFailure(t, err, failure.NotFound, "permission_not_found", "")
			_, err = e.svc.UpdatePermission(e.ctx, operator, e.pid, id, directory.PermissionInput{Name: ptr("n")})
			wantFailure(t, err, failure.NotFound, "permission_not_found", "")
			wantFailure(t, e.svc.DeletePermission(e.ctx, operator, e.pid, id), failure.NotFound, "permission_not_found", "")
		}
	})
}

func TestDeletingAPermissionUpdatesRoles(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		read, write := e.permission("Read"), e.permission("Write")
		editor := e.role("Editor", read.ID, write.ID)
		u := e.user("p@example.com")
		acme := e.org("Acme")
		must(e.svc.SetUserRoles(e.ctx, operator, e.pid, u.ID, directory.UserRolesInput{OrganizationID: acme.ID, RoleIDs: []string{editor.ID}}))(t)

		if err := e.svc.DeletePermission(e.ctx, operator, e.pid, write.ID); err != nil {
			t.Fatal(err)
		}
		if r := must(e.svc.GetRole(e.ctx, e.pid, editor.ID))(t); !slices.Equal(r.PermissionIDs, []string{read.ID}) {
			t.Errorf("role permissions after deleting write = %v", r.PermissionIDs)
		}
		got := must(e.svc.GetUser(e.ctx, e.pid, u.ID))(t)
		if len(got.Tenants) != 1 || len(got.Tenants[0].Roles) != 1 || !slices.Equal(got.Tenants[0].Roles[0].Permissions, []string{"read"}) {
			t.Errorf("tenants after deleting write = %+v", got.Tenants)
		}
		page := must(e.svc.ListPermissions(e.ctx, e.pid, directory.PageQuery{}))(t)
		if len(page.Permissions) != 1 || page.Permissions[0].ID != read.ID || page.NextCursor != "" {
			t.Errorf("permissions = %+v", page)
		}
	})
}

func TestSeedRoles(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		err := e.st.InTx(e.ctx, func(tx store.Store) error {
			return e.svc.SeedRoles(context.Background(), tx, e.pid)
		})
		if err != nil {
			t.Fatal(err)
		}
		page := must(e.svc.ListRoles(e.ctx, e.pid, directory.PageQuery{}))(t)
		var slugs []string
		for _, r := range page.Roles {
			slugs = append(slugs, r.Name+"/"+r.Slug)
			if !r.Active || r.PermissionIDs == nil || r.ProjectID != e.pid {
				t.Errorf("seeded role = %#v", r)
			}
		}
		slices.Sort(slugs)
		if want := []string{"Admin/admin", "Developer/developer", "Owner/owner"}; !slices.Equal(slugs, want) {
			t.Errorf("seeded roles = %v, want %v", slugs, want)
		}
		// The seeded slugs are taken; a project's own roles cannot shadow them.
		_, err = e.svc.CreateRole(e.ctx, operator, e.pid, directory.RoleInput{Name: ptr("Owner")})
		wantFailure(t, err, failure.Conflict, "slug_exists", "slug")
		if len(directory.DefaultRoles()) != 3 {
			t.Errorf("DefaultRoles = %v", directory.DefaultRoles())
		}
	})
}
