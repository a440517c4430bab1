package directory_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// events returns the project's audit events.
func (e *env) events() []store.AuditEvent {
	e.t.Helper()
	es, err := e.st.ListAuditEvents(e.ctx, e.pid, store.AuditFilter{}, 100, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return es
}

// types returns the types of es.
func types(es []store.AuditEvent) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Type
	}
	return out
}

// auditLog follows a project's audit events. Ids order events by the second only, so events
// of one change (or one second) come back in any order: next matches them as a set.
type auditLog struct {
	e    *env
	seen map[string]bool
}

// audit returns a log whose next call reports the events written from now on.
func (e *env) audit() *auditLog {
	l := &auditLog{e: e, seen: map[string]bool{}}
	for _, ev := range e.events() {
		l.seen[ev.ID] = true
	}
	return l
}

// next checks the events written since the last call: their types (in any order), and that
// each names operator as its actor. It returns them in the order of want.
func (l *auditLog) next(want ...string) []store.AuditEvent {
	t := l.e.t
	t.Helper()
	var fresh []store.AuditEvent
	for _, ev := range l.e.events() {
		if !l.seen[ev.ID] {
			l.seen[ev.ID] = true
			fresh = append(fresh, ev)
		}
	}
	got, sortedWant := types(fresh), slices.Clone(want)
	slices.Sort(got)
	slices.Sort(sortedWant)
	if !slices.Equal(got, sortedWant) {
		t.Fatalf("new events = %q, want %q", got, sortedWant)
	}
	out := make([]store.AuditEvent, 0, len(want))
	for _, typ := range want {
		i := slices.IndexFunc(fresh, func(ev store.AuditEvent) bool { return ev.Type == typ })
		out = append(out, fresh[i])
		fresh = slices.Delete(fresh, i, i+1)
	}
	for _, ev := range out {
		a, _ := ev.Detail["actor"].(map[string]any)
		if a["kind"] != operator.Kind || a["id"] != operator.ID || ev.IPAddress != operator.IPAddress ||
			ev.UserAgent != operator.UserAgent {
			t.Errorf("event %s: actor %v, ip %q, user agent %q; want %+v", ev.Type, ev.Detail["actor"],
				ev.IPAddress, ev.UserAgent, operator)
		}
	}
	return out
}

func strs(v any) []string {
	out := []string{}
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestUserChangesAreAudited(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		log := e.audit()
		u := e.user("ann@example.com")
		ev := log.next(directory.EventUserCreated)[0]
		if ev.UserID != u.ID || ev.OrganizationID != "" {
			t.Errorf("user.created: user %q org %q", ev.UserID, ev.OrganizationID)
		}

		must(e.svc.UpdateUser(e.ctx, operator, e.pid, u.ID, directory.UserInput{FirstName: ptr("Ann"),
			LastName: ptr(""), Active: ptr(false)}))(t)
		es := log.next(directory.EventUserUpdated, directory.EventUserDeactivated)
		if got := strs(es[0].Detail["changed"]); !slices.Equal(got, []string{"first_name", "is_active"}) {
			t.Errorf("changed = %q", got)
		}
		if es[1].UserID != u.ID || es[1].Detail["sessions_revoked"] != float64(0) {
			t.Errorf("user.deactivated = %+v", es[1])
		}
		must(e.svc.UpdateUser(e.ctx, operator, e.pid, u.ID, directory.UserInput{Active: ptr(true)}))(t)
		log.next(directory.EventUserUpdated, directory.EventUserActivated)
		must(e.svc.SetEmailVerified(e.ctx, operator, e.pid, u.ID, true))(t)
		ev = log.next(directory.EventUserUpdated)[0]
		if got := strs(ev.Detail["changed"]); !slices.Equal(got, []string{"email_verified"}) {
			t.Errorf("changed = %q", got)
		}

		// Refused changes write nothing.
		_, err := e.svc.CreateUser(e.ctx, operator, e.pid, directory.UserInput{Email: ptr("not an email")})
		wantFailure(t, err, failure.Invalid, "invalid_email", "email")
		_, err = e.svc.CreateUser(e.ctx, operator, e.pid, directory.UserInput{Email: ptr("ANN@example.com")})
		wantFailure(t, err, failure.Conflict, "email_exists", "email")
		other := e.user("bob@example.com")
		_, err = e.svc.UpdateUser(e.ctx, operator, e.pid, other.ID, directory.UserInput{Email: ptr("ann@example.com")})
		wantFailure(t, err, failure.Conflict, "email_exists", "email")
		err = e.svc.DeleteUser(e.ctx, operator, e.pid, "000000000000000000000000")
		wantFailure(t, err, failure.NotFound, "user_not_found", "")
		log.next(directory.EventUserCreated) // bob's

		must(struct{}{}, e.svc.DeleteUser(e.ctx, operator, e.pid, u.ID))(t)
		if ev := log.next(directory.EventUserDeleted)[0]; ev.UserID != u.ID {
			t.Errorf("user.deleted names user %q", ev.UserID)
		}
	})
}

