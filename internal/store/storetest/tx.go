package storetest

import (
	"errors"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/store"
)

var errRollback = errors.New("storetest: fn failed on purpose")

// txWrites is a set of writes of several kinds made through one transaction-bound store.
type txWrites struct {
	user store.User
	org  store.Organization
	perm store.Permission
	role store.Role
	ots  store.OneTimeSecret
}

// write makes the writes through tx and checks that tx reads them back.
func (w *txWrites) write(t *testing.T, f *fixture, tx store.Store) error {
	t.Helper()
	ctx := f.ctx
	w.user = f.newUser()
	w.org = store.Organization{ID: newID(), ProjectID: f.pid, Name: "tx org", Active: true, CreatedAt: at(0), UpdatedAt: at(0)}
	w.perm = store.Permission{ID: newID(), ProjectID: f.pid, Name: "tx perm", Slug: "tx-perm-" + newID(), CreatedAt: at(0), UpdatedAt: at(0)}
	w.role = store.Role{ID: newID(), ProjectID: f.pid, Name: "tx role", Slug: "tx-role-" + newID(), PermissionIDs: []string{w.perm.ID}, Active: true, CreatedAt: at(0), UpdatedAt: at(0)}
	w.ots = newOneTimeSecret(f.pid, "magic_link")
	for _, step := range []struct {
		op  string
		err func() error
	}{
		{"CreateUser", func() error { return tx.CreateUser(ctx, w.user) }},
		{"CreateOrganization", func() error { return tx.CreateOrganization(ctx, w.org) }},
		{"CreatePermission", func() error { return tx.CreatePermission(ctx, w.perm) }},
		{"CreateRole", func() error { return tx.CreateRole(ctx, w.role) }},
		{"SetMemberRoles", func() error { return tx.SetMemberRoles(ctx, f.pid, w.org.ID, w.user.ID, []string{w.role.ID}, at(0)) }},
		{"AddLoginLog", func() error { return tx.AddLoginLog(ctx, newLoginLog(f.pid, w.user.ID, newID(), at(0))) }},
		{"CreateOneTimeSecret", func() error { return tx.CreateOneTimeSecret(ctx, w.ots) }},
	} {
		if err := step.err(); err != nil {
			t.Errorf("%s inside InTx: %v", step.op, err)
			return err
		}
	}
	got, err := tx.GetUser(ctx, f.pid, w.user.ID)
	if err != nil {
		t.Errorf("GetUser inside InTx of a user written in the same transaction: %v", err)
		return err
	}
	wantEqual(t, w.user, got, "GetUser inside InTx")
	return nil
}

// checkGone checks that none of the writes is visible.
func (w *txWrites) checkGone(t *testing.T, f *fixture, after string) {
	t.Helper()
	st, ctx, pid := f.st, f.ctx, f.pid
	_, err := st.GetUser(ctx, pid, w.user.ID)
	wantNotFound(t, err, "GetUser after %s", after)
	_, err = st.GetOrganization(ctx, pid, w.org.ID)
	wantNotFound(t, err, "GetOrganization after %s", after)
	_, err = st.GetPermission(ctx, pid, w.perm.ID)
	wantNotFound(t, err, "GetPermission after %s", after)
	_, err = st.GetRole(ctx, pid, w.role.ID)
	wantNotFound(t, err, "GetRole after %s", after)
	wantMemberKeys(t, nil, f.memberships(w.user.ID), "ListMemberships after %s", after)
	_, err = st.ConsumeOneTimeSecret(ctx, pid, w.ots.Purpose, w.ots.Hash, at(0))
	wantNotFound(t, err, "ConsumeOneTimeSecret after %s", after)
}

