package sqlstore

import (
	"context"

	"github.com/latchkey-dev/latchkey/internal/store"
)

const permissionColumns = `id, project_id, name, slug, description, created_at, updated_at`

func scanPermission(sc scanner) (store.Permission, error) {
	var p store.Permission
	var created, updated int64
	if err := sc.Scan(&p.ID, &p.ProjectID, &p.Name, &p.Slug, &p.Description, &created, &updated); err != nil {
		return store.Permission{}, err
	}
	p.CreatedAt = fromMicros(created)
	p.UpdatedAt = fromMicros(updated)
	return p, nil
}

// CreatePermission stores p; ErrConflict when its id or slug is taken, ErrNotFound when its
// project does not exist.
func (s *Store) CreatePermission(ctx context.Context, p store.Permission) error {
	err := s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO permissions (`+permissionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.ProjectID, p.Name, p.Slug, p.Description, toMicros(p.CreatedAt), toMicros(p.UpdatedAt))
		return err
	})
	return s.wrap(err, "create permission %s", p.ID)
}

// GetPermission returns the permission of the project with id.
func (s *Store) GetPermission(ctx context.Context, projectID, id string) (store.Permission, error) {
	p, err := scanPermission(s.queryRow(ctx,
		`SELECT `+permissionColumns+` FROM permissions WHERE project_id = ? AND id = ?`, projectID, id))
	if err != nil {
		return store.Permission{}, s.wrap(err, "get permission %s", id)
	}
	return p, nil
}

// GetPermissions returns the permissions among ids that are in the project, by id.
func (s *Store) GetPermissions(ctx context.Context, projectID string, ids []string) ([]store.Permission, error) {
	out := []store.Permission{}
	for _, chunk := range chunks(sortedUnique(ids)) {
		rows, err := s.query(ctx, `SELECT `+permissionColumns+` FROM permissions
			WHERE project_id = ? AND id IN (`+placeholders(len(chunk))+`) ORDER BY id`,
			withIDs([]any{projectID}, chunk)...)
		if err != nil {
			return nil, s.wrap(err, "get permissions")
		}
		ps, err := collect(rows, scanPermission)
		if err != nil {
			return nil, s.wrap(err, "get permissions")
		}
		out = append(out, ps...)
	}
	return out, nil
}

// ListPermissions returns one page of the project's permissions, by id.
func (s *Store) ListPermissions(ctx context.Context, projectID string, p store.Page) ([]store.Permission, error) {
	page, pa := pageClause("id", p.Limit)
	rows, err := s.query(ctx,
		`SELECT `+permissionColumns+` FROM permissions WHERE project_id = ? AND id > ?`+page,
		append([]any{projectID, p.After}, pa...)...)
	if err != nil {
		return nil, s.wrap(err, "list permissions of project %s", projectID)
	}
	out, err := collect(rows, scanPermission)
	return out, s.wrap(err, "list permissions of project %s", projectID)
}

// UpdatePermission stores p's name, slug, description and updated_at. ErrNotFound when it is
// not in the project; ErrConflict when the new slug is taken.
func (s *Store) UpdatePermission(ctx context.Context, p store.Permission) error {
	err := s.guarded(ctx, func(s *Store) error {
		return mustAffect(s.execAffected(ctx,
			`UPDATE permissions SET name = ?, slug = ?, description = ?, updated_at = ? WHERE project_id = ? AND id = ?`,
			p.Name, p.Slug, p.Description, toMicros(p.UpdatedAt), p.ProjectID, p.ID))
	})
	return s.wrap(err, "update permission %s", p.ID)
}

// DeletePermission removes the permission; the foreign keys remove it from every role in the
// same statement.
func (s *Store) DeletePermission(ctx context.Context, projectID, id string) error {
	err := mustAffect(s.execAffected(ctx, `DELETE FROM permissions WHERE project_id = ? AND id = ?`, projectID, id))
	return s.wrap(err, "delete permission %s", id)
}
