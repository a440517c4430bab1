package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// newRecoveryCodes returns n unsaved, unused codes of the user.
func newRecoveryCodes(projectID, userID string, n int, created time.Time) []store.RecoveryCode {
	out := make([]store.RecoveryCode, n)
	for i := range out {
		out[i] = store.RecoveryCode{ID: newID(), ProjectID: projectID, UserID: userID, Hash: randomHash(), CreatedAt: created}
	}
	return out
}

// wantRemaining checks how many of the user's codes are unused.
func wantRemaining(t *testing.T, st store.Store, f *fixture, projectID, userID string, want int, what string) {
	t.Helper()
	n, err := st.CountRecoveryCodes(f.ctx, projectID, userID)
	must(t, err, "CountRecoveryCodes %s", what)
	if n != want {
		t.Errorf("CountRecoveryCodes %s = %d, want %d", what, n, want)
	}
}

func testRecoveryCodes(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("UseOnce", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u := f.user()
		wantRemaining(t, st, f, f.pid, u.ID, 0, "before any set")
		codes := newRecoveryCodes(f.pid, u.ID, 10, at(0))
		must(t, st.ReplaceRecoveryCodes(f.ctx, f.pid, u.ID, codes), "ReplaceRecoveryCodes")
		wantRemaining(t, st, f, f.pid, u.ID, 10, "of a new set")

		used, err := st.UseRecoveryCode(f.ctx, f.pid, u.ID, codes[3].Hash, at(time.Hour))
		must(t, err, "UseRecoveryCode")
		want := codes[3]
		want.UsedAt = ptr(at(time.Hour))
		wantEqual(t, want, used, "code after UseRecoveryCode")
		_, err = st.UseRecoveryCode(f.ctx, f.pid, u.ID, codes[3].Hash, at(2*time.Hour))
		wantNotFound(t, err, "UseRecoveryCode of a used code")
		_, err = st.UseRecoveryCode(f.ctx, f.pid, u.ID, randomHash(), at(time.Hour))
		wantNotFound(t, err, "UseRecoveryCode of an unknown hash")
		wantRemaining(t, st, f, f.pid, u.ID, 9, "after one use")
		for i, c := range codes {
			if i == 3 {
				continue
			}
			_, err := st.UseRecoveryCode(f.ctx, f.pid, u.ID, c.Hash, at(time.Hour))
			must(t, err, "UseRecoveryCode of code %d", i)
		}
		wantRemaining(t, st, f, f.pid, u.ID, 0, "after every code was used")

		_, err = st.UseRecoveryCode(f.ctx, f.pid, u.ID, codes[3].Hash, at(3*time.Hour))
		wantNotFound(t, err, "UseRecoveryCode of a used code, later")
	})

	t.Run("ReplaceVoidsTheOldSet", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u := f.user()
		old := newRecoveryCodes(f.pid, u.ID, 10, at(0))
		must(t, st.ReplaceRecoveryCodes(f.ctx, f.pid, u.ID, old), "ReplaceRecoveryCodes")
		_, err := st.UseRecoveryCode(f.ctx, f.pid, u.ID, old[0].Hash, at(time.Minute))
		must(t, err, "UseRecoveryCode of the old set")

		fresh := newRecoveryCodes(f.pid, u.ID, 10, at(time.Hour))
		fresh[0].Hash = bytes.Clone(old[1].Hash) // a hash may come back in a new set
		must(t, st.ReplaceRecoveryCodes(f.ctx, f.pid, u.ID, fresh), "ReplaceRecoveryCodes again")
		wantRemaining(t, st, f, f.pid, u.ID, 10, "after the replacement (used codes of the old set are gone too)")
		for i, c := range old[2:] {
			_, err := st.UseRecoveryCode(f.ctx, f.pid, u.ID, c.Hash, at(2*time.Hour))
			wantNotFound(t, err, "UseRecoveryCode of old code %d after the replacement", i+2)
		}
		used, err := st.UseRecoveryCode(f.ctx, f.pid, u.ID, fresh[0].Hash, at(2*time.Hour))
		must(t, err, "UseRecoveryCode of the new set")
		if used.ID != fresh[0].ID {
			t.Errorf("UseRecoveryCode used code %s, want the new set's %s", used.ID, fresh[0].ID)
		}

		// A failed replacement changes nothing: a duplicate hash in the new set is a conflict.
		bad := newRecoveryCodes(f.pid, u.ID, 3, at(3*time.Hour))
		bad[2].Hash = bytes.Clone(bad[0].Hash)
		wantConflict(t, st.ReplaceRecoveryCodes(f.ctx, f.pid, u.ID, bad), "ReplaceRecoveryCodes with a duplicate hash")
		wantRemaining(t, st, f, f.pid, u.ID, 9, "after a failed replacement")
		_, err = st.UseRecoveryCode(f.ctx, f.pid, u.ID, bad[1].Hash, at(3*time.Hour))
		wantNotFound(t, err, "UseRecoveryCode of a code of the failed replacement")

		// An empty set voids every code.
		must(t, st.ReplaceRecoveryCodes(f.ctx, f.pid, u.ID, nil), "ReplaceRecoveryCodes with no codes")
		wantRemaining(t, st, f, f.pid, u.ID, 0, "after an empty replacement")
	})

	t.Run("Isolation", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		u, other := f.user(), f.user()
		codes := newRecoveryCodes(f.pid, u.ID, 10, at(0))
		must(t, st.ReplaceRecoveryCodes(f.ctx, f.pid, u.ID, codes), "ReplaceRecoveryCodes")
		// The other user holds a code with one of the same hashes: each user's copy is separate.
		otherCodes := newRecoveryCodes(f.pid, other.ID, 2, at(0))
		otherCodes[0].Hash = bytes.Clone(codes[0].Hash)
		must(t, st.ReplaceRecoveryCodes(f.ctx, f.pid, other.ID, otherCodes), "ReplaceRecoveryCodes of another user")

		_, err := st.UseRecoveryCode(f.ctx, f.pid, other.ID, codes[1].Hash, at(time.Minute))
		wantNotFound(t, err, "UseRecoveryCode through another user")
		_, err = st.UseRecoveryCode(f.ctx, g.pid, u.ID, codes[1].Hash, at(time.Minute))
		wantNotFound(t, err, "UseRecoveryCode through another project")
		wantRemaining(t, st, f, g.pid, u.ID, 0, "through another project")
		wantRemaining(t, st, f, f.pid, other.ID, 2, "of the other user")

		_, err = st.UseRecoveryCode(f.ctx, f.pid, other.ID, codes[0].Hash, at(time.Minute))
		must(t, err, "UseRecoveryCode of the other user's copy of a hash")
		wantRemaining(t, st, f, f.pid, u.ID, 10, "after the other user used a code")
		_, err = st.UseRecoveryCode(f.ctx, f.pid, u.ID, codes[0].Hash, at(time.Minute))
		must(t, err, "UseRecoveryCode of the user's own copy of that hash")

		// Replacing one user's set leaves the other's alone; nobody's set is replaced through
		// another project, nor for an unknown user.
		must(t, st.ReplaceRecoveryCodes(f.ctx, f.pid, other.ID, nil), "ReplaceRecoveryCodes of the other user")
		wantRemaining(t, st, f, f.pid, u.ID, 9, "after the other user's set was replaced")
		wantNotFound(t, st.ReplaceRecoveryCodes(f.ctx, g.pid, u.ID, newRecoveryCodes(g.pid, u.ID, 1, at(0))),
			"ReplaceRecoveryCodes through another project")
		wantNotFound(t, st.ReplaceRecoveryCodes(f.ctx, f.pid, newID(), nil), "ReplaceRecoveryCodes of an unknown user")
		wantRemaining(t, st, f, f.pid, u.ID, 9, "after refused replacements")
	})

	t.Run("RaceOnOneCode", func(t *testing.T) {
		f := inNewProject(t, st)
		u := f.user()
		codes := newRecoveryCodes(f.pid, u.ID, 10, at(0))
		must(t, st.ReplaceRecoveryCodes(f.ctx, f.pid, u.ID, codes), "ReplaceRecoveryCodes")
		got, errs := race(racers, func(int) (store.RecoveryCode, error) {
			return st.UseRecoveryCode(f.ctx, f.pid, u.ID, codes[0].Hash, at(time.Minute))
		})
		if w := checkOneWinner(t, errs, store.ErrNotFound, "UseRecoveryCode of one code"); w >= 0 {
			want := codes[0]
			want.UsedAt = ptr(at(time.Minute))
			wantEqual(t, want, got[w], "the winner's UseRecoveryCode result")
		}
		wantRemaining(t, st, f, f.pid, u.ID, 9, "after the race")
	})

	t.Run("RaceOnReplace", func(t *testing.T) {
		f := inNewProject(t, st)
		u := f.user()
		sets := make([][]store.RecoveryCode, racers)
		for i := range sets {
			sets[i] = newRecoveryCodes(f.pid, u.ID, 10, at(0))
		}
		_, errs := race(racers, func(i int) (struct{}, error) {
			return struct{}{}, st.ReplaceRecoveryCodes(f.ctx, f.pid, u.ID, sets[i])
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("racer %d: %v", i, err)
			}
		}
		// Exactly one set survives, whole: the replacements did not merge.
		wantRemaining(t, st, f, f.pid, u.ID, 10, "after concurrent replacements")
	})

	t.Run("CascadeOnUserDelete", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u, other := f.user(), f.user()
		codes := newRecoveryCodes(f.pid, u.ID, 10, at(0))
		must(t, st.ReplaceRecoveryCodes(f.ctx, f.pid, u.ID, codes), "ReplaceRecoveryCodes")
		must(t, st.ReplaceRecoveryCodes(f.ctx, f.pid, other.ID, newRecoveryCodes(f.pid, other.ID, 10, at(0))),
			"ReplaceRecoveryCodes of another user")
		must(t, st.DeleteUser(f.ctx, f.pid, u.ID), "DeleteUser")
		wantRemaining(t, st, f, f.pid, u.ID, 0, "after DeleteUser")
		_, err := st.UseRecoveryCode(f.ctx, f.pid, u.ID, codes[0].Hash, at(time.Minute))
		wantNotFound(t, err, "UseRecoveryCode after its user was deleted")
		wantRemaining(t, st, f, f.pid, other.ID, 10, "of another user after DeleteUser")
	})
}
