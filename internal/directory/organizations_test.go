package directory_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
)

func TestOrganizationValidation(t *testing.T) {
	sqlite(t, func(t *testing.T, e *env) {
		cases := []struct {
			name        string
			in          directory.OrganizationInput
			code, field string
		}{
			{"no name", directory.OrganizationInput{Domain: ptr("acme.com")}, "invalid_request", "name"},
			{"blank name", directory.OrganizationInput{Name: ptr("  ")}, "invalid_request", "name"},
			{"long name", directory.OrganizationInput{Name: ptr(strings.Repeat("n", 201))}, "invalid_request", "name"},
			{"bad domain", directory.OrganizationInput{Name: ptr("A"), Domain: ptr("acme")}, "invalid_domain", "domain"},
			{"bad whitelisted domain", directory.OrganizationInput{Name: ptr("A"), WhiteListDomains: &[]string{"ok.com", "-bad.com"}}, "invalid_domain", "WhiteListDomains[1]"},
			{"too many domains", directory.OrganizationInput{Name: ptr("A"), WhiteListDomains: ptr(slices.Repeat([]string{"a.com"}, 101))}, "invalid_request", "WhiteListDomains"},
			{"control in workspace", directory.OrganizationInput{Name: ptr("A"), WorkspaceName: ptr("a\nb")}, "invalid_request", "WorkspaceName"},
			{"unknown mfa policy", directory.OrganizationInput{Name: ptr("A"), MFAPolicy: ptr("sometimes")}, "invalid_request", "mfa_policy"},
			{"mfa policy with inner space", directory.OrganizationInput{Name: ptr("A"), MFAPolicy: ptr("re quired")}, "invalid_request", "mfa_policy"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, err := e.svc.CreateOrganization(e.ctx, operator, e.pid, c.in)
				wantFailure(t, err, failure.Invalid, c.code, c.field)
			})
		}
	})
}

func TestOrganizationCRUD(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		o := must(e.svc.CreateOrganization(e.ctx, operator, e.pid, directory.OrganizationInput{
			Name: ptr(" Acme Inc "), Domain: ptr("Acme.COM"), WorkspaceName: ptr("acme"),
			WhiteListDomains: &[]string{"Acme.com", "acme.COM", "sub.acme.com."},
		}))(t)
		if o.Name != "Acme Inc" || o.Domain != "acme.com" || !slices.Equal(o.WhiteListDomains, []string{"acme.com", "sub.acme.com"}) ||
			!o.Active || o.AllowProfilesOutsideOrganization || o.ProjectID != e.pid {
			t.Errorf("created = %+v", o)
		}
		bare := e.org("Bare")
		if bare.WhiteListDomains == nil || len(bare.WhiteListDomains) != 0 {
			t.Errorf("default WhiteListDomains = %#v, want empty", bare.WhiteListDomains)
		}

		got := must(e.svc.UpdateOrganization(e.ctx, operator, e.pid, o.ID, directory.OrganizationInput{AllowProfilesOutsideOrganization: ptr(true)}))(t)
		if got.Name != "Acme Inc" || got.Domain != "acme.com" || len(got.WhiteListDomains) != 2 || !got.AllowProfilesOutsideOrganization {
			t.Errorf("after a partial update = %+v", got)
		}
		got = must(e.svc.UpdateOrganization(e.ctx, operator, e.pid, o.ID, directory.OrganizationInput{Domain: ptr(""), WhiteListDomains: &[]string{}, Active: ptr(false)}))(t)
		if got.Domain != "" || len(got.WhiteListDomains) != 0 || got.Active || got.Name != "Acme Inc" {
			t.Errorf("after clearing = %+v", got)
		}
		read := must(e.svc.GetOrganization(e.ctx, e.pid, o.ID))(t)
		if read.Name != got.Name || read.Active || !read.UpdatedAt.Equal(got.UpdatedAt) {
			t.Errorf("read back = %+v, want %+v", read, got)
		}
		_, err := e.svc.UpdateOrganization(e.ctx, operator, e.pid, o.ID, directory.OrganizationInput{Name: ptr("")})
		wantFailure(t, err, failure.Invalid, "invalid_request", "name")

		page := must(e.svc.ListOrganizations(e.ctx, e.pid, directory.PageQuery{Limit: "1"}))(t)
		if len(page.Organizations) != 1 || page.NextCursor == "" {
			t.Fatalf("page 1 = %+v", page)
		}
		page2 := must(e.svc.ListOrganizations(e.ctx, e.pid, directory.PageQuery{Limit: "1", Cursor: page.NextCursor}))(t)
		if len(page2.Organizations) != 1 || page2.NextCursor != "" || page2.Organizations[0].ID == page.Organizations[0].ID {
			t.Errorf("page 2 = %+v", page2)
		}

		if err := e.svc.DeleteOrganization(e.ctx, operator, e.pid, o.ID); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{o.ID, "x", ids.New()} {
			_, err = e.svc.GetOrganization(e.ctx, e.pid, id)
			wantFailure(t, err, failure.NotFound, "organization_not_found", "")
			_, err = e.svc.UpdateOrganization(e.ctx, operator, e.pid, id, directory.OrganizationInput{})
			wantFailure(t, err, failure.NotFound, "organization_not_found", "")
			wantFailure(t, e.svc.DeleteOrganization(e.ctx, operator, e.pid, id), failure.NotFound, "organization_not_found", "")
			_, err = e.svc.ListMembers(e.ctx, e.pid, id, directory.PageQuery{})
			wantFailure(t, err, failure.NotFound, "organization_not_found", "")
		}
	})
}

