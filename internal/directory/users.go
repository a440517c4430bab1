package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// ConnectionManualUser is the connection type of a user created through the management API.
const ConnectionManualUser = "ManualUser"

// UserInput holds the user fields to set. A nil field is left as it is on update and takes its
// default on create (active, not verified, empty).
type UserInput struct {
	Email         *string // "" removes the email (the user must keep an email or a phone)
	Phone         *string // E.164; spaces, dashes, dots and parentheses are removed; "" removes it
	FirstName     *string
	LastName      *string
	Groups        *[]string
	RawAttributes json.RawMessage // a JSON object of at most 16 KiB; JSON null empties it
	EmailVerified *bool
	Active        *bool
}

// userPatch is a validated, normalised UserInput.
type userPatch struct {
	email, phone, firstName, lastName *string
	groups                            *[]string
	rawAttributes                     map[string]any
	emailVerified, active             *bool
}

func (in UserInput) validate() (userPatch, error) {
	p := userPatch{emailVerified: in.EmailVerified, active: in.Active}
	if in.Email != nil {
		e := ""
		if strings.TrimSpace(*in.Email) != "" {
			var err error
			if e, err = NormalizeEmail("email", *in.Email); err != nil {
				return p, err
			}
		}
		p.email = &e
	}
	if in.Phone != nil {
		ph := ""
		if strings.TrimSpace(*in.Phone) != "" {
			var err error
			if ph, err = NormalizePhone("phone_id", *in.Phone); err != nil {
				return p, err
			}
		}
		p.phone = &ph
	}
	for _, f := range []struct {
		field string
		in    *string
		out   **string
	}{{"first_name", in.FirstName, &p.firstName}, {"last_name", in.LastName, &p.lastName}} {
		if f.in == nil {
			continue
		}
		v, err := cleanText(f.field, *f.in, maxNameLen, false)
		if err != nil {
			return p, err
		}
		*f.out = &v
	}
	if in.Groups != nil {
		g, err := cleanGroups(*in.Groups)
		if err != nil {
			return p, err
		}
		p.groups = &g
	}
	if in.RawAttributes != nil {
		m, err := parseRawAttributes(in.RawAttributes)
		if err != nil {
			return p, err
		}
		p.rawAttributes = m
	}
	return p, nil
}

// apply writes p over u. A changed email or phone is no longer verified unless the same
// request says it is: the old proof of ownership says nothing about the new address.
func (p userPatch) apply(u *store.User) error {
	if p.email != nil {
		if *p.email != u.Email {
			u.EmailVerified = false
		}
		u.Email = *p.email
	}
	if p.phone != nil {
		if *p.phone != u.Phone {
			u.PhoneVerified = false
		}
		u.Phone = *p.phone
	}
	set(&u.FirstName, p.firstName)
	set(&u.LastName, p.lastName)
	set(&u.Groups, p.groups)
	set(&u.EmailVerified, p.emailVerified)
	set(&u.Active, p.active)
	if p.rawAttributes != nil {
		u.RawAttributes = p.rawAttributes
	}
	if u.Email == "" && u.Phone == "" {
		return failure.InvalidField("invalid_request", "email", "a user needs an email or a phone_id")
	}
	return nil
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// CreateUser creates a user with connection type ManualUser, recorded as user.created. An
// email or a phone is required. Errors: invalid_request, invalid_email, invalid_phone (400);
// email_exists, phone_exists (409).
func (s *Service) CreateUser(ctx context.Context, by audit.Actor, projectID string, in UserInput) (User, error) {
	p, err := in.validate()
	if err != nil {
		return User{}, err
	}
	now := s.clock()
	u := store.User{
		ID: s.ids.New(), ProjectID: projectID, Active: true, ConnectionType: ConnectionManualUser,
		Groups: []string{}, RawAttributes: map[string]any{}, CreatedAt: now, UpdatedAt: now,
	}
	if err := p.apply(&u); err != nil {
		return User{}, err
	}
	if err := s.checkNewEmail(ctx, projectID, "", u.Email); err != nil {
		return User{}, err
	}
	err = s.store.InTx(ctx, func(tx store.Store) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		return s.audit(ctx, tx, by, store.AuditEvent{ProjectID: projectID, Type: EventUserCreated, UserID: u.ID})
	})
	if err != nil {
		return User{}, s.userWriteError(ctx, u, err)
	}
	return User{User: u, Roles: []string{}, Tenants: []Tenant{}}, nil
}

