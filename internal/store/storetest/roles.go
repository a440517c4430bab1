package storetest

import (
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

func testRoles(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		p1, p2, p3 := f.perm(), f.perm(), f.perm()
		r := store.Role{
			ID: newID(), ProjectID: f.pid,
			Name: "Billing admin", Slug: "billing-admin", Description: "manages invoices",
			PermissionIDs: []string{p3.ID, p1.ID, p2.ID}, // unsorted on purpose
			Active:        true,
			CreatedAt:     at(-time.Hour), UpdatedAt: at(7 * time.Microsecond),
		}
		must(t, st.CreateRole(f.ctx, r), "CreateRole")
		empty := f.role()
		inactive := f.role(p2.ID)
		inactive.Active = false
		must(t, st.UpdateRole(f.ctx, inactive), "UpdateRole(inactive)")

		want := r
		want.PermissionIDs = sortedCopy(r.PermissionIDs)
		got, err := st.GetRole(f.ctx, f.pid, r.ID)
		must(t, err, "GetRole")
		wantEqual(t, want, got, "GetRole (PermissionIDs sorted)")
		got, err = st.GetRole(f.ctx, f.pid, empty.ID)
		must(t, err, "GetRole(no permissions)")
		wantEqual(t, empty, got, "GetRole of a role with no permissions")

		all := []store.Role{want, empty, inactive}
		sortByID(all)
		list, err := st.ListRoles(f.ctx, f.pid, store.Page{Limit: 10})
		must(t, err, "ListRoles")
		wantRecords(t, all, list, "ListRoles")

		some, err := st.GetRoles(f.ctx, f.pid, []string{inactive.ID, newID(), want.ID})
		must(t, err, "GetRoles")
		pick := []store.Role{inactive, want}
		sortByID(pick)
		wantRecords(t, pick, some, "GetRoles of two roles and an unknown id (by id)")
		none, err := st.GetRoles(f.ctx, f.pid, nil)
		must(t, err, "GetRoles(no ids)")
		wantIDs(t, nil, idsOf(none), "GetRoles(no ids)")
	})

	t.Run("Unknown", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		f.role()
		id := newID()
		_, err := st.GetRole(f.ctx, f.pid, id)
		wantNotFound(t, err, "GetRole(unknown id)")
		r := store.Role{ID: id, ProjectID: f.pid, Name: "x", Slug: "x-" + id, CreatedAt: now(), UpdatedAt: now()}
		wantNotFound(t, st.UpdateRole(f.ctx, r), "UpdateRole(unknown id)")
		_, err = st.GetRole(f.ctx, f.pid, id)
		wantNotFound(t, err, "GetRole after UpdateRole(unknown id): it must not create")
		wantNotFound(t, st.DeleteRole(f.ctx, f.pid, id), "DeleteRole(unknown id)")
	})

	t.Run("DuplicateSlug", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		g := inNewProject(t, st)
		a, b := f.role(), f.role()
		dup := store.Role{ID: newID(), ProjectID: f.pid, Name: "dup", Slug: a.Slug, CreatedAt: now(), UpdatedAt: now()}
		wantConflict(t, st.CreateRole(f.ctx, dup), "CreateRole with a slug already in the project")
		_, err := st.GetRole(f.ctx, f.pid, dup.ID)
		wantNotFound(t, err, "GetRole of a role refused with ErrConflict")
		upd := b
		upd.Slug = a.Slug
		wantConflict(t, st.UpdateRole(f.ctx, upd), "UpdateRole to another role's slug")
		got, err := st.GetRole(f.ctx, f.pid, b.ID)
		must(t, err, "GetRole")
		wantEqual(t, b, got, "role after the refused UpdateRole")

		same := store.Role{ID: newID(), ProjectID: g.pid, Name: "same", Slug: a.Slug, CreatedAt: now(), UpdatedAt: now()}
		must(t, st.CreateRole(f.ctx, same), "CreateRole with the same slug in another project")
	})

	t.Run("UnknownPermission", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		p := f.perm()
		r := store.Role{ID: newID(), ProjectID: f.pid, Name: "r", Slug: "r", PermissionIDs: sortedCopy([]string{p.ID, newID()}), CreatedAt: now(), UpdatedAt: now()}
		wantNotFound(t, st.CreateRole(f.ctx, r), "CreateRole with an unknown permission")
		_, err := st.GetRole(f.ctx, f.pid, r.ID)
		wantNotFound(t, err, "GetRole after CreateRole failed on an unknown permission (no role may be written)")
		list, err := st.ListRoles(f.ctx, f.pid, store.Page{Limit: 10})
		must(t, err, "ListRoles")
		wantIDs(t, nil, idsOf(list), "ListRoles after CreateRole failed")
		// The slug is still free: nothing half-written holds it.
		r.PermissionIDs = []string{p.ID}
		must(t, st.CreateRole(f.ctx, r), "CreateRole again with only known permissions")

		upd := r
		upd.Name = "changed"
		upd.PermissionIDs = sortedCopy([]string{p.ID, newID()})
		wantNotFound(t, st.UpdateRole(f.ctx, upd), "UpdateRole with an unknown permission")
		got, err := st.GetRole(f.ctx, f.pid, r.ID)
		must(t, err, "GetRole")
		wantEqual(t, r, got, "role after UpdateRole failed on an unknown permission (nothing may be written)")
	})

	t.Run("Update", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		p1, p2, p3 := f.perm(), f.perm(), f.perm()
		orig := f.role(p1.ID, p2.ID)
		upd := store.Role{
			ID: orig.ID, ProjectID: orig.ProjectID,
			Name: "Renamed", Slug: "renamed-" + orig.ID, Description: "new description",
			PermissionIDs: []string{p3.ID, p2.ID},
			Active:        false,
			CreatedAt:     at(-time.Hour), // must be ignored
			UpdatedAt:     at(time.Hour),
		}
		must(t, st.UpdateRole(f.ctx, upd), "UpdateRole")
		want := upd
		want.CreatedAt = orig.CreatedAt
		want.PermissionIDs = sortedCopy(upd.PermissionIDs)
		got, err := st.GetRole(f.ctx, f.pid, orig.ID)
		must(t, err, "GetRole")
		wantEqual(t, want, got, "GetRole after UpdateRole (the permission set replaced)")

		upd.PermissionIDs = nil
		must(t, st.UpdateRole(f.ctx, upd), "UpdateRole with no permissions")
		want.PermissionIDs = nil
		got, err = st.GetRole(f.ctx, f.pid, orig.ID)
		must(t, err, "GetRole")
		wantEqual(t, want, got, "GetRole after UpdateRole emptied the permission set")
		for _, p := range []store.Permission{p1, p2, p3} {
			if _, err := st.GetPermission(f.ctx, f.pid, p.ID); err != nil {
				t.Errorf("GetPermission after UpdateRole dropped it from the role: %v", err)
			}
		}
	})

	t.Run("DeleteRemovesFromMemberships", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		o := f.org()
		u1, u2 := f.user(), f.user()
		r1, r2 := f.role(), f.role()
		must(t, st.SetMemberRoles(f.ctx, f.pid, o.ID, u1.ID, []string{r1.ID, r2.ID}, at(0)), "SetMemberRoles(u1)")
		must(t, st.SetMemberRoles(f.ctx, f.pid, o.ID, u2.ID, []string{r1.ID}, at(0)), "SetMemberRoles(u2)")

		must(t, st.DeleteRole(f.ctx, f.pid, r1.ID), "DeleteRole")
		_, err := st.GetRole(f.ctx, f.pid, r1.ID)
		wantNotFound(t, err, "GetRole after DeleteRole")
		wantNotFound(t, st.DeleteRole(f.ctx, f.pid, r1.ID), "DeleteRole a second time")
		want := []store.Membership{
			{ProjectID: f.pid, OrganizationID: o.ID, UserID: u1.ID, RoleIDs: []string{r2.ID}, CreatedAt: at(0)},
			{ProjectID: f.pid, OrganizationID: o.ID, UserID: u2.ID, CreatedAt: at(0)},
		}
		sortMemberships(want)
		wantMemberships(t, want, f.membersOf(o.ID), "ListMembers after DeleteRole (the role gone, the memberships kept)")

		// A role created again with the same id must not reappear in the memberships.
		must(t, st.CreateRole(f.ctx, r1), "CreateRole with the deleted role's id")
		wantMemberships(t, want, f.membersOf(o.ID), "ListMembers after re-creating a role with a deleted role's id")
	})
}