func TestOrganizationChangesAreAudited(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		u := e.user("ann@example.com")
		o := e.org("Acme")
		r := e.role("Billing")
		log := e.audit()
		must(e.svc.UpdateOrganization(e.ctx, operator, e.pid, o.ID, directory.OrganizationInput{Name: ptr("Acme"),
			Domain: ptr("acme.example"), MFAPolicy: ptr("required")}))(t)
		must(e.svc.AddMembers(e.ctx, operator, e.pid, o.ID, []string{u.ID, u.ID}))(t)
		must(e.svc.SetUserRoles(e.ctx, operator, e.pid, u.ID, directory.UserRolesInput{OrganizationID: o.ID, RoleIDs: []string{r.ID}}))(t)
		must(e.svc.RemoveMembers(e.ctx, operator, e.pid, o.ID, []string{u.ID}))(t)
		es := log.next(directory.EventOrgUpdated, directory.EventOrgMembersAdded, directory.EventUserRolesChanged,
			directory.EventOrgMembersRemoved)
		for _, ev := range es {
			if ev.OrganizationID != o.ID {
				t.Errorf("%s names organization %q, want %q", ev.Type, ev.OrganizationID, o.ID)
			}
		}
		if got := strs(es[0].Detail["changed"]); !slices.Equal(got, []string{"domain", "mfa_policy"}) {
			t.Errorf("changed = %q", got)
		}
		if got := strs(es[1].Detail["user_ids"]); !slices.Equal(got, []string{u.ID}) {
			t.Errorf("members_added user_ids = %q", got)
		}
		if got := strs(es[2].Detail["role_ids"]); es[2].UserID != u.ID || !slices.Equal(got, []string{r.ID}) {
			t.Errorf("roles_changed: user %q role_ids %q", es[2].UserID, got)
		}

		// Refused changes write nothing.
		_, err := e.svc.AddMembers(e.ctx, operator, e.pid, o.ID, []string{u.ID, "000000000000000000000000"})
		wantFailure(t, err, failure.NotFound, "user_not_found", "user_ids")
		_, err = e.svc.SetUserRoles(e.ctx, operator, e.pid, u.ID, directory.UserRolesInput{OrganizationID: o.ID,
			RoleIDs: []string{"000000000000000000000000"}})
		wantFailure(t, err, failure.NotFound, "role_not_found", "role_id")
		_, err = e.svc.UpdateOrganization(e.ctx, operator, e.pid, o.ID, directory.OrganizationInput{Domain: ptr("not a domain")})
		wantFailure(t, err, failure.Invalid, "invalid_domain", "")
		must(struct{}{}, e.svc.DeleteOrganization(e.ctx, operator, e.pid, o.ID))(t)
		if ev := log.next(directory.EventOrgDeleted)[0]; ev.OrganizationID != o.ID {
			t.Errorf("organization.deleted names %q", ev.OrganizationID)
		}
	})
}

