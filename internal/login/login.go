package login

import (
	"context"
	"errors"
	"fmt"
	"time"

	useragent "github.com/medama-io/go-useragent"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/protect"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// Connection types, as API.md §2 names them.
const (
	MagicLink  = "MagicLink"
	EmailOTP   = "EmailOTP"
	PhoneOTP   = "PhoneOTP"
	Passkey    = "Passkey"
	SAML       = "SAML"
	OIDC       = "OIDC"
	Google     = "Google"
	Password   = "Password"
	ManualUser = "ManualUser"
)

// Audit event types of logins. A login that completes writes AuditSucceeded, with the id of the
// session it started, in its own transaction; each method writes its own failures (AuditFailed
// with the method, or the method's own type, such as password.login_failed).
const (
	AuditSucceeded = "login.succeeded"
	AuditFailed    = "login.failed"
)

// Request is a first factor that has just succeeded.
type Request struct {
	Project        store.Project
	UserID         string
	OrganizationID string // the organization the user logs into; "" for none
	ConnectionType string
	AMR            []string // RFC 8176 values, e.g. ["otp"], ["hwk", "user"]
	Meta           audit.Meta
	// Also, when set, runs in the login's transaction once the user is checked (after Spend),
	// so what a method records about its factor (a passkey's new sign count) commits with the
	// login or not at all. Its error ends the login.
	Also func(ctx context.Context, tx store.Store) error
	// Spend, when set, runs before anything else in the login's transaction and returns the id
	// of the user the login is for, which then replaces UserID. It is for methods whose secret
	// is spent, or whose user is signed up, by the login itself (a code, a magic link, a
	// password sign-up): doing that in another commit would leave the secret spent, or the
	// account made, with no session after a crash, a database error or a client gone in
	// between, and nothing left to finish the login with. Its error ends the login and undoes
	// what it wrote.
	Spend func(ctx context.Context, tx store.Store) (userID string, err error)
}

// FinishTimeout bounds the work of a login after its secret is accepted, which no longer
// depends on the client staying connected (see Detach).
const FinishTimeout = 10 * time.Second

// Detach returns a context that the client's going away does not cancel, bounded by
// FinishTimeout, keeping ctx's values. A method switches to it once it has accepted, or is about
// to check in the login's own commit, a secret: a disconnect at that point must neither cut the
// login in half nor leave the bookkeeping that follows it (attack protection's counters) undone.
func Detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), FinishTimeout)
}

// Challenge is what a login that needs a second factor answers instead of tokens.
type Challenge struct {
	MFAToken       string
	Authenticators []any
}

// MFAPolicy decides whether a login needs a second factor; the MFA capability provides it.
// A nil Challenge means no. It runs inside the login's transaction and writes through tx: on
// SQLite a write on another connection would wait for that transaction's own lock.
type MFAPolicy interface {
	Challenge(ctx context.Context, tx store.Store, r Request, u store.User) (*Challenge, error)
}

// Result is the outcome of a login (API.md §2): tokens and the user, or an MFA challenge.
type Result struct {
	Authenticated bool
	Tokens        token.Tokens
	User          directory.User
	Challenge     *Challenge
	// Device is a device token for the client to keep and send with the account's later
	// logins (protect's IssueDevice), so that they count on this device and not against the
	// account-wide lock strangers can fill; "" when the method issues none.
	Device string
}

// Sessions is the part of the session service a login needs.
type Sessions interface {
	PrepareSession(ctx context.Context, project store.Project) (*token.SessionStarter, error)
	Refresh(ctx context.Context, project store.Project, refreshToken string, meta audit.Meta) (token.Tokens, error)
}

// Users reads the user a result shows: GetUserIn through the login's transaction, GetUser
// for a refresh.
type Users interface {
	GetUser(ctx context.Context, projectID, id string) (directory.User, error)
	GetUserIn(ctx context.Context, tx directory.Store, projectID, id string) (directory.User, error)
}

// Guard is attack protection for long secrets (protect.Engine): refresh tokens cannot be
// guessed, but one IP presenting wrong ones is throttled so that it cannot load the server.
type Guard interface {
	Check(ctx context.Context, g protect.Guard) error
	Fail(ctx context.Context, g protect.Guard) error
}

// Store is the part of the store a login uses; its transactions use tx only through
// Store (see store.Store.InTx).
type Store interface {
	store.Users
	store.LoginLogs
	store.AuditEvents
	InTx(ctx context.Context, fn func(tx store.Store) error) error
}

// Deps are the service's dependencies.
type Deps struct {
	Store    Store
	Sessions Sessions
	Users    Users
	MFA      MFAPolicy // nil: no login needs a second factor
	Guard    Guard     // nil: refresh tokens are not throttled
	IDs      *ident.Generator
	Now      func() time.Time
}

// Service completes logins.
type Service struct {
	store    Store
	sessions Sessions
	users    Users
	mfa      MFAPolicy
	guard    Guard
	ids      *ident.Generator
	now      func() time.Time
	agents   *useragent.Parser
}

