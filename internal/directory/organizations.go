package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// MFAPolicyInherit is the MFA policy of an organization that follows its project's mfa.policy.
// It is stored as "", so that organizations made before the setting existed inherit too.
const MFAPolicyInherit = "inherit"

// OrganizationInput holds the organization fields to set. A nil field is left as it is on
// update and takes its default on create (active, no domains, profiles outside not allowed,
// the project's MFA policy).
type OrganizationInput struct {
	Name                             *string // required on create; never empty
	Domain                           *string // a DNS name, or "" for none
	WorkspaceName                    *string
	WhiteListDomains                 *[]string // DNS names; lower-cased and de-duplicated
	AllowProfilesOutsideOrganization *bool
	Active                           *bool
	// MFAPolicy is MFAPolicyInherit (or "") to follow the project's mfa.policy, or "off",
	// "optional" or "required" to override it for logins into the organization.
	MFAPolicy *string
}

// orgPatch is a validated, normalised OrganizationInput.
type orgPatch OrganizationInput

func (in OrganizationInput) validate() (orgPatch, error) {
	p := orgPatch{AllowProfilesOutsideOrganization: in.AllowProfilesOutsideOrganization, Active: in.Active}
	if in.Name != nil {
		n, err := requiredName("name", *in.Name)
		if err != nil {
			return p, err
		}
		p.Name = &n
	}
	if in.Domain != nil {
		d := ""
		if strings.TrimSpace(*in.Domain) != "" {
			var err error
			if d, err = NormalizeDomain("domain", *in.Domain); err != nil {
				return p, err
			}
		}
		p.Domain = &d
	}
	if in.WorkspaceName != nil {
		w, err := cleanText("WorkspaceName", *in.WorkspaceName, maxNameLen, false)
		if err != nil {
			return p, err
		}
		p.WorkspaceName = &w
	}
	if in.WhiteListDomains != nil {
		ds, err := normalizeDomains("WhiteListDomains", *in.WhiteListDomains)
		if err != nil {
			return p, err
		}
		p.WhiteListDomains = &ds
	}
	if in.MFAPolicy != nil {
		m, err := normalizeMFAPolicy(*in.MFAPolicy)
		if err != nil {
			return p, err
		}
		p.MFAPolicy = &m
	}
	return p, nil
}

// normalizeMFAPolicy returns the stored form of an organization's MFA policy: "" for inherit,
// else the project policy it names. Case and surrounding spaces are forgiven because the
// value is typed by hand in API calls; anything else is refused rather than guessed, since a
// misspelt "required" must not quietly weaken a login.
func normalizeMFAPolicy(s string) (string, error) {
	switch m := strings.ToLower(strings.TrimSpace(s)); m {
	case "", MFAPolicyInherit:
		return "", nil
	case project.MFAOff, project.MFAOptional, project.MFARequired:
		return m, nil
	default:
		return "", failure.InvalidField("invalid_request", "mfa_policy", "must be one of inherit, off, optional, required")
	}
}

func (p orgPatch) apply(o *store.Organization) {
	set(&o.Name, p.Name)
	set(&o.Domain, p.Domain)
	set(&o.WorkspaceName, p.WorkspaceName)
	set(&o.WhiteListDomains, p.WhiteListDomains)
	set(&o.AllowProfilesOutsideOrganization, p.AllowProfilesOutsideOrganization)
	set(&o.Active, p.Active)
	set(&o.MFAPolicy, p.MFAPolicy)
}

// CreateOrganization creates an organization, recorded as organization.created.
// Errors: invalid_request, invalid_domain (400).
func (s *Service) CreateOrganization(ctx context.Context, by audit.Actor, projectID string, in OrganizationInput) (store.Organization, error) {
	if in.Name == nil {
		return store.Organization{}, failure.InvalidField("invalid_request", "name", "is required")
	}
	p, err := in.validate()
	if err != nil {
		return store.Organization{}, err
	}
	now := s.clock()
	o := store.Organization{ID: s.ids.New(), ProjectID: projectID, WhiteListDomains: []string{},
		Active: true, CreatedAt: now, UpdatedAt: now}
	p.apply(&o)
	err = s.store.InTx(ctx, func(tx store.Store) error {
		if err := tx.CreateOrganization(ctx, o); err != nil {
			return fmt.Errorf("directory: create organization: %w", err)
		}
		return s.audit(ctx, tx, by, store.AuditEvent{ProjectID: projectID, Type: EventOrgCreated, OrganizationID: o.ID})
	})
	if err != nil {
		return store.Organization{}, err
	}
	return o, nil
}

