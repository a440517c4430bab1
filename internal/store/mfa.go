package store

import (
	"context"
	"time"
)

// MFAFactorOTP is the type of a TOTP factor (RFC 6238), named as the MFA API names it.
const MFAFactorOTP = "otp"

// MFAFactor is a second factor enrolled by a user. A TOTP factor keeps its shared secret,
// sealed by the caller (secretbox) because the server must read it back to check codes: a
// hash would not do.
type MFAFactor struct {
	ID        string
	ProjectID string
	UserID    string
	Type      string // MFAFactorOTP
	Secret    []byte // sealed by the caller; the store never sees the clear secret
	// Confirmed is set by the first valid code: until then the factor proves nothing, since
	// the user may never have stored the secret in an authenticator.
	Confirmed bool
	// LastUsedStep is the newest time step accepted for the factor (0 for none): a step is
	// accepted once, so a code seen by someone else cannot be replayed within its window.
	LastUsedStep int64
	CreatedAt    time.Time
	ConfirmedAt  *time.Time
	LastUsedAt   *time.Time
}

// MFAFactors stores users' second factors.
type MFAFactors interface {
	// CreateMFAFactor stores f: ErrNotFound when the user does not exist in the project.
	CreateMFAFactor(ctx context.Context, f MFAFactor) error
	// GetMFAFactor returns one of the user's factors.
	GetMFAFactor(ctx context.Context, projectID, userID, id string) (MFAFactor, error)
	// ListMFAFactors returns the user's factors, confirmed or not, oldest first.
	ListMFAFactors(ctx context.Context, projectID, userID string) ([]MFAFactor, error)
	// ConfirmMFAFactor marks an unconfirmed factor confirmed and records step as used, in one
	// statement: ErrNotFound when the user has no such factor, ErrConflict when it is already
	// confirmed, ErrReused when step is not newer than the last step used.
	ConfirmMFAFactor(ctx context.Context, projectID, userID, id string, step int64, at time.Time) (MFAFactor, error)
	// UseMFAFactorStep records step as used by a confirmed factor, in one statement that
	// succeeds only if step is newer than the last step used, so a step is accepted once even
	// when many callers present it at the same time: ErrReused when it is not newer (the losers
	// of such a race get it), ErrNotFound when the user has no such confirmed factor.
	UseMFAFactorStep(ctx context.Context, projectID, userID, id string, step int64, at time.Time) (MFAFactor, error)
	// DeleteMFAFactor removes one of the user's factors.
	DeleteMFAFactor(ctx context.Context, projectID, userID, id string) error
}

// RecoveryCode is one of a user's backup codes: a look-up secret that stands in for a second
// factor once. Only its hash is kept (the caller hashes); UsedAt is set by its one use.
type RecoveryCode struct {
	ID        string
	ProjectID string
	UserID    string
	Hash      []byte // computed by the caller; unique per user
	CreatedAt time.Time
	UsedAt    *time.Time // nil while the code is unused
}

// RecoveryCodes stores users' recovery (backup) codes.
type RecoveryCodes interface {
	// ReplaceRecoveryCodes deletes the user's codes, used or not, and stores codes in their
	// place, all or nothing: ErrNotFound, and nothing changed, when the user is not in the
	// project. Concurrent replacements of one user's set leave exactly one of the sets.
	ReplaceRecoveryCodes(ctx context.Context, projectID, userID string, codes []RecoveryCode) error
	// UseRecoveryCode marks the user's unused code with this hash used at `at` and returns it,
	// in one statement, so of concurrent callers presenting one code exactly one succeeds:
	// ErrNotFound when the user has no unused code with this hash (the losers of such a race
	// get it).
	UseRecoveryCode(ctx context.Context, projectID, userID string, hash []byte, at time.Time) (RecoveryCode, error)
	// CountRecoveryCodes returns how many of the user's codes are unused.
	CountRecoveryCodes(ctx context.Context, projectID, userID string) (int, error)
}

// Statuses of an MFA challenge.
const (
	MFAChallengePending   = "pending"
	MFAChallengeCompleted = "completed"
	MFAChallengeDead      = "dead" // too many wrong second factors
)

// MFAChallenge is a second-factor step in progress: what an mfa_token stands for. It remembers
// the first factor that succeeded, so the login it completes can report both.
type MFAChallenge struct {
	ID             string
	ProjectID      string
	UserID         string
	OrganizationID string // the organization the login is into; "" for none
	TokenHash      []byte // SHA-256 of the mfa_token; unique
	ConnectionType string // how the first factor signed in, e.g. "EmailOTP"
	AMR            []string
	Attempts       int
	MaxAttempts    int
	Status         string
	CreatedAt      time.Time
	ExpiresAt      time.Time
	CompletedAt    *time.Time
	LastFailedAt   *time.Time // the newest wrong answer; nil for none

	// The out-of-band code last sent for the challenge, if any (SetMFAChallengeOOB).
	OOBChannel    string // "sms" or "email"; "" when none was sent
	OOBCodeHash   []byte // hash of the oob_code handle given to the client
	OOBSecretHash []byte // hash of the code sent to the user
	OOBSends      int
	OOBSentAt     *time.Time
}

// OOBSend is a new out-of-band code for a challenge: it replaces the previous one.
type OOBSend struct {
	Channel    string
	CodeHash   []byte
	SecretHash []byte
	At         time.Time
	// The send is refused (ErrConflict) when the challenge has had MaxSends sends already, or
	// its last send was after NotAfterLast.
	MaxSends     int
	NotAfterLast time.Time
}

// MFAChallenges stores MFA challenges.
type MFAChallenges interface {
	// CreateMFAChallenge stores c: ErrNotFound when its user does not exist.
	CreateMFAChallenge(ctx context.Context, c MFAChallenge) error
	// GetMFAChallenge returns the project's challenge with the token hash, whatever its state.
	GetMFAChallenge(ctx context.Context, projectID string, tokenHash []byte) (MFAChallenge, error)
	// FailMFAChallenge counts a wrong second factor, given at `at`, against a pending challenge
	// and kills it at its limit, in one statement: ErrNotFound when it is not pending.
	FailMFAChallenge(ctx context.Context, projectID, id string, at time.Time) (MFAChallenge, error)
	// SetMFAChallengeOOB records an out-of-band code sent for a pending, unexpired challenge, in
	// one statement that also enforces the send limits: ErrNotFound when the challenge is not
	// pending or has expired, ErrConflict when a limit refuses the send.
	SetMFAChallengeOOB(ctx context.Context, projectID, id string, send OOBSend) (MFAChallenge, error)
	// CountMFAFailures returns how many wrong second factors the user's challenges counted
	// whose newest wrong answer came after since, and the oldest such newest answer (nil
	// when the count is 0): the per-user limit across mfa_tokens.
	CountMFAFailures(ctx context.Context, projectID, userID string, since time.Time) (int, *time.Time, error)
	// CompleteMFAChallenge ends a pending, unexpired challenge, once: ErrNotFound otherwise.
	CompleteMFAChallenge(ctx context.Context, projectID, id string, at time.Time) (MFAChallenge, error)
}
