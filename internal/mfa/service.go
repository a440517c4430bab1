package mfa

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/notice"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/outbox"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/protect"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Limits of the MFA API (issue 6).
const (
	// MaxUserFailures wrong second factors per user within FailureWindow, across mfa_tokens,
	// lock the user's second-factor step until the window has passed.
	MaxUserFailures = 5
	FailureWindow   = 15 * time.Minute
	// FreshSession is how recent a sign-in must be to issue backup codes or remove a factor: a
	// stolen access token alone must not be enough to weaken an account.
	FreshSession = 10 * time.Minute
	// maxOTPFactors bounds the authenticator apps one user may enroll.
	maxOTPFactors = 5
)

// Audit event types written by the MFA API.
const (
	AuditEnrolled             = "mfa.enrolled"
	AuditConfirmed            = "mfa.confirmed"
	AuditVerified             = "mfa.verified"
	AuditFailed               = "mfa.failed"
	AuditLocked               = "mfa.locked"
	AuditAuthenticatorDeleted = "mfa.authenticator_deleted"
	AuditRecoveryCodesIssued  = "mfa.recovery_codes_issued"
	AuditReset                = "mfa.reset"
)

// Logins completes logins (login.Service).
type Logins interface {
	Complete(ctx context.Context, r login.Request) (login.Result, error)
}

// Passkeys are the user's passkeys, listed and removed as factors.
type Passkeys interface {
	List(ctx context.Context, p store.Project, userID string) ([]store.Passkey, error)
	Delete(ctx context.Context, p store.Project, userID, id string) error
}

// Protector is attack protection (protect.Engine).
type Protector interface {
	Begin(ctx context.Context, g protect.Guard) (*protect.Attempt, error)
	AllowSendTx(ctx context.Context, tx protect.Store, s protect.Send) error
}

// Notices tell users of changes to how they sign in (notice.Notifier).
type Notices interface {
	Notify(ctx context.Context, tx notice.Store, p store.Project, u store.User, change string) error
}

// Store is the part of the store the MFA service uses; its transactions use tx only through
// Store (see store.Store.InTx).
type Store interface {
	store.Users
	store.Organizations
	store.MFAFactors
	store.MFAChallenges
	store.RecoveryCodes
	store.Outbox
	store.MessageTemplates
	store.AuditEvents
	InTx(ctx context.Context, fn func(tx store.Store) error) error
}

// Deps are the MFA service's dependencies.
type Deps struct {
	Store    Store
	Login    Logins
	Settings func(store.Project) (project.Settings, error)
	Tokens   *Tokens
	TOTP     *TOTP
	Codes    *RecoveryCodes
	Passkeys Passkeys
	Protect  Protector
	Notices  Notices
	// Sealer seals the out-of-band messages in the outbox; Wake tells the outbox worker a
	// message is waiting.
	Sealer outbox.Sealer
	Wake   func()
	// Delivery reports whether a channel has a sender; nil for all of them.
	Delivery func(notify.Channel) bool
	Now      func() time.Time
	Rand     io.Reader
	IDs      *ident.Generator
}

// Service is the MFA API: enrollment, challenges and their answers, and the management of a
// user's factors.
type Service struct {
	d Deps
}

// New returns the service; Now, Rand and IDs default to the real clock and randomness.
func New(d Deps) *Service {
	fillDefaults(&d.Now, &d.Rand, &d.IDs)
	if d.Wake == nil {
		d.Wake = func() {}
	}
	return &Service{d: d}
}

// Subject is who an MFA request acts for: a signed-in user (Session set, from an access
// token), or one part-way through a sign-in (Challenge set, from an mfa_token).
type Subject struct {
	Project   store.Project
	UserID    string
	Session   *store.Session
	Challenge *store.MFAChallenge
}

// TokenSubject checks an mfa_token of the project and returns the subject it stands for.
// Errors: invalid_mfa_token, mfa_token_expired (401), too_many_attempts (429).
func (s *Service) TokenSubject(ctx context.Context, p store.Project, token string) (Subject, error) {
	c, err := s.d.Tokens.Check(ctx, p.ID, token)
	if err != nil {
		return Subject{}, err
	}
	return Subject{Project: p, UserID: c.UserID, Challenge: &c}, nil
}

// StartStep starts a second-factor step for the user with this email or phone number, for an
// application that checked the first factor itself (POST /api/v1/auth/mfa/token, with the
// project secret). Errors: invalid_identifier (400), user_not_found (404), user_inactive (403).
func (s *Service) StartStep(ctx context.Context, p store.Project, identifier string) (Issued, error) {
	u, err := findUser(ctx, s.d.Store, p.ID, identifier)
	if err != nil {
		return Issued{}, err
	}
	if !u.Active {
		return Issued{}, failure.New(failure.Forbidden, "user_inactive", "this user is deactivated")
	}
	return s.d.Tokens.Issue(ctx, Step{ProjectID: p.ID, UserID: u.ID, ConnectionType: login.ManualUser})
}

