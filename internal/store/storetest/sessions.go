package storetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// newSession returns an unsaved session of the user, created at `created`.
func newSession(projectID, userID string, created time.Time) store.Session {
	return store.Session{
		ID: newID(), ProjectID: projectID, UserID: userID,
		ConnectionType: "EmailOTP", AMR: []string{"otp", "email"}, Scope: "openid email offline_access",
		IPAddress: "198.51.100.4", UserAgent: "Mozilla/5.0 (Macintosh) Safari/605.1",
		CreatedAt: created, LastSeenAt: created,
		IdleExpiresAt: created.Add(time.Hour), ExpiresAt: created.Add(24 * time.Hour),
	}
}

func newRefreshToken(projectID, sessionID string, created time.Time) store.RefreshToken {
	return store.RefreshToken{ID: newID(), ProjectID: projectID, SessionID: sessionID, Hash: randomHash(),
		CreatedAt: created, ExpiresAt: created.Add(30 * 24 * time.Hour)}
}

func testSessions(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u, org := f.user(), f.org()
		s := newSession(f.pid, u.ID, at(0))
		s.OrganizationID = org.ID
		must(t, st.CreateSession(f.ctx, s), "CreateSession")
		got, err := st.GetSession(f.ctx, f.pid, s.ID)
		must(t, err, "GetSession")
		wantEqual(t, s, got, "session after CreateSession")
		wantConflict(t, st.CreateSession(f.ctx, s), "CreateSession with a duplicate id")

		bare := newSession(f.pid, u.ID, at(time.Second))
		bare.AMR, bare.Scope = nil, "" // the API's own logins have no OAuth scope
		must(t, st.CreateSession(f.ctx, bare), "CreateSession without amr or scope")
		got, err = st.GetSession(f.ctx, f.pid, bare.ID)
		must(t, err, "GetSession")
		bare.AMR = []string{}
		wantEqual(t, bare, got, "session without amr reads back an empty list")

		// A code exchange's session names the login session whose single sign-on it came from;
		// logout follows that link, so it must survive every read path.
		child := newSession(f.pid, u.ID, at(2*time.Second))
		child.ParentID = s.ID
		must(t, st.CreateSession(f.ctx, child), "CreateSession with a parent")
		got, err = st.GetSession(f.ctx, f.pid, child.ID)
		must(t, err, "GetSession")
		wantEqual(t, child, got, "session with a parent after CreateSession")
		list, err := st.ListUserSessions(f.ctx, f.pid, u.ID, at(3*time.Second))
		must(t, err, "ListUserSessions")
		var listed store.Session
		for _, l := range list {
			if l.ID == child.ID {
				listed = l
			}
		}
		wantEqual(t, child, listed, "session with a parent in ListUserSessions")
	})

	t.Run("Unknown", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u := f.user()
		wantNotFound(t, st.CreateSession(f.ctx, newSession(f.pid, newID(), at(0))), "CreateSession for an unknown user")
		wantNotFound(t, st.CreateSession(f.ctx, newSession(newID(), u.ID, at(0))), "CreateSession in another project than the user's")
		_, err := st.GetSession(f.ctx, f.pid, newID())
		wantNotFound(t, err, "GetSession of an unknown id")
		wantNotFound(t, st.TouchSession(f.ctx, f.pid, newID(), at(0), at(time.Hour)), "TouchSession of an unknown id")
		wantNotFound(t, st.RevokeSession(f.ctx, f.pid, newID(), at(0), "logout"), "RevokeSession of an unknown id")
	})

	t.Run("OtherProject", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		u := f.user()
		s := newSession(f.pid, u.ID, at(0))
		must(t, st.CreateSession(f.ctx, s), "CreateSession")
		_, err := st.GetSession(f.ctx, g.pid, s.ID)
		wantNotFound(t, err, "GetSession through another project")
		wantNotFound(t, st.TouchSession(f.ctx, g.pid, s.ID, at(time.Minute), at(time.Hour)), "TouchSession through another project")
		wantNotFound(t, st.RevokeSession(f.ctx, g.pid, s.ID, at(time.Minute), "x"), "RevokeSession through another project")
		n, err := st.RevokeUserSessions(f.ctx, g.pid, u.ID, at(time.Minute), "x")
		must(t, err, "RevokeUserSessions through another project")
		list, err := st.ListUserSessions(f.ctx, g.pid, u.ID, at(time.Minute))
		must(t, err, "ListUserSessions through another project")
		if n != 0 || len(list) != 0 {
			t.Errorf("through another project: revoked %d, listed %d; want 0 and 0", n, len(list))
		}
		got, err := st.GetSession(f.ctx, f.pid, s.ID)
		must(t, err, "GetSession")
		wantEqual(t, s, got, "session after the foreign attempts")
	})

	t.Run("ActiveListTouchRevoke", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u, other := f.user(), f.user()
		var ss []store.Session
		for i := range 4 {
			s := newSession(f.pid, u.ID, at(time.Duration(i)*time.Minute))
			s.ID = sortedIDs(1)[0]
			ss = append(ss, s)
		}
		sortByID(ss)
		ss[1].IdleExpiresAt = at(10 * time.Minute) // idles out
		ss[2].ExpiresAt = at(15 * time.Minute)     // reaches its absolute end
		for _, s := range ss {
			must(t, st.CreateSession(f.ctx, s), "CreateSession")
		}
		must(t, st.CreateSession(f.ctx, newSession(f.pid, other.ID, at(0))), "CreateSession of another user")

		when := at(20 * time.Minute)
		got, err := st.ListUserSessions(f.ctx, f.pid, u.ID, when)
		must(t, err, "ListUserSessions")
		wantRecords(t, []store.Session{ss[3], ss[0]}, got, "ListUserSessions at +20m (newest first, expired ones left out)")
		if !ss[0].Active(when) || ss[1].Active(when) || ss[2].Active(when) {
			t.Errorf("Session.Active disagrees with ListUserSessions")
		}

		wantNotFound(t, st.TouchSession(f.ctx, f.pid, ss[1].ID, when, when.Add(time.Hour)), "TouchSession of an idled-out session")
		must(t, st.TouchSession(f.ctx, f.pid, ss[0].ID, when, when.Add(time.Hour)), "TouchSession")
		ss[0].LastSeenAt, ss[0].IdleExpiresAt = when, when.Add(time.Hour)
		s0, err := st.GetSession(f.ctx, f.pid, ss[0].ID)
		must(t, err, "GetSession")
		wantEqual(t, ss[0], s0, "session after TouchSession")

		must(t, st.RevokeSession(f.ctx, f.pid, ss[0].ID, when, "logout"), "RevokeSession")
		wantNotFound(t, st.RevokeSession(f.ctx, f.pid, ss[0].ID, when, "logout"), "RevokeSession twice")
		wantNotFound(t, st.TouchSession(f.ctx, f.pid, ss[0].ID, when, when.Add(time.Hour)), "TouchSession of a revoked session")
		s0, err = st.GetSession(f.ctx, f.pid, ss[0].ID)
		must(t, err, "GetSession of a revoked session")
		if s0.RevokedAt == nil || !s0.RevokedAt.Equal(when) || s0.RevokeReason != "logout" || s0.Active(when) {
			t.Errorf("revoked session = %+v", s0)
		}

		n, err := st.RevokeUserSessions(f.ctx, f.pid, u.ID, when, "user_deactivated")
		must(t, err, "RevokeUserSessions")
		if n != 3 { // the three unrevoked ones, expired or not
			t.Errorf("RevokeUserSessions ended %d sessions, want 3", n)
		}
		got, err = st.ListUserSessions(f.ctx, f.pid, u.ID, at(0))
		must(t, err, "ListUserSessions after RevokeUserSessions")
		wantIDs(t, nil, idsOf(got), "ListUserSessions after RevokeUserSessions")
		got, err = st.ListUserSessions(f.ctx, f.pid, other.ID, at(0))
		must(t, err, "ListUserSessions of the other user")
		if len(got) != 1 {
			t.Errorf("RevokeUserSessions touched another user's session: %d left, want 1", len(got))
		}
	})

	t.Run("DeleteUserDeletesSessions", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u := f.user()
		s := newSession(f.pid, u.ID, at(0))
		must(t, st.CreateSession(f.ctx, s), "CreateSession")
		rt := newRefreshToken(f.pid, s.ID, at(0))
		must(t, st.CreateRefreshToken(f.ctx, rt), "CreateRefreshToken")
		must(t, st.DeleteUser(f.ctx, f.pid, u.ID), "DeleteUser")
		_, err := st.GetSession(f.ctx, f.pid, s.ID)
		wantNotFound(t, err, "GetSession after its user was deleted")
		_, err = st.UseRefreshToken(f.ctx, f.pid, rt.Hash, at(time.Minute))
		wantNotFound(t, err, "UseRefreshToken after its user was deleted")
	})
}

