package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// DefaultRoles returns the roles every new project starts with (API.md §9): Owner, Admin and
// Developer, active and without permissions. Only Name, Slug, Description and Active are set.
func DefaultRoles() []store.Role {
	return []store.Role{
		{Name: "Owner", Slug: "owner", Description: "Full control of the organization, including its owners.", Active: true},
		{Name: "Admin", Slug: "admin", Description: "Manages the organization's members and settings.", Active: true},
		{Name: "Developer", Slug: "developer", Description: "Builds with the organization's applications.", Active: true},
	}
}

// SeedRoles creates DefaultRoles in a new project through tx, so that the caller can make them
// part of the transaction that creates the project.
func (s *Service) SeedRoles(ctx context.Context, tx store.Store, projectID string) error {
	now := s.clock()
	for _, r := range DefaultRoles() {
		r.ID, r.ProjectID, r.PermissionIDs, r.CreatedAt, r.UpdatedAt = s.ids.New(), projectID, []string{}, now, now
		if err := tx.CreateRole(ctx, r); err != nil {
			return fmt.Errorf("directory: seed role %s: %w", r.Slug, err)
		}
	}
	return nil
}

// RoleInput holds the role fields to set. A nil field is left as it is on update and takes its
// default on create (slug derived from the name, no description, no permissions, active).
type RoleInput struct {
	Name          *string // required on create; never empty
	Slug          *string // ^[a-z0-9][a-z0-9_-]{0,63}$, unique in the project
	Description   *string
	PermissionIDs *[]string // the complete set; every id must be a permission of the project
	Active        *bool
}

// rolePatch is a validated RoleInput (slug derivation and permission checks aside, which need
// the record or the store).
type rolePatch RoleInput

func (in RoleInput) validate() (rolePatch, error) {
	p := rolePatch{Active: in.Active}
	if in.Name != nil {
		n, err := requiredName("name", *in.Name)
		if err != nil {
			return p, err
		}
		p.Name = &n
	}
	if in.Slug != nil {
		sl, err := checkSlug(*in.Slug)
		if err != nil {
			return p, err
		}
		p.Slug = &sl
	}
	if in.Description != nil {
		d, err := cleanText("description", *in.Description, maxDescriptionLen, true)
		if err != nil {
			return p, err
		}
		p.Description = &d
	}
	if in.PermissionIDs != nil {
		if len(*in.PermissionIDs) > maxPermissions {
			return p, failure.InvalidField("invalid_request", "permission_id", fmt.Sprintf("must hold at most %d permissions", maxPermissions))
		}
		ids := uniqueSorted(*in.PermissionIDs)
		for _, id := range ids {
			if !ident.Valid(id) {
				return p, permissionNotFound(id, nil)
			}
		}
		p.PermissionIDs = &ids
	}
	return p, nil
}

func (p rolePatch) apply(r *store.Role) {
	set(&r.Name, p.Name)
	set(&r.Slug, p.Slug)
	set(&r.Description, p.Description)
	set(&r.PermissionIDs, p.PermissionIDs)
	set(&r.Active, p.Active)
}

// checkPermissions reports the first of ids that is not a permission of the project. It runs
// before the write so that the error can name the id.
func checkPermissions(ctx context.Context, st Store, projectID string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ps, err := st.GetPermissions(ctx, projectID, ids)
	if err != nil {
		return fmt.Errorf("directory: get permissions: %w", err)
	}
	for _, id := range ids {
		if !slices.ContainsFunc(ps, func(p store.Permission) bool { return p.ID == id }) {
			return permissionNotFound(id, nil)
		}
	}
	return nil
}

func permissionNotFound(id string, cause error) error {
	return &failure.Error{Kind: failure.NotFound, Code: codePermissionNotFound, Field: "permission_id",
		Description: "permission " + id + " not found", Err: cause}
}

