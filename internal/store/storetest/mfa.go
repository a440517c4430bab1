package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

func newMFAFactor(projectID, userID string, created time.Time) store.MFAFactor {
	return store.MFAFactor{
		ID: newID(), ProjectID: projectID, UserID: userID, Type: store.MFAFactorOTP,
		Secret: randomBytes(100), CreatedAt: created,
	}
}

func testMFAFactors(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("RoundTripAndIsolation", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		u, other := f.user(), f.user()
		m := newMFAFactor(f.pid, u.ID, at(0))
		must(t, st.CreateMFAFactor(f.ctx, m), "CreateMFAFactor")
		got, err := st.GetMFAFactor(f.ctx, f.pid, u.ID, m.ID)
		must(t, err, "GetMFAFactor")
		wantEqual(t, m, got, "factor after CreateMFAFactor")

		_, err = st.GetMFAFactor(f.ctx, g.pid, u.ID, m.ID)
		wantNotFound(t, err, "GetMFAFactor through another project")
		_, err = st.GetMFAFactor(f.ctx, f.pid, other.ID, m.ID)
		wantNotFound(t, err, "GetMFAFactor through another user")
		wantNotFound(t, st.CreateMFAFactor(f.ctx, newMFAFactor(f.pid, newID(), at(0))), "CreateMFAFactor for an unknown user")
		wantNotFound(t, st.CreateMFAFactor(f.ctx, newMFAFactor(g.pid, u.ID, at(0))), "CreateMFAFactor for another project's user")
		wantConflict(t, st.CreateMFAFactor(f.ctx, m), "CreateMFAFactor with a used id")

		second := newMFAFactor(f.pid, u.ID, at(time.Second))
		second.Confirmed, second.LastUsedStep, second.ConfirmedAt, second.LastUsedAt = true, 42, ptr(at(time.Minute)), ptr(at(time.Hour))
		must(t, st.CreateMFAFactor(f.ctx, second), "CreateMFAFactor second")
		list, err := st.ListMFAFactors(f.ctx, f.pid, u.ID)
		must(t, err, "ListMFAFactors")
		if len(list) != 2 {
			t.Fatalf("ListMFAFactors: %d factors, want the user's 2", len(list))
		}
		wantEqual(t, m, list[0], "ListMFAFactors[0] (oldest first)")
		wantEqual(t, second, list[1], "ListMFAFactors[1]")
		for _, c := range []struct{ pid, uid, what string }{{g.pid, u.ID, "another project"}, {f.pid, other.ID, "another user"}} {
			list, err := st.ListMFAFactors(f.ctx, c.pid, c.uid)
			must(t, err, "ListMFAFactors through %s", c.what)
			if len(list) != 0 {
				t.Errorf("ListMFAFactors through %s: %d factors, want 0", c.what, len(list))
			}
		}
		// Writes through another project or user find nothing either.
		_, err = st.ConfirmMFAFactor(f.ctx, g.pid, u.ID, m.ID, 1, at(time.Minute))
		wantNotFound(t, err, "ConfirmMFAFactor through another project")
		_, err = st.UseMFAFactorStep(f.ctx, f.pid, other.ID, second.ID, 100, at(time.Minute))
		wantNotFound(t, err, "UseMFAFactorStep through another user")
		wantNotFound(t, st.DeleteMFAFactor(f.ctx, g.pid, u.ID, m.ID), "DeleteMFAFactor through another project")
		wantNotFound(t, st.DeleteMFAFactor(f.ctx, f.pid, other.ID, m.ID), "DeleteMFAFactor through another user")
		got, err = st.GetMFAFactor(f.ctx, f.pid, u.ID, m.ID)
		must(t, err, "GetMFAFactor after refused writes")
		wantEqual(t, m, got, "factor after writes through another project or user")
	})

	t.Run("ConfirmOnce", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u := f.user()
		m := newMFAFactor(f.pid, u.ID, at(0))
		must(t, st.CreateMFAFactor(f.ctx, m), "CreateMFAFactor")
		_, err := st.UseMFAFactorStep(f.ctx, f.pid, u.ID, m.ID, 10, at(time.Second))
		wantNotFound(t, err, "UseMFAFactorStep of an unconfirmed factor")

		confirmed, err := st.ConfirmMFAFactor(f.ctx, f.pid, u.ID, m.ID, 10, at(time.Minute))
		must(t, err, "ConfirmMFAFactor")
		m.Confirmed, m.LastUsedStep, m.ConfirmedAt, m.LastUsedAt = true, 10, ptr(at(time.Minute)), ptr(at(time.Minute))
		wantEqual(t, m, confirmed, "factor after ConfirmMFAFactor")
		_, err = st.ConfirmMFAFactor(f.ctx, f.pid, u.ID, m.ID, 11, at(time.Hour))
		wantConflict(t, err, "ConfirmMFAFactor of a confirmed factor")
		_, err = st.ConfirmMFAFactor(f.ctx, f.pid, u.ID, newID(), 11, at(time.Hour))
		wantNotFound(t, err, "ConfirmMFAFactor of an unknown factor")
		// The confirming step counts as used: the code that confirmed cannot also log in.
		_, err = st.UseMFAFactorStep(f.ctx, f.pid, u.ID, m.ID, 10, at(time.Hour))
		wantErr(t, err, store.ErrReused, "UseMFAFactorStep of the confirming step")
		got, err := st.GetMFAFactor(f.ctx, f.pid, u.ID, m.ID)
		must(t, err, "GetMFAFactor")
		wantEqual(t, m, got, "factor after refused confirmations")
	})

	t.Run("StepUsedOnce", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u := f.user()
		m := newMFAFactor(f.pid, u.ID, at(0))
		must(t, st.CreateMFAFactor(f.ctx, m), "CreateMFAFactor")
		_, err := st.ConfirmMFAFactor(f.ctx, f.pid, u.ID, m.ID, 100, at(0))
		must(t, err, "ConfirmMFAFactor")

		used, err := st.UseMFAFactorStep(f.ctx, f.pid, u.ID, m.ID, 101, at(time.Minute))
		must(t, err, "UseMFAFactorStep")
		if used.LastUsedStep != 101 || used.LastUsedAt == nil || !used.LastUsedAt.Equal(at(time.Minute)) {
			t.Errorf("UseMFAFactorStep: step %d at %v, want 101 at %v", used.LastUsedStep, used.LastUsedAt, at(time.Minute))
		}
		_, err = st.UseMFAFactorStep(f.ctx, f.pid, u.ID, m.ID, 101, at(time.Minute))
		wantErr(t, err, store.ErrReused, "UseMFAFactorStep of the same step")
		// An older step is refused too: once a newer code was seen, an earlier one is stale.
		_, err = st.UseMFAFactorStep(f.ctx, f.pid, u.ID, m.ID, 100, at(time.Minute))
		wantErr(t, err, store.ErrReused, "UseMFAFactorStep of an older step")
		_, err = st.UseMFAFactorStep(f.ctx, f.pid, u.ID, m.ID, 102, at(time.Hour))
		must(t, err, "UseMFAFactorStep of the next step")
		_, err = st.UseMFAFactorStep(f.ctx, f.pid, u.ID, newID(), 200, at(time.Hour))
		wantNotFound(t, err, "UseMFAFactorStep of an unknown factor")
	})

	t.Run("RaceOnOneStep", func(t *testing.T) {
		f := inNewProject(t, st)
		u := f.user()
		m := newMFAFactor(f.pid, u.ID, at(0))
		must(t, st.CreateMFAFactor(f.ctx, m), "CreateMFAFactor")
		_, err := st.ConfirmMFAFactor(f.ctx, f.pid, u.ID, m.ID, 1000, at(0))
		must(t, err, "ConfirmMFAFactor")
		got, errs := race(racers, func(int) (store.MFAFactor, error) {
			return st.UseMFAFactorStep(f.ctx, f.pid, u.ID, m.ID, 1001, at(time.Minute))
		})
		if w := checkOneWinner(t, errs, store.ErrReused, "UseMFAFactorStep of one step"); w >= 0 && got[w].LastUsedStep != 1001 {
			t.Errorf("the winner's factor has step %d, want 1001", got[w].LastUsedStep)
		}
	})

	t.Run("DeleteAndCascade", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u := f.user()
		m, n := newMFAFactor(f.pid, u.ID, at(0)), newMFAFactor(f.pid, u.ID, at(time.Second))
		must(t, st.CreateMFAFactor(f.ctx, m), "CreateMFAFactor")
		must(t, st.CreateMFAFactor(f.ctx, n), "CreateMFAFactor")
		must(t, st.DeleteMFAFactor(f.ctx, f.pid, u.ID, m.ID), "DeleteMFAFactor")
		_, err := st.GetMFAFactor(f.ctx, f.pid, u.ID, m.ID)
		wantNotFound(t, err, "GetMFAFactor after DeleteMFAFactor")
		wantNotFound(t, st.DeleteMFAFactor(f.ctx, f.pid, u.ID, m.ID), "DeleteMFAFactor again")

		must(t, st.DeleteUser(f.ctx, f.pid, u.ID), "DeleteUser")
		_, err = st.GetMFAFactor(f.ctx, f.pid, u.ID, n.ID)
		wantNotFound(t, err, "GetMFAFactor after its user was deleted")
		list, err := st.ListMFAFactors(f.ctx, f.pid, u.ID)
		must(t, err, "ListMFAFactors after DeleteUser")
		if len(list) != 0 {
			t.Errorf("ListMFAFactors after DeleteUser: %d factors, want 0", len(list))
		}
	})

	t.Run("RewrapSealed", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u := f.user()
		m := newMFAFactor(f.pid, u.ID, at(0))
		must(t, st.CreateMFAFactor(f.ctx, m), "CreateMFAFactor")
		n, err := st.RewrapSealed(f.ctx, func(sealed []byte) ([]byte, bool, error) {
			if bytes.Equal(sealed, m.Secret) {
				return append([]byte("rewrapped:"), sealed...), true, nil
			}
			return sealed, false, nil
		})
		must(t, err, "RewrapSealed")
		if n != 1 {
			t.Errorf("RewrapSealed changed %d values, want the factor's secret", n)
		}
		got, err := st.GetMFAFactor(f.ctx, f.pid, u.ID, m.ID)
		must(t, err, "GetMFAFactor")
		if string(got.Secret) != "rewrapped:"+string(m.Secret) {
			t.Errorf("the factor's sealed secret was not saved rewrapped")
		}
	})
}