func testRefreshTokens(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("UseOnce", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		s := newSession(f.pid, f.user().ID, at(0))
		must(t, st.CreateSession(f.ctx, s), "CreateSession")
		rt := newRefreshToken(f.pid, s.ID, at(0))
		must(t, st.CreateRefreshToken(f.ctx, rt), "CreateRefreshToken")
		dup := newRefreshToken(f.pid, s.ID, at(0))
		dup.Hash = rt.Hash
		wantConflict(t, st.CreateRefreshToken(f.ctx, dup), "CreateRefreshToken with a duplicate hash")
		wantNotFound(t, st.CreateRefreshToken(f.ctx, newRefreshToken(f.pid, newID(), at(0))), "CreateRefreshToken of an unknown session")

		read, err := st.GetRefreshToken(f.ctx, f.pid, rt.Hash)
		must(t, err, "GetRefreshToken of an unused token")
		wantEqual(t, rt, read, "GetRefreshToken of an unused token (reading spends nothing)")

		when := at(time.Minute)
		got, err := st.UseRefreshToken(f.ctx, f.pid, rt.Hash, when)
		must(t, err, "UseRefreshToken after GetRefreshToken")
		rt.UsedAt = ptr(when)
		wantEqual(t, rt, got, "UseRefreshToken")
		read, err = st.GetRefreshToken(f.ctx, f.pid, rt.Hash)
		must(t, err, "GetRefreshToken of a used token")
		wantEqual(t, rt, read, "GetRefreshToken of a used token")
		_, err = st.GetRefreshToken(f.ctx, f.pid, randomHash())
		wantNotFound(t, err, "GetRefreshToken of an unknown hash")

		got, err = st.UseRefreshToken(f.ctx, f.pid, rt.Hash, at(2*time.Minute))
		if !errors.Is(err, store.ErrReused) {
			t.Fatalf("second UseRefreshToken: err = %v, want ErrReused", err)
		}
		wantEqual(t, rt, got, "the spent token returned with ErrReused (first use time kept)")

		_, err = st.UseRefreshToken(f.ctx, f.pid, randomHash(), when)
		wantNotFound(t, err, "UseRefreshToken of an unknown hash")
	})

	t.Run("OtherProject", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		s := newSession(f.pid, f.user().ID, at(0))
		must(t, st.CreateSession(f.ctx, s), "CreateSession")
		rt := newRefreshToken(f.pid, s.ID, at(0))
		must(t, st.CreateRefreshToken(f.ctx, rt), "CreateRefreshToken")
		wantNotFound(t, st.CreateRefreshToken(f.ctx, newRefreshToken(g.pid, s.ID, at(0))), "CreateRefreshToken for another project's session")
		_, err := st.GetRefreshToken(f.ctx, g.pid, rt.Hash)
		wantNotFound(t, err, "GetRefreshToken through another project")
		_, err = st.UseRefreshToken(f.ctx, g.pid, rt.Hash, at(time.Minute))
		wantNotFound(t, err, "UseRefreshToken through another project")
		_, err = st.UseRefreshToken(f.ctx, f.pid, rt.Hash, at(time.Minute))
		must(t, err, "UseRefreshToken through its own project after the foreign attempt")
	})

	t.Run("Race", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		s := newSession(f.pid, f.user().ID, at(0))
		must(t, st.CreateSession(f.ctx, s), "CreateSession")
		rt := newRefreshToken(f.pid, s.ID, at(0))
		must(t, st.CreateRefreshToken(f.ctx, rt), "CreateRefreshToken")
		got, errs := race(racers, func(int) (store.RefreshToken, error) {
			return st.UseRefreshToken(f.ctx, f.pid, rt.Hash, now())
		})
		winner := checkOneWinner(t, errs, store.ErrReused, "UseRefreshToken of one token")
		for i, g := range got {
			if g.ID != rt.ID || !bytes.Equal(g.Hash, rt.Hash) {
				t.Errorf("racer %d got token %q, want %q (losers too must learn which token was reused)", i, g.ID, rt.ID)
			}
		}
		if winner >= 0 {
			for i, g := range got {
				if g.UsedAt == nil || !g.UsedAt.Equal(*got[winner].UsedAt) {
					t.Errorf("racer %d sees used_at %v, want the winner's %v", i, g.UsedAt, got[winner].UsedAt)
				}
			}
		}
	})
}

