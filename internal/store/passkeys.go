package store

import (
	"context"
	"time"
)

// Passkey is a WebAuthn credential registered to a user: the credential record of WebAuthn
// Level 3 §4 plus what the user sees of it.
type Passkey struct {
	ID                string // ours; the credential's own id is CredentialID
	ProjectID         string
	UserID            string
	CredentialID      []byte // unique per project: one credential belongs to one user
	PublicKey         []byte // COSE_Key
	SignCount         uint32
	AAGUID            []byte // 16 bytes; all zero when the authenticator does not say
	Transports        []string
	BackupEligible    bool // fixed at registration: a credential never changes it
	BackupState       bool
	UserVerified      bool // whether user verification has been performed with it
	AttestationType   string
	AttestationFormat string
	Name              string
	// CloneSuspected is set when the sign count went backwards: a copy of the private key may
	// exist, so the credential is refused until its owner removes it.
	CloneSuspected bool
	CreatedAt      time.Time
	UpdatedAt      time.Time
	LastUsedAt     *time.Time
}

// PasskeyShape is what login options reveal of a credential besides its id's bytes.
type PasskeyShape struct {
	UserID     string
	IDLength   int
	Transports []string
}

// PasskeyUse is what a successful assertion changes in a credential record.
type PasskeyUse struct {
	PrevSignCount uint32 // the count the assertion was checked against
	SignCount     uint32
	BackupState   bool
	UserVerified  bool
	At            time.Time
}

// Passkeys stores WebAuthn credentials and the random user handles they are bound to.
type Passkeys interface {
	// CreatePasskey stores p: ErrConflict when the project already has the credential id,
	// ErrNotFound when the user does not exist.
	CreatePasskey(ctx context.Context, p Passkey) error
	// GetPasskeyByCredentialID returns the project's credential with that credential id.
	GetPasskeyByCredentialID(ctx context.Context, projectID string, credentialID []byte) (Passkey, error)
	// ListPasskeys returns a user's credentials, oldest first.
	ListPasskeys(ctx context.Context, projectID, userID string) ([]Passkey, error)
	// RenamePasskey renames one of the user's credentials.
	RenamePasskey(ctx context.Context, projectID, userID, id, name string, at time.Time) (Passkey, error)
	// DeletePasskey removes one of the user's credentials.
	DeletePasskey(ctx context.Context, projectID, userID, id string) error
	// DeleteUserPasskeys removes all of a user's credentials and reports how many there were.
	DeleteUserPasskeys(ctx context.Context, projectID, userID string) (int, error)
	// RecordPasskeyUse stores the outcome of an assertion, only if the stored sign count is
	// still u.PrevSignCount and the credential is not suspected: ErrConflict otherwise, so that
	// of two assertions checked against the same count only one is recorded.
	RecordPasskeyUse(ctx context.Context, projectID, id string, u PasskeyUse) (Passkey, error)
	// FlagPasskeyClone marks the credential as possibly cloned.
	FlagPasskeyClone(ctx context.Context, projectID, id string, at time.Time) error
	// SamplePasskeyShapes returns what login options show of up to limit of the project's
	// credentials (the id's length and the transports), by user id, then oldest first within a
	// user: the model that stand-in credentials for unknown identifiers are drawn from.
	SamplePasskeyShapes(ctx context.Context, projectID string, limit int) ([]PasskeyShape, error)

	// EnsurePasskeyHandle returns the user's WebAuthn user handle, storing candidate as the
	// handle when the user has none yet (concurrent callers all get the one stored).
	EnsurePasskeyHandle(ctx context.Context, projectID, userID string, candidate []byte) ([]byte, error)
	// PasskeyHandle returns the user's handle: ErrNotFound when none was made.
	PasskeyHandle(ctx context.Context, projectID, userID string) ([]byte, error)
	// UserIDByPasskeyHandle returns the id of the user the handle belongs to.
	UserIDByPasskeyHandle(ctx context.Context, projectID string, handle []byte) (string, error)
}

// Kinds of WebAuthn ceremony.
const (
	CeremonyRegister = "register"
	CeremonyLogin    = "login"
)

// Statuses of a WebAuthn ceremony. A pending ceremony past its expiry reads as expired.
const (
	CeremonyPending   = "pending"
	CeremonyUsed      = "used" // its finish call is being checked
	CeremonyCompleted = "completed"
	CeremonyFailed    = "failed"
)

// Ceremony is one WebAuthn registration or login: the challenge and options handed to the
// browser, found again by the hash of the auth_code that ties the finish call to them.
type Ceremony struct {
	ID            string
	ProjectID     string
	CodeHash      []byte // SHA-256 of the auth_code; unique
	Kind          string // CeremonyRegister or CeremonyLogin
	UserID        string // the user registering, or the user named by the identifier; "" for none
	IdentifierKey string // the normalised identifier the options were asked for; "" for none
	Session       []byte // the relying party's ceremony state (JSON)
	Status        string
	CreatedAt     time.Time
	ExpiresAt     time.Time
	FinishedAt    *time.Time
}

// Ceremonies stores WebAuthn ceremonies.
type Ceremonies interface {
	CreateCeremony(ctx context.Context, c Ceremony) error // ErrNotFound if the project does not exist
	// UseCeremony takes the pending, unexpired ceremony of that kind with the code hash, in one
	// statement, so a code is used once: ErrNotFound when there is none.
	UseCeremony(ctx context.Context, projectID, kind string, codeHash []byte, at time.Time) (Ceremony, error)
	// FinishCeremony records the outcome of a used ceremony, and the user and identifier it
	// turned out to be for (empty values leave the stored ones).
	FinishCeremony(ctx context.Context, projectID, id, status, userID, identifierKey string, at time.Time) error
	// LatestCeremony returns the newest ceremony of the project for the identifier.
	LatestCeremony(ctx context.Context, projectID, identifierKey string) (Ceremony, error)
}
