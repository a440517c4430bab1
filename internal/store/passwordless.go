package store

import (
	"context"
	"time"
)

// Flow states.
const (
	FlowPending   = "pending"   // sent; waiting for the secret
	FlowVerified  = "verified"  // the secret was presented; the result waits to be collected
	FlowCollected = "collected" // the login result was handed out
	FlowDead      = "dead"      // too many wrong tries
)

// Flow is one passwordless login attempt: a secret sent to a destination by one channel. Its
// id is the `state` clients hold.
type Flow struct {
	ID          string
	ProjectID   string
	Channel     string // "magic_link", "email_otp" or "phone_otp"
	Destination string // the normalised email or E.164 phone
	SecretHash  []byte // SHA-256 of the code or link secret
	RedirectURL string // magic links: where verify sends the browser; "" for a page
	UserID      string // the user, once known
	Status      string
	Attempts    int // wrong secrets presented
	MaxAttempts int
	Resends     int
	CreatedAt   time.Time
	SentAt      time.Time // the last send
	ExpiresAt   time.Time
	VerifiedAt  *time.Time
	CollectedAt *time.Time
}

// Flows stores passwordless flows. Every state change is one atomic statement, so of concurrent
// callers exactly one succeeds.
type Flows interface {
	CreateFlow(ctx context.Context, f Flow) error // ErrNotFound if the project does not exist
	GetFlow(ctx context.Context, projectID, id string) (Flow, error)
	// VerifyFlow marks a pending, unexpired flow whose secret hash is hash as verified at `at`.
	// ErrNotFound when no such flow matches (wrong secret, expired, dead or already used).
	VerifyFlow(ctx context.Context, projectID, id string, hash []byte, at time.Time) (Flow, error)
	// FailFlowAttempt counts a wrong secret; the flow dies at MaxAttempts. ErrNotFound if the
	// flow is not pending.
	FailFlowAttempt(ctx context.Context, projectID, id string) (Flow, error)
	// ResendFlow replaces the secret of a pending flow with hash, valid until expires, if it has
	// been resent fewer than maxResends times and was last sent no later than notAfter.
	// ErrNotFound when any condition fails.
	ResendFlow(ctx context.Context, projectID, id string, hash []byte, sentAt, expires, notAfter time.Time, maxResends int) (Flow, error)
	// SetFlowUser records the flow's user.
	SetFlowUser(ctx context.Context, projectID, id, userID string) error
	// CollectFlow hands out a verified flow's result once. ErrNotFound if it is not verified.
	CollectFlow(ctx context.Context, projectID, id string, at time.Time) (Flow, error)
}

// OutboxMessage is a message waiting to be delivered. It is written in the transaction that
// makes it necessary, so nothing that refers to it exists without it, and delivered at least
// once by a worker. Its content holds codes and links, so it is kept sealed.
type OutboxMessage struct {
	ID          string // also the dedupe id the sender passes on
	ProjectID   string
	Channel     string // "email" or "sms"
	Recipient   string
	Payload     []byte // sealed content
	CreatedAt   time.Time
	AvailableAt time.Time // not claimed before
	Attempts    int
	LastError   string
	SentAt      *time.Time
	FailedAt    *time.Time // gave up
	// ExpiresAt is when the message stops being worth delivering, the expiry of the secret it
	// carries: a worker that claims it at or after this gives it up unsent. Nil: never.
	ExpiresAt *time.Time
}

// Outbox stores messages to deliver.
type Outbox interface {
	EnqueueMessage(ctx context.Context, m OutboxMessage) error // ErrNotFound if the project does not exist
	// ClaimMessages takes up to limit undelivered messages available at now, oldest first, and makes
	// them unavailable to other workers until now+lease; each claim counts an attempt. Workers
	// on many instances never claim the same message at once. Expired messages are claimed
	// like any other: the worker gives them up, so that the row records why nothing was sent.
	ClaimMessages(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]OutboxMessage, error)
	// MarkMessageSent records delivery. keepPayload false drops the content, which no one needs
	// once delivered.
	MarkMessageSent(ctx context.Context, id string, at time.Time, keepPayload bool) error
	// MarkMessageFailed records a failed attempt: retry from retryAt, or, when giveUp, never.
	MarkMessageFailed(ctx context.Context, id string, retryAt time.Time, lastError string, giveUp bool) error
	// ListOutbox returns messages newest first, at most limit (the development inbox).
	ListOutbox(ctx context.Context, limit int) ([]OutboxMessage, error)
}

// MessageTemplate is a project's override of a message template.
type MessageTemplate struct {
	ProjectID string
	Name      string // "magic_link", "email_otp", "sms_otp"
	Subject   string
	Text      string
	HTML      string
	UpdatedAt time.Time
}

// MessageTemplates stores template overrides.
type MessageTemplates interface {
	PutTemplate(ctx context.Context, t MessageTemplate) error // creates or replaces
	GetTemplate(ctx context.Context, projectID, name string) (MessageTemplate, error)
	DeleteTemplate(ctx context.Context, projectID, name string) error // ErrNotFound if none
}
