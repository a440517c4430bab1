package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// twoProjects holds records of project A and of project B in one store: every case asks for
// A's records through B and checks that they stay invisible and unchanged.
type twoProjects struct {
	a, b *fixture

	aUser, aUser2 store.User
	aOrg          store.Organization
	aPerm         store.Permission
	aRole         store.Role
	aLog          store.LoginLog
	aSecret       store.ProjectSecret
	aOTS          store.OneTimeSecret

	bUser store.User
	bOrg  store.Organization
	bPerm store.Permission
	bRole store.Role
}

func newTwoProjects(t *testing.T, st store.Store) *twoProjects {
	t.Helper()
	x := &twoProjects{a: inNewProject(t, st), b: inNewProject(t, st)}
	a, b := x.a, x.b
	x.aUser, x.aUser2 = a.user(), a.user()
	x.aOrg = a.org()
	x.aPerm = a.perm()
	x.aRole = a.role(x.aPerm.ID)
	must(t, st.SetMemberRoles(a.ctx, a.pid, x.aOrg.ID, x.aUser.ID, []string{x.aRole.ID}, at(0)), "SetMemberRoles in A")
	x.aLog = newLoginLog(a.pid, x.aUser.ID, newID(), at(0))
	must(t, st.AddLoginLog(a.ctx, x.aLog), "AddLoginLog in A")
	x.aSecret = store.ProjectSecret{ID: newID(), ProjectID: a.pid, Hash: randomHash(), Hint: "abcd", CreatedAt: at(0)}
	must(t, st.CreateProjectSecret(a.ctx, x.aSecret), "CreateProjectSecret in A")
	x.aOTS = newOneTimeSecret(a.pid, "magic_link")
	must(t, st.CreateOneTimeSecret(a.ctx, x.aOTS), "CreateOneTimeSecret in A")

	x.bUser = b.user()
	x.bOrg = b.org()
	x.bPerm = b.perm()
	x.bRole = b.role(x.bPerm.ID)
	b.members(x.bOrg.ID, at(0), x.bUser.ID)
	return x
}

// aMembership is the one membership of project A.
func (x *twoProjects) aMembership() []store.Membership {
	return []store.Membership{{ProjectID: x.a.pid, OrganizationID: x.aOrg.ID, UserID: x.aUser.ID, RoleIDs: []string{x.aRole.ID}, CreatedAt: at(0)}}
}

// checkAIntact checks that every record of A is as newTwoProjects made it.
func (x *twoProjects) checkAIntact(t *testing.T, after string) {
	t.Helper()
	st, ctx, pid := x.a.st, x.a.ctx, x.a.pid
	for _, u := range []store.User{x.aUser, x.aUser2} {
		got, err := st.GetUser(ctx, pid, u.ID)
		if err != nil {
			t.Errorf("GetUser in A after %s: %v", after, err)
		} else {
			wantEqual(t, u, got, "A's user after %s", after)
		}
	}
	if got, err := st.GetOrganization(ctx, pid, x.aOrg.ID); err != nil {
		t.Errorf("GetOrganization in A after %s: %v", after, err)
	} else {
		wantEqual(t, x.aOrg, got, "A's organization after %s", after)
	}
	if got, err := st.GetRole(ctx, pid, x.aRole.ID); err != nil {
		t.Errorf("GetRole in A after %s: %v", after, err)
	} else {
		wantEqual(t, x.aRole, got, "A's role after %s", after)
	}
	if got, err := st.GetPermission(ctx, pid, x.aPerm.ID); err != nil {
		t.Errorf("GetPermission in A after %s: %v", after, err)
	} else {
		wantEqual(t, x.aPerm, got, "A's permission after %s", after)
	}
	wantMemberships(t, x.aMembership(), x.a.memberships(x.aUser.ID, x.aUser2.ID), "A's memberships after %s", after)
	if logs, err := st.ListLoginLogs(ctx, pid, x.aUser.ID, 10, ""); err != nil {
		t.Errorf("ListLoginLogs in A after %s: %v", after, err)
	} else {
		wantRecords(t, []store.LoginLog{x.aLog}, logs, "A's login logs after %s", after)
	}
	if got, err := st.FindProjectSecret(ctx, x.aSecret.Hash); err != nil {
		t.Errorf("FindProjectSecret of A's secret after %s: %v", after, err)
	} else {
		wantEqual(t, x.aSecret, got, "A's project secret after %s", after)
	}
}

