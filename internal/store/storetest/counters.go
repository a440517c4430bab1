package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

func testCounters(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("TakeAndSave", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		keys := []store.CounterKey{{Scope: "password:account", Key: "u1"}, {Scope: "password:ip", Key: "192.0.2.0"}}
		got, err := st.TakeCounters(f.ctx, f.pid, keys, at(0))
		must(t, err, "TakeCounters")
		if len(got) != 2 || got[0].Count != 0 || got[0].Key != "u1" || got[1].Scope != "password:ip" ||
			!got[0].WindowStart.Equal(at(0)) || got[0].LastAt != nil || got[0].LockedUntil != nil {
			t.Fatalf("new counters = %+v", got)
		}
		c := got[0]
		c.Count, c.LastAt, c.LockedUntil, c.UpdatedAt = 3, ptr(at(time.Minute)), ptr(at(time.Hour)), at(time.Minute)
		must(t, st.SaveCounter(f.ctx, c), "SaveCounter")
		again, err := st.TakeCounters(f.ctx, f.pid, keys[:1], at(2*time.Minute))
		must(t, err, "TakeCounters")
		wantEqual(t, c, again[0], "counter after SaveCounter")
		// Another project's counter of the same name is its own.
		other, err := st.TakeCounters(g.ctx, g.pid, keys[:1], at(0))
		must(t, err, "TakeCounters")
		if other[0].Count != 0 {
			t.Errorf("another project's counter = %+v", other[0])
		}
		_, err = st.TakeCounters(f.ctx, newID(), keys, at(0))
		wantNotFound(t, err, "TakeCounters of an unknown project")
		c.Key = "nobody"
		wantNotFound(t, st.SaveCounter(f.ctx, c), "SaveCounter of an unknown counter")
	})

	t.Run("Get", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		k := store.CounterKey{Scope: "refresh:pair", Key: "|192.0.2.1"}
		got, err := st.GetCounters(f.ctx, f.pid, []store.CounterKey{k}, at(0))
		must(t, err, "GetCounters")
		if got[0].Count != 0 || !got[0].WindowStart.Equal(at(0)) {
			t.Errorf("a missing counter = %+v, want zero", got[0])
		}
		cs, err := st.TakeCounters(f.ctx, f.pid, []store.CounterKey{k}, at(0))
		must(t, err, "TakeCounters")
		cs[0].Count, cs[0].LastAt = 4, ptr(at(time.Second))
		must(t, st.SaveCounter(f.ctx, cs[0]), "SaveCounter")
		got, err = st.GetCounters(f.ctx, f.pid, []store.CounterKey{k, {Scope: "refresh:pair", Key: "other"}}, at(time.Hour))
		must(t, err, "GetCounters")
		if got[0].Count != 4 || got[0].LastAt == nil || !got[0].LastAt.Equal(at(time.Second)) || !got[0].WindowStart.Equal(at(0)) ||
			got[1].Count != 0 || !got[1].WindowStart.Equal(at(time.Hour)) {
			t.Errorf("GetCounters = %+v", got)
		}
	})

	t.Run("CheckAndCountIsAtomic", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		keys := []store.CounterKey{{Scope: "s", Key: "account"}, {Scope: "t", Key: "ip"}}
		// 50 concurrent "count unless at the limit" steps: exactly the limit pass, and the
		// counters end at the limit, however the database interleaves them.
		const limit = 10
		errLimit := errors.New("at the limit")
		_, errs := race(racers, func(int) (struct{}, error) {
			return struct{}{}, st.InTx(f.ctx, func(tx store.Store) error {
				cs, err := tx.TakeCounters(f.ctx, f.pid, keys, at(0))
				if err != nil {
					return err
				}
				if cs[0].Count >= limit {
					return errLimit
				}
				for _, c := range cs {
					c.Count++
					c.UpdatedAt = at(time.Second)
					if err := tx.SaveCounter(f.ctx, c); err != nil {
						return err
					}
				}
				return nil
			})
		})
		passed := 0
		for _, err := range errs {
			switch {
			case err == nil:
				passed++
			case !errors.Is(err, errLimit):
				t.Errorf("count step: %v", err)
			}
		}
		cs, err := st.TakeCounters(f.ctx, f.pid, keys, at(0))
		must(t, err, "TakeCounters")
		if passed != limit || cs[0].Count != limit || cs[1].Count != limit {
			t.Errorf("%d concurrent steps: %d passed, counters %d and %d; want %d each", racers, passed, cs[0].Count, cs[1].Count, limit)
		}
	})

	t.Run("IdleSweep", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		// Times 30 days back: the sweep spans every project, and other cases use at(0).
		old := at(-30 * 24 * time.Hour)
		cs, err := st.TakeCounters(f.ctx, f.pid, []store.CounterKey{{Scope: "s", Key: "idle"}, {Scope: "s", Key: "locked"}}, old)
		must(t, err, "TakeCounters")
		cs[1].LockedUntil = ptr(at(time.Hour))
		must(t, st.SaveCounter(f.ctx, cs[1]), "SaveCounter")
		n, err := st.DeleteIdleCounters(f.ctx, old.Add(time.Minute))
		must(t, err, "DeleteIdleCounters")
		if n < 1 {
			t.Errorf("DeleteIdleCounters removed %d, want at least the idle one", n)
		}
		after, err := st.TakeCounters(f.ctx, f.pid, []store.CounterKey{{Scope: "s", Key: "locked"}}, at(0))
		must(t, err, "TakeCounters")
		if after[0].LockedUntil == nil {
			t.Error("the sweep removed a counter that is still locked")
		}
	})
}

func testSpentChallenges(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)
	t.Run("SpendOnce", func(t *testing.T) {
		t.Parallel()
		key := newID()
		firsts, errs := race(racers, func(int) (bool, error) { return st.SpendChallenge(t.Context(), key, at(time.Hour)) })
		won := 0
		for i, err := range errs {
			must(t, err, "SpendChallenge")
			if firsts[i] {
				won++
			}
		}
		if won != 1 {
			t.Errorf("%d concurrent spends of one challenge: %d firsts, want 1", racers, won)
		}
	})
}
