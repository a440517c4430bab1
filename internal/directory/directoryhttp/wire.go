package directoryhttp

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// The request bodies. SSOJet clients send some fields in more than one casing; encoding/json
// matches names case-insensitively but not across underscores, so each spelling that differs
// by more than case has its own field, and the documented spelling wins when both are sent.

type userIn struct {
	Email         *string         `json:"email"`
	PhoneID       *string         `json:"phone_id"`
	Phone         *string         `json:"phone"`
	FirstName     *string         `json:"first_name"`
	FirstNameAlt  *string         `json:"FirstName"`
	LastName      *string         `json:"last_name"`
	LastNameAlt   *string         `json:"LastName"`
	Groups        *[]string       `json:"groups"`
	RawAttributes json.RawMessage `json:"raw_attributes"`
	EmailVerified *bool           `json:"email_verified"`
	IsActive      *bool           `json:"is_active"`
}

func (in userIn) input() directory.UserInput {
	return directory.UserInput{
		Email: in.Email, Phone: first(in.PhoneID, in.Phone),
		FirstName: first(in.FirstName, in.FirstNameAlt), LastName: first(in.LastName, in.LastNameAlt),
		Groups: in.Groups, RawAttributes: in.RawAttributes,
		EmailVerified: in.EmailVerified, Active: in.IsActive,
	}
}

type orgIn struct {
	Name                             *string   `json:"name"`
	NameAlt                          *string   `json:"Name"`
	WhiteListDomains                 *[]string `json:"WhiteListDomains"`
	WhiteListDomainsSnake            *[]string `json:"white_list_domains"`
	WhitelistDomains                 *[]string `json:"whitelist_domains"`
	AllowProfilesOutsideOrganization *bool     `json:"allow_profiles_outside_organization"`
	Domain                           *string   `json:"domain"`
	WorkspaceName                    *string   `json:"WorkspaceName"`
	WorkspaceNameSnake               *string   `json:"workspace_name"`
	IsActive                         *bool     `json:"is_active"`
	MFAPolicy                        *string   `json:"mfa_policy"`
}

func (in orgIn) input() directory.OrganizationInput {
	return directory.OrganizationInput{
		Name:                             first(in.Name, in.NameAlt),
		WhiteListDomains:                 first(in.WhiteListDomains, in.WhiteListDomainsSnake, in.WhitelistDomains),
		AllowProfilesOutsideOrganization: in.AllowProfilesOutsideOrganization,
		Domain:                           in.Domain,
		WorkspaceName:                    first(in.WorkspaceName, in.WorkspaceNameSnake),
		Active:                           in.IsActive,
		MFAPolicy:                        in.MFAPolicy,
	}
}

type roleIn struct {
	Name          *string   `json:"name"`
	Slug          *string   `json:"slug"`
	Description   *string   `json:"description"`
	PermissionIDs *[]string `json:"permission_id"`
	IsActive      *bool     `json:"is_active"`
}

func (in roleIn) input() directory.RoleInput {
	return directory.RoleInput{Name: in.Name, Slug: in.Slug, Description: in.Description,
		PermissionIDs: in.PermissionIDs, Active: in.IsActive}
}

type permissionIn struct {
	Name        *string `json:"name"`
	Slug        *string `json:"slug"`
	Description *string `json:"description"`
}

func (in permissionIn) input() directory.PermissionInput {
	return directory.PermissionInput{Name: in.Name, Slug: in.Slug, Description: in.Description}
}

type userRolesIn struct {
	RoleIDs        *[]string `json:"role_id"`
	OrganizationID string    `json:"organization_id"`
}

type membersIn struct {
	UserIDs []string `json:"user_ids"`
}

type verifyIn struct {
	VerificationStatus json.RawMessage `json:"verification_status"`
}

// verified reads verification_status: the strings "true" and "false" as SSOJet documents
// them, or JSON booleans, which clients send just as often.
func (in verifyIn) verified() (bool, error) {
	switch raw := string(bytes.TrimSpace(in.VerificationStatus)); strings.ToLower(raw) {
	case "true", `"true"`:
		return true, nil
	case "false", `"false"`:
		return false, nil
	}
	return false, failure.InvalidField("invalid_request", "verification_status", `must be "true" or "false"`)
}

