package store

import (
	"context"
	"time"
)

// Retention says how long rows stay after they stopped counting: after a flow, secret,
// ceremony or challenge expired, after a session ended (expired, went idle or was revoked),
// after a message was delivered or given up. The margins keep "expired" answers and recent
// history readable for a while (a status page polled late, an operator looking at yesterday's
// outbox); past them a row is only weight.
type Retention struct {
	Flows time.Duration // passwordless flows, after ExpiresAt
	// OneTimeSecrets holds codes, links, reset tokens, and the OpenID Provider's authorization
	// requests and codes, after ExpiresAt. A consumed authorization code stays that long so
	// that presenting it again is still recognised as reuse and revokes what it started.
	OneTimeSecrets time.Duration
	// Sessions holds an ended session and every refresh token of its family. While a session
	// lives its spent tokens stay, whatever their age: presenting one again is how reuse is
	// detected, and reuse ends the family. It also holds the hosted login page's browser
	// sessions after they expired or were revoked; those of a session go with it.
	Sessions      time.Duration
	Ceremonies    time.Duration // passkey ceremonies, after ExpiresAt
	MFAChallenges time.Duration // after ExpiresAt and after their newest wrong answer
	Outbox        time.Duration // after SentAt, FailedAt or ExpiresAt
	// WebhookDeliveries holds the record of a delivery after it was delivered or given up;
	// the audit event it carried stays.
	WebhookDeliveries time.Duration
}

// DefaultRetention is the retention the server runs with. MFA challenges stay a day after
// their newest wrong answer, far past the 15-minute per-user failure window that sums them, so
// deleting one never forgives a failure that still counts.
var DefaultRetention = Retention{
	Flows:          24 * time.Hour,
	OneTimeSecrets: 24 * time.Hour,
	Sessions:       7 * 24 * time.Hour,
	Ceremonies:     24 * time.Hour,
	MFAChallenges:  24 * time.Hour,
	Outbox:         7 * 24 * time.Hour,
	// A month of delivery history, for whoever debugs a receiver.
	WebhookDeliveries: 30 * 24 * time.Hour,
}

// GCResult counts the rows one GarbageCollect call deleted, by kind.
type GCResult struct {
	Flows             int
	OneTimeSecrets    int
	Sessions          int
	RefreshTokens     int
	Ceremonies        int
	MFAChallenges     int
	Outbox            int
	SpentChallenges   int
	WebhookDeliveries int
	OIDCAuthRequests  int
	OIDCCodes         int
	BrowserSessions   int
}

// Total is the number of rows deleted.
func (r GCResult) Total() int {
	return r.Flows + r.OneTimeSecrets + r.Sessions + r.RefreshTokens + r.Ceremonies + r.MFAChallenges + r.Outbox +
		r.SpentChallenges + r.WebhookDeliveries + r.OIDCAuthRequests + r.OIDCCodes + r.BrowserSessions
}

// Add returns the sums of r's and o's counts.
func (r GCResult) Add(o GCResult) GCResult {
	return GCResult{Flows: r.Flows + o.Flows, OneTimeSecrets: r.OneTimeSecrets + o.OneTimeSecrets,
		Sessions: r.Sessions + o.Sessions, RefreshTokens: r.RefreshTokens + o.RefreshTokens,
		Ceremonies: r.Ceremonies + o.Ceremonies, MFAChallenges: r.MFAChallenges + o.MFAChallenges,
		Outbox: r.Outbox + o.Outbox, SpentChallenges: r.SpentChallenges + o.SpentChallenges,
		WebhookDeliveries: r.WebhookDeliveries + o.WebhookDeliveries,
		OIDCAuthRequests:  r.OIDCAuthRequests + o.OIDCAuthRequests, OIDCCodes: r.OIDCCodes + o.OIDCCodes,
		BrowserSessions: r.BrowserSessions + o.BrowserSessions}
}

// Full reports whether some kind reached limit: there may be more to delete.
func (r GCResult) Full(limit int) bool {
	return max(r.Flows, r.OneTimeSecrets, r.Sessions, r.RefreshTokens, r.Ceremonies, r.MFAChallenges, r.Outbox,
		r.SpentChallenges, r.WebhookDeliveries, r.OIDCAuthRequests, r.OIDCCodes, r.BrowserSessions) >= limit
}

// GarbageCollector deletes rows that no longer count. Audit events, login logs, users and
// their credentials are never touched: they are records, not state.
type GarbageCollector interface {
	// GarbageCollect deletes, across every project, rows past now minus their retention: at most
	// limit of each kind, each kind in its own short statement, so that a large backlog never
	// holds the database (SQLite's one writer) for long. Call it again while the result is
	// Full. Spent bot-check challenges go as soon as they expire: they could not verify again.
	// A session's refresh tokens and browser sessions go with it, never before it, and an
	// authorization request only once none of its codes is left.
	GarbageCollect(ctx context.Context, now time.Time, r Retention, limit int) (GCResult, error)
}
