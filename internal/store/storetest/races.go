package storetest

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// racers is how many goroutines each race case starts.
const racers = 50

// race runs fn in n goroutines that start together: each waits until all are ready, then all
// are released at once by closing one channel. It returns each goroutine's result and error.
func race[T any](n int, fn func(i int) (T, error)) ([]T, []error) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	results, errs := make([]T, n), make([]error, n)
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			results[i], errs[i] = fn(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	return results, errs
}

// checkOneWinner checks that exactly one error is nil and every other one wraps loserErr, and
// returns the winner's index (-1 if there is none).
func checkOneWinner(t *testing.T, errs []error, loserErr error, op string) int {
	t.Helper()
	winner, wins, wrong := -1, 0, map[string]int{}
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
			winner = i
		case !errors.Is(err, loserErr):
			wrong[err.Error()]++
		}
	}
	if wins != 1 {
		t.Errorf("%d concurrent %s: %d succeeded, want exactly 1", len(errs), op, wins)
	}
	if len(wrong) > 0 {
		var lines []string
		for msg, n := range wrong {
			lines = append(lines, fmt.Sprintf("%d× %s", n, msg))
		}
		sort.Strings(lines)
		t.Errorf("%d concurrent %s: losers must fail with %q, but got:\n\t%s", len(errs), op, loserErr, strings.Join(lines, "\n\t"))
	}
	return winner
}

func testRaces(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)
	// The cases run one after another: each may hold up to `racers` connections.

	t.Run("ConsumeOneTimeSecret", func(t *testing.T) {
		f := inNewProject(t, st)
		s := newOneTimeSecret(f.pid, "magic_link")
		must(t, st.CreateOneTimeSecret(f.ctx, s), "CreateOneTimeSecret")
		when := s.CreatedAt.Add(s.ExpiresAt.Sub(s.CreatedAt) / 2)
		got, errs := race(racers, func(int) (store.OneTimeSecret, error) {
			return st.ConsumeOneTimeSecret(f.ctx, f.pid, s.Purpose, s.Hash, when)
		})
		if w := checkOneWinner(t, errs, store.ErrNotFound, "ConsumeOneTimeSecret of one secret"); w >= 0 {
			want := s
			want.ConsumedAt = ptr(when)
			wantEqual(t, want, got[w], "the winner's ConsumeOneTimeSecret result")
		}
		_, err := st.ConsumeOneTimeSecret(f.ctx, f.pid, s.Purpose, s.Hash, when)
		wantNotFound(t, err, "ConsumeOneTimeSecret after the race")
	})

	t.Run("ClaimBootstrap", func(t *testing.T) {
		own := newStore(t) // one claim per database
		ctx := t.Context()
		claimed, errs := race(racers, func(int) (bool, error) { return own.ClaimBootstrap(ctx, now()) })
		trues := 0
		for i, err := range errs {
			if err != nil {
				t.Errorf("concurrent ClaimBootstrap %d: %v", i, err)
			}
			if claimed[i] {
				trues++
			}
		}
		if trues != 1 {
			t.Errorf("%d concurrent ClaimBootstrap on a fresh store: %d reported true, want exactly 1", racers, trues)
		}
		again, err := own.ClaimBootstrap(ctx, now())
		must(t, err, "ClaimBootstrap after the race")
		if again {
			t.Errorf("ClaimBootstrap after the race = true, want false")
		}
	})

	t.Run("CreateUserSameEmail", func(t *testing.T) {
		f := inNewProject(t, st)
		email := "race-" + newID() + "@example.com"
		users := make([]store.User, racers)
		for i := range users {
			users[i] = f.newUser()
			users[i].Email = email
		}
		_, errs := race(racers, func(i int) (struct{}, error) { return struct{}{}, st.CreateUser(f.ctx, users[i]) })
		w := checkOneWinner(t, errs, store.ErrConflict, "CreateUser with one email")
		checkOneUser(t, f, store.UserFilter{Email: email}, users, w)
	})

	t.Run("CreateUserSamePhone", func(t *testing.T) {
		f := inNewProject(t, st)
		phone := uniquePhone()
		users := make([]store.User, racers)
		for i := range users {
			users[i] = f.newUser()
			users[i].Phone = phone
		}
		_, errs := race(racers, func(i int) (struct{}, error) { return struct{}{}, st.CreateUser(f.ctx, users[i]) })
		w := checkOneWinner(t, errs, store.ErrConflict, "CreateUser with one phone")
		checkOneUser(t, f, store.UserFilter{}, users, w)
	})
}

// checkOneUser checks that the project holds exactly one of users, the winner's.
func checkOneUser(t *testing.T, f *fixture, filter store.UserFilter, users []store.User, winner int) {
	t.Helper()
	list, err := f.st.ListUsers(f.ctx, f.pid, filter, store.Page{Limit: 2 * racers})
	must(t, err, "ListUsers after the race")
	if len(list) != 1 {
		t.Errorf("ListUsers after the race: %d users, want 1 (ids %v)", len(list), idsOf(list))
		return
	}
	if winner >= 0 {
		wantEqual(t, users[winner], list[0], "the one user after the race (the winner's)")
	}
}

// testLockProject checks that read-modify-write updates under LockProject serialise: every
// one of racers concurrent transactions appends to the name and none is lost.
func testLockProject(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)
	f := inNewProject(t, st)
	_, errs := race(racers, func(i int) (struct{}, error) {
		return struct{}{}, st.InTx(f.ctx, func(tx store.Store) error {
			p, err := tx.LockProject(f.ctx, f.pid)
			if err != nil {
				return err
			}
			p.Name += fmt.Sprintf("<%d>", i)
			return tx.UpdateProject(f.ctx, p)
		})
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("racer %d: %v", i, err)
		}
	}
	p, err := st.GetProject(f.ctx, f.pid)
	must(t, err, "GetProject")
	for i := range racers {
		if !strings.Contains(p.Name, fmt.Sprintf("<%d>", i)) {
			t.Errorf("the update of racer %d was lost: name %q", i, p.Name)
		}
	}
	_, err = st.LockProject(f.ctx, newID())
	wantNotFound(t, err, "LockProject of an unknown id")
}
