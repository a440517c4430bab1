package storetest

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// testKeyCheck runs on a store of its own: the key check and AnySealed span the database.
func testKeyCheck(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)
	f := inNewProject(t, st)
	_, err := st.KeyCheck(f.ctx)
	wantNotFound(t, err, "KeyCheck before one was written")
	_, err = st.AnySealed(f.ctx)
	wantNotFound(t, err, "AnySealed of a database with no sealed value")

	// Concurrent first starts: one value wins, and every caller is told which.
	got, errs := race(racers, func(i int) ([]byte, error) {
		return st.AddKeyCheck(f.ctx, fmt.Appendf(nil, "sealed-%d", i), at(0))
	})
	for i, err := range errs {
		must(t, err, "AddKeyCheck")
		if !bytes.Equal(got[i], got[0]) {
			t.Fatalf("concurrent AddKeyCheck returned %q and %q: want one stored value", got[0], got[i])
		}
	}
	stored, err := st.KeyCheck(f.ctx)
	must(t, err, "KeyCheck")
	if !bytes.Equal(stored, got[0]) {
		t.Errorf("KeyCheck = %q, want the value AddKeyCheck returned, %q", stored, got[0])
	}
	again, err := st.AddKeyCheck(f.ctx, []byte("later"), at(0))
	must(t, err, "AddKeyCheck")
	if !bytes.Equal(again, stored) {
		t.Errorf("a later AddKeyCheck replaced the check: %q", again)
	}
	_, err = st.AnySealed(f.ctx)
	wantNotFound(t, err, "AnySealed counts the key check as a sealed value")

	u := f.user()
	m := newMFAFactor(f.pid, u.ID, at(0))
	must(t, st.CreateMFAFactor(f.ctx, m), "CreateMFAFactor")
	sample, err := st.AnySealed(f.ctx)
	must(t, err, "AnySealed")
	if !bytes.Equal(sample, m.Secret) {
		t.Errorf("AnySealed = %q, want the one sealed value, the factor's secret", sample)
	}

	// A master key rotation rewraps the check too, without counting it as a secret.
	n, err := st.RewrapSealed(f.ctx, func(sealed []byte) ([]byte, bool, error) {
		return append([]byte("rewrapped:"), sealed...), true, nil
	})
	must(t, err, "RewrapSealed")
	if n != 1 {
		t.Errorf("RewrapSealed counted %d secrets, want 1 (the factor's; the check is none)", n)
	}
	rewrapped, err := st.KeyCheck(f.ctx)
	must(t, err, "KeyCheck")
	if string(rewrapped) != "rewrapped:"+string(stored) {
		t.Errorf("KeyCheck after RewrapSealed = %q, want it rewrapped", rewrapped)
	}
}