func testSigningKeys(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	newKey := func(pid string, activates time.Time) store.SigningKey {
		return store.SigningKey{ID: newID(), ProjectID: pid, Algorithm: "ES256",
			PrivateKey: randomHash(), PublicJWK: []byte(`{"kty":"EC","crv":"P-256"}`),
			CreatedAt: at(0), ActivatesAt: activates}
	}

	t.Run("PublishRotateRetire", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		k1 := newKey(f.pid, at(0))
		must(t, st.CreateSigningKey(f.ctx, k1), "CreateSigningKey")
		wantConflict(t, st.CreateSigningKey(f.ctx, k1), "CreateSigningKey with a duplicate id")
		wantNotFound(t, st.CreateSigningKey(f.ctx, newKey(newID(), at(0))), "CreateSigningKey in an unknown project")
		must(t, st.CreateSigningKey(f.ctx, newKey(g.pid, at(0))), "CreateSigningKey in another project")

		k2 := newKey(f.pid, at(5*time.Minute))
		must(t, st.CreateSigningKey(f.ctx, k2), "CreateSigningKey (the next key)")
		retire := at(time.Hour)
		must(t, st.RetireSigningKeys(f.ctx, f.pid, k2.ID, retire), "RetireSigningKeys")
		k1.RetiresAt = ptr(retire)

		got, err := st.ListSigningKeys(f.ctx, f.pid, at(time.Minute))
		must(t, err, "ListSigningKeys")
		wantRecords(t, []store.SigningKey{k1, k2}, got, "ListSigningKeys before the old key retires (by activation)")
		got, err = st.ListSigningKeys(f.ctx, f.pid, retire)
		must(t, err, "ListSigningKeys at the retirement")
		wantRecords(t, []store.SigningKey{k2}, got, "ListSigningKeys once the old key retired")

		// Retiring again later never postpones a retirement.
		must(t, st.RetireSigningKeys(f.ctx, f.pid, k2.ID, at(2*time.Hour)), "RetireSigningKeys later")
		got, err = st.ListSigningKeys(f.ctx, f.pid, at(90*time.Minute))
		must(t, err, "ListSigningKeys")
		wantRecords(t, []store.SigningKey{k2}, got, "ListSigningKeys after a later RetireSigningKeys")
	})

	// The union across projects needs a database of its own: the other cases add keys to st.
	t.Run("ListPublishedSigningKeys", func(t *testing.T) {
		t.Parallel()
		st := newStore(t)
		f, g := inNewProject(t, st), inNewProject(t, st)
		got, err := st.ListPublishedSigningKeys(f.ctx, at(0))
		must(t, err, "ListPublishedSigningKeys with no key")
		if got == nil || len(got) != 0 {
			t.Errorf("ListPublishedSigningKeys with no key = %#v, want an empty list", got)
		}
		f1 := newKey(f.pid, at(0))
		g1 := newKey(g.pid, at(time.Minute))
		f2 := newKey(f.pid, at(5*time.Minute))
		gone := newKey(g.pid, at(-time.Hour))
		gone.RetiresAt = ptr(at(0))
		for _, k := range []store.SigningKey{f1, g1, f2, gone} {
			must(t, st.CreateSigningKey(f.ctx, k), "CreateSigningKey")
		}
		retire := at(time.Hour)
		must(t, st.RetireSigningKeys(f.ctx, f.pid, f2.ID, retire), "RetireSigningKeys")
		f1.RetiresAt = ptr(retire)

		got, err = st.ListPublishedSigningKeys(f.ctx, at(time.Minute))
		must(t, err, "ListPublishedSigningKeys")
		wantRecords(t, []store.SigningKey{f1, g1, f2}, got, "ListPublishedSigningKeys of two projects (by activation, retired keys left out)")
		got, err = st.ListPublishedSigningKeys(f.ctx, retire)
		must(t, err, "ListPublishedSigningKeys at the retirement")
		wantRecords(t, []store.SigningKey{g1, f2}, got, "ListPublishedSigningKeys once a key retired")
		got, err = st.ListPublishedSigningKeys(f.ctx, at(-2*time.Hour))
		must(t, err, "ListPublishedSigningKeys before the retirements")
		wantRecords(t, []store.SigningKey{gone, f1, g1, f2}, got, "ListPublishedSigningKeys before any key retired")
	})

	t.Run("RewrapSealed", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		k := newKey(f.pid, at(0))
		must(t, st.CreateSigningKey(f.ctx, k), "CreateSigningKey")
		seen := 0
		n, err := st.RewrapSealed(f.ctx, func(sealed []byte) ([]byte, bool, error) {
			seen++
			if bytes.Equal(sealed, k.PrivateKey) {
				return append([]byte("rewrapped:"), sealed...), true, nil
			}
			return sealed, false, nil
		})
		must(t, err, "RewrapSealed")
		if n != 1 || seen < 1 {
			t.Errorf("RewrapSealed changed %d values after showing %d, want 1 of at least 1", n, seen)
		}
		got, err := st.ListSigningKeys(f.ctx, f.pid, at(0))
		must(t, err, "ListSigningKeys")
		if len(got) != 1 || string(got[0].PrivateKey) != "rewrapped:"+string(k.PrivateKey) {
			t.Errorf("the sealed key was not saved rewrapped: %q", got)
		}
		boom := errors.New("boom")
		_, err = st.RewrapSealed(f.ctx, func([]byte) ([]byte, bool, error) { return nil, false, boom })
		if !errors.Is(err, boom) {
			t.Errorf("RewrapSealed with a failing rewrap: err = %v, want it wrapped", err)
		}
	})
}

