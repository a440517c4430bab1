package sqlstore

import (
	"context"
	"fmt"

	"github.com/latchkey-dev/latchkey/internal/store"
)

const organizationColumns = `id, project_id, name, domain, workspace_name, white_list_domains,
	allow_profiles_outside_organization, active, mfa_policy, created_at, updated_at`

func scanOrganization(sc scanner) (store.Organization, error) {
	var o store.Organization
	var domains string
	var created, updated int64
	if err := sc.Scan(&o.ID, &o.ProjectID, &o.Name, &o.Domain, &o.WorkspaceName, &domains,
		&o.AllowProfilesOutsideOrganization, &o.Active, &o.MFAPolicy, &created, &updated); err != nil {
		return store.Organization{}, err
	}
	var err error
	if o.WhiteListDomains, err = stringsFromJSON(domains); err != nil {
		return store.Organization{}, err
	}
	o.CreatedAt = fromMicros(created)
	o.UpdatedAt = fromMicros(updated)
	return o, nil
}

// CreateOrganization stores o; ErrConflict when its id is taken, ErrNotFound when its project
// does not exist.
func (s *Store) CreateOrganization(ctx context.Context, o store.Organization) error {
	domains, err := stringsJSON(o.WhiteListDomains)
	if err != nil {
		return fmt.Errorf("create organization %s: encode white list domains: %w", o.ID, err)
	}
	err = s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO organizations (`+organizationColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			o.ID, o.ProjectID, o.Name, o.Domain, o.WorkspaceName, domains,
			o.AllowProfilesOutsideOrganization, o.Active, o.MFAPolicy, toMicros(o.CreatedAt), toMicros(o.UpdatedAt))
		return err
	})
	return s.wrap(err, "create organization %s", o.ID)
}

// GetOrganization returns the organization of the project with id.
func (s *Store) GetOrganization(ctx context.Context, projectID, id string) (store.Organization, error) {
	o, err := scanOrganization(s.queryRow(ctx,
		`SELECT `+organizationColumns+` FROM organizations WHERE project_id = ? AND id = ?`, projectID, id))
	if err != nil {
		return store.Organization{}, s.wrap(err, "get organization %s", id)
	}
	return o, nil
}

// ListOrganizations returns one page of the project's organizations, by id.
func (s *Store) ListOrganizations(ctx context.Context, projectID string, p store.Page) ([]store.Organization, error) {
	page, pa := pageClause("id", p.Limit)
	rows, err := s.query(ctx,
		`SELECT `+organizationColumns+` FROM organizations WHERE project_id = ? AND id > ?`+page,
		append([]any{projectID, p.After}, pa...)...)
	if err != nil {
		return nil, s.wrap(err, "list organizations of project %s", projectID)
	}
	out, err := collect(rows, scanOrganization)
	return out, s.wrap(err, "list organizations of project %s", projectID)
}

// UpdateOrganization replaces every field of the organization but ID, ProjectID and CreatedAt.
func (s *Store) UpdateOrganization(ctx context.Context, o store.Organization) error {
	domains, err := stringsJSON(o.WhiteListDomains)
	if err != nil {
		return fmt.Errorf("update organization %s: encode white list domains: %w", o.ID, err)
	}
	err = mustAffect(s.execAffected(ctx, `UPDATE organizations SET
		name = ?, domain = ?, workspace_name = ?, white_list_domains = ?,
		allow_profiles_outside_organization = ?, active = ?, mfa_policy = ?, updated_at = ?
		WHERE project_id = ? AND id = ?`,
		o.Name, o.Domain, o.WorkspaceName, domains, o.AllowProfilesOutsideOrganization, o.Active,
		o.MFAPolicy, toMicros(o.UpdatedAt), o.ProjectID, o.ID))
	return s.wrap(err, "update organization %s", o.ID)
}

// DeleteOrganization removes the organization; the foreign keys remove its memberships and
// the roles held in them in the same statement.
func (s *Store) DeleteOrganization(ctx context.Context, projectID, id string) error {
	err := mustAffect(s.execAffected(ctx, `DELETE FROM organizations WHERE project_id = ? AND id = ?`, projectID, id))
	return s.wrap(err, "delete organization %s", id)
}