// New returns a login service.
func New(d Deps) *Service {
	s := &Service{store: d.Store, sessions: d.Sessions, users: d.Users, mfa: d.MFA, guard: d.Guard, ids: d.IDs, now: d.Now,
		agents: useragent.NewParser()}
	if s.ids == nil {
		s.ids = ident.NewGenerator()
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Complete finishes a login whose first factor succeeded (or is spent by r.Spend): unless the
// MFA policy asks for a second factor, it records the login (login log, the user's last login,
// the audit event) and starts the session in one transaction, then returns the tokens with the
// user. It runs on a context detached from the client (Detach). Errors: user_not_found (404),
// user_inactive (403).
func (s *Service) Complete(ctx context.Context, r Request) (Result, error) {
	ctx, cancel := Detach(ctx)
	defer cancel()
	now := s.now().UTC().Truncate(time.Microsecond)
	starter, err := s.sessions.PrepareSession(ctx, r.Project)
	if err != nil {
		return Result{}, err
	}
	var tokens token.Tokens
	var challenge *Challenge
	var user directory.User
	err = s.store.InTx(ctx, func(tx store.Store) error {
		if r.Spend != nil {
			id, err := r.Spend(ctx, tx)
			if err != nil {
				return err
			}
			r.UserID = id
		}
		u, err := tx.GetUser(ctx, r.Project.ID, r.UserID)
		if errors.Is(err, store.ErrNotFound) {
			return failure.New(failure.NotFound, "user_not_found", "user not found")
		}
		if err != nil {
			return fmt.Errorf("get user %s: %w", r.UserID, err)
		}
		if !u.Active {
			return failure.New(failure.Forbidden, "user_inactive", "this user is deactivated")
		}
		if r.Also != nil {
			if err := r.Also(ctx, tx); err != nil {
				return err
			}
		}
		if s.mfa != nil {
			if challenge, err = s.mfa.Challenge(ctx, tx, r, u); err != nil || challenge != nil {
				return err
			}
		}
		if err := tx.AddLoginLog(ctx, s.loginLog(r, now)); err != nil {
			return fmt.Errorf("add login log: %w", err)
		}
		if err := tx.RecordLogin(ctx, r.Project.ID, u.ID, now, r.ConnectionType); err != nil {
			return fmt.Errorf("record last login of user %s: %w", u.ID, err)
		}
		// The session first: the audit event names it.
		tokens, err = starter.Start(ctx, tx, token.Grant{
			UserID: u.ID, OrganizationID: r.OrganizationID,
			ConnectionType: r.ConnectionType, AMR: r.AMR, Meta: r.Meta,
		})
		if err != nil {
			return err
		}
		if err := tx.AddAuditEvent(ctx, store.AuditEvent{ID: s.ids.New(), ProjectID: r.Project.ID, Type: AuditSucceeded,
			UserID: u.ID, SessionID: tokens.Session.ID, OrganizationID: r.OrganizationID, IPAddress: r.Meta.IPAddress,
			UserAgent: r.Meta.UserAgent, Detail: map[string]any{"connection_type": r.ConnectionType, "amr": r.AMR},
			CreatedAt: now}); err != nil {
			return fmt.Errorf("audit login of user %s: %w", u.ID, err)
		}
		// Read here, not after the commit: from the commit on, only the answer is left to do.
		if user, err = s.users.GetUserIn(ctx, tx, r.Project.ID, u.ID); err != nil {
			return fmt.Errorf("load user %s for the login result: %w", u.ID, err)
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	if challenge != nil {
		return Result{Challenge: challenge}, nil
	}
	return Result{Authenticated: true, Tokens: tokens, User: user}, nil
}

// Refresh spends a refresh token and returns the new tokens with the user, in the login
// result's shape. Errors: invalid_grant (401), and from one IP presenting too many wrong ones,
// ip_throttled (429).
func (s *Service) Refresh(ctx context.Context, project store.Project, refreshToken string, meta audit.Meta) (Result, error) {
	guard := protect.Guard{Project: project, Kind: "refresh", IP: meta.IPAddress}
	if s.guard != nil {
		if err := s.guard.Check(ctx, guard); err != nil {
			return Result{}, err
		}
	}
	tokens, err := s.sessions.Refresh(ctx, project, refreshToken, meta)
	if fe, ok := failure.As(err); ok && fe.Code == "invalid_grant" && s.guard != nil {
		if ferr := s.guard.Fail(ctx, guard); ferr != nil {
			return Result{}, ferr
		}
	}
	if err != nil {
		return Result{}, err
	}
	return s.result(ctx, project.ID, tokens.Session.UserID, tokens)
}

func (s *Service) result(ctx context.Context, projectID, userID string, tokens token.Tokens) (Result, error) {
	u, err := s.users.GetUser(ctx, projectID, userID)
	if err != nil {
		return Result{}, fmt.Errorf("load user %s for the login result: %w", userID, err)
	}
	return Result{Authenticated: true, Tokens: tokens, User: u}, nil
}

// loginLog describes the login from its request, with the user agent parsed into what a
// person reading the log wants to see.
func (s *Service) loginLog(r Request, now time.Time) store.LoginLog {
	ua := s.agents.Parse(r.Meta.UserAgent)
	device := "Desktop"
	switch {
	case ua.IsBot():
		device = "Bot"
	case ua.IsTablet():
		device = "Tablet"
	case ua.IsMobile():
		device = "Mobile"
	case ua.IsTV():
		device = "TV"
	case r.Meta.UserAgent == "" || ua.OS() == "":
		device = ""
	}
	return store.LoginLog{
		ID: s.ids.New(), ProjectID: r.Project.ID, UserID: r.UserID,
		IPAddress: r.Meta.IPAddress, UserAgent: r.Meta.UserAgent, ConnectionType: r.ConnectionType,
		OS: string(ua.OS()), Device: device, Browser: string(ua.Browser()), CreatedAt: now,
	}
}
