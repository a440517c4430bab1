package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// AddMembers makes the users members of the organization with no roles, leaving existing
// members as they are. ErrNotFound, and nothing written, when the organization or any user is
// not in the project.
func (s *Store) AddMembers(ctx context.Context, projectID, orgID string, userIDs []string, at time.Time) error {
	ids := sortedUnique(userIDs)
	err := s.atomic(ctx, func(s *Store) error {
		if err := s.requireAll(ctx, "organizations", projectID, []string{orgID}); err != nil {
			return err
		}
		if err := s.requireAll(ctx, "users", projectID, ids); err != nil {
			return err
		}
		for _, chunk := range chunks(ids) {
			q := `INSERT INTO memberships (project_id, organization_id, user_id, created_at) VALUES ` +
				strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", len(chunk)), ", ") +
				` ON CONFLICT (project_id, organization_id, user_id) DO NOTHING`
			a := make([]any, 0, 4*len(chunk))
			for _, id := range chunk {
				a = append(a, projectID, orgID, id, toMicros(at))
			}
			if _, err := s.exec(ctx, q, a...); err != nil {
				return err
			}
		}
		return nil
	})
	return s.wrap(err, "add members to organization %s", orgID)
}

// RemoveMembers ends the users' memberships of the organization, with the roles they held in
// it; users who are not members are ignored. ErrNotFound when the organization is not in the
// project.
func (s *Store) RemoveMembers(ctx context.Context, projectID, orgID string, userIDs []string) error {
	ids := sortedUnique(userIDs)
	err := s.atomic(ctx, func(s *Store) error {
		if err := s.requireAll(ctx, "organizations", projectID, []string{orgID}); err != nil {
			return err
		}
		for _, chunk := range chunks(ids) {
			if _, err := s.exec(ctx,
				`DELETE FROM memberships WHERE project_id = ? AND organization_id = ? AND user_id IN (`+placeholders(len(chunk))+`)`,
				withIDs([]any{projectID, orgID}, chunk)...); err != nil {
				return err
			}
		}
		return nil
	})
	return s.wrap(err, "remove members from organization %s", orgID)
}

// SetMemberRoles replaces the user's roles in the organization, making them a member first if
// they are not. ErrNotFound, and nothing written, when the organization, the user or any role
// is not in the project.
func (s *Store) SetMemberRoles(ctx context.Context, projectID, orgID, userID string, roleIDs []string, at time.Time) error {
	ids := sortedUnique(roleIDs)
	err := s.atomic(ctx, func(s *Store) error {
		if err := s.requireAll(ctx, "organizations", projectID, []string{orgID}); err != nil {
			return err
		}
		if err := s.requireAll(ctx, "users", projectID, []string{userID}); err != nil {
			return err
		}
		if err := s.requireAll(ctx, "roles", projectID, ids); err != nil {
			return err
		}
		if _, err := s.exec(ctx,
			`INSERT INTO memberships (project_id, organization_id, user_id, created_at) VALUES (?, ?, ?, ?)
			 ON CONFLICT (project_id, organization_id, user_id) DO NOTHING`,
			projectID, orgID, userID, toMicros(at)); err != nil {
			return err
		}
		// Lock the membership so that a concurrent SetMemberRoles on it waits for this one to
		// commit and then replaces our roles, rather than both sets ending up merged.
		var one int
		if err := s.queryRow(ctx,
			`SELECT 1 FROM memberships WHERE project_id = ? AND organization_id = ? AND user_id = ?`+s.d.forUpdate(),
			projectID, orgID, userID).Scan(&one); err != nil {
			return err // ErrNoRows: the user or organization was deleted meanwhile
		}
		if _, err := s.exec(ctx,
			`DELETE FROM membership_roles WHERE project_id = ? AND organization_id = ? AND user_id = ?`,
			projectID, orgID, userID); err != nil {
			return err
		}
		for _, chunk := range chunks(ids) {
			q := `INSERT INTO membership_roles (project_id, organization_id, user_id, role_id) VALUES ` +
				strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", len(chunk)), ", ")
			a := make([]any, 0, 4*len(chunk))
			for _, id := range chunk {
				a = append(a, projectID, orgID, userID, id)
			}
			if _, err := s.exec(ctx, q, a...); err != nil {
				return err
			}
		}
		return nil
	})
	return s.wrap(err, "set roles of user %s in organization %s", userID, orgID)
}