// wantHidden accepts a listing through the wrong project that either fails with ErrNotFound or
// returns no rows.
func wantHidden(t *testing.T, err error, n int, format string, args ...any) {
	t.Helper()
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		t.Errorf("%s: err = %v, want no rows or ErrNotFound", fmt.Sprintf(format, args...), err)
	case n != 0:
		t.Errorf("%s: %d rows of another project returned, want none", fmt.Sprintf(format, args...), n)
	}
}

func testIsolation(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("Users", func(t *testing.T) {
		t.Parallel()
		x := newTwoProjects(t, st)
		ctx, bid := x.b.ctx, x.b.pid
		_, err := st.GetUser(ctx, bid, x.aUser.ID)
		wantNotFound(t, err, "GetUser of A's user through B")
		_, err = st.GetUserByEmail(ctx, bid, x.aUser.Email)
		wantNotFound(t, err, "GetUserByEmail of A's user's email through B")
		list, err := st.ListUsers(ctx, bid, store.UserFilter{}, store.Page{Limit: 100})
		must(t, err, "ListUsers(B)")
		wantIDs(t, []string{x.bUser.ID}, idsOf(list), "ListUsers of B")
		list, err = st.ListUsers(ctx, bid, store.UserFilter{Email: x.aUser.Email}, store.Page{Limit: 100})
		must(t, err, "ListUsers(B, A's user's email)")
		wantIDs(t, nil, idsOf(list), "ListUsers of B filtered by A's user's email")

		upd := x.aUser
		upd.ProjectID, upd.FirstName, upd.Email = bid, "Mallory", "mallory@example.com"
		wantNotFound(t, st.UpdateUser(ctx, upd), "UpdateUser of A's user through B")
		wantNotFound(t, st.DeleteUser(ctx, bid, x.aUser.ID), "DeleteUser of A's user through B")
		// A user of B may take the email and phone of A's user.
		twin := x.b.newUser()
		twin.Email, twin.Phone = x.aUser2.Email, x.aUser2.Phone
		must(t, st.CreateUser(ctx, twin), "CreateUser in B with the email and phone of A's user")
		x.checkAIntact(t, "the user calls through B")
	})

	t.Run("Organizations", func(t *testing.T) {
		t.Parallel()
		x := newTwoProjects(t, st)
		ctx, bid := x.b.ctx, x.b.pid
		_, err := st.GetOrganization(ctx, bid, x.aOrg.ID)
		wantNotFound(t, err, "GetOrganization of A's organization through B")
		list, err := st.ListOrganizations(ctx, bid, store.Page{Limit: 100})
		must(t, err, "ListOrganizations(B)")
		wantIDs(t, []string{x.bOrg.ID}, idsOf(list), "ListOrganizations of B")
		upd := x.aOrg
		upd.ProjectID, upd.Name = bid, "Hijacked"
		wantNotFound(t, st.UpdateOrganization(ctx, upd), "UpdateOrganization of A's organization through B")
		wantNotFound(t, st.DeleteOrganization(ctx, bid, x.aOrg.ID), "DeleteOrganization of A's organization through B")
		x.checkAIntact(t, "the organization calls through B")
	})

	t.Run("Roles", func(t *testing.T) {
		t.Parallel()
		x := newTwoProjects(t, st)
		ctx, bid := x.b.ctx, x.b.pid
		_, err := st.GetRole(ctx, bid, x.aRole.ID)
		wantNotFound(t, err, "GetRole of A's role through B")
		roles, err := st.GetRoles(ctx, bid, []string{x.aRole.ID, x.bRole.ID})
		must(t, err, "GetRoles(B, [A's role, B's role])")
		wantIDs(t, []string{x.bRole.ID}, idsOf(roles), "GetRoles through B with A's role id among the ids")
		list, err := st.ListRoles(ctx, bid, store.Page{Limit: 100})
		must(t, err, "ListRoles(B)")
		wantIDs(t, []string{x.bRole.ID}, idsOf(list), "ListRoles of B")
		upd := x.aRole
		upd.ProjectID, upd.Name, upd.PermissionIDs = bid, "Hijacked", nil
		wantNotFound(t, st.UpdateRole(ctx, upd), "UpdateRole of A's role through B")
		wantNotFound(t, st.DeleteRole(ctx, bid, x.aRole.ID), "DeleteRole of A's role through B")

		r := store.Role{ID: newID(), ProjectID: bid, Name: "r", Slug: "r-" + newID(), PermissionIDs: []string{x.aPerm.ID}, CreatedAt: now(), UpdatedAt: now()}
		wantNotFound(t, st.CreateRole(ctx, r), "CreateRole in B holding A's permission")
		_, err = st.GetRole(ctx, bid, r.ID)
		wantNotFound(t, err, "GetRole of the role refused for holding A's permission")
		updB := x.bRole
		updB.PermissionIDs = sortedCopy([]string{x.bPerm.ID, x.aPerm.ID})
		wantNotFound(t, st.UpdateRole(ctx, updB), "UpdateRole of B's role adding A's permission")
		if got, err := st.GetRole(ctx, bid, x.bRole.ID); err != nil {
			t.Errorf("GetRole(B's role): %v", err)
		} else {
			wantEqual(t, x.bRole, got, "B's role after UpdateRole failed on A's permission")
		}
		x.checkAIntact(t, "the role calls through B")
	})

	t.Run("Permissions", func(t *testing.T) {
		t.Parallel()
		x := newTwoProjects(t, st)
		ctx, bid := x.b.ctx, x.b.pid
		_, err := st.GetPermission(ctx, bid, x.aPerm.ID)
		wantNotFound(t, err, "GetPermission of A's permission through B")
		perms, err := st.GetPermissions(ctx, bid, []string{x.aPerm.ID, x.bPerm.ID})
		must(t, err, "GetPermissions(B, [A's, B's])")
		wantIDs(t, []string{x.bPerm.ID}, idsOf(perms), "GetPermissions through B with A's permission id among the ids")
		list, err := st.ListPermissions(ctx, bid, store.Page{Limit: 100})
		must(t, err, "ListPermissions(B)")
		wantIDs(t, []string{x.bPerm.ID}, idsOf(list), "ListPermissions of B")
		upd := x.aPerm
		upd.ProjectID, upd.Name = bid, "Hijacked"
		wantNotFound(t, st.UpdatePermission(ctx, upd), "UpdatePermission of A's permission through B")
		wantNotFound(t, st.DeletePermission(ctx, bid, x.aPerm.ID), "DeletePermission of A's permission through B")
		x.checkAIntact(t, "the permission calls through B")
	})

	t.Run("Memberships", func(t *testing.T) {
		t.Parallel()
		x := newTwoProjects(t, st)
		ctx, aid, bid := x.a.ctx, x.a.pid, x.b.pid
		wantNotFound(t, st.AddMembers(ctx, bid, x.bOrg.ID, []string{x.aUser2.ID}, at(0)), "AddMembers of A's user to B's organization")
		wantNotFound(t, st.AddMembers(ctx, aid, x.aOrg.ID, []string{x.aUser2.ID, x.bUser.ID}, at(0)), "AddMembers of A's and B's users to A's organization")
		wantNotFound(t, st.AddMembers(ctx, bid, x.aOrg.ID, []string{x.bUser.ID}, at(0)), "AddMembers of B's user to A's organization through B")
		wantNotFound(t, st.SetMemberRoles(ctx, aid, x.aOrg.ID, x.aUser2.ID, []string{x.bRole.ID}, at(0)), "SetMemberRoles in A with B's role")
		wantNotFound(t, st.SetMemberRoles(ctx, aid, x.aOrg.ID, x.aUser.ID, []string{x.aRole.ID, x.bRole.ID}, at(0)), "SetMemberRoles in A with A's and B's roles")
		wantNotFound(t, st.SetMemberRoles(ctx, bid, x.aOrg.ID, x.bUser.ID, nil, at(0)), "SetMemberRoles of B's user in A's organization")
		wantNotFound(t, st.SetMemberRoles(ctx, bid, x.bOrg.ID, x.aUser2.ID, nil, at(0)), "SetMemberRoles of A's user in B's organization")
		wantNotFound(t, st.SetMemberRoles(ctx, bid, x.aOrg.ID, x.aUser.ID, nil, at(0)), "SetMemberRoles of A's membership through B")

		ms, err := st.ListMembers(ctx, bid, x.aOrg.ID, store.Page{Limit: 100})
		wantHidden(t, err, len(ms), "ListMembers of A's organization through B")
		ms, err = st.ListMemberships(ctx, bid, []string{x.aUser.ID, x.bUser.ID})
		must(t, err, "ListMemberships(B, [A's user, B's user])")
		wantMemberKeys(t, []string{key(x.bUser.ID, x.bOrg.ID)}, ms, "ListMemberships through B with A's user among the ids")
		err = st.RemoveMembers(ctx, bid, x.aOrg.ID, []string{x.aUser.ID})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RemoveMembers of A's member through B: err = %v, want nil or ErrNotFound", err)
		}
		wantMemberKeys(t, []string{key(x.bUser.ID, x.bOrg.ID)}, x.b.membersOf(x.bOrg.ID), "B's members after the mixed calls")
		x.checkAIntact(t, "the membership calls mixing A and B")
	})

	t.Run("LoginLogs", func(t *testing.T) {
		t.Parallel()
		x := newTwoProjects(t, st)
		ctx, bid := x.b.ctx, x.b.pid
		wantNotFound(t, st.AddLoginLog(ctx, newLoginLog(bid, x.aUser.ID, newID(), at(time.Minute))), "AddLoginLog through B for A's user")
		logs, err := st.ListLoginLogs(ctx, bid, x.aUser.ID, 10, "")
		wantHidden(t, err, len(logs), "ListLoginLogs of A's user through B")
		x.checkAIntact(t, "the login log calls through B")
	})

	t.Run("ProjectSecrets", func(t *testing.T) {
		t.Parallel()
		x := newTwoProjects(t, st)
		ctx, bid := x.b.ctx, x.b.pid
		list, err := st.ListProjectSecrets(ctx, bid)
		must(t, err, "ListProjectSecrets(B)")
		wantIDs(t, nil, idsOf(list), "ListProjectSecrets of B")
		must(t, st.RetireProjectSecrets(ctx, bid, "", at(time.Minute)), "RetireProjectSecrets(B)")
		x.checkAIntact(t, "RetireProjectSecrets of B")
	})

	t.Run("OneTimeSecrets", func(t *testing.T) {
		t.Parallel()
		x := newTwoProjects(t, st)
		_, err := st.ConsumeOneTimeSecret(x.b.ctx, x.b.pid, x.aOTS.Purpose, x.aOTS.Hash, at(time.Minute))
		wantNotFound(t, err, "ConsumeOneTimeSecret of A's secret through B")
		_, err = st.ConsumeOneTimeSecret(x.a.ctx, x.a.pid, x.aOTS.Purpose, x.aOTS.Hash, at(time.Minute))
		must(t, err, "ConsumeOneTimeSecret in A after the attempt through B")
	})
}