func TestOrganizationMFAPolicy(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		if o := e.org("Default"); o.MFAPolicy != "" {
			t.Errorf("default MFAPolicy = %q, want \"\" (the project's)", o.MFAPolicy)
		}
		o := must(e.svc.CreateOrganization(e.ctx, operator, e.pid, directory.OrganizationInput{Name: ptr("Strict"), MFAPolicy: ptr(" Required ")}))(t)
		if o.MFAPolicy != "required" {
			t.Errorf("created with \" Required \": MFAPolicy = %q, want trimmed and lower-cased", o.MFAPolicy)
		}

		steps := []struct {
			in   *string
			want string
		}{
			{nil, "required"}, // not sent: left as it is
			{ptr("OFF"), "off"},
			{ptr("inherit"), ""},
			{ptr("optional"), "optional"},
			{ptr(" Inherit"), ""},
			{ptr("required"), "required"},
			{ptr(""), ""},
		}
		for _, s := range steps {
			got := must(e.svc.UpdateOrganization(e.ctx, operator, e.pid, o.ID, directory.OrganizationInput{MFAPolicy: s.in}))(t)
			read := must(e.svc.GetOrganization(e.ctx, e.pid, o.ID))(t)
			if got.MFAPolicy != s.want || read.MFAPolicy != s.want {
				sent := "no mfa_policy"
				if s.in != nil {
					sent = strconv.Quote(*s.in)
				}
				t.Errorf("update with %s: MFAPolicy = %q, read back %q, want %q", sent, got.MFAPolicy, read.MFAPolicy, s.want)
			}
		}

		must(e.svc.UpdateOrganization(e.ctx, operator, e.pid, o.ID, directory.OrganizationInput{MFAPolicy: ptr("optional")}))(t)
		_, err := e.svc.UpdateOrganization(e.ctx, operator, e.pid, o.ID, directory.OrganizationInput{Name: ptr("Renamed"), MFAPolicy: ptr("always")})
		wantFailure(t, err, failure.Invalid, "invalid_request", "mfa_policy")
		if read := must(e.svc.GetOrganization(e.ctx, e.pid, o.ID))(t); read.MFAPolicy != "optional" || read.Name != "Strict" {
			t.Errorf("after a refused update = %+v, want it unchanged", read)
		}

		page := must(e.svc.ListOrganizations(e.ctx, e.pid, directory.PageQuery{}))(t)
		policies := map[string]string{}
		for _, org := range page.Organizations {
			policies[org.Name] = org.MFAPolicy
		}
		if policies["Default"] != "" || policies["Strict"] != "optional" {
			t.Errorf("listed MFA policies = %v", policies)
		}
	})
}