// GetOrganization returns an organization. Errors: organization_not_found (404).
func (s *Service) GetOrganization(ctx context.Context, projectID, id string) (store.Organization, error) {
	return s.getOrg(ctx, s.store, projectID, id)
}

func (s *Service) getOrg(ctx context.Context, st Store, projectID, id string) (store.Organization, error) {
	if !ident.Valid(id) {
		return store.Organization{}, missing(codeOrgNotFound, "organization")
	}
	o, err := st.GetOrganization(ctx, projectID, id)
	if err != nil {
		return store.Organization{}, notFound(err, codeOrgNotFound, "organization")
	}
	if o.WhiteListDomains == nil {
		o.WhiteListDomains = []string{}
	}
	return o, nil
}

// OrganizationPage is one page of organizations, oldest first.
type OrganizationPage struct {
	Organizations []store.Organization
	NextCursor    string
}

// ListOrganizations returns a page of organizations. Errors: invalid_limit, invalid_cursor (400).
func (s *Service) ListOrganizations(ctx context.Context, projectID string, q PageQuery) (OrganizationPage, error) {
	page, limit, err := parsePage(q)
	if err != nil {
		return OrganizationPage{}, err
	}
	rows, err := s.store.ListOrganizations(ctx, projectID, page)
	if err != nil {
		return OrganizationPage{}, fmt.Errorf("directory: list organizations: %w", err)
	}
	rows, next := trimPage(rows, limit, func(o store.Organization) string { return o.ID })
	for i := range rows {
		if rows[i].WhiteListDomains == nil {
			rows[i].WhiteListDomains = []string{}
		}
	}
	if rows == nil {
		rows = []store.Organization{}
	}
	return OrganizationPage{Organizations: rows, NextCursor: next}, nil
}

// UpdateOrganization changes the fields of in that are not nil, recorded as
// organization.updated. Errors: invalid_request, invalid_domain (400); organization_not_found
// (404).
func (s *Service) UpdateOrganization(ctx context.Context, by audit.Actor, projectID, id string, in OrganizationInput) (store.Organization, error) {
	p, err := in.validate()
	if err != nil {
		return store.Organization{}, err
	}
	var o store.Organization
	err = s.store.InTx(ctx, func(tx store.Store) error {
		var err error
		if o, err = s.getOrg(ctx, tx, projectID, id); err != nil {
			return err
		}
		old := o
		p.apply(&o)
		o.UpdatedAt = s.clock()
		if err := tx.UpdateOrganization(ctx, o); err != nil {
			return notFound(err, codeOrgNotFound, "organization")
		}
		return s.audit(ctx, tx, by, store.AuditEvent{ProjectID: projectID, Type: EventOrgUpdated, OrganizationID: o.ID,
			Detail: map[string]any{"changed": orgChanges(old, o).list()}})
	})
	if err != nil {
		return store.Organization{}, err
	}
	return o, nil
}

// orgChanges names the fields, as the API spells them, whose values differ from a to b.
func orgChanges(a, b store.Organization) changes {
	var c changes
	c.note("name", a.Name != b.Name)
	c.note("domain", a.Domain != b.Domain)
	c.note("workspace_name", a.WorkspaceName != b.WorkspaceName)
	c.note("white_list_domains", !slices.Equal(a.WhiteListDomains, b.WhiteListDomains))
	c.note("allow_profiles_outside_organization", a.AllowProfilesOutsideOrganization != b.AllowProfilesOutsideOrganization)
	c.note("is_active", a.Active != b.Active)
	c.note("mfa_policy", a.MFAPolicy != b.MFAPolicy)
	return c
}

// DeleteOrganization deletes an organization and its memberships, recorded as
// organization.deleted. Errors: organization_not_found (404).
func (s *Service) DeleteOrganization(ctx context.Context, by audit.Actor, projectID, id string) error {
	if !ident.Valid(id) {
		return missing(codeOrgNotFound, "organization")
	}
	return s.store.InTx(ctx, func(tx store.Store) error {
		if err := tx.DeleteOrganization(ctx, projectID, id); err != nil {
			return notFound(err, codeOrgNotFound, "organization")
		}
		return s.audit(ctx, tx, by, store.AuditEvent{ProjectID: projectID, Type: EventOrgDeleted, OrganizationID: id})
	})
}