// checkThere checks that every write is visible.
func (w *txWrites) checkThere(t *testing.T, f *fixture, after string) {
	t.Helper()
	st, ctx, pid := f.st, f.ctx, f.pid
	if got, err := st.GetUser(ctx, pid, w.user.ID); err != nil {
		t.Errorf("GetUser after %s: %v", after, err)
	} else {
		wantEqual(t, w.user, got, "user after %s", after)
	}
	if _, err := st.GetOrganization(ctx, pid, w.org.ID); err != nil {
		t.Errorf("GetOrganization after %s: %v", after, err)
	}
	if _, err := st.GetPermission(ctx, pid, w.perm.ID); err != nil {
		t.Errorf("GetPermission after %s: %v", after, err)
	}
	if got, err := st.GetRole(ctx, pid, w.role.ID); err != nil {
		t.Errorf("GetRole after %s: %v", after, err)
	} else {
		wantEqual(t, w.role, got, "role after %s", after)
	}
	wantMemberKeys(t, []string{key(w.user.ID, w.org.ID)}, f.memberships(w.user.ID), "ListMemberships after %s", after)
	logs, err := st.ListLoginLogs(ctx, pid, w.user.ID, 10, "")
	if err != nil || len(logs) != 1 {
		t.Errorf("ListLoginLogs after %s: %d logs, err %v; want 1 log", after, len(logs), err)
	}
	if _, err := st.ConsumeOneTimeSecret(ctx, pid, w.ots.Purpose, w.ots.Hash, at(0)); err != nil {
		t.Errorf("ConsumeOneTimeSecret after %s: %v", after, err)
	}
}

func testInTx(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("Ping", func(t *testing.T) {
		t.Parallel()
		must(t, st.Ping(t.Context()), "Ping")
	})

	t.Run("Commit", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		var w txWrites
		must(t, st.InTx(f.ctx, func(tx store.Store) error { return w.write(t, f, tx) }), "InTx")
		w.checkThere(t, f, "InTx whose fn succeeded")
	})

	t.Run("Rollback", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		var w txWrites
		err := st.InTx(f.ctx, func(tx store.Store) error {
			if err := w.write(t, f, tx); err != nil {
				return err
			}
			return errRollback
		})
		wantErr(t, err, errRollback, "InTx whose fn failed")
		w.checkGone(t, f, "InTx whose fn failed")
	})

	t.Run("StoreErrorRollsBack", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		taken := f.user()
		var w txWrites
		err := st.InTx(f.ctx, func(tx store.Store) error {
			if err := w.write(t, f, tx); err != nil {
				return err
			}
			dup := f.newUser()
			dup.Email = taken.Email
			err := tx.CreateUser(f.ctx, dup)
			wantConflict(t, err, "CreateUser with a taken email inside InTx")
			return err
		})
		wantConflict(t, err, "InTx whose fn returned the ErrConflict of a write")
		w.checkGone(t, f, "InTx whose fn failed on a conflict")
	})

	t.Run("NestedCommit", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		var outer, inner txWrites
		err := st.InTx(f.ctx, func(tx store.Store) error {
			if err := outer.write(t, f, tx); err != nil {
				return err
			}
			return tx.InTx(f.ctx, func(tx2 store.Store) error {
				if err := inner.write(t, f, tx2); err != nil {
					return err
				}
				// The nested fn runs in the outer transaction: it sees the outer writes.
				if _, err := tx2.GetUser(f.ctx, f.pid, outer.user.ID); err != nil {
					t.Errorf("GetUser in a nested InTx of a user written by the outer fn: %v", err)
				}
				return nil
			})
		})
		must(t, err, "InTx with a nested InTx")
		outer.checkThere(t, f, "InTx with a nested InTx (outer writes)")
		inner.checkThere(t, f, "InTx with a nested InTx (nested writes)")
	})

	t.Run("NestedRollback", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		var outer, inner txWrites
		err := st.InTx(f.ctx, func(tx store.Store) error {
			if err := outer.write(t, f, tx); err != nil {
				return err
			}
			if err := tx.InTx(f.ctx, func(tx2 store.Store) error { return inner.write(t, f, tx2) }); err != nil {
				t.Errorf("nested InTx: %v", err)
			}
			return errRollback
		})
		wantErr(t, err, errRollback, "InTx whose fn failed after a nested InTx succeeded")
		outer.checkGone(t, f, "the outer fn failed (outer writes)")
		inner.checkGone(t, f, "the outer fn failed after a nested InTx succeeded (the nested InTx must not commit on its own)")
	})

	t.Run("NestedError", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		var outer, inner txWrites
		err := st.InTx(f.ctx, func(tx store.Store) error {
			if err := outer.write(t, f, tx); err != nil {
				return err
			}
			err := tx.InTx(f.ctx, func(tx2 store.Store) error {
				if err := inner.write(t, f, tx2); err != nil {
					return err
				}
				return errRollback
			})
			wantErr(t, err, errRollback, "nested InTx whose fn failed")
			return err
		})
		wantErr(t, err, errRollback, "InTx returning the nested InTx's error")
		outer.checkGone(t, f, "a nested InTx failed (outer writes)")
		inner.checkGone(t, f, "a nested InTx failed (nested writes)")
	})
}
