package storetest

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

func testOrganizations(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		a := f.org(func(o *store.Organization) {
			o.WhiteListDomains = []string{"acme.com", "acme.co.uk", "corp.acme.com"}
			o.AllowProfilesOutsideOrganization = true
			o.MFAPolicy = "required"
			o.CreatedAt, o.UpdatedAt = at(-time.Hour), at(123*time.Microsecond)
		})
		b := f.org(func(o *store.Organization) {
			o.Domain, o.WorkspaceName, o.WhiteListDomains = "", "", nil
			o.AllowProfilesOutsideOrganization, o.Active = false, false
			o.MFAPolicy = "" // follows the project's policy
		})
		for _, o := range []store.Organization{a, b} {
			got, err := st.GetOrganization(f.ctx, f.pid, o.ID)
			must(t, err, "GetOrganization(%s)", o.ID)
			wantEqual(t, o, got, "GetOrganization(%s)", o.ID)
		}
		got, err := st.ListOrganizations(f.ctx, f.pid, store.Page{Limit: 10})
		must(t, err, "ListOrganizations")
		want := []store.Organization{a, b}
		sortByID(want)
		wantRecords(t, want, got, "ListOrganizations")
	})

	t.Run("Unknown", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		f.org()
		id := newID()
		_, err := st.GetOrganization(f.ctx, f.pid, id)
		wantNotFound(t, err, "GetOrganization(unknown id)")
		o := store.Organization{ID: id, ProjectID: f.pid, Name: "x", CreatedAt: now(), UpdatedAt: now()}
		wantNotFound(t, st.UpdateOrganization(f.ctx, o), "UpdateOrganization(unknown id)")
		_, err = st.GetOrganization(f.ctx, f.pid, id)
		wantNotFound(t, err, "GetOrganization after UpdateOrganization(unknown id): it must not create")
		wantNotFound(t, st.DeleteOrganization(f.ctx, f.pid, id), "DeleteOrganization(unknown id)")
	})

	t.Run("Update", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		orig := f.org(func(o *store.Organization) {
			o.WhiteListDomains = []string{"a.com", "b.com"}
			o.MFAPolicy = "off"
		})
		upd := store.Organization{
			ID: orig.ID, ProjectID: orig.ProjectID,
			Name: "Renamed", Domain: "renamed.example", WorkspaceName: "renamed",
			WhiteListDomains:                 []string{"c.com"},
			AllowProfilesOutsideOrganization: true,
			Active:                           false,
			MFAPolicy:                        "optional",
			CreatedAt:                        at(-time.Hour), // must be ignored
			UpdatedAt:                        at(time.Hour),
		}
		must(t, st.UpdateOrganization(f.ctx, upd), "UpdateOrganization")
		want := upd
		want.CreatedAt = orig.CreatedAt
		got, err := st.GetOrganization(f.ctx, f.pid, orig.ID)
		must(t, err, "GetOrganization")
		wantEqual(t, want, got, "GetOrganization after UpdateOrganization")
		list, err := st.ListOrganizations(f.ctx, f.pid, store.Page{Limit: 10})
		must(t, err, "ListOrganizations")
		wantRecords(t, []store.Organization{want}, list, "ListOrganizations after UpdateOrganization")

		upd.WhiteListDomains, upd.AllowProfilesOutsideOrganization, upd.MFAPolicy = nil, false, ""
		must(t, st.UpdateOrganization(f.ctx, upd), "UpdateOrganization clearing the white list and the MFA policy")
		want = upd
		want.CreatedAt = orig.CreatedAt
		got, err = st.GetOrganization(f.ctx, f.pid, orig.ID)
		must(t, err, "GetOrganization")
		wantEqual(t, want, got, "GetOrganization after clearing WhiteListDomains and MFAPolicy")
	})

	t.Run("DeleteRemovesMemberships", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		o, keep := f.org(), f.org()
		u1, u2 := f.user(), f.user()
		r := f.role()
		f.members(o.ID, at(0), u1.ID, u2.ID)
		f.members(keep.ID, at(0), u1.ID)
		must(t, st.SetMemberRoles(f.ctx, f.pid, o.ID, u2.ID, []string{r.ID}, at(0)), "SetMemberRoles")

		must(t, st.DeleteOrganization(f.ctx, f.pid, o.ID), "DeleteOrganization")
		_, err := st.GetOrganization(f.ctx, f.pid, o.ID)
		wantNotFound(t, err, "GetOrganization after DeleteOrganization")
		wantNotFound(t, st.DeleteOrganization(f.ctx, f.pid, o.ID), "DeleteOrganization a second time")
		wantMemberKeys(t, []string{key(u1.ID, keep.ID)}, f.memberships(u1.ID, u2.ID), "ListMemberships after DeleteOrganization")
		if _, err := st.GetRole(f.ctx, f.pid, r.ID); err != nil {
			t.Errorf("GetRole after deleting an organization where the role was held: %v", err)
		}

		// An organization created again with the same id must not inherit the old members.
		must(t, st.CreateOrganization(f.ctx, o), "CreateOrganization with the deleted organization's id")
		wantMemberKeys(t, nil, f.membersOf(o.ID), "ListMembers of an organization re-created with a deleted one's id")
	})
}

