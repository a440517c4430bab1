package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

func newMFAChallenge(projectID, userID string, created time.Time) store.MFAChallenge {
	return store.MFAChallenge{
		ID: newID(), ProjectID: projectID, UserID: userID, TokenHash: randomHash(), ConnectionType: "EmailOTP",
		AMR: []string{"otp"}, MaxAttempts: 3, Status: store.MFAChallengePending, CreatedAt: created,
		ExpiresAt: created.Add(5 * time.Minute),
	}
}

func testMFAChallenges(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("CompleteOnce", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		u := f.user()
		c := newMFAChallenge(f.pid, u.ID, at(0))
		must(t, st.CreateMFAChallenge(f.ctx, c), "CreateMFAChallenge")
		got, err := st.GetMFAChallenge(f.ctx, f.pid, c.TokenHash)
		must(t, err, "GetMFAChallenge")
		wantEqual(t, c, got, "challenge after CreateMFAChallenge")
		_, err = st.GetMFAChallenge(f.ctx, g.pid, c.TokenHash)
		wantNotFound(t, err, "GetMFAChallenge through another project")
		wantNotFound(t, st.CreateMFAChallenge(f.ctx, newMFAChallenge(f.pid, newID(), at(0))), "CreateMFAChallenge for an unknown user")

		_, err = st.CompleteMFAChallenge(f.ctx, f.pid, c.ID, c.ExpiresAt)
		wantNotFound(t, err, "CompleteMFAChallenge at its expiry")
		_, err = st.CompleteMFAChallenge(f.ctx, g.pid, c.ID, at(time.Minute))
		wantNotFound(t, err, "CompleteMFAChallenge through another project")

		done, errs := race(50, func(int) (store.MFAChallenge, error) {
			return st.CompleteMFAChallenge(f.ctx, f.pid, c.ID, at(time.Minute))
		})
		if w := checkOneWinner(t, errs, store.ErrNotFound, "CompleteMFAChallenge"); w >= 0 {
			c.Status, c.CompletedAt = store.MFAChallengeCompleted, ptr(at(time.Minute))
			wantEqual(t, c, done[w], "challenge after CompleteMFAChallenge")
		}
		_, err = st.FailMFAChallenge(f.ctx, f.pid, c.ID)
		wantNotFound(t, err, "FailMFAChallenge of a completed challenge")
	})

	t.Run("AttemptLimit", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u := f.user()
		c := newMFAChallenge(f.pid, u.ID, at(0))
		must(t, st.CreateMFAChallenge(f.ctx, c), "CreateMFAChallenge")
		// Concurrent wrong answers are all counted, and the limit is never passed.
		_, errs := race(10, func(int) (store.MFAChallenge, error) { return st.FailMFAChallenge(f.ctx, f.pid, c.ID) })
		counted := 0
		for _, err := range errs {
			if err == nil {
				counted++
			} else if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("FailMFAChallenge: %v", err)
			}
		}
		got, err := st.GetMFAChallenge(f.ctx, f.pid, c.TokenHash)
		must(t, err, "GetMFAChallenge")
		if counted != c.MaxAttempts || got.Attempts != c.MaxAttempts || got.Status != store.MFAChallengeDead {
			t.Errorf("after 10 concurrent failures: %d counted, attempts %d, status %s; want %d, %d, dead",
				counted, got.Attempts, got.Status, c.MaxAttempts, c.MaxAttempts)
		}
		_, err = st.CompleteMFAChallenge(f.ctx, f.pid, c.ID, at(time.Minute))
		wantNotFound(t, err, "CompleteMFAChallenge of a dead challenge")
	})

	t.Run("DeletedWithUser", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u := f.user()
		c := newMFAChallenge(f.pid, u.ID, at(0))
		must(t, st.CreateMFAChallenge(f.ctx, c), "CreateMFAChallenge")
		must(t, st.DeleteUser(f.ctx, f.pid, u.ID), "DeleteUser")
		_, err := st.GetMFAChallenge(f.ctx, f.pid, c.TokenHash)
		wantNotFound(t, err, "challenge of a deleted user")
	})
}