// GetUser returns a user. Errors: user_not_found (404).
func (s *Service) GetUser(ctx context.Context, projectID, id string) (User, error) {
	u, err := s.getUser(ctx, s.store, projectID, id)
	if err != nil {
		return User{}, err
	}
	return s.userView(ctx, u)
}

func (s *Service) getUser(ctx context.Context, st Store, projectID, id string) (store.User, error) {
	if !ident.Valid(id) {
		return store.User{}, missing(codeUserNotFound, "user")
	}
	u, err := st.GetUser(ctx, projectID, id)
	if err != nil {
		return store.User{}, notFound(err, codeUserNotFound, "user")
	}
	return u, nil
}

// GetUserByEmail returns the user with this email (normalised as on create).
// Errors: invalid_email (400); user_not_found (404).
func (s *Service) GetUserByEmail(ctx context.Context, projectID, email string) (User, error) {
	e, err := NormalizeEmail("email", email)
	if err != nil {
		return User{}, err
	}
	u, err := s.store.GetUserByEmail(ctx, projectID, e)
	if err != nil {
		return User{}, notFound(err, codeUserNotFound, "user")
	}
	return s.userView(ctx, u)
}

// UserQuery asks for a page of users, optionally only the one with Email.
type UserQuery struct {
	Page  PageQuery
	Email string // normalised like an email on create; "" does not filter
}

// UserPage is one page of users, oldest first; NextCursor is "" on the last page.
type UserPage struct {
	Users      []User
	NextCursor string
}

// ListUsers returns a page of users. Errors: invalid_limit, invalid_cursor, invalid_email (400).
func (s *Service) ListUsers(ctx context.Context, projectID string, q UserQuery) (UserPage, error) {
	page, limit, err := parsePage(q.Page)
	if err != nil {
		return UserPage{}, err
	}
	var f store.UserFilter
	if strings.TrimSpace(q.Email) != "" {
		if f.Email, err = NormalizeEmail("email", q.Email); err != nil {
			return UserPage{}, err
		}
	}
	rows, err := s.store.ListUsers(ctx, projectID, f, page)
	if err != nil {
		return UserPage{}, fmt.Errorf("directory: list users: %w", err)
	}
	rows, next := trimPage(rows, limit, func(u store.User) string { return u.ID })
	users, err := s.userViews(ctx, projectID, rows)
	if err != nil {
		return UserPage{}, err
	}
	return UserPage{Users: users, NextCursor: next}, nil
}

// UpdateUser changes the fields of in that are not nil, recorded as user.updated (and
// user.activated or user.deactivated when is_active changes). Errors: as CreateUser, and
// user_not_found (404).
func (s *Service) UpdateUser(ctx context.Context, by audit.Actor, projectID, id string, in UserInput) (User, error) {
	p, err := in.validate()
	if err != nil {
		return User{}, err
	}
	var u store.User
	// Read and write in one transaction so that two partial updates of different fields do not
	// undo each other.
	err = s.store.InTx(ctx, func(tx store.Store) error {
		var err error
		if u, err = s.getUser(ctx, tx, projectID, id); err != nil {
			return err
		}
		old := u
		if err := p.apply(&u); err != nil {
			return err
		}
		if err := s.checkNewEmail(ctx, projectID, old.Email, u.Email); err != nil {
			return err
		}
		u.UpdatedAt = s.clock()
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		ev := store.AuditEvent{ProjectID: projectID, UserID: u.ID}
		ev.Type, ev.Detail = EventUserUpdated, map[string]any{"changed": userChanges(old, u).list()}
		if err := s.audit(ctx, tx, by, ev); err != nil {
			return err
		}
		switch {
		case old.Active && !u.Active:
			// A deactivated user is logged out everywhere, in the same commit: their access
			// tokens stop working at once because every request checks the session.
			n, err := tx.RevokeUserSessions(ctx, projectID, id, u.UpdatedAt, "user_deactivated")
			if err != nil {
				return fmt.Errorf("directory: end sessions of deactivated user: %w", err)
			}
			ev.Type, ev.Detail = EventUserDeactivated, map[string]any{"sessions_revoked": n}
			return s.audit(ctx, tx, by, ev)
		case !old.Active && u.Active:
			ev.Type, ev.Detail = EventUserActivated, nil
			return s.audit(ctx, tx, by, ev)
		}
		return nil
	})
	if err != nil {
		return User{}, s.userWriteError(ctx, u, err)
	}
	return s.userView(ctx, u)
}