func TestMembers(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		acme := e.org("Acme")
		a, b, c := e.user("a@example.com"), e.user("b@example.com"), e.user("c@example.com")
		admin := e.role("Admin")

		added := must(e.svc.AddMembers(e.ctx, operator, e.pid, acme.ID, []string{a.ID, b.ID, a.ID, " " + c.ID}))(t)
		if !slices.Equal(added, []string{a.ID, b.ID, c.ID}) {
			t.Errorf("AddMembers returned %v", added)
		}
		// Adding an existing member keeps their roles.
		must(e.svc.SetUserRoles(e.ctx, operator, e.pid, a.ID, directory.UserRolesInput{OrganizationID: acme.ID, RoleIDs: []string{admin.ID}}))(t)
		must(e.svc.AddMembers(e.ctx, operator, e.pid, acme.ID, []string{a.ID}))(t)

		want := []string{a.ID, b.ID, c.ID}
		slices.Sort(want)
		var got []string
		p1 := must(e.svc.ListMembers(e.ctx, e.pid, acme.ID, directory.PageQuery{Limit: "2"}))(t)
		p2 := must(e.svc.ListMembers(e.ctx, e.pid, acme.ID, directory.PageQuery{Limit: "2", Cursor: p1.NextCursor}))(t)
		for _, m := range append(p1.Members, p2.Members...) {
			got = append(got, m.UserID)
			wantRoles := []string{}
			if m.UserID == a.ID {
				wantRoles = []string{admin.ID}
			}
			if !slices.Equal(m.RoleIDs, wantRoles) {
				t.Errorf("member %s roles = %v, want %v", m.UserID, m.RoleIDs, wantRoles)
			}
		}
		if !slices.Equal(got, want) || p2.NextCursor != "" {
			t.Errorf("members = %v (next %q), want %v", got, p2.NextCursor, want)
		}

		// One missing user: nothing is written.
		d := e.user("d@example.com")
		missing := ids.New()
		_, err := e.svc.AddMembers(e.ctx, operator, e.pid, acme.ID, []string{d.ID, missing})
		wantFailure(t, err, failure.NotFound, "user_not_found", "user_ids")
		if !strings.Contains(err.Error(), missing) {
			t.Errorf("error %q does not name the missing user", err)
		}
		_, err = e.svc.AddMembers(e.ctx, operator, e.pid, acme.ID, []string{"bogus"})
		wantFailure(t, err, failure.NotFound, "user_not_found", "user_ids")
		_, err = e.svc.AddMembers(e.ctx, operator, e.pid, ids.New(), []string{d.ID})
		wantFailure(t, err, failure.NotFound, "organization_not_found", "")
		if n := len(must(e.svc.ListMembers(e.ctx, e.pid, acme.ID, directory.PageQuery{}))(t).Members); n != 3 {
			t.Errorf("members after refused adds = %d, want 3", n)
		}

		for _, batch := range [][]string{nil, {}, slices.Repeat([]string{a.ID}, 101)} {
			_, err = e.svc.AddMembers(e.ctx, operator, e.pid, acme.ID, batch)
			wantFailure(t, err, failure.Invalid, "invalid_request", "user_ids")
			_, err = e.svc.RemoveMembers(e.ctx, operator, e.pid, acme.ID, batch)
			wantFailure(t, err, failure.Invalid, "invalid_request", "user_ids")
		}

		// Removing ignores non-members and malformed ids, but not a missing organization.
		removed := must(e.svc.RemoveMembers(e.ctx, operator, e.pid, acme.ID, []string{a.ID, d.ID, "junk"}))(t)
		if !slices.Equal(removed, []string{a.ID, d.ID, "junk"}) {
			t.Errorf("RemoveMembers returned %v", removed)
		}
		_, err = e.svc.RemoveMembers(e.ctx, operator, e.pid, ids.New(), []string{b.ID})
		wantFailure(t, err, failure.NotFound, "organization_not_found", "")
		_, err = e.svc.RemoveMembers(e.ctx, operator, e.pid, "junk", []string{b.ID})
		wantFailure(t, err, failure.NotFound, "organization_not_found", "")
		left := must(e.svc.ListMembers(e.ctx, e.pid, acme.ID, directory.PageQuery{}))(t)
		if len(left.Members) != 2 {
			t.Errorf("members after removal = %+v", left.Members)
		}
		if u := must(e.svc.GetUser(e.ctx, e.pid, a.ID))(t); len(u.Tenants) != 0 || len(u.Roles) != 0 {
			t.Errorf("removed member still has tenants %+v roles %q", u.Tenants, u.Roles)
		}
	})
}

func TestOrganizationsAreIsolated(t *testing.T) {
	sqlite(t, func(t *testing.T, e *env) {
		other := newEnv(t, e.st)
		theirs := other.org("Theirs")
		theirUser := other.user("t@example.com")
		mine := e.user("m@example.com")
		_, err := e.svc.GetOrganization(e.ctx, e.pid, theirs.ID)
		wantFailure(t, err, failure.NotFound, "organization_not_found", "")
		_, err = e.svc.AddMembers(e.ctx, operator, e.pid, theirs.ID, []string{mine.ID})
		wantFailure(t, err, failure.NotFound, "organization_not_found", "")
		_, err = e.svc.AddMembers(e.ctx, operator, e.pid, e.org("Mine").ID, []string{theirUser.ID})
		wantFailure(t, err, failure.NotFound, "user_not_found", "user_ids")
		if page := must(e.svc.ListOrganizations(e.ctx, e.pid, directory.PageQuery{}))(t); len(page.Organizations) != 1 {
			t.Errorf("listing shows %d organizations, want only mine", len(page.Organizations))
		}
	})
}