func testAuditEvents(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("FilterAndPage", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		var all []store.AuditEvent
		for i, id := range sortedIDs(6) {
			e := store.AuditEvent{ID: id, ProjectID: f.pid, Type: "session.revoked", UserID: "u1",
				SessionID: newID(), IPAddress: "192.0.2.1", UserAgent: "curl/8",
				Detail: map[string]any{"reason": "logout", "n": float64(i)}, CreatedAt: at(time.Duration(i) * time.Second)}
			if i%2 == 1 {
				e.Type, e.UserID, e.Detail = "refresh_token.reused", "u2", map[string]any{}
			}
			must(t, st.AddAuditEvent(f.ctx, e), "AddAuditEvent")
			all = append(all, e)
		}
		must(t, st.AddAuditEvent(f.ctx, store.AuditEvent{ID: newID(), ProjectID: g.pid, Type: "session.revoked", CreatedAt: at(0)}), "AddAuditEvent in another project")
		wantNotFound(t, st.AddAuditEvent(f.ctx, store.AuditEvent{ID: newID(), ProjectID: newID(), Type: "x", CreatedAt: at(0)}), "AddAuditEvent in an unknown project")

		got, err := st.ListAuditEvents(f.ctx, f.pid, store.AuditFilter{}, 0, "")
		must(t, err, "ListAuditEvents")
		wantRecords(t, []store.AuditEvent{all[5], all[4], all[3], all[2], all[1], all[0]}, got, "ListAuditEvents (newest first, own project only)")
		got, err = st.ListAuditEvents(f.ctx, f.pid, store.AuditFilter{Type: "refresh_token.reused"}, 2, "")
		must(t, err, "ListAuditEvents by type")
		wantRecords(t, []store.AuditEvent{all[5], all[3]}, got, "ListAuditEvents(type, limit 2)")
		got, err = st.ListAuditEvents(f.ctx, f.pid, store.AuditFilter{UserID: "u1"}, 10, all[4].ID)
		must(t, err, "ListAuditEvents by user before the 5th")
		wantRecords(t, []store.AuditEvent{all[2], all[0]}, got, "ListAuditEvents(user u1, before the 5th)")
	})

	// Ids are a second's time and random bytes, so events written within one second have ids
	// in random order: newest first must follow created_at, with the id only breaking ties,
	// and so must the pages a cursor (an event id) continues.
	t.Run("NewestFirstWithinOneSecond", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		second := at(0).Truncate(time.Second)
		gen := &ident.Generator{Now: func() time.Time { return second }, Rand: rand.Reader}
		const n = 40
		var newestFirst []store.AuditEvent
		for i := range n {
			e := store.AuditEvent{ID: gen.New(), ProjectID: f.pid, Type: "user.updated", UserID: "u1",
				Detail: map[string]any{}, CreatedAt: second.Add(time.Duration(i) * time.Microsecond)}
			if i == n-1 { // a tie in created_at: the larger id counts as newer
				e.CreatedAt = newestFirst[0].CreatedAt
			}
			must(t, st.AddAuditEvent(f.ctx, e), "AddAuditEvent")
			newestFirst = append([]store.AuditEvent{e}, newestFirst...)
		}
		if a, b := newestFirst[0], newestFirst[1]; a.ID < b.ID {
			newestFirst[0], newestFirst[1] = b, a
		}
		for _, filter := range []store.AuditFilter{{}, {UserID: "u1"}, {Type: "user.updated"}} {
			got, err := st.ListAuditEvents(f.ctx, f.pid, filter, 0, "")
			must(t, err, "ListAuditEvents")
			wantRecords(t, newestFirst, got, "ListAuditEvents(%+v) of %d events in one second", filter, n)

			var paged []store.AuditEvent
			before := ""
			for range n {
				page, err := st.ListAuditEvents(f.ctx, f.pid, filter, 7, before)
				must(t, err, "ListAuditEvents page")
				if len(page) == 0 {
					break
				}
				paged = append(paged, page...)
				before = page[len(page)-1].ID
			}
			wantRecords(t, newestFirst, paged, "pages of 7 of ListAuditEvents(%+v)", filter)
		}
		got, err := st.ListAuditEvents(f.ctx, f.pid, store.AuditFilter{}, 10, newID())
		must(t, err, "ListAuditEvents before an unknown id")
		if len(got) != 0 {
			t.Errorf("ListAuditEvents before an id that is no event = %d events, want none", len(got))
		}
	})
}
