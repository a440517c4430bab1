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
		// Browser sessions go past their own end, and with their token session (before it,
		// like its refresh tokens): the login page must never find a browser session whose
		// token session is gone, and the cascade of a session's delete stays empty.
		{"browser sessions", &res.BrowserSessions, `DELETE FROM oidc_browser_sessions WHERE id IN (SELECT id FROM oidc_browser_sessions
			WHERE expires_at < ? OR revoked_at < ? LIMIT ?)`,
			[]any{sessions, sessions}},
		{"browser sessions of ended sessions", &res.BrowserSessions, `DELETE FROM oidc_browser_sessions WHERE id IN
			(SELECT b.id FROM oidc_browser_sessions b
			WHERE (b.project_id, b.session_id) IN (SELECT s.project_id, s.id FROM sessions s WHERE ` + sessionEnded + `
				AND EXISTS (SELECT 1 FROM oidc_browser_sessions c WHERE c.project_id = s.project_id AND c.session_id = s.id) LIMIT ?)
			LIMIT ?)`,
			[]any{sessions, sessions, sessions, limit}},
		{"sessions", &res.Sessions, `DELETE FROM sessions WHERE id IN (SELECT s.id FROM sessions s WHERE ` + sessionEnded + `
			AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.project_id = s.project_id AND t.session_id = s.id)
			AND NOT EXISTS (SELECT 1 FROM oidc_browser_sessions b WHERE b.project_id = s.project_id AND b.session_id = s.id) LIMIT ?)`,
			[]any{sessions, sessions, sessions}},
		// An authorization code stays, consumed or not, until OneTimeSecrets past its expiry,
		// so that a late replay is still recognised as reuse; its request goes only once none
		// of its codes is left.
		{"authorization codes", &res.OIDCCodes, `DELETE FROM oidc_codes WHERE code_hash IN
			(SELECT code_hash FROM oidc_codes WHERE expires_at < ? LIMIT ?)`,
			[]any{cut(r.OneTimeSecrets)}},
		{"authorization requests", &res.OIDCAuthRequests, `DELETE FROM oidc_auth_requests WHERE id IN
			(SELECT r.id FROM oidc_auth_requests r WHERE r.expires_at < ?
			AND NOT EXISTS (SELECT 1 FROM oidc_codes c WHERE c.project_id = r.project_id AND c.request_id = r.id) LIMIT ?)`,
			[]any{cut(r.OneTimeSecrets)}},
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
		*st.count += int(n) // two steps may count one kind
	}
	return res, nil
}
