package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// testGarbageCollect runs on stores of its own: garbage collection spans every project, so
// the counts it reports are exact only where nothing else writes.
func testGarbageCollect(t *testing.T, newStore func(t *testing.T) store.Store) {
	// Every margin is an hour, so "long ago" (past it) and "recently" (within it) are clear.
	ret := store.Retention{Flows: time.Hour, OneTimeSecrets: time.Hour, Sessions: time.Hour, Ceremonies: time.Hour,
		MFAChallenges: time.Hour, Outbox: time.Hour, WebhookDeliveries: time.Hour}
	now := at(0)
	past := now.Add(-ret.Flows - time.Minute)   // ended before the margin: goes
	recent := now.Add(-ret.Flows + time.Minute) // ended within the margin: stays
	later := now.Add(time.Hour)                 // not ended: stays

	t.Run("DeletesExactlyWhatEnded", func(t *testing.T) {
		st := newStore(t)
		f := inNewProject(t, st)
		g := inNewProject(t, st) // a second project: collection spans projects, evenly
		u, v := f.user(), g.user()

		// Flows: by expiry.
		flow := func(fx *fixture, expires time.Time) store.Flow {
			fl := newFlow(fx.pid, expires.Add(-5*time.Minute))
			must(t, st.CreateFlow(fx.ctx, fl), "CreateFlow")
			return fl
		}
		goneFlows := []store.Flow{flow(f, past), flow(g, past)}
		keptFlows := []store.Flow{flow(f, recent), flow(f, later)}

		// One-time secrets: by expiry, used or not.
		secret := func(fx *fixture, expires time.Time, consume bool) store.OneTimeSecret {
			s := newOneTimeSecret(fx.pid, "password_reset")
			s.CreatedAt, s.ExpiresAt = expires.Add(-10*time.Minute), expires
			must(t, st.CreateOneTimeSecret(fx.ctx, s), "CreateOneTimeSecret")
			if consume {
				_, err := st.ConsumeOneTimeSecret(fx.ctx, fx.pid, s.Purpose, s.Hash, s.CreatedAt)
				must(t, err, "ConsumeOneTimeSecret")
			}
			return s
		}
		goneSecrets := []store.OneTimeSecret{secret(f, past, false), secret(g, past, true)}
		keptSecrets := []store.OneTimeSecret{secret(f, recent, true), secret(f, later, false), secret(f, later, true)}

		// Sessions, with their families of refresh tokens, every token already spent so that
		// using it again tells whether it is still there (ErrReused) without changing it.
		session := func(fx *fixture, userID string, mod func(*store.Session), tokens int) (store.Session, []store.RefreshToken) {
			s := newSession(fx.pid, userID, now.Add(-60*24*time.Hour))
			s.IdleExpiresAt, s.ExpiresAt = later, later
			mod(&s)
			must(t, st.CreateSession(fx.ctx, s), "CreateSession")
			var rts []store.RefreshToken
			for range tokens {
				rt := newRefreshToken(fx.pid, s.ID, s.CreatedAt)
				rt.ExpiresAt = s.CreatedAt.Add(time.Hour) // long expired: its session alone decides
				must(t, st.CreateRefreshToken(fx.ctx, rt), "CreateRefreshToken")
				_, err := st.UseRefreshToken(fx.ctx, fx.pid, rt.Hash, s.CreatedAt)
				must(t, err, "UseRefreshToken")
				rts = append(rts, rt)
			}
			return s, rts
		}
		expired, expiredTokens := session(f, u.ID, func(s *store.Session) { s.ExpiresAt = past }, 3)
		idle, idleTokens := session(g, v.ID, func(s *store.Session) { s.IdleExpiresAt = past }, 1)
		revoked, revokedTokens := session(f, u.ID, func(s *store.Session) { s.RevokedAt = ptr(past) }, 2)
		live, liveTokens := session(f, u.ID, func(*store.Session) {}, 4)
		ended, endedTokens := session(f, u.ID, func(s *store.Session) { s.ExpiresAt = recent }, 1)
		revokedRecently, _ := session(g, v.ID, func(s *store.Session) { s.RevokedAt = ptr(recent) }, 0)

		// Browser sessions: past their own expiry or revocation, or with their token session.
		browser := func(sess store.Session, mod func(*store.BrowserSession)) store.BrowserSession {
			b := newBrowserSession(sess, sess.CreatedAt)
			b.ExpiresAt = later
			mod(&b)
			must(t, st.CreateBrowserSession(f.ctx, b), "CreateBrowserSession")
			return b
		}
		goneBrowsers := []store.BrowserSession{
			browser(live, func(b *store.BrowserSession) { b.ExpiresAt = past }),
			browser(live, func(b *store.BrowserSession) { b.RevokedAt = ptr(past) }),
			browser(expired, func(*store.BrowserSession) {}), // alive, but its token session ended long ago
		}
		keptBrowsers := []store.BrowserSession{
			browser(live, func(*store.BrowserSession) {}),
			browser(live, func(b *store.BrowserSession) { b.ExpiresAt = recent }),
			browser(live, func(b *store.BrowserSession) { b.RevokedAt = ptr(recent) }),
			browser(ended, func(*store.BrowserSession) {}),
		}

		// Authorization requests and codes: by expiry; a request only once its codes are gone.
		authRequest := func(fx *fixture, expires time.Time) store.OIDCAuthRequest {
			r := newAuthRequest(fx.pid, expires.Add(-10*time.Minute))
			r.ExpiresAt = expires
			must(t, st.CreateOIDCAuthRequest(fx.ctx, r), "CreateOIDCAuthRequest")
			return r
		}
		code := func(r store.OIDCAuthRequest, expires time.Time, consume bool) store.OIDCCode {
			c := newOIDCCode(r, expires.Add(-time.Minute))
			must(t, st.SaveOIDCCode(f.ctx, c), "SaveOIDCCode")
			if consume {
				_, err := st.ConsumeOIDCCode(f.ctx, r.ProjectID, c.Hash, live.ID, c.CreatedAt)
				must(t, err, "ConsumeOIDCCode")
			}
			return c
		}
		rGone, rGoneWithCode := authRequest(f, past), authRequest(g, past)
		rRecent, rLive, rHeldByCode := authRequest(f, recent), authRequest(g, later), authRequest(f, past)
		goneRequests := []store.OIDCAuthRequest{rGone, rGoneWithCode}
		keptRequests := []store.OIDCAuthRequest{rRecent, rLive, rHeldByCode}
		goneCodes := []store.OIDCCode{code(rGoneWithCode, past, true), code(rLive, past, false)}
		keptCodes := []store.OIDCCode{code(rHeldByCode, recent, true), code(rLive, later, false)}

		// Passkey ceremonies: by expiry.
		ceremony := func(fx *fixture, expires time.Time) store.Ceremony {
			c := newCeremony(fx.pid, store.CeremonyLogin, expires.Add(-5*time.Minute))
			must(t, st.CreateCeremony(fx.ctx, c), "CreateCeremony")
			return c
		}
		goneCeremonies := []store.Ceremony{ceremony(f, past), ceremony(g, past)}
		keptCeremonies := []store.Ceremony{ceremony(f, recent), ceremony(g, later)}

		// MFA challenges: by expiry, but never while a wrong answer still counts.
		challenge := func(fx *fixture, userID string, expires time.Time, failedAt *time.Time) store.MFAChallenge {
			c := newMFAChallenge(fx.pid, userID, expires.Add(-5*time.Minute))
			must(t, st.CreateMFAChallenge(fx.ctx, c), "CreateMFAChallenge")
			if failedAt != nil {
				_, err := st.FailMFAChallenge(fx.ctx, fx.pid, c.ID, *failedAt)
				must(t, err, "FailMFAChallenge")
			}
			return c
		}
		goneChallenges := []store.MFAChallenge{challenge(f, u.ID, past, nil), challenge(g, v.ID, past, ptr(past.Add(-time.Minute)))}
		keptChallenges := []store.MFAChallenge{challenge(f, u.ID, past, ptr(recent)), challenge(f, u.ID, recent, nil),
			challenge(g, v.ID, later, nil)}

		// Outbox: delivered, given up or expired long ago goes; anything still to do stays.
		message := func(fx *fixture, created time.Time, expires *time.Time) store.OutboxMessage {
			m := newMessage(fx.pid, created)
			m.ExpiresAt = expires
			must(t, st.EnqueueMessage(fx.ctx, m), "EnqueueMessage")
			return m
		}
		sentLongAgo := message(f, past.Add(-time.Minute), nil)
		failedLongAgo := message(g, past.Add(-time.Minute), nil)
		message(f, past.Add(-time.Minute), ptr(past)) // expired long ago, never claimed
		sentRecently := message(f, recent.Add(-time.Minute), nil)
		pendingForever := message(f, past.Add(-24*time.Hour), nil)
		pendingLive := message(g, recent, ptr(later))
		must(t, st.MarkMessageSent(f.ctx, sentLongAgo.ID, past, false), "MarkMessageSent")
		must(t, st.MarkMessageFailed(g.ctx, failedLongAgo.ID, past, "550 no such user", true), "MarkMessageFailed")
		must(t, st.MarkMessageSent(f.ctx, sentRecently.ID, recent, false), "MarkMessageSent")

		// Spent bot-check challenges: as soon as they expire.
		spent := func(expires time.Time) string {
			key := newID()
			first, err := st.SpendChallenge(f.ctx, key, expires)
			must(t, err, "SpendChallenge")
			if !first {
				t.Fatal("a new challenge key was not a first spend")
			}
			return key
		}
		goneSpent := []string{spent(now.Add(-time.Second)), spent(past)}
		keptSpent := []string{spent(now.Add(time.Minute))}

		// Records stay whatever their age; their webhook deliveries go once delivered or given
		// up long ago.
		oldLog := newLoginLog(f.pid, u.ID, newID(), now.Add(-400*24*time.Hour))
		must(t, st.AddLoginLog(f.ctx, oldLog), "AddLoginLog")
		hook := f.webhook("*")
		eventIDs := sortedIDs(4)
		var events []store.AuditEvent
		for _, id := range eventIDs {
			e := store.AuditEvent{ID: id, ProjectID: f.pid, Type: "user.login", UserID: u.ID, SessionID: expired.ID,
				Detail: map[string]any{}, CreatedAt: now.Add(-400 * 24 * time.Hour)}
			must(t, st.AddAuditEvent(f.ctx, e), "AddAuditEvent")
			events = append(events, e)
		}
		attempt := func(e store.AuditEvent, a store.WebhookAttempt) {
			must(t, st.RecordWebhookAttempt(f.ctx, f.pid, hook.ID, e.ID, a), "RecordWebhookAttempt")
		}
		attempt(events[0], store.WebhookAttempt{StatusCode: 200, At: past})                                    // delivered long ago: goes
		attempt(events[1], store.WebhookAttempt{StatusCode: 500, Error: "500", At: past})                      // given up long ago: goes
		attempt(events[2], store.WebhookAttempt{StatusCode: 200, At: recent})                                  // delivered recently: stays
		attempt(events[3], store.WebhookAttempt{StatusCode: 503, Error: "503", At: past, RetryAt: ptr(later)}) // pending: stays

		got, err := st.GarbageCollect(f.ctx, now, ret, 1000)
		must(t, err, "GarbageCollect")
		want := store.GCResult{Flows: 2, OneTimeSecrets: 2, Sessions: 3, RefreshTokens: 6, Ceremonies: 2, MFAChallenges: 2,
			Outbox: 3, SpentChallenges: 2, WebhookDeliveries: 2, OIDCAuthRequests: 2, OIDCCodes: 2, BrowserSessions: 3}
		if got != want {
			t.Errorf("GarbageCollect = %+v, want %+v", got, want)
		}
		if got.Full(1000) {
			t.Error("GarbageCollect reports a full batch below the limit")
		}
		again, err := st.GarbageCollect(f.ctx, now, ret, 1000)
		must(t, err, "GarbageCollect")
		if again != (store.GCResult{}) {
			t.Errorf("a second GarbageCollect = %+v, want nothing left to delete", again)
		}

		for _, fl := range goneFlows {
			_, err := st.GetFlow(f.ctx, fl.ProjectID, fl.ID)
			wantNotFound(t, err, "GetFlow of a flow that expired long ago")
		}
		for _, fl := range keptFlows {
			_, err := st.GetFlow(f.ctx, fl.ProjectID, fl.ID)
			must(t, err, "GetFlow of a flow within its retention")
		}
		// A secret's hash is unique per project and purpose: creating it again tells whether
		// the old row is still there.
		for _, s := range goneSecrets {
			s.ID = newID()
			must(t, st.CreateOneTimeSecret(f.ctx, s), "CreateOneTimeSecret again after its row was collected")
		}
		for _, s := range keptSecrets {
			s.ID = newID()
			wantConflict(t, st.CreateOneTimeSecret(f.ctx, s), "CreateOneTimeSecret again while its row is kept")
		}

		for _, s := range []store.Session{expired, idle, revoked} {
			_, err := st.GetSession(f.ctx, s.ProjectID, s.ID)
			wantNotFound(t, err, "GetSession of a session that ended long ago")
		}
		for _, rt := range append(append(expiredTokens, idleTokens...), revokedTokens...) {
			_, err := st.UseRefreshToken(f.ctx, rt.ProjectID, rt.Hash, now)
			wantNotFound(t, err, "UseRefreshToken of a token whose session was collected")
		}
		for _, s := range []store.Session{live, ended, revokedRecently} {
			_, err := st.GetSession(f.ctx, s.ProjectID, s.ID)
			must(t, err, "GetSession of a session alive or within its retention")
		}
		// A live family keeps its spent tokens, however old: presenting one again must still be
		// recognised as reuse.
		for _, rt := range append(liveTokens, endedTokens...) {
			_, err := st.UseRefreshToken(f.ctx, rt.ProjectID, rt.Hash, now)
			if !errors.Is(err, store.ErrReused) {
				t.Errorf("UseRefreshToken of a spent token of a kept session: %v, want ErrReused", err)
			}
		}

		for _, b := range goneBrowsers {
			_, err := st.GetBrowserSession(f.ctx, b.ProjectID, b.TokenHash)
			wantNotFound(t, err, "GetBrowserSession of a browser session that ended long ago")
		}
		for _, b := range keptBrowsers {
			_, err := st.GetBrowserSession(f.ctx, b.ProjectID, b.TokenHash)
			must(t, err, "GetBrowserSession of a browser session alive or within its retention")
		}
		for _, r := range goneRequests {
			_, err := st.GetOIDCAuthRequest(f.ctx, r.ID)
			wantNotFound(t, err, "GetOIDCAuthRequest of a request that expired long ago")
		}
		for _, r := range keptRequests {
			_, err := st.GetOIDCAuthRequest(f.ctx, r.ID)
			must(t, err, "GetOIDCAuthRequest of a request within its retention or with a code kept")
		}
		for _, c := range goneCodes {
			_, err := st.GetOIDCCode(f.ctx, c.Hash)
			wantNotFound(t, err, "GetOIDCCode of a code that expired long ago")
		}
		for _, c := range keptCodes {
			_, err := st.GetOIDCCode(f.ctx, c.Hash)
			must(t, err, "GetOIDCCode of a code within its retention")
		}
		// A consumed code kept is still recognised as spent, with the session to revoke.
		if c, err := st.ConsumeOIDCCode(f.ctx, f.pid, keptCodes[0].Hash, newID(), now); !errors.Is(err, store.ErrReused) || c.SessionID != live.ID {
			t.Errorf("ConsumeOIDCCode of a kept spent code = session %q, %v; want session %q, ErrReused", c.SessionID, err, live.ID)
		}

		for _, c := range goneCeremonies {
			c.ID = newID()
			must(t, st.CreateCeremony(f.ctx, c), "CreateCeremony again after its row was collected")
		}
		for _, c := range keptCeremonies {
			c.ID = newID()
			wantConflict(t, st.CreateCeremony(f.ctx, c), "CreateCeremony again while its row is kept")
		}

		for _, c := range goneChallenges {
			_, err := st.GetMFAChallenge(f.ctx, c.ProjectID, c.TokenHash)
			wantNotFound(t, err, "GetMFAChallenge of a challenge that expired long ago")
		}
		for _, c := range keptChallenges {
			_, err := st.GetMFAChallenge(f.ctx, c.ProjectID, c.TokenHash)
			must(t, err, "GetMFAChallenge of a challenge kept")
		}
		n, _, err := st.CountMFAFailures(f.ctx, f.pid, u.ID, recent.Add(-time.Second))
		must(t, err, "CountMFAFailures")
		if n != 1 {
			t.Errorf("CountMFAFailures after collection = %d, want 1: a failure within the window was forgotten", n)
		}

		msgs, err := st.ListOutbox(f.ctx, 100)
		must(t, err, "ListOutbox")
		wantIDs(t, []string{pendingLive.ID, sentRecently.ID, pendingForever.ID}, idsOf(msgs), "outbox after collection")

		for _, key := range goneSpent {
			first, err := st.SpendChallenge(f.ctx, key, now.Add(time.Minute))
			must(t, err, "SpendChallenge")
			if !first {
				t.Error("a collected spent challenge is still there")
			}
		}
		for _, key := range keptSpent {
			first, err := st.SpendChallenge(f.ctx, key, now.Add(time.Minute))
			must(t, err, "SpendChallenge")
			if first {
				t.Error("collection forgot a spent challenge that has not expired: it could be accepted twice")
			}
		}

		logs, err := st.ListLoginLogs(f.ctx, f.pid, u.ID, 10, "")
		must(t, err, "ListLoginLogs")
		wantIDs(t, []string{oldLog.ID}, idsOf(logs), "login logs after collection")
		listed, err := st.ListAuditEvents(f.ctx, f.pid, store.AuditFilter{}, 10, "")
		must(t, err, "ListAuditEvents")
		wantIDs(t, []string{eventIDs[3], eventIDs[2], eventIDs[1], eventIDs[0]}, idsOf(listed), "audit events after collection")
		deliveries, err := st.ListWebhookDeliveries(f.ctx, f.pid, hook.ID, 10, "")
		must(t, err, "ListWebhookDeliveries")
		var kept []string
		for _, d := range deliveries {
			kept = append(kept, d.EventID)
		}
		wantIDs(t, []string{eventIDs[3], eventIDs[2]}, kept, "webhook deliveries after collection")
	})

	t.Run("Batches", func(t *testing.T) {
		st := newStore(t)
		f := inNewProject(t, st)
		u := f.user()
		for range 5 {
			must(t, st.CreateFlow(f.ctx, newFlow(f.pid, past.Add(-time.Hour))), "CreateFlow")
		}
		s := newSession(f.pid, u.ID, past.Add(-2*time.Hour))
		s.ExpiresAt = past
		must(t, st.CreateSession(f.ctx, s), "CreateSession")
		for range 3 {
			must(t, st.CreateRefreshToken(f.ctx, newRefreshToken(f.pid, s.ID, s.CreatedAt)), "CreateRefreshToken")
		}
		// The same for a session's browser sessions, and for an authorization request's codes.
		for range 3 {
			b := newBrowserSession(s, s.CreatedAt)
			b.ExpiresAt = now.Add(time.Hour) // alive: its session's end decides
			must(t, st.CreateBrowserSession(f.ctx, b), "CreateBrowserSession")
		}
		r := newAuthRequest(f.pid, past.Add(-time.Hour))
		r.ExpiresAt = past
		must(t, st.CreateOIDCAuthRequest(f.ctx, r), "CreateOIDCAuthRequest")
		for range 3 {
			must(t, st.SaveOIDCCode(f.ctx, newOIDCCode(r, past.Add(-time.Hour))), "SaveOIDCCode")
		}
		// A limit of 2: the family goes token batch by token batch, its session only once no
		// token (and no browser session) is left, so an interrupted collection never leaves
		// tokens without a session; a request goes only once its codes are gone.
		var rounds []store.GCResult
		for {
			r, err := st.GarbageCollect(f.ctx, now, ret, 2)
			must(t, err, "GarbageCollect")
			rounds = append(rounds, r)
			if !r.Full(2) || len(rounds) > 5 {
				break
			}
		}
		want := []store.GCResult{
			{Flows: 2, RefreshTokens: 2, BrowserSessions: 2, OIDCCodes: 2},
			{Flows: 2, RefreshTokens: 1, BrowserSessions: 1, Sessions: 1, OIDCCodes: 1, OIDCAuthRequests: 1},
			{Flows: 1},
		}
		if len(rounds) != len(want) {
			t.Fatalf("GarbageCollect by 2 took rounds %+v, want %+v", rounds, want)
		}
		for i := range want {
			if rounds[i] != want[i] {
				t.Errorf("round %d = %+v, want %+v", i, rounds[i], want[i])
			}
		}
	})
}