// first returns the first non-nil pointer.
func first[T any](vs ...*T) *T {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

// The response bodies, in the casing API.md documents.

// UserBody is a user as every endpoint shows one (API.md §9), login results included.
type UserBody struct {
	UnderscoreID  string         `json:"_id"`
	ID            string         `json:"id"`
	AccountID     string         `json:"account_id"`
	ConnectionID  string         `json:"connection_id"`
	Email         string         `json:"email"`
	PhoneID       string         `json:"phone_id"`
	FirstName     string         `json:"first_name"`
	LastName      string         `json:"last_name"`
	Groups        []string       `json:"groups"`
	RawAttributes map[string]any `json:"raw_attributes"`
	Roles         []string       `json:"roles"`
	CreatedAt     string         `json:"created_at"`
	ModifiedAt    string         `json:"modified_at"`
	EmailVerified bool           `json:"email_verified"`
	PhoneVerified bool           `json:"phone_verified"`
	IsActive      bool           `json:"is_active"`
	LastLoginAt   *string        `json:"LastLoginAt"`
	Tenants       []tenantOut    `json:"tenants"`
	Identities    []any          `json:"identities"`
}

type tenantOut struct {
	TenantID   string          `json:"tenant_id"`
	TenantName string          `json:"tenant_name"`
	Roles      []tenantRoleOut `json:"roles"`
	Status     string          `json:"status"`
}

type tenantRoleOut struct {
	RoleID      string   `json:"role_id"`
	RoleName    string   `json:"role_name"`
	Permissions []string `json:"permissions"`
}

// NewUserBody renders u.
func NewUserBody(u directory.User) UserBody {
	out := UserBody{
		UnderscoreID: u.ID, ID: u.ID, AccountID: u.ProjectID, ConnectionID: u.ConnectionType,
		Email: u.Email, PhoneID: u.Phone, FirstName: u.FirstName, LastName: u.LastName,
		Groups: nonNil(u.Groups), RawAttributes: u.RawAttributes, Roles: nonNil(u.Roles),
		CreatedAt: ts(u.CreatedAt), ModifiedAt: ts(u.UpdatedAt),
		EmailVerified: u.EmailVerified, PhoneVerified: u.PhoneVerified, IsActive: u.Active,
		Tenants: make([]tenantOut, 0, len(u.Tenants)), Identities: []any{},
	}
	if out.RawAttributes == nil {
		out.RawAttributes = map[string]any{}
	}
	if u.LastLoginAt != nil {
		t := ts(*u.LastLoginAt)
		out.LastLoginAt = &t
	}
	for _, t := range u.Tenants {
		// A membership has no state of its own; it is as active as its organization.
		to := tenantOut{TenantID: t.OrganizationID, TenantName: t.OrganizationName, Status: "active",
			Roles: make([]tenantRoleOut, 0, len(t.Roles))}
		if !t.Active {
			to.Status = "inactive"
		}
		for _, r := range t.Roles {
			to.Roles = append(to.Roles, tenantRoleOut{RoleID: r.ID, RoleName: r.Name, Permissions: nonNil(r.Permissions)})
		}
		out.Tenants = append(out.Tenants, to)
	}
	return out
}

func usersJSON(us []directory.User) []UserBody {
	out := make([]UserBody, len(us))
	for i, u := range us {
		out[i] = NewUserBody(u)
	}
	return out
}

type orgOut struct {
	ID                               string   `json:"id"`
	Name                             string   `json:"name"`
	NameAlt                          string   `json:"Name"`
	WhiteListDomains                 []string `json:"WhiteListDomains"`
	AllowProfilesOutsideOrganization bool     `json:"allow_profiles_outside_organization"`
	Domain                           string   `json:"domain"`
	WorkspaceName                    string   `json:"WorkspaceName"`
	IsActive                         bool     `json:"is_active"`
	MFAPolicy                        string   `json:"mfa_policy"`
	SSOConnectionToken               string   `json:"sso_connection_token"`
	CreatedAt                        string   `json:"created_at"`
	ModifiedAt                       string   `json:"modified_at"`
}

func orgJSON(o store.Organization) orgOut {
	return orgOut{
		ID: o.ID, Name: o.Name, NameAlt: o.Name, WhiteListDomains: nonNil(o.WhiteListDomains),
		AllowProfilesOutsideOrganization: o.AllowProfilesOutsideOrganization, Domain: o.Domain,
		WorkspaceName: o.WorkspaceName, IsActive: o.Active, MFAPolicy: orgMFAPolicy(o.MFAPolicy),
		CreatedAt: ts(o.CreatedAt), ModifiedAt: ts(o.UpdatedAt),
	}
}

// orgMFAPolicy names the stored "" (follow the project) as "inherit", so that a client reads
// back the value it may send and never mistakes an unset policy for "off".
func orgMFAPolicy(stored string) string {
	if stored == "" {
		return directory.MFAPolicyInherit
	}
	return stored
}

type userOrgOut struct {
	orgOut
	Roles []userOrgRoleOut `json:"roles"`
}

type userOrgRoleOut struct {
	RoleID   string `json:"role_id"`
	RoleName string `json:"role_name"`
	Slug     string `json:"slug"`
}

func userOrgsJSON(uos []directory.UserOrganization) []userOrgOut {
	out := make([]userOrgOut, len(uos))
	for i, uo := range uos {
		out[i] = userOrgOut{orgOut: orgJSON(uo.Organization), Roles: make([]userOrgRoleOut, len(uo.Roles))}
		for j, r := range uo.Roles {
			out[i].Roles[j] = userOrgRoleOut{RoleID: r.ID, RoleName: r.Name, Slug: r.Slug}
		}
	}
	return out
}

type memberOut struct {
	UserID    string   `json:"user_id"`
	RoleIDs   []string `json:"role_id"`
	CreatedAt string   `json:"created_at"`
}

type roleOut struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	Slug          string   `json:"slug"`
	Description   string   `json:"description"`
	PermissionIDs []string `json:"permission_id"`
	IsActive      bool     `json:"is_active"`
	IsDeleted     bool     `json:"is_deleted"` // always false: deleted roles are gone
	CreatedAt     string   `json:"created_at"`
	ModifiedAt    string   `json:"modified_at"`
}

