package store

import (
	"context"
	"errors"
	"time"

	"github.com/latchkey-dev/latchkey/internal/mailbox"
)

// ErrNotFound is returned (wrapped) when a record does not exist in the project asked about.
// A record of another project is "not found" too: ids never cross projects.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned (wrapped) when a write would break a uniqueness rule, such as a
// second user with the same email in a project or a second role with the same slug.
var ErrConflict = errors.New("store: conflict")

// ErrReused is returned (wrapped) when a single-use token that was already used is presented
// again; the call also returns the token, so that the caller can act on its family.
var ErrReused = errors.New("store: already used")

// Store is the whole storage contract. Every backend passes the conformance suite in
// store/storetest. Times are stored in UTC with microsecond precision.
type Store interface {
	Projects
	Users
	Organizations
	Roles
	Permissions
	LoginLogs
	OneTimeSecrets
	SigningKeys
	SealedSecrets
	Sessions
	RefreshTokens
	AuditEvents
	Webhooks
	Flows
	Outbox
	MessageTemplates
	Passkeys
	Ceremonies
	MFAFactors
	RecoveryCodes
	MFAChallenges
	Counters
	SpentChallenges
	Passwords
	OIDCRequests
	GarbageCollector

	// InTx runs fn in one transaction: all of fn's writes commit together or not at all.
	// The Store passed to fn is bound to the transaction; calling InTx on it runs fn inline.
	//
	// Services hold a narrow interface of their own (per-area interfaces plus this method),
	// but fn gets the whole Store: one commit may pass through several packages, each taking
	// tx as its own narrow type. The invariant is that code uses tx only through its package's
	// interface, passing it to helpers typed with that interface, so that the interface stays
	// the list of what the package touches (docs/architecture.md, "The rule for where code
	// goes").
	InTx(ctx context.Context, fn func(tx Store) error) error
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}

// Page asks for one page of a list ordered by id ascending: at most Limit rows whose id is
// greater than After ("" for the first page). Ids start with their creation time, so the order
// is creation order, and rows inserted while a client pages never shift the pages it has not read.
type Page struct {
	Limit int
	After string
}

