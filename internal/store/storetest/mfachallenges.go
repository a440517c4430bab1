package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

func newMFAChallenge(projectID, userID string, created time.Time) store.MFAChallenge {
	return store.MFAChallenge{
		ID: newID(), ProjectID: projectID, UserID: userID, OrganizationID: "org_x", TokenHash: randomHash(), ConnectionType: "EmailOTP",
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
		_, err = st.FailMFAChallenge(f.ctx, f.pid, c.ID, at(time.Minute))
		wantNotFound(t, err, "FailMFAChallenge of a completed challenge")
	})

	t.Run("AttemptLimit", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u := f.user()
		c := newMFAChallenge(f.pid, u.ID, at(0))
		must(t, st.CreateMFAChallenge(f.ctx, c), "CreateMFAChallenge")
		// Concurrent wrong answers are all counted, and the limit is never passed.
		_, errs := race(10, func(int) (store.MFAChallenge, error) { return st.FailMFAChallenge(f.ctx, f.pid, c.ID, at(time.Minute)) })
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
		if counted != c.MaxAttempts || got.Attempts != c.MaxAttempts || got.Status != store.MFAChallengeDead ||
			got.LastFailedAt == nil || !got.LastFailedAt.Equal(at(time.Minute)) {
			t.Errorf("after 10 concurrent failures: %d counted, attempts %d, status %s, last failed %v; want %d, %d, dead, %v",
				counted, got.Attempts, got.Status, got.LastFailedAt, c.MaxAttempts, c.MaxAttempts, at(time.Minute))
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

	t.Run("FailuresPerUser", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u, other := f.user(), f.user()
		n, oldest, err := st.CountMFAFailures(f.ctx, f.pid, u.ID, at(0))
		must(t, err, "CountMFAFailures")
		if n != 0 || oldest != nil {
			t.Errorf("CountMFAFailures of a user without challenges = %d, %v; want 0, nil", n, oldest)
		}
		// Two challenges of the user fail, one long ago; another user's failure is not counted.
		old, recent, second := newMFAChallenge(f.pid, u.ID, at(0)), newMFAChallenge(f.pid, u.ID, at(time.Hour)),
			newMFAChallenge(f.pid, u.ID, at(time.Hour))
		others := newMFAChallenge(f.pid, other.ID, at(time.Hour))
		for _, c := range []store.MFAChallenge{old, recent, second, others} {
			must(t, st.CreateMFAChallenge(f.ctx, c), "CreateMFAChallenge")
		}
		fail := func(c store.MFAChallenge, d time.Duration) {
			t.Helper()
			_, err := st.FailMFAChallenge(f.ctx, f.pid, c.ID, at(d))
			must(t, err, "FailMFAChallenge")
		}
		fail(old, time.Minute)
		fail(recent, time.Hour+time.Minute)
		fail(recent, time.Hour+2*time.Minute)
		fail(second, time.Hour+3*time.Minute)
		fail(others, time.Hour+3*time.Minute)
		n, oldest, err = st.CountMFAFailures(f.ctx, f.pid, u.ID, at(time.Hour))
		must(t, err, "CountMFAFailures")
		if n != 3 || oldest == nil || !oldest.Equal(at(time.Hour+2*time.Minute)) {
			t.Errorf("CountMFAFailures since an hour = %d, %v; want 3, %v", n, oldest, at(time.Hour+2*time.Minute))
		}
		g := inNewProject(t, st)
		n, _, err = g.st.CountMFAFailures(g.ctx, g.pid, u.ID, at(0))
		must(t, err, "CountMFAFailures")
		if n != 0 {
			t.Errorf("CountMFAFailures through another project = %d, want 0", n)
		}
	})

	t.Run("OutOfBandSends", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		u := f.user()
		c := newMFAChallenge(f.pid, u.ID, at(0))
		must(t, st.CreateMFAChallenge(f.ctx, c), "CreateMFAChallenge")
		send := func(d time.Duration) store.OOBSend {
			return store.OOBSend{Channel: "sms", CodeHash: randomHash(), SecretHash: randomHash(), At: at(d),
				MaxSends: 2, NotAfterLast: at(d - 30*time.Second)}
		}
		first := send(time.Second)
		got, err := st.SetMFAChallengeOOB(f.ctx, f.pid, c.ID, first)
		must(t, err, "SetMFAChallengeOOB")
		if got.OOBChannel != "sms" || string(got.OOBCodeHash) != string(first.CodeHash) ||
			string(got.OOBSecretHash) != string(first.SecretHash) || got.OOBSends != 1 || got.OOBSentAt == nil ||
			!got.OOBSentAt.Equal(at(time.Second)) {
			t.Errorf("after the first send: %+v", got)
		}
		_, err = st.SetMFAChallengeOOB(f.ctx, f.pid, c.ID, send(10*time.Second))
		wantErr(t, err, store.ErrConflict, "SetMFAChallengeOOB 9 s after the last")
		_, err = st.SetMFAChallengeOOB(f.ctx, g.pid, c.ID, send(time.Minute))
		wantNotFound(t, err, "SetMFAChallengeOOB through another project")
		// Concurrent sends cannot pass the limit: one more is allowed.
		_, errs := race(10, func(int) (store.MFAChallenge, error) {
			return st.SetMFAChallengeOOB(f.ctx, f.pid, c.ID, send(time.Minute))
		})
		checkOneWinner(t, errs, store.ErrConflict, "SetMFAChallengeOOB")
		_, err = st.SetMFAChallengeOOB(f.ctx, f.pid, c.ID, send(3*time.Minute))
		wantErr(t, err, store.ErrConflict, "SetMFAChallengeOOB past the limit")
		_, err = st.SetMFAChallengeOOB(f.ctx, f.pid, c.ID, send(5*time.Minute))
		wantNotFound(t, err, "SetMFAChallengeOOB of an expired challenge")
	})
}