func roleJSON(r store.Role) roleOut {
	return roleOut{ID: r.ID, Name: r.Name, Slug: r.Slug, Description: r.Description,
		PermissionIDs: nonNil(r.PermissionIDs), IsActive: r.Active, CreatedAt: ts(r.CreatedAt), ModifiedAt: ts(r.UpdatedAt)}
}

type permissionOut struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Slug        string `json:"slug"`
	Description string `json:"description"`
	CreatedAt   string `json:"created_at"`
	ModifiedAt  string `json:"modified_at"`
}

func permissionJSON(p store.Permission) permissionOut {
	return permissionOut{ID: p.ID, Name: p.Name, Slug: p.Slug, Description: p.Description,
		CreatedAt: ts(p.CreatedAt), ModifiedAt: ts(p.UpdatedAt)}
}

type loginLogOut struct {
	ID        string `json:"id"`
	IPAddress string `json:"IpAddress"`
	Country   string `json:"Country"`
	City      string `json:"City"`
	UserAgent string `json:"UserAgent"`
	Name      string `json:"Name"` // the connection type, as SSOJet names it
	OS        string `json:"Os"`
	Device    string `json:"Device"`
	Browser   string `json:"Browser"`
	CreatedAt string `json:"CreatedAt"`
}

func loginLogJSON(l store.LoginLog) loginLogOut {
	return loginLogOut{ID: l.ID, IPAddress: l.IPAddress, Country: l.Country, City: l.City, UserAgent: l.UserAgent,
		Name: l.ConnectionType, OS: l.OS, Device: l.Device, Browser: l.Browser, CreatedAt: ts(l.CreatedAt)}
}

// mapJSON converts each row; the result is never nil, so lists encode as [].
func mapJSON[T, U any](rows []T, f func(T) U) []U {
	out := make([]U, len(rows))
	for i, r := range rows {
		out[i] = f(r)
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ts formats t as RFC 3339 in UTC.
func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// cursor is a page's next_cursor: null on the last page.
func cursor(next string) *string {
	if next == "" {
		return nil
	}
	return &next
}

type deleted struct {
	IsDeleted bool `json:"is_deleted"`
}