// Project is one application: it owns users, organizations, roles and credentials.
type Project struct {
	ID        string
	ClientID  string
	Name      string
	Settings  []byte // the settings document (JSON); package project owns its shape
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ProjectSecret is one client secret of a project, kept only as its SHA-256 hash.
type ProjectSecret struct {
	ID        string
	ProjectID string
	Hash      []byte // SHA-256 of the secret; unique across all projects
	Hint      string // the secret's last characters, to tell secrets apart in listings
	CreatedAt time.Time
	ExpiresAt *time.Time // nil: valid until rotated; set when a rotation retires it
}

// Projects stores projects and their client secrets.
type Projects interface {
	// ClaimBootstrap reports true to exactly one caller per database, ever: the caller that
	// creates the Default project on first start. Safe under concurrent starts.
	ClaimBootstrap(ctx context.Context, at time.Time) (bool, error)
	CreateProject(ctx context.Context, p Project) error // ErrConflict on a duplicate client id
	GetProject(ctx context.Context, id string) (Project, error)
	GetProjectByClientID(ctx context.Context, clientID string) (Project, error)
	// LockProject is GetProject for a read-modify-write: inside InTx it holds the project until
	// the transaction ends, so that two concurrent updates cannot lose one another's changes.
	LockProject(ctx context.Context, id string) (Project, error)
	ListProjects(ctx context.Context) ([]Project, error) // by id
	UpdateProject(ctx context.Context, p Project) error  // name, settings, updated_at

	CreateProjectSecret(ctx context.Context, s ProjectSecret) error // ErrConflict on a duplicate hash
	// FindProjectSecret returns the secret with this hash, whichever project owns it, expired
	// or not: the caller decides what an expired or foreign secret means.
	FindProjectSecret(ctx context.Context, hash []byte) (ProjectSecret, error)
	ListProjectSecrets(ctx context.Context, projectID string) ([]ProjectSecret, error) // by id
	// RetireProjectSecrets makes every secret of the project except keepID expire at `at`,
	// unless it already expires earlier.
	RetireProjectSecrets(ctx context.Context, projectID, keepID string, at time.Time) error
}

// User is an end user of a project.
type User struct {
	ID             string
	ProjectID      string
	Email          string // normalised; "" when the user has none; unique per project by EmailKey
	Phone          string // E.164; "" when the user has none; unique per project
	FirstName      string
	LastName       string
	EmailVerified  bool
	PhoneVerified  bool
	Active         bool
	ConnectionType string // how the user was created or last signed in, e.g. "ManualUser"
	Groups         []string
	RawAttributes  map[string]any
	CreatedAt      time.Time
	UpdatedAt      time.Time
	LastLoginAt    *time.Time
	// Unreadable names the stored documents ("groups", "raw_attributes") that could not be
	// decoded, such as a number written before writes were checked that no float64 holds. They
	// read as empty, so that one bad row breaks neither its reads nor a listing, and the next
	// update replaces them. Set by reads only.
	Unreadable []string
}

// UserFilter narrows a user listing. Empty fields do not filter.
type UserFilter struct {
	Email string // matched by EmailKey
	Phone string // exact E.164
}

// EmailKey is the form in which emails are compared: mailbox.Key, the domain in its IDNA ASCII
// form and lower case, the local part with only A–Z case-folded. RFC 5321 lets a mail server
// treat local parts case-sensitively, but no real provider does for ASCII, and two accounts for
// Ann@x.com and ann@x.com would be one person split in two, so every backend matches and
// enforces uniqueness on this key while keeping the address as written. Unicode case folding
// is deliberately not applied: it maps look-alikes such as U+212A KELVIN SIGN onto other
// people's addresses.
func EmailKey(email string) string { return mailbox.Key(email) }

// Users stores end users.
type Users interface {
	CreateUser(ctx context.Context, u User) error // ErrConflict on a duplicate email or phone
	GetUser(ctx context.Context, projectID, id string) (User, error)
	// GetUserByEmail finds the user whose email has the same EmailKey.
	GetUserByEmail(ctx context.Context, projectID, email string) (User, error)
	ListUsers(ctx context.Context, projectID string, f UserFilter, p Page) ([]User, error)
	// UpdateUser replaces every field but ID, ProjectID and CreatedAt.
	UpdateUser(ctx context.Context, u User) error // ErrNotFound; ErrConflict
	// RecordLogin sets the user's last login time and connection type, and nothing else, so a
	// login never overwrites a concurrent profile change. ErrNotFound if no such user.
	RecordLogin(ctx context.Context, projectID, id string, at time.Time, connectionType string) error
	// DeleteUser removes the user with their memberships and login logs.
	DeleteUser(ctx context.Context, projectID, id string) error
}

// Organization is a customer (tenant) of a project.
type Organization struct {
	ID                               string
	ProjectID                        string
	Name                             string
	Domain                           string
	WorkspaceName                    string
	WhiteListDomains                 []string
	AllowProfilesOutsideOrganization bool
	Active                           bool
	// MFAPolicy overrides the project's mfa.policy for logins into this organization: ""
	// means the organization follows the project's policy; otherwise "off", "optional" or
	// "required".
	MFAPolicy string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Membership is a user's place in an organization, with the roles they hold there.
type Membership struct {
	ProjectID      string
	OrganizationID string
	UserID         string
	RoleIDs        []string // sorted
	CreatedAt      time.Time
}

// Organizations stores organizations and memberships.
type Organizations interface {
	CreateOrganization(ctx context.Context, o Organization) error
	GetOrganization(ctx context.Context, projectID, id string) (Organization, error)
	ListOrganizations(ctx context.Context, projectID string, p Page) ([]Organization, error)
	// UpdateOrganization replaces every field but ID, ProjectID and CreatedAt.
	UpdateOrganization(ctx context.Context, o Organization) error
	// DeleteOrganization removes the organization and its memberships.
	DeleteOrganization(ctx context.Context, projectID, id string) error

	// AddMembers makes the users members with no roles; users already members are left as
	// they are. ErrNotFound (and nothing written) if the organization or any user is not in
	// the project.
	AddMembers(ctx context.Context, projectID, orgID string, userIDs []string, at time.Time) error
	// RemoveMembers ends the memberships; users who are not members are ignored.
	RemoveMembers(ctx context.Context, projectID, orgID string, userIDs []string) error
	// SetMemberRoles replaces the user's roles in the organization, making them a member if
	// they are not. ErrNotFound (and nothing written) if the organization, the user or any
	// role is not in the project.
	SetMemberRoles(ctx context.Context, projectID, orgID, userID string, roleIDs []string, at time.Time) error
	// ListMembers pages through an organization's memberships by user id.
	ListMembers(ctx context.Context, projectID, orgID string, p Page) ([]Membership, error)
	// ListMemberships returns the memberships of the given users, ordered by user id then
	// organization id.
	ListMemberships(ctx context.Context, projectID string, userIDs []string) ([]Membership, error)
}

// Role is a named set of permissions, unique by slug in a project.
type Role struct {
	ID            string
	ProjectID     string
	Name          string
	Slug          string
	Description   string
	PermissionIDs []string // sorted
	Active        bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Roles stores roles and their permission sets.
type Roles interface {
	// CreateRole: ErrConflict on a duplicate slug; ErrNotFound if a permission is not in the project.
	CreateRole(ctx context.Context, r Role) error
	GetRole(ctx context.Context, projectID, id string) (Role, error)
	// GetRoles returns the roles among ids that exist in the project, by id.
	GetRoles(ctx context.Context, projectID string, ids []string) ([]Role, error)
	ListRoles(ctx context.Context, projectID string, p Page) ([]Role, error)
	// UpdateRole replaces every field but ID, ProjectID and CreatedAt, the permission set too.
	UpdateRole(ctx context.Context, r Role) error
	// DeleteRole removes the role, and it from every membership.
	DeleteRole(ctx context.Context, projectID, id string) error
}

// Permission is a named capability, unique by slug in a project.
type Permission struct {
	ID          string
	ProjectID   string
	Name        string
	Slug        string
	Description string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Permissions stores permissions.
type Permissions interface {
	CreatePermission(ctx context.Context, p Permission) error // ErrConflict on a duplicate slug
	GetPermission(ctx context.Context, projectID, id string) (Permission, error)
	// GetPermissions returns the permissions among ids that exist in the project, by id.
	GetPermissions(ctx context.Context, projectID string, ids []string) ([]Permission, error)
	ListPermissions(ctx context.Context, projectID string, p Page) ([]Permission, error)
	UpdatePermission(ctx context.Context, p Permission) error
	// DeletePermission removes the permission, and it from every role.
	DeletePermission(ctx context.Context, projectID, id string) error
}

// LoginLog records one successful login.
type LoginLog struct {
	ID             string
	ProjectID      string
	UserID         string
	IPAddress      string
	Country        string
	City           string
	UserAgent      string
	ConnectionType string
	OS             string
	Device         string
	Browser        string
	CreatedAt      time.Time
}

// LoginLogs stores login logs.
type LoginLogs interface {
	AddLoginLog(ctx context.Context, l LoginLog) error // ErrNotFound if the user is not in the project
	// ListLoginLogs returns a user's logs newest first, by (created_at, id): at most limit rows
	// below the log whose id is before ("" for the newest; an id that is not one of the user's
	// logs gives none).
	ListLoginLogs(ctx context.Context, projectID, userID string, limit int, before string) ([]LoginLog, error)
}

// OneTimeSecret is a single-use secret (a magic link, a code, an auth code), kept only as its
// SHA-256 lookup hash.
type OneTimeSecret struct {
	ID         string
	ProjectID  string
	Purpose    string // what it is for, e.g. "magic_link"; hashes are unique per purpose
	Hash       []byte
	Subject    string // whom or what it is for, e.g. a user or flow id
	Payload    []byte // purpose-specific JSON
	CreatedAt  time.Time
	ExpiresAt  time.Time
	ConsumedAt *time.Time
}

// OneTimeSecrets stores single-use secrets and consumes them atomically.
type OneTimeSecrets interface {
	CreateOneTimeSecret(ctx context.Context, s OneTimeSecret) error // ErrConflict on a duplicate hash
	// ConsumeOneTimeSecret marks the secret used and returns it, in one atomic statement: of any
	// number of concurrent callers exactly one succeeds. ErrNotFound if it does not exist in the
	// project for that purpose, has expired at now, or was already consumed.
	ConsumeOneTimeSecret(ctx context.Context, projectID, purpose string, hash []byte, now time.Time) (OneTimeSecret, error)
	// ConsumeSubjectSecrets marks every unused secret of the purpose for the subject used at
	// now, and returns how many: when one is spent, the others it stands beside die with it.
	ConsumeSubjectSecrets(ctx context.Context, projectID, purpose, subject string, now time.Time) (int, error)
}