func testPermissions(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		p := store.Permission{
			ID: newID(), ProjectID: f.pid,
			Name: "Read invoices", Slug: "invoices:read", Description: "may read invoices",
			CreatedAt: at(-time.Hour), UpdatedAt: at(3 * time.Microsecond),
		}
		must(t, st.CreatePermission(f.ctx, p), "CreatePermission")
		q := f.perm()
		got, err := st.GetPermission(f.ctx, f.pid, p.ID)
		must(t, err, "GetPermission")
		wantEqual(t, p, got, "GetPermission")

		all := []store.Permission{p, q}
		sortByID(all)
		list, err := st.ListPermissions(f.ctx, f.pid, store.Page{Limit: 10})
		must(t, err, "ListPermissions")
		wantRecords(t, all, list, "ListPermissions")
		some, err := st.GetPermissions(f.ctx, f.pid, []string{q.ID, newID(), p.ID})
		must(t, err, "GetPermissions")
		wantRecords(t, all, some, "GetPermissions of two permissions and an unknown id (by id)")
		none, err := st.GetPermissions(f.ctx, f.pid, nil)
		must(t, err, "GetPermissions(no ids)")
		wantIDs(t, nil, idsOf(none), "GetPermissions(no ids)")
	})

	t.Run("Unknown", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		f.perm()
		id := newID()
		_, err := st.GetPermission(f.ctx, f.pid, id)
		wantNotFound(t, err, "GetPermission(unknown id)")
		p := store.Permission{ID: id, ProjectID: f.pid, Name: "x", Slug: "x-" + id, CreatedAt: now(), UpdatedAt: now()}
		wantNotFound(t, st.UpdatePermission(f.ctx, p), "UpdatePermission(unknown id)")
		_, err = st.GetPermission(f.ctx, f.pid, id)
		wantNotFound(t, err, "GetPermission after UpdatePermission(unknown id): it must not create")
		wantNotFound(t, st.DeletePermission(f.ctx, f.pid, id), "DeletePermission(unknown id)")
	})

	t.Run("DuplicateSlug", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		g := inNewProject(t, st)
		a, b := f.perm(), f.perm()
		dup := store.Permission{ID: newID(), ProjectID: f.pid, Name: "dup", Slug: a.Slug, CreatedAt: now(), UpdatedAt: now()}
		wantConflict(t, st.CreatePermission(f.ctx, dup), "CreatePermission with a slug already in the project")
		_, err := st.GetPermission(f.ctx, f.pid, dup.ID)
		wantNotFound(t, err, "GetPermission of a permission refused with ErrConflict")
		upd := b
		upd.Slug = a.Slug
		wantConflict(t, st.UpdatePermission(f.ctx, upd), "UpdatePermission to another permission's slug")
		got, err := st.GetPermission(f.ctx, f.pid, b.ID)
		must(t, err, "GetPermission")
		wantEqual(t, b, got, "permission after the refused UpdatePermission")

		same := store.Permission{ID: newID(), ProjectID: g.pid, Name: "same", Slug: a.Slug, CreatedAt: now(), UpdatedAt: now()}
		must(t, st.CreatePermission(f.ctx, same), "CreatePermission with the same slug in another project")
	})

	t.Run("Update", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		orig := f.perm()
		upd := store.Permission{
			ID: orig.ID, ProjectID: orig.ProjectID,
			Name: "Renamed", Slug: "renamed-" + orig.ID, Description: "",
			CreatedAt: at(-time.Hour), // must be ignored
			UpdatedAt: at(time.Hour),
		}
		must(t, st.UpdatePermission(f.ctx, upd), "UpdatePermission")
		want := upd
		want.CreatedAt = orig.CreatedAt
		got, err := st.GetPermission(f.ctx, f.pid, orig.ID)
		must(t, err, "GetPermission")
		wantEqual(t, want, got, "GetPermission after UpdatePermission (created_at kept)")
	})

	t.Run("DeleteRemovesFromRoles", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		p1, p2 := f.perm(), f.perm()
		r1 := f.role(p1.ID, p2.ID)
		r2 := f.role(p1.ID)
		r3 := f.role(p2.ID)
		must(t, st.DeletePermission(f.ctx, f.pid, p1.ID), "DeletePermission")
		_, err := st.GetPermission(f.ctx, f.pid, p1.ID)
		wantNotFound(t, err, "GetPermission after DeletePermission")
		wantNotFound(t, st.DeletePermission(f.ctx, f.pid, p1.ID), "DeletePermission a second time")

		r1.PermissionIDs = []string{p2.ID}
		r2.PermissionIDs = nil
		want := []store.Role{r1, r2, r3}
		sortByID(want)
		got, err := st.ListRoles(f.ctx, f.pid, store.Page{Limit: 10})
		must(t, err, "ListRoles")
		wantRecords(t, want, got, "ListRoles after DeletePermission (the permission gone from every role, the roles kept)")

		// A permission created again with the same id must not reappear in the roles.
		must(t, st.CreatePermission(f.ctx, p1), "CreatePermission with the deleted permission's id")
		got, err = st.GetRoles(f.ctx, f.pid, idsOf(want))
		must(t, err, "GetRoles")
		wantRecords(t, want, got, "GetRoles after re-creating a permission with a deleted permission's id")
	})
}