// Authenticators lists the subject's factors. For a signed-in user that is every factor,
// passkeys and unconfirmed authenticator apps included; for an mfa_token, the factors that can
// answer its challenge.
func (s *Service) Authenticators(ctx context.Context, sub Subject) ([]Authenticator, error) {
	st, u, err := s.subject(ctx, s.d.Store, sub)
	if err != nil {
		return nil, err
	}
	if sub.Challenge != nil {
		return answerable(ctx, s.d.Store, st, u, sub.Challenge.ConnectionType)
	}
	return s.allFactors(ctx, sub.Project, st, u)
}

// UserAuthenticators lists every factor of a user of the project (the management API).
// Errors: user_not_found (404).
func (s *Service) UserAuthenticators(ctx context.Context, p store.Project, userID string) ([]Authenticator, error) {
	return s.Authenticators(ctx, Subject{Project: p, UserID: userID})
}

func (s *Service) allFactors(ctx context.Context, p store.Project, st project.Settings, u store.User) ([]Authenticator, error) {
	out, err := listFactors(ctx, s.d.Store, st, u)
	if err != nil {
		return nil, err
	}
	if s.d.Passkeys == nil {
		return out, nil
	}
	pks, err := s.d.Passkeys.List(ctx, p, u.ID)
	if err != nil {
		return nil, err
	}
	for _, pk := range pks {
		out = append(out, Authenticator{ID: pk.ID, AuthenticatorType: TypePasskey, Name: pk.Name,
			Active: !pk.CloneSuspected, CreatedAt: ptr(pk.CreatedAt)})
	}
	return out, nil
}

// subject loads the project's settings and the subject's user, which must be active.
func (s *Service) subject(ctx context.Context, st Store, sub Subject) (project.Settings, store.User, error) {
	settings, err := s.d.Settings(sub.Project)
	if err != nil {
		return project.Settings{}, store.User{}, err
	}
	u, err := st.GetUser(ctx, sub.Project.ID, sub.UserID)
	if err != nil {
		return project.Settings{}, store.User{}, userNotFound(err, sub.UserID)
	}
	if !u.Active {
		return project.Settings{}, store.User{}, failure.New(failure.Forbidden, "user_inactive", "this user is deactivated")
	}
	return settings, u, nil
}

// audit writes an event about the subject's user through st.
func (s *Service) audit(ctx context.Context, st store.AuditEvents, sub Subject, typ string, detail map[string]any) error {
	e := store.AuditEvent{ID: s.d.IDs.New(), ProjectID: sub.Project.ID, Type: typ, UserID: sub.UserID,
		Detail: detail, CreatedAt: s.now()}
	if sub.Session != nil {
		e.SessionID = sub.Session.ID
	}
	if err := st.AddAuditEvent(ctx, e); err != nil {
		return fmt.Errorf("write audit event %s: %w", typ, err)
	}
	return nil
}

func (s *Service) now() time.Time { return s.d.Now().UTC().Truncate(time.Microsecond) }

// requireFresh refuses a subject that is not a sign-in of the last FreshSession.
func (s *Service) requireFresh(sub Subject) error {
	if sub.Session == nil {
		return failure.New(failure.Forbidden, "user_token_required", "this takes a signed-in user's access token, not an mfa_token")
	}
	if s.now().Sub(sub.Session.CreatedAt) > FreshSession {
		return failure.New(failure.Forbidden, "reauthentication_required",
			"sign in again: this needs a sign-in from the last %d minutes", int(FreshSession/time.Minute))
	}
	return nil
}

func userNotFound(err error, userID string) error {
	if failure.IsKind(err, failure.NotFound) || isNotFound(err) {
		return failure.New(failure.NotFound, "user_not_found", "user not found")
	}
	return fmt.Errorf("get user %s: %w", userID, err)
}

// notify tells the subject's user of a change through st (the change's transaction, or the
// store right after it).
func (s *Service) notify(ctx context.Context, st Store, p store.Project, userID, change string) error {
	if s.d.Notices == nil {
		return nil
	}
	u, err := st.GetUser(ctx, p.ID, userID)
	if err != nil {
		return fmt.Errorf("get user %s: %w", userID, err)
	}
	return s.d.Notices.Notify(ctx, st, p, u, change)
}