// checkNewEmail applies CheckNewEmail to an address the user did not have before: a user
// created before the rule, with an address it refuses, may still be updated otherwise.
func (s *Service) checkNewEmail(ctx context.Context, projectID, old, email string) error {
	if email == "" || store.EmailKey(email) == store.EmailKey(old) {
		return nil
	}
	allow, err := s.allowLookalikes(ctx, projectID)
	if err != nil {
		return fmt.Errorf("directory: email policy of project %s: %w", projectID, err)
	}
	return CheckNewEmail("email", email, allow)
}

// userChanges names the fields, as the API spells them, whose values differ from a to b.
func userChanges(a, b store.User) changes {
	var c changes
	c.note("email", a.Email != b.Email)
	c.note("phone_id", a.Phone != b.Phone)
	c.note("first_name", a.FirstName != b.FirstName)
	c.note("last_name", a.LastName != b.LastName)
	c.note("groups", !slices.Equal(a.Groups, b.Groups))
	c.note("raw_attributes", !jsonEqual(a.RawAttributes, b.RawAttributes))
	c.note("email_verified", a.EmailVerified != b.EmailVerified)
	c.note("phone_verified", a.PhoneVerified != b.PhoneVerified)
	c.note("is_active", a.Active != b.Active)
	return c
}

// jsonEqual reports whether a and b encode to the same JSON (map keys are sorted).
func jsonEqual(a, b map[string]any) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// SetEmailVerified sets whether the user's email is verified, as an update (user.updated).
// Errors: user_not_found (404).
func (s *Service) SetEmailVerified(ctx context.Context, by audit.Actor, projectID, id string, verified bool) (User, error) {
	return s.UpdateUser(ctx, by, projectID, id, UserInput{EmailVerified: &verified})
}

// DeleteUser deletes a user with their memberships, login logs and sessions (the store's
// foreign keys remove them in the same statement), recorded as user.deleted.
// Errors: user_not_found (404).
func (s *Service) DeleteUser(ctx context.Context, by audit.Actor, projectID, id string) error {
	if !ident.Valid(id) {
		return missing(codeUserNotFound, "user")
	}
	return s.store.InTx(ctx, func(tx store.Store) error {
		if err := tx.DeleteUser(ctx, projectID, id); err != nil {
			return notFound(err, codeUserNotFound, "user")
		}
		return s.audit(ctx, tx, by, store.AuditEvent{ProjectID: projectID, Type: EventUserDeleted, UserID: id})
	})
}

// userWriteError translates the error of a user write. The store reports a conflict without
// saying which unique column clashed, so this looks the email up: if another user has it, the
// email is the clash, otherwise the phone (the only other unique field) is.
func (s *Service) userWriteError(ctx context.Context, u store.User, err error) error {
	if _, ok := failure.As(err); ok {
		return err
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound(err, codeUserNotFound, "user")
	case !errors.Is(err, store.ErrConflict):
		return fmt.Errorf("directory: write user: %w", err)
	}
	if u.Email != "" {
		// Outside the failed transaction: on PostgreSQL it can run no more statements.
		other, gerr := s.store.GetUserByEmail(ctx, u.ProjectID, u.Email)
		if (gerr == nil && other.ID != u.ID) || u.Phone == "" {
			return &failure.Error{Kind: failure.Conflict, Code: "email_exists", Field: "email",
				Description: "another user of this project has this email", Err: err}
		}
	}
	return &failure.Error{Kind: failure.Conflict, Code: "phone_exists", Field: "phone_id",
		Description: "another user of this project has this phone number", Err: err}
}