// roleWriteError translates the error of a role write.
func roleWriteError(err error) error {
	if _, ok := failure.As(err); ok {
		return err
	}
	switch {
	case errors.Is(err, store.ErrConflict):
		return slugExists("role", err)
	case errors.Is(err, store.ErrNotFound):
		// The role existed when read and every permission a moment before the write: one of
		// them went away concurrently. The permissions are far likelier to be the culprit.
		return &failure.Error{Kind: failure.NotFound, Code: codePermissionNotFound, Field: "permission_id",
			Description: "a permission of the role was not found", Err: err}
	}
	return fmt.Errorf("directory: write role: %w", err)
}

func slugExists(what string, cause error) error {
	return &failure.Error{Kind: failure.Conflict, Code: "slug_exists", Field: "slug",
		Description: "another " + what + " of this project has this slug", Err: cause}
}

// CreateRole creates a role, recorded as role.created. Errors: invalid_request (400);
// permission_not_found (404); slug_exists (409).
func (s *Service) CreateRole(ctx context.Context, by audit.Actor, projectID string, in RoleInput) (store.Role, error) {
	if in.Name == nil {
		return store.Role{}, failure.InvalidField("invalid_request", "name", "is required")
	}
	p, err := in.validate()
	if err != nil {
		return store.Role{}, err
	}
	slug, err := slugFor(p.Slug, *p.Name)
	if err != nil {
		return store.Role{}, err
	}
	now := s.clock()
	r := store.Role{ID: s.ids.New(), ProjectID: projectID, Slug: slug, PermissionIDs: []string{},
		Active: true, CreatedAt: now, UpdatedAt: now}
	p.apply(&r)
	err = s.store.InTx(ctx, func(tx store.Store) error {
		if err := checkPermissions(ctx, tx, projectID, r.PermissionIDs); err != nil {
			return err
		}
		if err := tx.CreateRole(ctx, r); err != nil {
			return err
		}
		return s.audit(ctx, tx, by, store.AuditEvent{ProjectID: projectID, Type: EventRoleCreated,
			Detail: map[string]any{"role_id": r.ID, "slug": r.Slug}})
	})
	if err != nil {
		return store.Role{}, roleWriteError(err)
	}
	return r, nil
}

// GetRole returns a role. Errors: role_not_found (404).
func (s *Service) GetRole(ctx context.Context, projectID, id string) (store.Role, error) {
	return getRole(ctx, s.store, projectID, id)
}

func getRole(ctx context.Context, st Store, projectID, id string) (store.Role, error) {
	if !ident.Valid(id) {
		return store.Role{}, missing(codeRoleNotFound, "role")
	}
	r, err := st.GetRole(ctx, projectID, id)
	if err != nil {
		return store.Role{}, notFound(err, codeRoleNotFound, "role")
	}
	if r.PermissionIDs == nil {
		r.PermissionIDs = []string{}
	}
	return r, nil
}

// RolePage is one page of roles, oldest first.
type RolePage struct {
	Roles      []store.Role
	NextCursor string
}

// ListRoles returns a page of roles. Errors: invalid_limit, invalid_cursor (400).
func (s *Service) ListRoles(ctx context.Context, projectID string, q PageQuery) (RolePage, error) {
	page, limit, err := parsePage(q)
	if err != nil {
		return RolePage{}, err
	}
	rows, err := s.store.ListRoles(ctx, projectID, page)
	if err != nil {
		return RolePage{}, fmt.Errorf("directory: list roles: %w", err)
	}
	rows, next := trimPage(rows, limit, func(r store.Role) string { return r.ID })
	for i := range rows {
		if rows[i].PermissionIDs == nil {
			rows[i].PermissionIDs = []string{}
		}
	}
	if rows == nil {
		rows = []store.Role{}
	}
	return RolePage{Roles: rows, NextCursor: next}, nil
}