// membershipQuery selects memberships with their roles, one row per role (a membership without
// roles gives one row with a NULL role), for collectMemberships.
const membershipQuery = `SELECT m.organization_id, m.user_id, m.created_at, r.role_id FROM %s m
	LEFT JOIN membership_roles r
	ON r.project_id = m.project_id AND r.organization_id = m.organization_id AND r.user_id = m.user_id`

// ListMembers returns one page of the organization's memberships, by user id. An organization
// that is not in the project has no members.
func (s *Store) ListMembers(ctx context.Context, projectID, orgID string, p store.Page) ([]store.Membership, error) {
	page, pa := pageClause("user_id", p.Limit)
	// The page is cut in a subquery so that LIMIT counts memberships, not role rows.
	from := `(SELECT project_id, organization_id, user_id, created_at FROM memberships
		WHERE project_id = ? AND organization_id = ? AND user_id > ?` + page + `)`
	rows, err := s.query(ctx, fmt.Sprintf(membershipQuery, from)+` ORDER BY m.user_id, r.role_id`,
		append([]any{projectID, orgID, p.After}, pa...)...)
	if err != nil {
		return nil, s.wrap(err, "list members of organization %s", orgID)
	}
	out, err := collectMemberships(rows, projectID)
	return out, s.wrap(err, "list members of organization %s", orgID)
}

// ListMemberships returns the memberships of the users in the project, by user id then
// organization id.
func (s *Store) ListMemberships(ctx context.Context, projectID string, userIDs []string) ([]store.Membership, error) {
	out := []store.Membership{}
	// Chunks of sorted ids are consecutive ranges, so appending the chunks' sorted results
	// keeps the whole list sorted.
	for _, chunk := range chunks(sortedUnique(userIDs)) {
		rows, err := s.query(ctx, fmt.Sprintf(membershipQuery, "memberships")+
			` WHERE m.project_id = ? AND m.user_id IN (`+placeholders(len(chunk))+`)
			 ORDER BY m.user_id, m.organization_id, r.role_id`,
			withIDs([]any{projectID}, chunk)...)
		if err != nil {
			return nil, s.wrap(err, "list memberships")
		}
		ms, err := collectMemberships(rows, projectID)
		if err != nil {
			return nil, s.wrap(err, "list memberships")
		}
		out = append(out, ms...)
	}
	return out, nil
}

// collectMemberships folds the rows of membershipQuery, ordered by membership then role, into
// memberships with sorted role ids.
func collectMemberships(rows *sql.Rows, projectID string) ([]store.Membership, error) {
	defer rows.Close()
	out := []store.Membership{}
	for rows.Next() {
		var orgID, userID string
		var created int64
		var roleID *string
		if err := rows.Scan(&orgID, &userID, &created, &roleID); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].OrganizationID != orgID || out[n-1].UserID != userID {
			out = append(out, store.Membership{
				ProjectID:      projectID,
				OrganizationID: orgID,
				UserID:         userID,
				RoleIDs:        []string{},
				CreatedAt:      fromMicros(created),
			})
		}
		if roleID != nil {
			m := &out[len(out)-1]
			m.RoleIDs = append(m.RoleIDs, *roleID)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// requireAll checks that every id names a row of table in the project, and fails with
// store.ErrNotFound, naming one that does not, otherwise. table is one of this package's
// constants, never input.
func (s *Store) requireAll(ctx context.Context, table, projectID string, ids []string) error {
	for _, chunk := range chunks(sortedUnique(ids)) {
		rows, err := s.query(ctx,
			`SELECT id FROM `+table+` WHERE project_id = ? AND id IN (`+placeholders(len(chunk))+`)`,
			withIDs([]any{projectID}, chunk)...)
		if err != nil {
			return err
		}
		found := make(map[string]bool, len(chunk))
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			found[id] = true
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range chunk {
			if !found[id] {
				return fmt.Errorf("%s %s: %w", strings.TrimSuffix(table, "s"), id, store.ErrNotFound)
			}
		}
	}
	return nil
}