// UserRolesInput names an organization and the complete set of roles a user is to hold there.
type UserRolesInput struct {
	OrganizationID string
	RoleIDs        []string // required (nil is refused); an empty list removes every role
}

// SetUserRoles replaces the user's roles in an organization, making them a member if they are
// not one yet, and returns the user; recorded as user.roles_changed. Errors: invalid_request
// (400); user_not_found, organization_not_found, role_not_found (404).
func (s *Service) SetUserRoles(ctx context.Context, by audit.Actor, projectID, userID string, in UserRolesInput) (User, error) {
	orgID := strings.TrimSpace(in.OrganizationID)
	switch {
	case orgID == "":
		return User{}, failure.InvalidField("invalid_request", "organization_id", "is required")
	case in.RoleIDs == nil:
		return User{}, failure.InvalidField("invalid_request", "role_id", "is required (an empty list removes every role)")
	case len(in.RoleIDs) > maxRoleIDs:
		return User{}, failure.InvalidField("invalid_request", "role_id", fmt.Sprintf("must hold at most %d roles", maxRoleIDs))
	case !ident.Valid(userID):
		return User{}, missing(codeUserNotFound, "user")
	case !ident.Valid(orgID):
		return User{}, &failure.Error{Kind: failure.NotFound, Code: codeOrgNotFound, Field: "organization_id",
			Description: "organization not found"}
	}
	roleIDs := uniqueSorted(in.RoleIDs)
	for _, id := range roleIDs {
		if !ident.Valid(id) {
			return User{}, roleNotFound(id, nil)
		}
	}
	err := s.store.InTx(ctx, func(tx store.Store) error {
		if err := tx.SetMemberRoles(ctx, projectID, orgID, userID, roleIDs, s.clock()); err != nil {
			return err
		}
		return s.audit(ctx, tx, by, store.AuditEvent{ProjectID: projectID, Type: EventUserRolesChanged,
			UserID: userID, OrganizationID: orgID, Detail: map[string]any{"role_ids": roleIDs}})
	})
	if errors.Is(err, store.ErrNotFound) {
		return User{}, s.diagnoseMembership(ctx, projectID, membershipRefs{
			orgID: orgID, orgField: "organization_id", userIDs: []string{userID}, roleIDs: roleIDs}, err)
	}
	if err != nil {
		return User{}, fmt.Errorf("directory: set member roles: %w", err)
	}
	return s.GetUser(ctx, projectID, userID)
}

// membershipRefs are the ids of a membership write and the request fields they came from
// ("" for the path), so that a 404 names the right one.
type membershipRefs struct {
	orgID     string
	orgField  string
	userIDs   []string
	userField string
	roleIDs   []string
}

// diagnoseMembership finds which of the organization, users and roles a failed membership
// write did not find. The store reports only that something was missing; the happy path pays
// nothing for this. The resource the path names is checked first: a request for a user that is
// not there is about that user, whatever its body says.
func (s *Service) diagnoseMembership(ctx context.Context, projectID string, refs membershipRefs, cause error) error {
	checkOrg := func() error {
		if _, err := s.store.GetOrganization(ctx, projectID, refs.orgID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return &failure.Error{Kind: failure.NotFound, Code: codeOrgNotFound, Field: refs.orgField,
					Description: "organization not found", Err: err}
			}
			return fmt.Errorf("directory: get organization: %w", err)
		}
		return nil
	}
	checkUsers := func() error {
		for _, id := range refs.userIDs {
			if _, err := s.store.GetUser(ctx, projectID, id); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return userNotFound(id, refs.userField, err)
				}
				return fmt.Errorf("directory: get user: %w", err)
			}
		}
		return nil
	}
	checks := []func() error{checkOrg, checkUsers}
	if refs.userField == "" && refs.orgField != "" {
		checks = []func() error{checkUsers, checkOrg}
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	if len(refs.roleIDs) > 0 {
		rs, err := s.store.GetRoles(ctx, projectID, refs.roleIDs)
		if err != nil {
			return fmt.Errorf("directory: get roles: %w", err)
		}
		for _, id := range refs.roleIDs {
			if !slices.ContainsFunc(rs, func(r store.Role) bool { return r.ID == id }) {
				return roleNotFound(id, cause)
			}
		}
	}
	// Everything exists now: something was deleted and recreated in between. Report the most
	// likely culprit rather than a 500.
	return notFound(cause, codeRoleNotFound, "role")
}