// UpdateRole changes the fields of in that are not nil, recorded as role.updated; a new name
// does not change the slug. Errors: invalid_request (400); role_not_found,
// permission_not_found (404); slug_exists (409).
func (s *Service) UpdateRole(ctx context.Context, by audit.Actor, projectID, id string, in RoleInput) (store.Role, error) {
	p, err := in.validate()
	if err != nil {
		return store.Role{}, err
	}
	var r store.Role
	err = s.store.InTx(ctx, func(tx store.Store) error {
		var err error
		if r, err = getRole(ctx, tx, projectID, id); err != nil {
			return err
		}
		old := r
		p.apply(&r)
		if p.PermissionIDs != nil {
			if err := checkPermissions(ctx, tx, projectID, r.PermissionIDs); err != nil {
				return err
			}
		}
		r.UpdatedAt = s.clock()
		if err := tx.UpdateRole(ctx, r); err != nil {
			return err
		}
		var c changes
		c.note("name", old.Name != r.Name)
		c.note("slug", old.Slug != r.Slug)
		c.note("description", old.Description != r.Description)
		c.note("permission_id", !slices.Equal(uniqueSorted(old.PermissionIDs), uniqueSorted(r.PermissionIDs)))
		c.note("is_active", old.Active != r.Active)
		return s.audit(ctx, tx, by, store.AuditEvent{ProjectID: projectID, Type: EventRoleUpdated,
			Detail: map[string]any{"role_id": r.ID, "changed": c.list()}})
	})
	if err != nil {
		return store.Role{}, roleWriteError(err)
	}
	return r, nil
}

// DeleteRole deletes a role and removes it from every membership, recorded as role.deleted.
// Errors: role_not_found (404).
func (s *Service) DeleteRole(ctx context.Context, by audit.Actor, projectID, id string) error {
	if !ident.Valid(id) {
		return missing(codeRoleNotFound, "role")
	}
	return s.store.InTx(ctx, func(tx store.Store) error {
		if err := tx.DeleteRole(ctx, projectID, id); err != nil {
			return notFound(err, codeRoleNotFound, "role")
		}
		return s.audit(ctx, tx, by, store.AuditEvent{ProjectID: projectID, Type: EventRoleDeleted,
			Detail: map[string]any{"role_id": id}})
	})
}

// PermissionInput holds the permission fields to set. A nil field is left as it is on update
// and takes its default on create (slug derived from the name, no description).
type PermissionInput struct {
	Name        *string // required on create; never empty
	Slug        *string // ^[a-z0-9][a-z0-9_-]{0,63}$, unique in the project
	Description *string
}

func (in PermissionInput) validate() (PermissionInput, error) {
	// A permission's fields are a subset of a role's and follow the same rules.
	rp, err := RoleInput{Name: in.Name, Slug: in.Slug, Description: in.Description}.validate()
	return PermissionInput{Name: rp.Name, Slug: rp.Slug, Description: rp.Description}, err
}

func (p PermissionInput) apply(perm *store.Permission) {
	set(&perm.Name, p.Name)
	set(&perm.Slug, p.Slug)
	set(&perm.Description, p.Description)
}

func permissionWriteError(err error) error {
	if _, ok := failure.As(err); ok {
		return err
	}
	switch {
	case errors.Is(err, store.ErrConflict):
		return slugExists("permission", err)
	case errors.Is(err, store.ErrNotFound):
		return notFound(err, codePermissionNotFound, "permission")
	}
	return fmt.Errorf("directory: write permission: %w", err)
}

// CreatePermission creates a permission, recorded as permission.created. Errors:
// invalid_request (400); slug_exists (409).
func (s *Service) CreatePermission(ctx context.Context, by audit.Actor, projectID string, in PermissionInput) (store.Permission, error) {
	if in.Name == nil {
		return store.Permission{}, failure.InvalidField("invalid_request", "name", "is required")
	}
	p, err := in.validate()
	if err != nil {
		return store.Permission{}, err
	}
	slug, err := slugFor(p.Slug, *p.Name)
	if err != nil {
		return store.Permission{}, err
	}
	now := s.clock()
	perm := store.Permission{ID: s.ids.New(), ProjectID: projectID, Slug: slug, CreatedAt: now, UpdatedAt: now}
	p.apply(&perm)
	err = s.store.InTx(ctx, func(tx store.Store) error {
		if err := tx.CreatePermission(ctx, perm); err != nil {
			return err
		}
		return s.audit(ctx, tx, by, store.AuditEvent{ProjectID: projectID, Type: EventPermissionCreated,
			Detail: map[string]any{"permission_id": perm.ID, "slug": perm.Slug}})
	})
	if err != nil {
		return store.Permission{}, permissionWriteError(err)
	}
	return perm, nil
}