func testMemberships(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("AddMembersIdempotent", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		o := f.org()
		u1, u2, u3 := f.user(), f.user(), f.user()
		r := f.role()
		f.members(o.ID, at(0), u1.ID, u2.ID)
		must(t, st.SetMemberRoles(f.ctx, f.pid, o.ID, u1.ID, []string{r.ID}, at(time.Minute)), "SetMemberRoles")
		f.members(o.ID, at(time.Hour), u1.ID, u3.ID) // u1 is already a member: left as it is
		f.members(o.ID, at(time.Hour))               // no users: nothing to do

		want := []store.Membership{
			{ProjectID: f.pid, OrganizationID: o.ID, UserID: u1.ID, RoleIDs: []string{r.ID}, CreatedAt: at(0)},
			{ProjectID: f.pid, OrganizationID: o.ID, UserID: u2.ID, CreatedAt: at(0)},
			{ProjectID: f.pid, OrganizationID: o.ID, UserID: u3.ID, CreatedAt: at(time.Hour)},
		}
		sortMemberships(want)
		wantMemberships(t, want, f.membersOf(o.ID), "ListMembers after adding a member twice")
	})

	t.Run("AddMembersAllOrNothing", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		o := f.org()
		u1, u2 := f.user(), f.user()
		err := st.AddMembers(f.ctx, f.pid, o.ID, []string{u1.ID, newID(), u2.ID}, at(0))
		wantNotFound(t, err, "AddMembers with one unknown user")
		wantMemberKeys(t, nil, f.membersOf(o.ID), "ListMembers after AddMembers failed on an unknown user (nothing may be written)")
		wantMemberKeys(t, nil, f.memberships(u1.ID, u2.ID), "ListMemberships after the failed AddMembers")

		err = st.AddMembers(f.ctx, f.pid, newID(), []string{u1.ID}, at(0))
		wantNotFound(t, err, "AddMembers to an unknown organization")
		wantMemberKeys(t, nil, f.memberships(u1.ID), "ListMemberships after AddMembers to an unknown organization")
	})

	t.Run("RemoveMembers", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		o, other := f.org(), f.org()
		u1, u2, u3, outsider := f.user(), f.user(), f.user(), f.user()
		f.members(o.ID, at(0), u1.ID, u2.ID, u3.ID)
		f.members(other.ID, at(0), u1.ID)
		must(t, st.RemoveMembers(f.ctx, f.pid, o.ID, []string{u1.ID, u3.ID, outsider.ID, newID()}), "RemoveMembers with non-members among the users")
		wantMemberKeys(t, []string{key(u2.ID, o.ID)}, f.membersOf(o.ID), "ListMembers after RemoveMembers")
		wantMemberKeys(t, []string{key(u1.ID, other.ID)}, f.membersOf(other.ID), "ListMembers of another organization after RemoveMembers")
		for _, u := range []store.User{u1, u3} {
			if _, err := st.GetUser(f.ctx, f.pid, u.ID); err != nil {
				t.Errorf("GetUser of a removed member: %v (RemoveMembers must not delete users)", err)
			}
		}
	})

	t.Run("SetMemberRoles", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		o := f.org()
		u := f.user()
		r1, r2, r3 := f.role(), f.role(), f.role()
		member := func(roles []string, created time.Time) []store.Membership {
			return []store.Membership{{ProjectID: f.pid, OrganizationID: o.ID, UserID: u.ID, RoleIDs: sortedCopy(roles), CreatedAt: created}}
		}

		// Not yet a member: SetMemberRoles makes the membership.
		roles := []string{r3.ID, r1.ID, r2.ID}
		must(t, st.SetMemberRoles(f.ctx, f.pid, o.ID, u.ID, roles, at(time.Minute)), "SetMemberRoles on a non-member")
		wantMemberships(t, member(roles, at(time.Minute)), f.membersOf(o.ID), "ListMembers after SetMemberRoles made a member (roles sorted)")

		must(t, st.SetMemberRoles(f.ctx, f.pid, o.ID, u.ID, []string{r2.ID}, at(time.Hour)), "SetMemberRoles replacing the roles")
		wantMemberships(t, member([]string{r2.ID}, at(time.Minute)), f.membersOf(o.ID), "ListMembers after SetMemberRoles replaced the roles (created_at kept)")

		must(t, st.SetMemberRoles(f.ctx, f.pid, o.ID, u.ID, nil, at(time.Hour)), "SetMemberRoles with no roles")
		wantMemberships(t, member(nil, at(time.Minute)), f.membersOf(o.ID), "ListMembers after SetMemberRoles(no roles): still a member, with no roles")

		must(t, st.SetMemberRoles(f.ctx, f.pid, o.ID, u.ID, []string{r1.ID}, at(time.Hour)), "SetMemberRoles")
		err := st.SetMemberRoles(f.ctx, f.pid, o.ID, u.ID, []string{r2.ID, newID()}, at(time.Hour))
		wantNotFound(t, err, "SetMemberRoles with one unknown role")
		wantMemberships(t, member([]string{r1.ID}, at(time.Minute)), f.membersOf(o.ID), "ListMembers after SetMemberRoles failed on an unknown role (nothing may be written)")

		u2 := f.user()
		err = st.SetMemberRoles(f.ctx, f.pid, o.ID, newID(), []string{r1.ID}, at(0))
		wantNotFound(t, err, "SetMemberRoles for an unknown user")
		err = st.SetMemberRoles(f.ctx, f.pid, newID(), u2.ID, []string{r1.ID}, at(0))
		wantNotFound(t, err, "SetMemberRoles in an unknown organization")
		err = st.SetMemberRoles(f.ctx, f.pid, o.ID, u2.ID, []string{newID()}, at(0))
		wantNotFound(t, err, "SetMemberRoles making a member with an unknown role")
		wantMemberKeys(t, nil, f.memberships(u2.ID), "ListMemberships after the failed SetMemberRoles calls")
	})

	t.Run("ListMemberships", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		o1, o2, o3 := f.org(), f.org(), f.org()
		u1, u2, u3, u4 := f.user(), f.user(), f.user(), f.user()
		r := f.role()
		f.members(o1.ID, at(0), u1.ID, u4.ID)
		f.members(o2.ID, at(time.Second), u1.ID, u2.ID)
		f.members(o3.ID, at(0), u1.ID, u2.ID, u4.ID)
		must(t, st.SetMemberRoles(f.ctx, f.pid, o2.ID, u2.ID, []string{r.ID}, at(0)), "SetMemberRoles")

		var want []store.Membership
		add := func(o store.Organization, u store.User, created time.Time, roles ...string) {
			want = append(want, store.Membership{ProjectID: f.pid, OrganizationID: o.ID, UserID: u.ID, RoleIDs: roles, CreatedAt: created})
		}
		add(o1, u1, at(0))
		add(o2, u1, at(time.Second))
		add(o3, u1, at(0))
		add(o2, u2, at(time.Second), r.ID)
		add(o3, u2, at(0))
		sortMemberships(want)
		// u3 has no memberships, u4's are not asked for, one id is unknown.
		got := f.memberships(u3.ID, u2.ID, newID(), u1.ID)
		wantMemberships(t, want, got, "ListMemberships of several users (by user id, then organization id)")
		wantMemberKeys(t, nil, f.memberships(), "ListMemberships of no users")
	})
}

// key names a membership in messages and comparisons.
func key(userID, orgID string) string { return "user " + userID + " in org " + orgID }

func keysOf(ms []store.Membership) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = key(m.UserID, m.OrganizationID)
	}
	return out
}

// sortMemberships sorts by user id, then organization id.
func sortMemberships(ms []store.Membership) {
	sort.Slice(ms, func(i, j int) bool {
		if ms[i].UserID != ms[j].UserID {
			return ms[i].UserID < ms[j].UserID
		}
		return ms[i].OrganizationID < ms[j].OrganizationID
	})
}

// wantMemberKeys reports an error unless got holds exactly the memberships named by want, in order.
func wantMemberKeys(t *testing.T, want []string, got []store.Membership, format string, args ...any) bool {
	t.Helper()
	return wantIDs(t, want, keysOf(got), format, args...)
}

// wantMemberships reports an error unless got equals want, membership by membership.
func wantMemberships(t *testing.T, want, got []store.Membership, format string, args ...any) {
	t.Helper()
	op := fmt.Sprintf(format, args...)
	if !wantMemberKeys(t, keysOf(want), got, "%s", op) {
		return
	}
	for i := range want {
		wantEqual(t, want[i], got[i], "%s: %s", op, keysOf(want)[i])
	}
}