func TestRoleAndPermissionChangesAreAudited(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		log := e.audit()
		p := e.permission("Read Invoices")
		r := e.role("Billing", p.ID)
		es := log.next(directory.EventPermissionCreated, directory.EventRoleCreated)
		if es[0].Detail["permission_id"] != p.ID || es[1].Detail["role_id"] != r.ID || es[1].Detail["slug"] != "billing" {
			t.Errorf("created events: %v, %v", es[0].Detail, es[1].Detail)
		}
		must(e.svc.UpdateRole(e.ctx, operator, e.pid, r.ID, directory.RoleInput{Description: ptr("Pays"), PermissionIDs: &[]string{}}))(t)
		must(e.svc.UpdatePermission(e.ctx, operator, e.pid, p.ID, directory.PermissionInput{Name: ptr("Read bills")}))(t)
		es = log.next(directory.EventRoleUpdated, directory.EventPermissionUpdated)
		if got := strs(es[0].Detail["changed"]); !slices.Equal(got, []string{"description", "permission_id"}) {
			t.Errorf("role changed = %q", got)
		}
		if got := strs(es[1].Detail["changed"]); !slices.Equal(got, []string{"name"}) {
			t.Errorf("permission changed = %q", got)
		}

		// Refused changes write nothing.
		_, err := e.svc.CreateRole(e.ctx, operator, e.pid, directory.RoleInput{Name: ptr("Billing")})
		wantFailure(t, err, failure.Conflict, "slug_exists", "slug")
		_, err = e.svc.CreatePermission(e.ctx, operator, e.pid, directory.PermissionInput{Name: ptr("Read Invoices")})
		wantFailure(t, err, failure.Conflict, "slug_exists", "slug")
		_, err = e.svc.UpdateRole(e.ctx, operator, e.pid, r.ID, directory.RoleInput{PermissionIDs: &[]string{"000000000000000000000000"}})
		wantFailure(t, err, failure.NotFound, "permission_not_found", "permission_id")

		must(struct{}{}, e.svc.DeleteRole(e.ctx, operator, e.pid, r.ID))(t)
		must(struct{}{}, e.svc.DeletePermission(e.ctx, operator, e.pid, p.ID))(t)
		es = log.next(directory.EventRoleDeleted, directory.EventPermissionDeleted)
		if es[0].Detail["role_id"] != r.ID || es[1].Detail["permission_id"] != p.ID {
			t.Errorf("deleted events: %v, %v", es[0].Detail, es[1].Detail)
		}
	})
}

var errAudit = errors.New("audit write failed")

// failingAudit is a store whose audit writes fail, inside transactions too: every change
// then fails after its own writes, which must be rolled back.
type failingAudit struct{ store.Store }

func (failingAudit) AddAuditEvent(context.Context, store.AuditEvent) error { return errAudit }

func (f failingAudit) InTx(ctx context.Context, fn func(tx store.Store) error) error {
	return f.Store.InTx(ctx, func(tx store.Store) error { return fn(failingAudit{tx}) })
}

