package sqlstore

import (
	"context"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// sessionEnded is the condition on a sessions row (alias s) of having ended before a cutoff,
// given three times: expired, gone idle or revoked.
const sessionEnded = `(s.expires_at < ? OR s.idle_expires_at < ? OR s.revoked_at < ?)`

// GarbageCollect deletes what ended before its retention, each kind by one bounded DELETE
// that commits on its own. Every DELETE picks its rows in a LIMITed subquery (PostgreSQL has no
// DELETE ... LIMIT) that walks an expiry index.
func (s *Store) GarbageCollect(ctx context.Context, now time.Time, r store.Retention, limit int) (store.GCResult, error) {
	var res store.GCResult
	cut := func(d time.Duration) int64 { return toMicros(now.Add(-d)) }
	sessions := cut(r.Sessions)
	steps := []struct {
		name  string
		count *int
		q     string
		args  []any
	}{
		{"flows", &res.Flows, `DELETE FROM flows WHERE id IN (SELECT id FROM flows WHERE expires_at < ? LIMIT ?)`,
			[]any{cut(r.Flows)}},
		{"one-time secrets", &res.OneTimeSecrets,
			`DELETE FROM one_time_secrets WHERE id IN (SELECT id FROM one_time_secrets WHERE expires_at < ? LIMIT ?)`,
			[]any{cut(r.OneTimeSecrets)}},
		// A family's tokens go before its session, and the session only once none is left: a
		// spent token must never outlive the session that makes its reuse detectable, and a
		// session must not take an unbounded cascade with it in one statement.
		// Ended sessions are found through their expiry indexes and their tokens through the
		// session index: a join would let the planner scan every refresh token instead.
		{"refresh tokens", &res.RefreshTokens, `DELETE FROM refresh_tokens WHERE id IN (SELECT t.id FROM refresh_tokens t
			WHERE (t.project_id, t.session_id) IN (SELECT s.project_id, s.id FROM sessions s WHERE ` + sessionEnded + `
				AND EXISTS (SELECT 1 FROM refresh_tokens u WHERE u.project_id = s.project_id AND u.session_id = s.id) LIMIT ?)
			LIMIT ?)`,
			[]any{sessions, sessions, sessions, limit}},
		{"sessions", &res.Sessions, `DELETE FROM sessions WHERE id IN (SELECT s.id FROM sessions s WHERE ` + sessionEnded + `
			AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.project_id = s.project_id AND t.session_id = s.id) LIMIT ?)`,
			[]any{sessions, sessions, sessions}},
		{"passkey ceremonies", &res.Ceremonies,
			`DELETE FROM passkey_ceremonies WHERE id IN (SELECT id FROM passkey_ceremonies WHERE expires_at < ? LIMIT ?)`,
			[]any{cut(r.Ceremonies)}},
		// A wrong answer counts against its user for a while after its challenge expired.
		{"MFA challenges", &res.MFAChallenges, `DELETE FROM mfa_challenges WHERE id IN (SELECT id FROM mfa_challenges
			WHERE expires_at < ? AND (last_failed_at IS NULL OR last_failed_at < ?) LIMIT ?)`,
			[]any{cut(r.MFAChallenges), cut(r.MFAChallenges)}},
		{"outbox messages", &res.Outbox, `DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
			WHERE sent_at < ? OR failed_at < ? OR expires_at < ? LIMIT ?)`,
			[]any{cut(r.Outbox), cut(r.Outbox), cut(r.Outbox)}},
		{"webhook deliveries", &res.WebhookDeliveries, `DELETE FROM webhook_deliveries WHERE (webhook_id, event_id) IN
			(SELECT webhook_id, event_id FROM webhook_deliveries WHERE delivered_at < ? OR failed_at < ? LIMIT ?)`,
			[]any{cut(r.WebhookDeliveries), cut(r.WebhookDeliveries)}},
		{"spent challenges", &res.SpentChallenges, `DELETE FROM spent_challenges WHERE challenge_key IN
			(SELECT challenge_key FROM spent_challenges WHERE expires_at < ? LIMIT ?)`,
			[]any{toMicros(now)}},
	}
	for _, st := range steps {
		n, err := s.execAffected(ctx, st.q, append(st.args, limit)...)
		if err != nil {
			return res, s.wrap(err, "garbage-collect %s", st.name)
		}
		*st.count = int(n)
	}
	return res, nil
}