// MemberPage is one page of an organization's memberships, by user id.
type MemberPage struct {
	Members    []store.Membership
	NextCursor string
}

// ListMembers returns a page of the organization's members with the roles assigned to them.
// Errors: invalid_limit, invalid_cursor (400); organization_not_found (404).
func (s *Service) ListMembers(ctx context.Context, projectID, orgID string, q PageQuery) (MemberPage, error) {
	page, limit, err := parsePage(q)
	if err != nil {
		return MemberPage{}, err
	}
	if _, err := s.getOrg(ctx, s.store, projectID, orgID); err != nil {
		return MemberPage{}, err
	}
	rows, err := s.store.ListMembers(ctx, projectID, orgID, page)
	if err != nil {
		return MemberPage{}, fmt.Errorf("directory: list members: %w", err)
	}
	rows, next := trimPage(rows, limit, func(m store.Membership) string { return m.UserID })
	for i := range rows {
		if rows[i].RoleIDs == nil {
			rows[i].RoleIDs = []string{}
		}
	}
	if rows == nil {
		rows = []store.Membership{}
	}
	return MemberPage{Members: rows, NextCursor: next}, nil
}

// checkMemberBatch validates a list of user ids for AddMembers and RemoveMembers and returns
// it de-duplicated.
func checkMemberBatch(userIDs []string) ([]string, error) {
	if len(userIDs) == 0 || len(userIDs) > maxMemberBatch {
		return nil, failure.InvalidField("invalid_request", "user_ids", fmt.Sprintf("must hold 1 to %d user ids", maxMemberBatch))
	}
	ids := make([]string, len(userIDs))
	for i, id := range userIDs {
		ids[i] = strings.TrimSpace(id)
	}
	return dedupeIDs(ids), nil
}

// AddMembers makes the users members of the organization (with no roles); users who are
// members already keep their roles. It returns the de-duplicated ids. Nothing is written if any
// user is missing. Recorded as organization.members_added. Errors: invalid_request (400);
// organization_not_found, user_not_found (404).
func (s *Service) AddMembers(ctx context.Context, by audit.Actor, projectID, orgID string, userIDs []string) ([]string, error) {
	ids, err := checkMemberBatch(userIDs)
	if err != nil {
		return nil, err
	}
	if !ident.Valid(orgID) {
		return nil, missing(codeOrgNotFound, "organization")
	}
	for _, id := range ids {
		if !ident.Valid(id) {
			return nil, userNotFound(id, "user_ids", nil)
		}
	}
	err = s.store.InTx(ctx, func(tx store.Store) error {
		if err := tx.AddMembers(ctx, projectID, orgID, ids, s.clock()); err != nil {
			return err
		}
		return s.audit(ctx, tx, by, store.AuditEvent{ProjectID: projectID, Type: EventOrgMembersAdded,
			OrganizationID: orgID, Detail: map[string]any{"user_ids": ids}})
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, s.diagnoseMembership(ctx, projectID, membershipRefs{orgID: orgID, userIDs: ids, userField: "user_ids"}, err)
	}
	if err != nil {
		return nil, fmt.Errorf("directory: add members: %w", err)
	}
	return ids, nil
}

// RemoveMembers ends the users' memberships in the organization; ids of users who are not
// members (or do not exist) are ignored. It returns the de-duplicated ids. Recorded as
// organization.members_removed. Errors: invalid_request (400); organization_not_found (404).
func (s *Service) RemoveMembers(ctx context.Context, by audit.Actor, projectID, orgID string, userIDs []string) ([]string, error) {
	ids, err := checkMemberBatch(userIDs)
	if err != nil {
		return nil, err
	}
	if !ident.Valid(orgID) {
		return nil, missing(codeOrgNotFound, "organization")
	}
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		if ident.Valid(id) { // anything else cannot be a member
			valid = append(valid, id)
		}
	}
	// The store checks the organization even when valid is empty.
	err = s.store.InTx(ctx, func(tx store.Store) error {
		if err := tx.RemoveMembers(ctx, projectID, orgID, valid); err != nil {
			return notFound(err, codeOrgNotFound, "organization")
		}
		return s.audit(ctx, tx, by, store.AuditEvent{ProjectID: projectID, Type: EventOrgMembersRemoved,
			OrganizationID: orgID, Detail: map[string]any{"user_ids": ids}})
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}
