package sqlstore

import (
	"context"
	"database/sql"
	"strings"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// CreateRole stores r with its permissions. ErrConflict when its id or slug is taken;
// ErrNotFound, and nothing written, when a permission is not in the project.
func (s *Store) CreateRole(ctx context.Context, r store.Role) error {
	perms := sortedUnique(r.PermissionIDs)
	err := s.atomic(ctx, func(s *Store) error {
		if err := s.requireAll(ctx, "permissions", r.ProjectID, perms); err != nil {
			return err
		}
		if _, err := s.exec(ctx,
			`INSERT INTO roles (id, project_id, name, slug, description, active, created_at, updated_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.ProjectID, r.Name, r.Slug, r.Description, r.Active, toMicros(r.CreatedAt), toMicros(r.UpdatedAt)); err != nil {
			return err
		}
		return s.insertRolePermissions(ctx, r.ProjectID, r.ID, perms)
	})
	return s.wrap(err, "create role %s", r.ID)
}

// insertRolePermissions links the role to perms, which are sorted and known to exist.
func (s *Store) insertRolePermissions(ctx context.Context, projectID, roleID string, perms []string) error {
	for _, chunk := range chunks(perms) {
		q := `INSERT INTO role_permissions (project_id, role_id, permission_id) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(chunk)), ", ")
		a := make([]any, 0, 3*len(chunk))
		for _, id := range chunk {
			a = append(a, projectID, roleID, id)
		}
		if _, err := s.exec(ctx, q, a...); err != nil {
			return err
		}
	}
	return nil
}

// roleQuery selects the roles of the subquery r (which has the columns of roles) with their
// permissions, one row per permission, ordered by role id then permission id, for
// collectRoles.
const roleQuery = `SELECT r.id, r.project_id, r.name, r.slug, r.description, r.active, r.created_at, r.updated_at,
	rp.permission_id
	FROM (SELECT id, project_id, name, slug, description, active, created_at, updated_at FROM roles
	      WHERE project_id = ? AND `

const roleQueryEnd = `) r
	LEFT JOIN role_permissions rp ON rp.project_id = r.project_id AND rp.role_id = r.id
	ORDER BY r.id, rp.permission_id`

// GetRole returns the role of the project with id.
func (s *Store) GetRole(ctx context.Context, projectID, id string) (store.Role, error) {
	roles, err := s.queryRoles(ctx, roleQuery+`id = ?`+roleQueryEnd, projectID, id)
	if err == nil && len(roles) == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Role{}, s.wrap(err, "get role %s", id)
	}
	return roles[0], nil
}

// GetRoles returns the roles among ids that are in the project, by id.
func (s *Store) GetRoles(ctx context.Context, projectID string, ids []string) ([]store.Role, error) {
	out := []store.Role{}
	for _, chunk := range chunks(sortedUnique(ids)) {
		roles, err := s.queryRoles(ctx, roleQuery+`id IN (`+placeholders(len(chunk))+`)`+roleQueryEnd,
			withIDs([]any{projectID}, chunk)...)
		if err != nil {
			return nil, s.wrap(err, "get roles")
		}
		out = append(out, roles...)
	}
	return out, nil
}

// ListRoles returns one page of the project's roles, by id.
func (s *Store) ListRoles(ctx context.Context, projectID string, p store.Page) ([]store.Role, error) {
	page, pa := pageClause("id", p.Limit)
	out, err := s.queryRoles(ctx, roleQuery+`id > ?`+page+roleQueryEnd, append([]any{projectID, p.After}, pa...)...)
	return out, s.wrap(err, "list roles of project %s", projectID)
}

// queryRoles runs a roleQuery and folds its rows into roles with sorted permission ids.
func (s *Store) queryRoles(ctx context.Context, q string, a ...any) ([]store.Role, error) {
	rows, err := s.query(ctx, q, a...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Role{}
	for rows.Next() {
		var r store.Role
		var created, updated int64
		var perm sql.NullString
		if err := rows.Scan(&r.ID, &r.ProjectID, &r.Name, &r.Slug, &r.Description, &r.Active,
			&created, &updated, &perm); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].ID != r.ID {
			r.CreatedAt = fromMicros(created)
			r.UpdatedAt = fromMicros(updated)
			r.PermissionIDs = []string{}
			out = append(out, r)
		}
		if perm.Valid {
			last := &out[len(out)-1]
			last.PermissionIDs = append(last.PermissionIDs, perm.String)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateRole replaces every field of the role but ID, ProjectID and CreatedAt, its permission
// set too. ErrNotFound when the role or a permission is not in the project (and then nothing
// is written); ErrConflict when the new slug is taken.
func (s *Store) UpdateRole(ctx context.Context, r store.Role) error {
	perms := sortedUnique(r.PermissionIDs)
	err := s.atomic(ctx, func(s *Store) error {
		// The UPDATE comes first: on PostgreSQL it locks the role's row, so that concurrent
		// updates of one role replace its permission set one after the other.
		if err := mustAffect(s.execAffected(ctx,
			`UPDATE roles SET name = ?, slug = ?, description = ?, active = ?, updated_at = ?
			 WHERE project_id = ? AND id = ?`,
			r.Name, r.Slug, r.Description, r.Active, toMicros(r.UpdatedAt), r.ProjectID, r.ID)); err != nil {
			return err
		}
		if err := s.requireAll(ctx, "permissions", r.ProjectID, perms); err != nil {
			return err
		}
		if _, err := s.exec(ctx, `DELETE FROM role_permissions WHERE project_id = ? AND role_id = ?`,
			r.ProjectID, r.ID); err != nil {
			return err
		}
		return s.insertRolePermissions(ctx, r.ProjectID, r.ID, perms)
	})
	return s.wrap(err, "update role %s", r.ID)
}

// DeleteRole removes the role; the foreign keys remove it from every membership and drop its
// permission links in the same statement.
func (s *Store) DeleteRole(ctx context.Context, projectID, id string) error {
	err := mustAffect(s.execAffected(ctx, `DELETE FROM roles WHERE project_id = ? AND id = ?`, projectID, id))
	return s.wrap(err, "delete role %s", id)
}
