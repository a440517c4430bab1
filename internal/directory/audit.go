package directory

import (
	"context"
	"fmt"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Audit event types of directory changes. Each is written in the transaction of its change,
// so an event exists exactly when its change was committed: a refused or failed change
// (invalid input, a conflict, a missing record) writes none, and the outcome of every event
// is success. Every event's Detail holds "actor" ({"kind", "id"}, see audit.Actor) and its
// IPAddress and UserAgent columns say where the request came from. Changed fields are named,
// never given with their values.
//
//   - user.created: UserID.
//   - user.updated: UserID; Detail "changed", the names of the fields whose values changed
//     (email, phone_id, first_name, last_name, groups, raw_attributes, email_verified,
//     phone_verified, is_active). Written for every update, also one that changes nothing.
//   - user.deactivated, user.activated: UserID; written besides user.updated when an update
//     changes is_active. user.deactivated has Detail "sessions_revoked", the number of the
//     user's sessions it ended.
//   - user.deleted: UserID.
//   - user.roles_changed: UserID, OrganizationID; Detail "role_ids", the complete new set.
//   - organization.created, organization.deleted: OrganizationID.
//   - organization.updated: OrganizationID; Detail "changed" (name, domain, workspace_name,
//     white_list_domains, allow_profiles_outside_organization, is_active, mfa_policy).
//   - organization.members_added, organization.members_removed: OrganizationID; Detail
//     "user_ids", the ids the request named (de-duplicated).
//   - role.created, role.deleted: Detail "role_id" (and "slug" on create).
//   - role.updated: Detail "role_id", "changed" (name, slug, description, permission_id,
//     is_active).
//   - permission.created, permission.deleted: Detail "permission_id" (and "slug" on create).
//   - permission.updated: Detail "permission_id", "changed" (name, slug, description).
const (
	EventUserCreated       = "user.created"
	EventUserUpdated       = "user.updated"
	EventUserDeactivated   = "user.deactivated"
	EventUserActivated     = "user.activated"
	EventUserDeleted       = "user.deleted"
	EventUserRolesChanged  = "user.roles_changed"
	EventOrgCreated        = "organization.created"
	EventOrgUpdated        = "organization.updated"
	EventOrgDeleted        = "organization.deleted"
	EventOrgMembersAdded   = "organization.members_added"
	EventOrgMembersRemoved = "organization.members_removed"
	EventRoleCreated       = "role.created"
	EventRoleUpdated       = "role.updated"
	EventRoleDeleted       = "role.deleted"
	EventPermissionCreated = "permission.created"
	EventPermissionUpdated = "permission.updated"
	EventPermissionDeleted = "permission.deleted"
)

// audit writes e, made by `by`, through tx: the transaction of the change it records.
func (s *Service) audit(ctx context.Context, tx store.AuditEvents, by audit.Actor, e store.AuditEvent) error {
	e.ID, e.CreatedAt = s.ids.New(), s.clock()
	if err := tx.AddAuditEvent(ctx, by.Stamp(e)); err != nil {
		return fmt.Errorf("directory: write audit event %s: %w", e.Type, err)
	}
	return nil
}

// changes collects the names of the fields that differ between two versions of a record.
type changes []string

// note adds name when changed is true.
func (c *changes) note(name string, changed bool) {
	if changed {
		*c = append(*c, name)
	}
}

// list is c as an event detail: never nil, so that it is stored as [] rather than null.
func (c changes) list() []string {
	if c == nil {
		return []string{}
	}
	return c
}