// GetPermission returns a permission. Errors: permission_not_found (404).
func (s *Service) GetPermission(ctx context.Context, projectID, id string) (store.Permission, error) {
	return getPermission(ctx, s.store, projectID, id)
}

func getPermission(ctx context.Context, st Store, projectID, id string) (store.Permission, error) {
	if !ident.Valid(id) {
		return store.Permission{}, missing(codePermissionNotFound, "permission")
	}
	p, err := st.GetPermission(ctx, projectID, id)
	if err != nil {
		return store.Permission{}, notFound(err, codePermissionNotFound, "permission")
	}
	return p, nil
}

// PermissionPage is one page of permissions, oldest first.
type PermissionPage struct {
	Permissions []store.Permission
	NextCursor  string
}

// ListPermissions returns a page of permissions. Errors: invalid_limit, invalid_cursor (400).
func (s *Service) ListPermissions(ctx context.Context, projectID string, q PageQuery) (PermissionPage, error) {
	page, limit, err := parsePage(q)
	if err != nil {
		return PermissionPage{}, err
	}
	rows, err := s.store.ListPermissions(ctx, projectID, page)
	if err != nil {
		return PermissionPage{}, fmt.Errorf("directory: list permissions: %w", err)
	}
	rows, next := trimPage(rows, limit, func(p store.Permission) string { return p.ID })
	if rows == nil {
		rows = []store.Permission{}
	}
	return PermissionPage{Permissions: rows, NextCursor: next}, nil
}

// UpdatePermission changes the fields of in that are not nil, recorded as permission.updated;
// a new name does not change the slug. Errors: invalid_request (400); permission_not_found
// (404); slug_exists (409).
func (s *Service) UpdatePermission(ctx context.Context, by audit.Actor, projectID, id string, in PermissionInput) (store.Permission, error) {
	p, err := in.validate()
	if err != nil {
		return store.Permission{}, err
	}
	var perm store.Permission
	err = s.store.InTx(ctx, func(tx store.Store) error {
		var err error
		if perm, err = getPermission(ctx, tx, projectID, id); err != nil {
			return err
		}
		old := perm
		p.apply(&perm)
		perm.UpdatedAt = s.clock()
		if err := tx.UpdatePermission(ctx, perm); err != nil {
			return err
		}
		var c changes
		c.note("name", old.Name != perm.Name)
		c.note("slug", old.Slug != perm.Slug)
		c.note("description", old.Description != perm.Description)
		return s.audit(ctx, tx, by, store.AuditEvent{ProjectID: projectID, Type: EventPermissionUpdated,
			Detail: map[string]any{"permission_id": perm.ID, "changed": c.list()}})
	})
	if err != nil {
		return store.Permission{}, permissionWriteError(err)
	}
	return perm, nil
}

// DeletePermission deletes a permission and removes it from every role, recorded as
// permission.deleted. Errors: permission_not_found (404).
func (s *Service) DeletePermission(ctx context.Context, by audit.Actor, projectID, id string) error {
	if !ident.Valid(id) {
		return missing(codePermissionNotFound, "permission")
	}
	return s.store.InTx(ctx, func(tx store.Store) error {
		if err := tx.DeletePermission(ctx, projectID, id); err != nil {
			return notFound(err, codePermissionNotFound, "permission")
		}
		return s.audit(ctx, tx, by, store.AuditEvent{ProjectID: projectID, Type: EventPermissionDeleted,
			Detail: map[string]any{"permission_id": id}})
	})
}
