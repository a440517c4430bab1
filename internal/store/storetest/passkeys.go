package storetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func newPasskey(projectID, userID string, created time.Time) store.Passkey {
	return store.Passkey{
		ID: newID(), ProjectID: projectID, UserID: userID, CredentialID: randomBytes(20), PublicKey: randomBytes(77),
		SignCount: 3, AAGUID: randomBytes(16), Transports: []string{"hybrid", "internal"}, BackupEligible: true,
		BackupState: true, UserVerified: true, AttestationType: "none", AttestationFormat: "none", Name: "iCloud Keychain",
		CreatedAt: created, UpdatedAt: created,
	}
}

func testPasskeys(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("Lifecycle", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		u, other := f.user(), f.user()
		p := newPasskey(f.pid, u.ID, at(0))
		p.Transports = []string{}
		must(t, st.CreatePasskey(f.ctx, p), "CreatePasskey")
		got, err := st.GetPasskeyByCredentialID(f.ctx, f.pid, p.CredentialID)
		must(t, err, "GetPasskeyByCredentialID")
		wantEqual(t, p, got, "passkey after CreatePasskey")
		_, err = st.GetPasskeyByCredentialID(f.ctx, g.pid, p.CredentialID)
		wantNotFound(t, err, "GetPasskeyByCredentialID through another project")

		dup := newPasskey(f.pid, other.ID, at(0))
		dup.CredentialID = p.CredentialID
		if err := st.CreatePasskey(f.ctx, dup); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreatePasskey with another user's credential id: %v, want ErrConflict", err)
		}
		wantNotFound(t, st.CreatePasskey(f.ctx, newPasskey(f.pid, newID(), at(0))), "CreatePasskey for an unknown user")
		wantNotFound(t, st.CreatePasskey(f.ctx, newPasskey(g.pid, u.ID, at(0))), "CreatePasskey for another project's user")
		// Credential ids are unique per project: each project is its own relying party.
		gu := g.user()
		elsewhere := newPasskey(g.pid, gu.ID, at(0))
		elsewhere.CredentialID = p.CredentialID
		must(t, st.CreatePasskey(f.ctx, elsewhere), "CreatePasskey of the same credential id in another project")

		second := newPasskey(f.pid, u.ID, at(time.Second))
		must(t, st.CreatePasskey(f.ctx, second), "CreatePasskey second")
		list, err := st.ListPasskeys(f.ctx, f.pid, u.ID)
		must(t, err, "ListPasskeys")
		if len(list) != 2 || list[0].ID != p.ID && list[0].ID != second.ID {
			t.Fatalf("ListPasskeys: %d passkeys, want the 2 of the user", len(list))
		}
		if list, _ := st.ListPasskeys(f.ctx, g.pid, u.ID); len(list) != 0 {
			t.Errorf("ListPasskeys through another project: %d passkeys", len(list))
		}

		renamed, err := st.RenamePasskey(f.ctx, f.pid, u.ID, p.ID, "Work laptop", at(time.Minute))
		must(t, err, "RenamePasskey")
		p.Name, p.UpdatedAt = "Work laptop", at(time.Minute)
		wantEqual(t, p, renamed, "passkey after RenamePasskey")
		_, err = st.RenamePasskey(f.ctx, f.pid, other.ID, p.ID, "x", at(time.Minute))
		wantNotFound(t, err, "RenamePasskey of another user's passkey")

		use := store.PasskeyUse{PrevSignCount: 3, SignCount: 9, BackupState: false, UserVerified: false, At: at(time.Hour)}
		used, err := st.RecordPasskeyUse(f.ctx, f.pid, p.ID, use)
		must(t, err, "RecordPasskeyUse")
		p.SignCount, p.BackupState, p.LastUsedAt, p.UpdatedAt = 9, false, ptr(at(time.Hour)), at(time.Hour)
		wantEqual(t, p, used, "passkey after RecordPasskeyUse (user_verified stays true)")
		if _, err := st.RecordPasskeyUse(f.ctx, f.pid, p.ID, use); !errors.Is(err, store.ErrConflict) {
			t.Errorf("RecordPasskeyUse against a stale count: %v, want ErrConflict", err)
		}

		must(t, st.FlagPasskeyClone(f.ctx, f.pid, p.ID, at(2*time.Hour)), "FlagPasskeyClone")
		got, err = st.GetPasskeyByCredentialID(f.ctx, f.pid, p.CredentialID)
		must(t, err, "GetPasskeyByCredentialID")
		if !got.CloneSuspected {
			t.Error("FlagPasskeyClone did not flag the passkey")
		}
		use = store.PasskeyUse{PrevSignCount: 9, SignCount: 10, At: at(3 * time.Hour)}
		if _, err := st.RecordPasskeyUse(f.ctx, f.pid, p.ID, use); !errors.Is(err, store.ErrConflict) {
			t.Errorf("RecordPasskeyUse of a flagged passkey: %v, want ErrConflict", err)
		}
		wantNotFound(t, st.FlagPasskeyClone(f.ctx, g.pid, p.ID, at(0)), "FlagPasskeyClone through another project")

		wantNotFound(t, st.DeletePasskey(f.ctx, f.pid, other.ID, p.ID), "DeletePasskey of another user's passkey")
		must(t, st.DeletePasskey(f.ctx, f.pid, u.ID, p.ID), "DeletePasskey")
		wantNotFound(t, st.DeletePasskey(f.ctx, f.pid, u.ID, p.ID), "DeletePasskey twice")
		n, err := st.DeleteUserPasskeys(f.ctx, f.pid, u.ID)
		must(t, err, "DeleteUserPasskeys")
		if n != 1 {
			t.Errorf("DeleteUserPasskeys removed %d, want 1", n)
		}
		if got, _ := st.GetPasskeyByCredentialID(f.ctx, g.pid, elsewhere.CredentialID); got.ID != elsewhere.ID {
			t.Error("deleting one project's passkeys touched another project's")
		}
	})

	t.Run("SampleShapes", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		shapes, err := st.SamplePasskeyShapes(f.ctx, f.pid, 10)
		must(t, err, "SamplePasskeyShapes of a project without passkeys")
		if len(shapes) != 0 {
			t.Errorf("shapes of a project without passkeys = %v", shapes)
		}
		u, v := f.user(), f.user()
		if v.ID < u.ID {
			u, v = v, u
		}
		a := newPasskey(f.pid, u.ID, at(0))
		b := newPasskey(f.pid, u.ID, at(time.Second))
		b.CredentialID, b.Transports = randomBytes(64), []string{"nfc", "usb"}
		c := newPasskey(f.pid, v.ID, at(0))
		c.CredentialID, c.Transports = randomBytes(32), []string{}
		for _, p := range []store.Passkey{b, c, a} {
			must(t, st.CreatePasskey(f.ctx, p), "CreatePasskey")
		}
		gu := g.user()
		must(t, st.CreatePasskey(f.ctx, newPasskey(g.pid, gu.ID, at(0))), "CreatePasskey in another project")
		shapes, err = st.SamplePasskeyShapes(f.ctx, f.pid, 10)
		must(t, err, "SamplePasskeyShapes")
		want := []store.PasskeyShape{{UserID: u.ID, IDLength: 20, Transports: []string{"hybrid", "internal"}},
			{UserID: u.ID, IDLength: 64, Transports: []string{"nfc", "usb"}}, {UserID: v.ID, IDLength: 32, Transports: []string{}}}
		wantEqual(t, want, shapes, "SamplePasskeyShapes")
		shapes, err = st.SamplePasskeyShapes(f.ctx, f.pid, 2)
		must(t, err, "SamplePasskeyShapes with a limit")
		wantEqual(t, want[:2], shapes, "SamplePasskeyShapes with a limit of 2")
	})

	t.Run("DeletedWithUser", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u := f.user()
		p := newPasskey(f.pid, u.ID, at(0))
		must(t, st.CreatePasskey(f.ctx, p), "CreatePasskey")
		_, err := st.EnsurePasskeyHandle(f.ctx, f.pid, u.ID, randomBytes(32))
		must(t, err, "EnsurePasskeyHandle")
		must(t, st.DeleteUser(f.ctx, f.pid, u.ID), "DeleteUser")
		_, err = st.GetPasskeyByCredentialID(f.ctx, f.pid, p.CredentialID)
		wantNotFound(t, err, "passkey of a deleted user")
		_, err = st.PasskeyHandle(f.ctx, f.pid, u.ID)
		wantNotFound(t, err, "handle of a deleted user")
	})

	t.Run("Handles", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		u := f.user()
		_, err := st.PasskeyHandle(f.ctx, f.pid, u.ID)
		wantNotFound(t, err, "PasskeyHandle before any")
		candidates := make([][]byte, 20)
		for i := range candidates {
			candidates[i] = randomBytes(32)
		}
		handles, errs := race(len(candidates), func(i int) ([]byte, error) {
			return st.EnsurePasskeyHandle(f.ctx, f.pid, u.ID, candidates[i])
		})
		for i, err := range errs {
			must(t, err, "EnsurePasskeyHandle %d", i)
		}
		stored, err := st.PasskeyHandle(f.ctx, f.pid, u.ID)
		must(t, err, "PasskeyHandle")
		for i, h := range handles {
			if !bytes.Equal(h, stored) {
				t.Fatalf("concurrent EnsurePasskeyHandle %d got a handle that is not the stored one", i)
			}
		}
		id, err := st.UserIDByPasskeyHandle(f.ctx, f.pid, stored)
		must(t, err, "UserIDByPasskeyHandle")
		if id != u.ID {
			t.Errorf("UserIDByPasskeyHandle = %s, want %s", id, u.ID)
		}
		_, err = st.UserIDByPasskeyHandle(f.ctx, g.pid, stored)
		wantNotFound(t, err, "UserIDByPasskeyHandle through another project")
		_, err = st.EnsurePasskeyHandle(f.ctx, f.pid, newID(), randomBytes(32))
		wantNotFound(t, err, "EnsurePasskeyHandle for an unknown user")
	})
}