// TestChangeAndEventCommitTogether checks that no change is committed without its event.
func TestChangeAndEventCommitTogether(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		u, o, p := e.user("ann@example.com"), e.org("Acme"), e.permission("Read")
		r := e.role("Billing")
		log := e.audit()
		svc := directory.New(directory.Deps{Store: failingAudit{st}})
		ctx := e.ctx
		wantErr := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, errAudit) {
				t.Errorf("%s = %v, want the audit error", what, err)
			}
		}
		_, err := svc.CreateUser(ctx, operator, e.pid, directory.UserInput{Email: ptr("bob@example.com")})
		wantErr("CreateUser", err)
		_, err = svc.UpdateUser(ctx, operator, e.pid, u.ID, directory.UserInput{FirstName: ptr("Ann"), Active: ptr(false)})
		wantErr("UpdateUser", err)
		_, err = svc.SetUserRoles(ctx, operator, e.pid, u.ID, directory.UserRolesInput{OrganizationID: o.ID, RoleIDs: []string{r.ID}})
		wantErr("SetUserRoles", err)
		_, err = svc.CreateOrganization(ctx, operator, e.pid, directory.OrganizationInput{Name: ptr("Other")})
		wantErr("CreateOrganization", err)
		_, err = svc.UpdateOrganization(ctx, operator, e.pid, o.ID, directory.OrganizationInput{Name: ptr("Renamed")})
		wantErr("UpdateOrganization", err)
		_, err = svc.AddMembers(ctx, operator, e.pid, o.ID, []string{u.ID})
		wantErr("AddMembers", err)
		_, err = svc.CreateRole(ctx, operator, e.pid, directory.RoleInput{Name: ptr("Other")})
		wantErr("CreateRole", err)
		_, err = svc.UpdateRole(ctx, operator, e.pid, r.ID, directory.RoleInput{Name: ptr("Renamed")})
		wantErr("UpdateRole", err)
		_, err = svc.CreatePermission(ctx, operator, e.pid, directory.PermissionInput{Name: ptr("Other")})
		wantErr("CreatePermission", err)
		_, err = svc.UpdatePermission(ctx, operator, e.pid, p.ID, directory.PermissionInput{Name: ptr("Renamed")})
		wantErr("UpdatePermission", err)
		wantErr("DeleteRole", svc.DeleteRole(ctx, operator, e.pid, r.ID))
		wantErr("DeletePermission", svc.DeletePermission(ctx, operator, e.pid, p.ID))
		wantErr("DeleteOrganization", svc.DeleteOrganization(ctx, operator, e.pid, o.ID))
		wantErr("DeleteUser", svc.DeleteUser(ctx, operator, e.pid, u.ID))

		// Nothing changed, and no event was written.
		log.next()
		if _, err := e.svc.GetUserByEmail(ctx, e.pid, "bob@example.com"); err == nil {
			t.Error("the user whose event failed was created")
		}
		if got := must(e.svc.GetUser(ctx, e.pid, u.ID))(t); got.FirstName != "" || !got.Active || len(got.Tenants) != 0 {
			t.Errorf("user changed: %+v", got)
		}
		if got := must(e.svc.GetOrganization(ctx, e.pid, o.ID))(t); got.Name != "Acme" {
			t.Errorf("organization renamed to %q", got.Name)
		}
		if m := must(e.svc.ListMembers(ctx, e.pid, o.ID, directory.PageQuery{}))(t); len(m.Members) != 0 {
			t.Errorf("members: %+v", m.Members)
		}
		if got := must(e.svc.GetRole(ctx, e.pid, r.ID))(t); got.Name != "Billing" {
			t.Errorf("role renamed to %q", got.Name)
		}
		if got := must(e.svc.GetPermission(ctx, e.pid, p.ID))(t); got.Name != "Read" {
			t.Errorf("permission renamed to %q", got.Name)
		}
		if rs := must(e.svc.ListRoles(ctx, e.pid, directory.PageQuery{}))(t); len(rs.Roles) != 1 {
			t.Errorf("roles: %+v", rs.Roles)
		}
		if ps := must(e.svc.ListPermissions(ctx, e.pid, directory.PageQuery{}))(t); len(ps.Permissions) != 1 {
			t.Errorf("permissions: %+v", ps.Permissions)
		}
		if os := must(e.svc.ListOrganizations(ctx, e.pid, directory.PageQuery{}))(t); len(os.Organizations) != 1 {
			t.Errorf("organizations: %+v", os.Organizations)
		}
	})
}
