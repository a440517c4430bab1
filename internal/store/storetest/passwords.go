package storetest

import (
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

func testPasswords(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)
	t.Run("CountPrefixes", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		counts, err := st.CountPasswordHashPrefixes(f.ctx, f.pid)
		must(t, err, "CountPasswordHashPrefixes without passwords")
		wantEqual(t, 0, len(counts), "prefixes of a project without passwords")
		for _, h := range []string{"$argon2id$v=19$m=19456$a", "$argon2id$v=19$m=19456$b", "$2b$12$abc", "$2a$10$abc", "$2b$12$def"} {
			must(t, st.SetPasswordHash(f.ctx, f.pid, f.user().ID, h, at(0)), "SetPasswordHash")
		}
		must(t, st.SetPasswordHash(g.ctx, g.pid, g.user().ID, "$2b$14$other", at(0)), "SetPasswordHash in another project")
		counts, err = st.CountPasswordHashPrefixes(f.ctx, f.pid)
		must(t, err, "CountPasswordHashPrefixes")
		wantEqual(t, []store.PrefixCount{{Prefix: "$2a$10$", Count: 1}, {Prefix: "$2b$12$", Count: 2}, {Prefix: "$argon2", Count: 2}},
			counts, "CountPasswordHashPrefixes")
	})

	t.Run("SetGetUpgradeDelete", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		u := f.user()
		_, err := st.GetPasswordHash(f.ctx, f.pid, u.ID)
		wantNotFound(t, err, "GetPasswordHash of a user without a password")
		must(t, st.SetPasswordHash(f.ctx, f.pid, u.ID, "$2b$10$old", at(0)), "SetPasswordHash")
		got, err := st.GetPasswordHash(f.ctx, f.pid, u.ID)
		must(t, err, "GetPasswordHash")
		if got != "$2b$10$old" {
			t.Errorf("hash = %q", got)
		}
		_, err = st.GetPasswordHash(g.ctx, g.pid, u.ID)
		wantNotFound(t, err, "GetPasswordHash through another project")
		wantNotFound(t, st.SetPasswordHash(f.ctx, f.pid, newID(), "x", at(0)), "SetPasswordHash of an unknown user")

		// An upgrade applies only over the hash it read; of concurrent upgrades one wins.
		_, errs := race(racers, func(i int) (struct{}, error) {
			return struct{}{}, st.UpgradePasswordHash(f.ctx, f.pid, u.ID, "$2b$10$old", "$argon2id$new", at(time.Minute))
		})
		checkOneWinner(t, errs, store.ErrNotFound, "UpgradePasswordHash")
		wantNotFound(t, st.UpgradePasswordHash(f.ctx, f.pid, u.ID, "$2b$10$old", "$argon2id$other", at(time.Minute)),
			"UpgradePasswordHash over a changed hash")
		must(t, st.SetPasswordHash(f.ctx, f.pid, u.ID, "$argon2id$changed", at(time.Hour)), "SetPasswordHash replaces")
		if got, _ := st.GetPasswordHash(f.ctx, f.pid, u.ID); got != "$argon2id$changed" {
			t.Errorf("hash after replace = %q", got)
		}
		must(t, st.DeletePasswordHash(f.ctx, f.pid, u.ID), "DeletePasswordHash")
		must(t, st.DeletePasswordHash(f.ctx, f.pid, u.ID), "DeletePasswordHash again")
		_, err = st.GetPasswordHash(f.ctx, f.pid, u.ID)
		wantNotFound(t, err, "GetPasswordHash after delete")
		// Deleting the user deletes the password.
		must(t, st.SetPasswordHash(f.ctx, f.pid, u.ID, "$argon2id$x", at(0)), "SetPasswordHash")
		must(t, st.DeleteUser(f.ctx, f.pid, u.ID), "DeleteUser")
		_, err = st.GetPasswordHash(f.ctx, f.pid, u.ID)
		wantNotFound(t, err, "password of a deleted user")
	})
}