func newCeremony(projectID, kind string, created time.Time) store.Ceremony {
	return store.Ceremony{
		ID: newID(), ProjectID: projectID, CodeHash: randomHash(), Kind: kind, IdentifierKey: "ann@example.com",
		Session: []byte(`{"challenge":"abc"}`), Status: store.CeremonyPending, CreatedAt: created,
		ExpiresAt: created.Add(5 * time.Minute),
	}
}

func testCeremonies(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("UseOnce", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		c := newCeremony(f.pid, store.CeremonyLogin, at(0))
		must(t, st.CreateCeremony(f.ctx, c), "CreateCeremony")
		wantNotFound(t, st.CreateCeremony(f.ctx, newCeremony(newID(), store.CeremonyLogin, at(0))),
			"CreateCeremony in an unknown project")

		_, err := st.UseCeremony(f.ctx, g.pid, store.CeremonyLogin, c.CodeHash, at(time.Minute))
		wantNotFound(t, err, "UseCeremony through another project")
		_, err = st.UseCeremony(f.ctx, f.pid, store.CeremonyRegister, c.CodeHash, at(time.Minute))
		wantNotFound(t, err, "UseCeremony of the wrong kind")
		_, err = st.UseCeremony(f.ctx, f.pid, store.CeremonyLogin, c.CodeHash, c.ExpiresAt)
		wantNotFound(t, err, "UseCeremony at its expiry")

		got, errs := race(50, func(int) (store.Ceremony, error) {
			return st.UseCeremony(f.ctx, f.pid, store.CeremonyLogin, c.CodeHash, at(time.Minute))
		})
		w := checkOneWinner(t, errs, store.ErrNotFound, "UseCeremony")
		if w >= 0 {
			c.Status = store.CeremonyUsed
			wantEqual(t, c, got[w], "ceremony after UseCeremony")
		}

		u := f.user()
		must(t, st.FinishCeremony(f.ctx, f.pid, c.ID, store.CeremonyCompleted, u.ID, "", at(2*time.Minute)), "FinishCeremony")
		latest, err := st.LatestCeremony(f.ctx, f.pid, "ann@example.com")
		must(t, err, "LatestCeremony")
		c.Status, c.UserID, c.FinishedAt = store.CeremonyCompleted, u.ID, ptr(at(2*time.Minute))
		wantEqual(t, c, latest, "ceremony after FinishCeremony")
		wantNotFound(t, st.FinishCeremony(f.ctx, f.pid, c.ID, store.CeremonyFailed, "", "", at(3*time.Minute)),
			"FinishCeremony twice")
		_, err = st.LatestCeremony(f.ctx, g.pid, "ann@example.com")
		wantNotFound(t, err, "LatestCeremony through another project")
	})

	t.Run("Latest", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		old := newCeremony(f.pid, store.CeremonyLogin, at(0))
		newer := newCeremony(f.pid, store.CeremonyLogin, at(time.Minute))
		anon := newCeremony(f.pid, store.CeremonyLogin, at(2*time.Minute))
		anon.IdentifierKey = ""
		for _, c := range []store.Ceremony{newer, old, anon} {
			must(t, st.CreateCeremony(f.ctx, c), "CreateCeremony")
		}
		latest, err := st.LatestCeremony(f.ctx, f.pid, "ann@example.com")
		must(t, err, "LatestCeremony")
		if latest.ID != newer.ID {
			t.Errorf("LatestCeremony = %s, want the newer one %s", latest.ID, newer.ID)
		}
		// A discoverable login learns its identifier when it finishes.
		_, err = st.UseCeremony(f.ctx, f.pid, store.CeremonyLogin, anon.CodeHash, at(3*time.Minute))
		must(t, err, "UseCeremony")
		must(t, st.FinishCeremony(f.ctx, f.pid, anon.ID, store.CeremonyCompleted, "", "ann@example.com", at(3*time.Minute)),
			"FinishCeremony")
		latest, err = st.LatestCeremony(f.ctx, f.pid, "ann@example.com")
		must(t, err, "LatestCeremony")
		if latest.ID != anon.ID || latest.Status != store.CeremonyCompleted {
			t.Errorf("LatestCeremony = %s %s, want the finished discoverable one", latest.ID, latest.Status)
		}
	})
}
