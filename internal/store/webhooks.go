package store

import (
	"context"
	"strings"
	"time"
)

// Webhook is an endpoint of a project that receives the project's audit events.
type Webhook struct {
	ID        string
	ProjectID string
	URL       string
	// Events says which events the endpoint receives: "*" for all, an exact event type such
	// as "session.revoked_all", or a prefix ending in "." such as "mfa.". Never empty.
	Events    []string
	Secret    []byte // the signing secret, sealed
	Enabled   bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// WebhookDelivery is one audit event on its way to one webhook, and the record of the attempts
// to deliver it. AddAuditEvent writes it in the event's own transaction, so a committed event
// always has its deliveries and a rolled-back one never has any.
type WebhookDelivery struct {
	ProjectID   string
	WebhookID   string
	EventID     string
	EventType   string
	CreatedAt   time.Time // the event's time
	AvailableAt time.Time // not claimed before
	Attempts    int
	StatusCode  int // the HTTP status of the last attempt; 0 when it got no answer
	LastError   string
	DeliveredAt *time.Time
	FailedAt    *time.Time // given up
}

// WebhookCall is a claimed delivery with what making it takes.
type WebhookCall struct {
	Delivery WebhookDelivery
	Webhook  Webhook
	Event    AuditEvent
}

// WebhookAttempt is the outcome of one attempt to deliver.
type WebhookAttempt struct {
	StatusCode int
	Error      string     // "" when delivered
	At         time.Time  // when the attempt ended
	RetryAt    *time.Time // when not delivered: the next try; nil gives the delivery up
}

// Webhooks stores webhooks and their deliveries.
type Webhooks interface {
	CreateWebhook(ctx context.Context, w Webhook) error // ErrNotFound if the project does not exist
	GetWebhook(ctx context.Context, projectID, id string) (Webhook, error)
	ListWebhooks(ctx context.Context, projectID string, p Page) ([]Webhook, error) // by id
	// UpdateWebhook replaces every field but ID, ProjectID and CreatedAt. Deliveries already
	// queued stay queued.
	UpdateWebhook(ctx context.Context, w Webhook) error // ErrNotFound
	// DeleteWebhook removes the webhook with its deliveries. ErrNotFound if there is none.
	DeleteWebhook(ctx context.Context, projectID, id string) error
	// ListWebhookDeliveries returns a webhook's deliveries newest first: at most limit rows whose
	// event id is less than before ("" for the newest).
	ListWebhookDeliveries(ctx context.Context, projectID, webhookID string, limit int, before string) ([]WebhookDelivery, error)
	// ClaimWebhookDeliveries takes up to limit undelivered deliveries of enabled webhooks
	// available at now, oldest first, and makes them unavailable to other workers until
	// now+lease; each claim counts an attempt. Workers on many instances never claim the same
	// delivery at once.
	ClaimWebhookDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]WebhookCall, error)
	// RecordWebhookAttempt records the outcome of the attempt that the last claim counted.
	// ErrNotFound if the delivery no longer exists (its webhook was deleted meanwhile).
	RecordWebhookAttempt(ctx context.Context, projectID, webhookID, eventID string, a WebhookAttempt) error
}

// EventPatterns returns every webhook event pattern that matches an event of type typ: "*",
// each prefix of typ that ends in ".", and typ itself. ("mfa.totp.reset": "*", "mfa.",
// "mfa.totp.", "mfa.totp.reset".)
func EventPatterns(typ string) []string {
	out := []string{"*"}
	for i := 0; i < len(typ); i++ {
		if typ[i] == '.' {
			out = append(out, typ[:i+1])
		}
	}
	if typ != "" && !strings.HasSuffix(typ, ".") {
		out = append(out, typ)
	}
	return out
}
