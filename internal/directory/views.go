package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// User is a user together with what they hold in the project's organizations: the view that
// the management API returns and that a login result's profile is built from.
//
// Roles and Tenants describe the user's effective authorization, so an inactive role appears in
// neither (it grants nothing while inactive); the membership listings (ListMembers,
// ListUserOrganizations) show every assigned role.
type User struct {
	store.User
	Roles   []string // slugs of the roles the user holds in any organization; sorted, unique
	Tenants []Tenant // one per organization the user is a member of, by organization id
}

// Tenant is one organization membership of a user.
type Tenant struct {
	OrganizationID   string
	OrganizationName string
	Active           bool // whether the organization is active
	Roles            []TenantRole
}

// TenantRole is a role a user holds in an organization.
type TenantRole struct {
	ID          string
	Name        string
	Slug        string
	Permissions []string // slugs of the role's permissions, sorted
}

// UserOrganization is an organization a user belongs to, with every role assigned to them
// there (permissions are not resolved).
type UserOrganization struct {
	store.Organization
	Roles []TenantRole
}

// userViews resolves the memberships, organizations, roles and permissions of a page of users
// with a fixed number of queries per page (plus one per distinct organization, see loadOrgs),
// never one per user.
func (s *Service) userViews(ctx context.Context, projectID string, users []store.User) ([]User, error) {
	out := make([]User, len(users))
	if len(users) == 0 {
		return out, nil
	}
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	md, err := s.loadMemberships(ctx, projectID, ids, true)
	if err != nil {
		return nil, err
	}
	byUser := make(map[string][]store.Membership, len(users))
	for _, m := range md.memberships {
		byUser[m.UserID] = append(byUser[m.UserID], m)
	}
	for i, u := range users {
		out[i] = buildUser(u, byUser[u.ID], md.orgs, md.roles)
	}
	return out, nil
}

// membershipData is the memberships of some users with the organizations and roles they name.
type membershipData struct {
	memberships []store.Membership
	orgs        map[string]store.Organization
	roles       map[string]TenantRole
}

// loadMemberships reads the users' memberships and what they refer to; effective is as for
// loadRoles.
func (s *Service) loadMemberships(ctx context.Context, projectID string, userIDs []string, effective bool) (membershipData, error) {
	ms, err := s.store.ListMemberships(ctx, projectID, userIDs)
	if err != nil {
		return membershipData{}, fmt.Errorf("directory: list memberships: %w", err)
	}
	var orgIDs, roleIDs []string
	for _, m := range ms {
		orgIDs = append(orgIDs, m.OrganizationID)
		roleIDs = append(roleIDs, m.RoleIDs...)
	}
	orgs, err := s.loadOrgs(ctx, projectID, orgIDs)
	if err != nil {
		return membershipData{}, err
	}
	roles, err := s.loadRoles(ctx, projectID, roleIDs, effective)
	if err != nil {
		return membershipData{}, err
	}
	return membershipData{memberships: ms, orgs: orgs, roles: roles}, nil
}

// userView is userViews for one user.
func (s *Service) userView(ctx context.Context, u store.User) (User, error) {
	views, err := s.userViews(ctx, u.ProjectID, []store.User{u})
	if err != nil {
		return User{}, err
	}
	return views[0], nil
}

func buildUser(u store.User, ms []store.Membership, orgs map[string]store.Organization, roles map[string]TenantRole) User {
	v := User{User: u, Roles: []string{}, Tenants: []Tenant{}}
	if v.Groups == nil {
		v.Groups = []string{}
	}
	if v.RawAttributes == nil {
		v.RawAttributes = map[string]any{}
	}
	for _, m := range ms {
		org, ok := orgs[m.OrganizationID]
		if !ok {
			continue // deleted between the two reads
		}
		t := Tenant{OrganizationID: org.ID, OrganizationName: org.Name, Active: org.Active, Roles: []TenantRole{}}
		for _, id := range m.RoleIDs {
			r, ok := roles[id] // absent: deleted, or inactive
			if !ok {
				continue
			}
			t.Roles = append(t.Roles, r)
			v.Roles = append(v.Roles, r.Slug)
		}
		v.Tenants = append(v.Tenants, t)
	}
	slices.Sort(v.Roles)
	v.Roles = slices.Compact(v.Roles)
	return v
}

// loadOrgs returns the organizations among ids, by id.
//
// The store has no batch read of organizations, so this reads each distinct organization once;
// a page of users usually shares a few organizations, so this stays small, but a batch
// GetOrganizations in the store would make it one query.
func (s *Service) loadOrgs(ctx context.Context, projectID string, ids []string) (map[string]store.Organization, error) {
	out := make(map[string]store.Organization)
	for _, id := range ids {
		if _, done := out[id]; done {
			continue
		}
		o, err := s.store.GetOrganization(ctx, projectID, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("directory: get organization: %w", err)
		}
		out[id] = o
	}
	return out, nil
}

// loadRoles returns the roles among ids, by id, with one query for the roles and one for their
// permissions. With effective set, inactive roles are left out and permissions are resolved.
func (s *Service) loadRoles(ctx context.Context, projectID string, ids []string, effective bool) (map[string]TenantRole, error) {
	out := make(map[string]TenantRole)
	ids = uniqueSorted(ids)
	if len(ids) == 0 {
		return out, nil
	}
	rs, err := s.store.GetRoles(ctx, projectID, ids)
	if err != nil {
		return nil, fmt.Errorf("directory: get roles: %w", err)
	}
	permSlugs := map[string]string{}
	if effective {
		var permIDs []string
		for _, r := range rs {
			if r.Active {
				permIDs = append(permIDs, r.PermissionIDs...)
			}
		}
		if permIDs = uniqueSorted(permIDs); len(permIDs) > 0 {
			ps, err := s.store.GetPermissions(ctx, projectID, permIDs)
			if err != nil {
				return nil, fmt.Errorf("directory: get permissions: %w", err)
			}
			for _, p := range ps {
				permSlugs[p.ID] = p.Slug
			}
		}
	}
	for _, r := range rs {
		if effective && !r.Active {
			continue
		}
		tr := TenantRole{ID: r.ID, Name: r.Name, Slug: r.Slug, Permissions: []string{}}
		if effective {
			for _, id := range r.PermissionIDs {
				if slug, ok := permSlugs[id]; ok {
					tr.Permissions = append(tr.Permissions, slug)
				}
			}
			slices.Sort(tr.Permissions)
		}
		out[r.ID] = tr
	}
	return out, nil
}

// uniqueSorted returns the distinct strings of ids, sorted, in a new slice.
func uniqueSorted(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}
