package storetest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// newAuthRequestID returns 128 random bits in hex, the form of a real authorization request id.
func newAuthRequestID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// newAuthRequest returns an unsaved authorization request of the project, every parameter set,
// created at `created` and expiring ten minutes later.
func newAuthRequest(projectID string, created time.Time) store.OIDCAuthRequest {
	return store.OIDCAuthRequest{
		ID: newAuthRequestID(), ProjectID: projectID, ClientID: "cli_" + projectID,
		RedirectURI: "https://app.example.com/callback?x=1", Scopes: []string{"openid", "email", "offline_access"},
		State: "st-" + newID(), Nonce: "n-" + newID(), ResponseMode: "form_post",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", CodeChallengeMethod: "S256",
		Prompt: []string{"login", "consent"}, MaxAge: ptr(300), LoginHint: "ada@example.com",
		UILocales:      []string{"de-CH", "en"},
		Extensions:     map[string]string{"organization": "org_1", "screen_hint": "signup"},
		BrowserBinding: randomHash(),
		CreatedAt:      created, ExpiresAt: created.Add(10 * time.Minute),
	}
}

// newOIDCCode returns an unsaved code of the request, expiring a minute after `created`.
func newOIDCCode(r store.OIDCAuthRequest, created time.Time) store.OIDCCode {
	return store.OIDCCode{Hash: randomHash(), ProjectID: r.ProjectID, RequestID: r.ID,
		CreatedAt: created, ExpiresAt: created.Add(time.Minute)}
}

// newBrowserSession returns an unsaved browser session of the token session.
func newBrowserSession(sess store.Session, created time.Time) store.BrowserSession {
	return store.BrowserSession{
		ID: newID(), ProjectID: sess.ProjectID, TokenHash: randomHash(), UserID: sess.UserID, SessionID: sess.ID,
		OrganizationID: sess.OrganizationID, ConnectionType: sess.ConnectionType, AMR: []string{"otp"},
		AuthTime: created, CreatedAt: created, LastSeenAt: created, ExpiresAt: created.Add(24 * time.Hour),
	}
}

// authRequest creates an authorization request in the fixture's project.
func (f *fixture) authRequest(created time.Time) store.OIDCAuthRequest {
	f.t.Helper()
	r := newAuthRequest(f.pid, created)
	must(f.t, f.st.CreateOIDCAuthRequest(f.ctx, r), "CreateOIDCAuthRequest")
	return r
}

// session creates a token session of a new user of the fixture's project.
func (f *fixture) session(created time.Time) store.Session {
	f.t.Helper()
	s := newSession(f.pid, f.user().ID, created)
	must(f.t, f.st.CreateSession(f.ctx, s), "CreateSession")
	return s
}