func userNotFound(id, field string, cause error) error {
	return &failure.Error{Kind: failure.NotFound, Code: codeUserNotFound, Field: field,
		Description: "user " + id + " not found", Err: cause}
}

func roleNotFound(id string, cause error) error {
	return &failure.Error{Kind: failure.NotFound, Code: codeRoleNotFound, Field: "role_id",
		Description: "role " + id + " not found", Err: cause}
}

// LoginLogPage is one page of a user's login logs, newest first.
type LoginLogPage struct {
	Logs       []store.LoginLog
	NextCursor string
}

// ListLoginLogs returns a page of the user's login logs, newest first.
// Errors: invalid_limit, invalid_cursor (400); user_not_found (404).
func (s *Service) ListLoginLogs(ctx context.Context, projectID, userID string, q PageQuery) (LoginLogPage, error) {
	page, limit, err := parsePage(q)
	if err != nil {
		return LoginLogPage{}, err
	}
	if _, err := s.getUser(ctx, s.store, projectID, userID); err != nil {
		return LoginLogPage{}, err
	}
	rows, err := s.store.ListLoginLogs(ctx, projectID, userID, page.Limit, page.After)
	if err != nil {
		return LoginLogPage{}, fmt.Errorf("directory: list login logs: %w", err)
	}
	rows, next := trimPage(rows, limit, func(l store.LoginLog) string { return l.ID })
	if rows == nil {
		rows = []store.LoginLog{}
	}
	return LoginLogPage{Logs: rows, NextCursor: next}, nil
}

// ListUserOrganizations returns the organizations the user belongs to, by id, each with every
// role assigned to the user there. Errors: user_not_found (404).
func (s *Service) ListUserOrganizations(ctx context.Context, projectID, userID string) ([]UserOrganization, error) {
	if _, err := s.getUser(ctx, s.store, projectID, userID); err != nil {
		return nil, err
	}
	md, err := s.loadMemberships(ctx, projectID, []string{userID}, false)
	if err != nil {
		return nil, err
	}
	out := make([]UserOrganization, 0, len(md.memberships))
	for _, m := range md.memberships {
		o, ok := md.orgs[m.OrganizationID]
		if !ok {
			continue
		}
		uo := UserOrganization{Organization: o, Roles: []TenantRole{}}
		for _, id := range m.RoleIDs {
			if r, ok := md.roles[id]; ok {
				uo.Roles = append(uo.Roles, r)
			}
		}
		out = append(out, uo)
	}
	return out, nil
}

// MemberAccess returns the slugs of the roles a user holds in an organization and of the
// permissions those roles grant (inactive roles grant nothing), for access token claims. A
// user who is not, or no longer, a member gets none.
func (s *Service) MemberAccess(ctx context.Context, projectID, userID, orgID string) (roles, permissions []string, err error) {
	md, err := s.loadMemberships(ctx, projectID, []string{userID}, true)
	if err != nil {
		return nil, nil, err
	}
	roles, permissions = []string{}, []string{}
	for _, m := range md.memberships {
		if m.OrganizationID != orgID {
			continue
		}
		for _, id := range m.RoleIDs {
			if r, ok := md.roles[id]; ok {
				roles = append(roles, r.Slug)
				permissions = append(permissions, r.Permissions...)
			}
		}
	}
	slices.Sort(roles)
	return roles, uniqueSorted(permissions), nil
}