func testOIDCRequests(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("AuthRequestRoundTrip", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		r := f.authRequest(at(0))
		got, err := st.GetOIDCAuthRequest(f.ctx, r.ID)
		must(t, err, "GetOIDCAuthRequest")
		wantEqual(t, r, got, "authorization request after CreateOIDCAuthRequest")
		if got.Done() {
			t.Error("a new authorization request reports Done")
		}
		wantConflict(t, st.CreateOIDCAuthRequest(f.ctx, r), "CreateOIDCAuthRequest with a duplicate id")

		// The bare minimum: no optional parameter, empty values of extensions dropped.
		bare := store.OIDCAuthRequest{ID: newAuthRequestID(), ProjectID: f.pid, ClientID: "cli", RedirectURI: "https://a.example/cb",
			Extensions: map[string]string{"connection": ""}, CreatedAt: at(0), ExpiresAt: at(time.Minute)}
		must(t, st.CreateOIDCAuthRequest(f.ctx, bare), "CreateOIDCAuthRequest without optional parameters")
		got, err = st.GetOIDCAuthRequest(f.ctx, bare.ID)
		must(t, err, "GetOIDCAuthRequest")
		if got.MaxAge != nil || got.AuthTime != nil || got.DoneAt != nil || len(got.Extensions) != 0 || got.Extensions == nil {
			t.Errorf("bare request read back MaxAge %v, AuthTime %v, DoneAt %v, Extensions %#v; want nil, nil, nil, an empty map",
				got.MaxAge, got.AuthTime, got.DoneAt, got.Extensions)
		}
		bare.Extensions = nil
		wantEqual(t, bare, got, "bare authorization request")

		// max_age=0 is a real value (re-authenticate now), not "none".
		zero := newAuthRequest(f.pid, at(0))
		zero.MaxAge = ptr(0)
		must(t, st.CreateOIDCAuthRequest(f.ctx, zero), "CreateOIDCAuthRequest with max_age 0")
		got, err = st.GetOIDCAuthRequest(f.ctx, zero.ID)
		must(t, err, "GetOIDCAuthRequest")
		if got.MaxAge == nil || *got.MaxAge != 0 {
			t.Errorf("max_age 0 read back as %v", got.MaxAge)
		}
	})

	t.Run("AuthRequestUnknown", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		wantNotFound(t, st.CreateOIDCAuthRequest(f.ctx, newAuthRequest(newID(), at(0))), "CreateOIDCAuthRequest in an unknown project")
		_, err := st.GetOIDCAuthRequest(f.ctx, newAuthRequestID())
		wantNotFound(t, err, "GetOIDCAuthRequest of an unknown id")
		wantNotFound(t, st.ApproveOIDCAuthRequest(f.ctx, f.pid, newAuthRequestID(), store.OIDCApproval{UserID: "u", At: at(0)}),
			"ApproveOIDCAuthRequest of an unknown id")
		wantNotFound(t, st.DenyOIDCAuthRequest(f.ctx, f.pid, newAuthRequestID(), at(0)), "DenyOIDCAuthRequest of an unknown id")
	})

	// A denial answers the request as an approval does: once, and never both.
	t.Run("DenyOnce", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		r := f.authRequest(at(0))
		must(t, st.DenyOIDCAuthRequest(f.ctx, f.pid, r.ID, at(time.Minute)), "DenyOIDCAuthRequest")
		want := r
		want.DeniedAt = ptr(at(time.Minute))
		got, err := st.GetOIDCAuthRequest(f.ctx, r.ID)
		must(t, err, "GetOIDCAuthRequest")
		wantEqual(t, want, got, "authorization request after DenyOIDCAuthRequest")
		if !got.Denied() || got.Done() || !got.Answered() {
			t.Errorf("a denied request reports Denied %v, Done %v, Answered %v", got.Denied(), got.Done(), got.Answered())
		}
		wantConflict(t, st.DenyOIDCAuthRequest(f.ctx, f.pid, r.ID, at(2*time.Minute)), "DenyOIDCAuthRequest a second time")
		sess := f.session(at(time.Minute))
		wantConflict(t, st.ApproveOIDCAuthRequest(f.ctx, f.pid, r.ID, store.OIDCApproval{UserID: sess.UserID, SessionID: sess.ID,
			AuthTime: at(time.Minute), At: at(2 * time.Minute)}), "ApproveOIDCAuthRequest of a denied request")
		got, err = st.GetOIDCAuthRequest(f.ctx, r.ID)
		must(t, err, "GetOIDCAuthRequest")
		wantEqual(t, want, got, "denied authorization request after the refused approval and second denial")

		approved := f.authRequest(at(0))
		must(t, st.ApproveOIDCAuthRequest(f.ctx, f.pid, approved.ID, store.OIDCApproval{UserID: sess.UserID, SessionID: sess.ID,
			AuthTime: at(time.Minute), At: at(time.Minute)}), "ApproveOIDCAuthRequest")
		wantConflict(t, st.DenyOIDCAuthRequest(f.ctx, f.pid, approved.ID, at(2*time.Minute)), "DenyOIDCAuthRequest of an approved request")
		got, err = st.GetOIDCAuthRequest(f.ctx, approved.ID)
		must(t, err, "GetOIDCAuthRequest")
		if got.DeniedAt != nil || !got.Done() {
			t.Errorf("approved request after the refused denial: done %v, denied %v", got.DoneAt, got.DeniedAt)
		}

		// Inside a transaction, the refused denial leaves the transaction usable.
		err = st.InTx(f.ctx, func(tx store.Store) error {
			wantConflict(t, tx.DenyOIDCAuthRequest(f.ctx, f.pid, r.ID, at(3*time.Minute)), "DenyOIDCAuthRequest in a transaction")
			_, err := tx.GetOIDCAuthRequest(f.ctx, r.ID)
			return err
		})
		must(t, err, "InTx denying a denied request")
	})

	// Approvals and denials racing for one request: exactly one is written, and the row says
	// which.
	t.Run("DenyApproveRace", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		r := f.authRequest(at(0))
		_, errs := race(racers, func(i int) (struct{}, error) {
			if i%2 == 0 {
				return struct{}{}, st.DenyOIDCAuthRequest(f.ctx, f.pid, r.ID, at(time.Minute))
			}
			return struct{}{}, st.ApproveOIDCAuthRequest(f.ctx, f.pid, r.ID, store.OIDCApproval{UserID: newID(), AuthTime: at(0), At: at(time.Minute)})
		})
		w := checkOneWinner(t, errs, store.ErrConflict, "DenyOIDCAuthRequest and ApproveOIDCAuthRequest of one request")
		got, err := st.GetOIDCAuthRequest(f.ctx, r.ID)
		must(t, err, "GetOIDCAuthRequest")
		if w >= 0 && (got.Denied() != (w%2 == 0) || got.Done() == (w%2 == 0)) {
			t.Errorf("winner %d (denial: %v), but the row has done %v, denied %v", w, w%2 == 0, got.DoneAt, got.DeniedAt)
		}
	})

	t.Run("ApproveOnce", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		r := f.authRequest(at(0))
		sess := f.session(at(time.Minute))
		org := f.org()
		a := store.OIDCApproval{UserID: sess.UserID, SessionID: sess.ID, OrganizationID: org.ID, ConnectionType: "EmailOTP",
			AMR: []string{"otp", "email"}, AuthTime: at(time.Minute), At: at(2 * time.Minute)}
		must(t, st.ApproveOIDCAuthRequest(f.ctx, f.pid, r.ID, a), "ApproveOIDCAuthRequest")
		want := r
		want.UserID, want.SessionID, want.OrganizationID, want.ConnectionType = a.UserID, a.SessionID, a.OrganizationID, a.ConnectionType
		want.AMR, want.AuthTime, want.DoneAt = a.AMR, ptr(a.AuthTime), ptr(a.At)
		got, err := st.GetOIDCAuthRequest(f.ctx, r.ID)
		must(t, err, "GetOIDCAuthRequest")
		wantEqual(t, want, got, "authorization request after ApproveOIDCAuthRequest")
		if !got.Done() {
			t.Error("an approved authorization request does not report Done")
		}

		other := a
		other.UserID, other.At = newID(), at(3*time.Minute)
		wantConflict(t, st.ApproveOIDCAuthRequest(f.ctx, f.pid, r.ID, other), "ApproveOIDCAuthRequest a second time")
		got, err = st.GetOIDCAuthRequest(f.ctx, r.ID)
		must(t, err, "GetOIDCAuthRequest")
		wantEqual(t, want, got, "authorization request after the refused second approval")

		// Inside a transaction too, the second approval is a conflict, and the transaction
		// stays usable (PostgreSQL would otherwise abort it).
		r2 := f.authRequest(at(0))
		err = st.InTx(f.ctx, func(tx store.Store) error {
			if err := tx.ApproveOIDCAuthRequest(f.ctx, f.pid, r2.ID, a); err != nil {
				return err
			}
			wantConflict(t, tx.ApproveOIDCAuthRequest(f.ctx, f.pid, r2.ID, other), "second ApproveOIDCAuthRequest in one transaction")
			_, err := tx.GetOIDCAuthRequest(f.ctx, r2.ID)
			return err
		})
		must(t, err, "InTx approving once then twice")
	})

	t.Run("ApproveRace", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		r := f.authRequest(at(0))
		users := make([]string, racers)
		for i := range users {
			users[i] = newID()
		}
		_, errs := race(racers, func(i int) (struct{}, error) {
			return struct{}{}, st.ApproveOIDCAuthRequest(f.ctx, f.pid, r.ID, store.OIDCApproval{UserID: users[i], AuthTime: at(0), At: at(time.Minute)})
		})
		w := checkOneWinner(t, errs, store.ErrConflict, "ApproveOIDCAuthRequest of one request")
		got, err := st.GetOIDCAuthRequest(f.ctx, r.ID)
		must(t, err, "GetOIDCAuthRequest")
		if w >= 0 && got.UserID != users[w] {
			t.Errorf("approved by user %q, want the winner's %q", got.UserID, users[w])
		}
	})

	t.Run("Codes", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		r := f.authRequest(at(0))
		c := newOIDCCode(r, at(time.Minute))
		must(t, st.SaveOIDCCode(f.ctx, c), "SaveOIDCCode")
		got, err := st.GetOIDCCode(f.ctx, c.Hash)
		must(t, err, "GetOIDCCode")
		wantEqual(t, c, got, "code after SaveOIDCCode")

		dup := newOIDCCode(r, at(time.Minute))
		dup.Hash = c.Hash
		wantConflict(t, st.SaveOIDCCode(f.ctx, dup), "SaveOIDCCode with a duplicate hash")
		unknown := newOIDCCode(r, at(time.Minute))
		unknown.RequestID = newAuthRequestID()
		wantNotFound(t, st.SaveOIDCCode(f.ctx, unknown), "SaveOIDCCode of an unknown request")
		_, err = st.GetOIDCCode(f.ctx, randomHash())
		wantNotFound(t, err, "GetOIDCCode of an unknown hash")
		_, err = st.ConsumeOIDCCode(f.ctx, f.pid, randomHash(), newID(), at(time.Minute))
		wantNotFound(t, err, "ConsumeOIDCCode of an unknown hash")

		sess := f.session(at(time.Minute))
		when := at(90 * time.Second)
		got, err = st.ConsumeOIDCCode(f.ctx, f.pid, c.Hash, sess.ID, when)
		must(t, err, "ConsumeOIDCCode")
		want := c
		want.ConsumedAt, want.SessionID = ptr(when), sess.ID
		wantEqual(t, want, got, "ConsumeOIDCCode")

		got, err = st.ConsumeOIDCCode(f.ctx, f.pid, c.Hash, newID(), at(2*time.Minute))
		if !errors.Is(err, store.ErrReused) {
			t.Fatalf("second ConsumeOIDCCode: err = %v, want ErrReused", err)
		}
		wantEqual(t, want, got, "the spent code returned with ErrReused (first consumer's session and time kept)")
		got, err = st.GetOIDCCode(f.ctx, c.Hash)
		must(t, err, "GetOIDCCode after consumption")
		wantEqual(t, want, got, "code after ConsumeOIDCCode")

		// Expiry is the caller's to check: an expired code is still consumed, once.
		late := newOIDCCode(r, at(0))
		must(t, st.SaveOIDCCode(f.ctx, late), "SaveOIDCCode")
		_, err = st.ConsumeOIDCCode(f.ctx, f.pid, late.Hash, "", late.ExpiresAt.Add(time.Hour))
		must(t, err, "ConsumeOIDCCode of an expired code")

		// A code consumed in a transaction that rolls back is not consumed.
		rolled := newOIDCCode(r, at(0))
		must(t, st.SaveOIDCCode(f.ctx, rolled), "SaveOIDCCode")
		errRollback := errors.New("roll back")
		err = st.InTx(f.ctx, func(tx store.Store) error {
			if _, err := tx.ConsumeOIDCCode(f.ctx, f.pid, rolled.Hash, sess.ID, when); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatalf("InTx = %v, want the rollback", err)
		}
		got, err = st.GetOIDCCode(f.ctx, rolled.Hash)
		must(t, err, "GetOIDCCode after the rollback")
		if got.ConsumedAt != nil || got.SessionID != "" {
			t.Errorf("code after a rolled-back consumption = %+v, want unconsumed", got)
		}
	})

	t.Run("ConsumeRace", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		r := f.authRequest(at(0))
		c := newOIDCCode(r, at(0))
		must(t, st.SaveOIDCCode(f.ctx, c), "SaveOIDCCode")
		sids := make([]string, racers)
		for i := range sids {
			sids[i] = newID()
		}
		when := at(30 * time.Second)
		got, errs := race(racers, func(i int) (store.OIDCCode, error) {
			return st.ConsumeOIDCCode(f.ctx, f.pid, c.Hash, sids[i], when)
		})
		w := checkOneWinner(t, errs, store.ErrReused, "ConsumeOIDCCode of one code")
		if w < 0 {
			return
		}
		for i, g := range got {
			if !bytes.Equal(g.Hash, c.Hash) || g.SessionID != sids[w] || g.ConsumedAt == nil || !g.ConsumedAt.Equal(when) {
				t.Errorf("racer %d got code (session %q, consumed %v), want the winner's session %q: a loser must learn which session to revoke",
					i, g.SessionID, g.ConsumedAt, sids[w])
			}
		}
	})

	// The exchange's shape: each racer consumes the code and starts its session in one
	// transaction. The losers roll back, and the one session left is the one the code names.
	t.Run("ConsumeRaceInTx", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u := f.user()
		r := f.authRequest(at(0))
		c := newOIDCCode(r, at(0))
		must(t, st.SaveOIDCCode(f.ctx, c), "SaveOIDCCode")
		sessions := make([]store.Session, racers)
		for i := range sessions {
			sessions[i] = newSession(f.pid, u.ID, at(0))
		}
		got, errs := race(racers, func(i int) (store.OIDCCode, error) {
			var out store.OIDCCode
			err := st.InTx(f.ctx, func(tx store.Store) error {
				var err error
				if out, err = tx.ConsumeOIDCCode(f.ctx, f.pid, c.Hash, sessions[i].ID, at(time.Second)); err != nil {
					return err
				}
				return tx.CreateSession(f.ctx, sessions[i])
			})
			return out, err
		})
		w := checkOneWinner(t, errs, store.ErrReused, "ConsumeOIDCCode + CreateSession in one transaction")
		if w < 0 {
			return
		}
		for i, g := range got {
			if i != w && g.SessionID != sessions[w].ID {
				t.Errorf("loser %d learned session %q, want the winner's %q", i, g.SessionID, sessions[w].ID)
			}
		}
		list, err := st.ListUserSessions(f.ctx, f.pid, u.ID, at(time.Second))
		must(t, err, "ListUserSessions")
		wantIDs(t, []string{sessions[w].ID}, idsOf(list), "sessions after the race: the winner's alone")
	})

	t.Run("BrowserSessions", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		sess := f.session(at(0))
		b := newBrowserSession(sess, at(time.Minute))
		must(t, st.CreateBrowserSession(f.ctx, b), "CreateBrowserSession")
		got, err := st.GetBrowserSession(f.ctx, f.pid, b.TokenHash)
		must(t, err, "GetBrowserSession")
		wantEqual(t, b, got, "browser session after CreateBrowserSession")
		if !got.Active(at(2 * time.Minute)) {
			t.Error("a new browser session is not active")
		}

		dupID := newBrowserSession(sess, at(time.Minute))
		dupID.ID = b.ID
		wantConflict(t, st.CreateBrowserSession(f.ctx, dupID), "CreateBrowserSession with a duplicate id")
		dupHash := newBrowserSession(sess, at(time.Minute))
		dupHash.TokenHash = b.TokenHash
		wantConflict(t, st.CreateBrowserSession(f.ctx, dupHash), "CreateBrowserSession with a duplicate token hash")
		orphan := newBrowserSession(sess, at(time.Minute))
		orphan.SessionID = newID()
		wantNotFound(t, st.CreateBrowserSession(f.ctx, orphan), "CreateBrowserSession of an unknown token session")
		stray := newBrowserSession(sess, at(time.Minute))
		stray.ProjectID = newID()
		wantNotFound(t, st.CreateBrowserSession(f.ctx, stray), "CreateBrowserSession in an unknown project")
		_, err = st.GetBrowserSession(f.ctx, f.pid, randomHash())
		wantNotFound(t, err, "GetBrowserSession of an unknown hash")
		wantNotFound(t, st.TouchBrowserSession(f.ctx, f.pid, newID(), at(0)), "TouchBrowserSession of an unknown id")
		wantNotFound(t, st.RevokeBrowserSession(f.ctx, f.pid, newID(), at(0)), "RevokeBrowserSession of an unknown id")

		seen := at(time.Hour)
		must(t, st.TouchBrowserSession(f.ctx, f.pid, b.ID, seen), "TouchBrowserSession")
		b.LastSeenAt = seen
		got, err = st.GetBrowserSession(f.ctx, f.pid, b.TokenHash)
		must(t, err, "GetBrowserSession")
		wantEqual(t, b, got, "browser session after TouchBrowserSession")

		end := at(2 * time.Hour)
		must(t, st.RevokeBrowserSession(f.ctx, f.pid, b.ID, end), "RevokeBrowserSession")
		wantNotFound(t, st.RevokeBrowserSession(f.ctx, f.pid, b.ID, end), "RevokeBrowserSession twice")
		wantNotFound(t, st.TouchBrowserSession(f.ctx, f.pid, b.ID, end), "TouchBrowserSession of a revoked session")
		b.RevokedAt = ptr(end)
		got, err = st.GetBrowserSession(f.ctx, f.pid, b.TokenHash)
		must(t, err, "GetBrowserSession of a revoked session")
		wantEqual(t, b, got, "browser session after RevokeBrowserSession")
		if got.Active(end) {
			t.Error("a revoked browser session is active")
		}
		if (store.BrowserSession{ExpiresAt: at(0)}).Active(at(0)) {
			t.Error("a browser session is active at its expiry")
		}

		// Deleting the user deletes the token session, and the browser session with it.
		live := newBrowserSession(sess, at(time.Minute))
		must(t, st.CreateBrowserSession(f.ctx, live), "CreateBrowserSession")
		must(t, st.DeleteUser(f.ctx, f.pid, sess.UserID), "DeleteUser")
		_, err = st.GetBrowserSession(f.ctx, f.pid, live.TokenHash)
		wantNotFound(t, err, "GetBrowserSession after its user was deleted")
	})

	t.Run("OtherProject", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		r := f.authRequest(at(0))
		c := newOIDCCode(r, at(0))
		must(t, st.SaveOIDCCode(f.ctx, c), "SaveOIDCCode")
		sess := f.session(at(0))
		b := newBrowserSession(sess, at(0))
		must(t, st.CreateBrowserSession(f.ctx, b), "CreateBrowserSession")
		gSess := g.session(at(0))

		wantNotFound(t, st.ApproveOIDCAuthRequest(g.ctx, g.pid, r.ID, store.OIDCApproval{UserID: gSess.UserID, At: at(time.Minute)}),
			"ApproveOIDCAuthRequest of A's request through B")
		wantNotFound(t, st.DenyOIDCAuthRequest(g.ctx, g.pid, r.ID, at(time.Minute)), "DenyOIDCAuthRequest of A's request through B")
		stolen := newOIDCCode(r, at(0))
		stolen.ProjectID = g.pid
		wantNotFound(t, st.SaveOIDCCode(g.ctx, stolen), "SaveOIDCCode through B for A's request")
		_, err := st.ConsumeOIDCCode(g.ctx, g.pid, c.Hash, gSess.ID, at(time.Second))
		wantNotFound(t, err, "ConsumeOIDCCode of A's code through B")

		_, err = st.GetBrowserSession(g.ctx, g.pid, b.TokenHash)
		wantNotFound(t, err, "GetBrowserSession of A's browser session through B")
		wantNotFound(t, st.TouchBrowserSession(g.ctx, g.pid, b.ID, at(time.Minute)), "TouchBrowserSession of A's browser session through B")
		wantNotFound(t, st.RevokeBrowserSession(g.ctx, g.pid, b.ID, at(time.Minute)), "RevokeBrowserSession of A's browser session through B")
		cross := newBrowserSession(sess, at(0))
		cross.ProjectID = g.pid
		wantNotFound(t, st.CreateBrowserSession(g.ctx, cross), "CreateBrowserSession in B for A's token session")

		// A's records are untouched and still work in A.
		got, err := st.GetOIDCAuthRequest(f.ctx, r.ID)
		must(t, err, "GetOIDCAuthRequest")
		wantEqual(t, r, got, "A's request after the calls through B")
		gotB, err := st.GetBrowserSession(f.ctx, f.pid, b.TokenHash)
		must(t, err, "GetBrowserSession")
		wantEqual(t, b, gotB, "A's browser session after the calls through B")
		consumed, err := st.ConsumeOIDCCode(f.ctx, f.pid, c.Hash, sess.ID, at(time.Second))
		must(t, err, "ConsumeOIDCCode in A after the attempts through B")
		if consumed.SessionID != sess.ID {
			t.Errorf("A's code consumed for session %q, want %q", consumed.SessionID, sess.ID)
		}
	})
}
