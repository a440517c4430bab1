package storetest

import (
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

func testProjects(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("CreateGet", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		p := f.project()
		got, err := st.GetProject(f.ctx, p.ID)
		must(t, err, "GetProject(%s)", p.ID)
		wantEqual(t, p, got, "GetProject(%s)", p.ID)

		got, err = st.GetProjectByClientID(f.ctx, p.ClientID)
		must(t, err, "GetProjectByClientID(%s)", p.ClientID)
		wantEqual(t, p, got, "GetProjectByClientID(%s)", p.ClientID)
	})

	t.Run("Unknown", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		_, err := st.GetProject(ctx, newID())
		wantNotFound(t, err, "GetProject(unknown id)")
		_, err = st.GetProjectByClientID(ctx, "cli_"+newID())
		wantNotFound(t, err, "GetProjectByClientID(unknown client id)")
		id := newID()
		err = st.UpdateProject(ctx, store.Project{ID: id, ClientID: "cli_" + id, Name: "x", Settings: []byte(`{}`), UpdatedAt: now()})
		wantNotFound(t, err, "UpdateProject(unknown id)")
	})

	t.Run("DuplicateClientID", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		p := f.project()
		dup := store.Project{ID: newID(), ClientID: p.ClientID, Name: "Duplicate", Settings: []byte(`{}`), CreatedAt: now(), UpdatedAt: now()}
		wantConflict(t, st.CreateProject(f.ctx, dup), "CreateProject with the client id of %s", p.ID)
		_, err := st.GetProject(f.ctx, dup.ID)
		wantNotFound(t, err, "GetProject of the project refused for a duplicate client id")
		got, err := st.GetProjectByClientID(f.ctx, p.ClientID)
		must(t, err, "GetProjectByClientID(%s)", p.ClientID)
		wantEqual(t, p, got, "GetProjectByClientID after the refused duplicate")
	})

	t.Run("Update", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		p := f.project()
		upd := p
		upd.Name = "Renamed"
		upd.Settings = []byte(`{"rp_id":"login.example.org","token":{"ttl":900}}`)
		upd.UpdatedAt = at(time.Hour)
		// UpdateProject writes name, settings and updated_at only.
		upd.ClientID = "cli_" + newID()
		upd.CreatedAt = at(-time.Hour)
		must(t, st.UpdateProject(f.ctx, upd), "UpdateProject(%s)", p.ID)

		want := p
		want.Name, want.Settings, want.UpdatedAt = upd.Name, upd.Settings, upd.UpdatedAt
		got, err := st.GetProject(f.ctx, p.ID)
		must(t, err, "GetProject(%s)", p.ID)
		wantEqual(t, want, got, "GetProject after UpdateProject (client id and created_at must not change)")
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		own := newStore(t) // ListProjects sees the whole database
		f := &fixture{t: t, ctx: t.Context(), st: own}
		var want []store.Project
		for range 4 {
			want = append(want, f.project())
		}
		sortByID(want)
		got, err := own.ListProjects(f.ctx)
		must(t, err, "ListProjects")
		wantRecords(t, want, got, "ListProjects on a store holding only these projects")
	})

	t.Run("ClaimBootstrapOnce", func(t *testing.T) {
		t.Parallel()
		own := newStore(t) // one claim per database
		ctx := t.Context()
		for i, want := range []bool{true, false, false} {
			got, err := own.ClaimBootstrap(ctx, now())
			must(t, err, "ClaimBootstrap call %d", i+1)
			if got != want {
				t.Errorf("ClaimBootstrap call %d on a fresh store = %v, want %v", i+1, got, want)
			}
		}
	})
}

func testProjectSecrets(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	newSecret := func(projectID string, expires *time.Time) store.ProjectSecret {
		return store.ProjectSecret{
			ID:        newID(),
			ProjectID: projectID,
			Hash:      randomHash(),
			Hint:      "…" + newID()[20:],
			CreatedAt: at(0),
			ExpiresAt: expires,
		}
	}

	t.Run("CreateFindList", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		other := inNewProject(t, st)
		a := newSecret(f.pid, nil)
		b := newSecret(f.pid, ptr(at(24*time.Hour)))
		c := newSecret(other.pid, nil)
		for _, s := range []store.ProjectSecret{a, b, c} {
			must(t, st.CreateProjectSecret(f.ctx, s), "CreateProjectSecret(%s)", s.ID)
		}
		for _, s := range []store.ProjectSecret{a, b, c} {
			got, err := st.FindProjectSecret(f.ctx, s.Hash)
			must(t, err, "FindProjectSecret(hash of %s)", s.ID)
			wantEqual(t, s, got, "FindProjectSecret(hash of %s)", s.ID)
		}
		_, err := st.FindProjectSecret(f.ctx, randomHash())
		wantNotFound(t, err, "FindProjectSecret(unknown hash)")

		got, err := st.ListProjectSecrets(f.ctx, f.pid)
		must(t, err, "ListProjectSecrets")
		want := []store.ProjectSecret{a, b}
		sortByID(want)
		wantRecords(t, want, got, "ListProjectSecrets (the other project's secret must not appear)")
	})

	t.Run("FindExpired", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		s := newSecret(f.pid, ptr(at(-24*time.Hour)))
		must(t, st.CreateProjectSecret(f.ctx, s), "CreateProjectSecret")
		got, err := st.FindProjectSecret(f.ctx, s.Hash)
		must(t, err, "FindProjectSecret of an expired secret (the caller decides what expiry means)")
		wantEqual(t, s, got, "FindProjectSecret of an expired secret")
	})

	t.Run("DuplicateHash", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		other := inNewProject(t, st)
		s := newSecret(f.pid, nil)
		must(t, st.CreateProjectSecret(f.ctx, s), "CreateProjectSecret")
		dup := newSecret(f.pid, nil)
		dup.Hash = s.Hash
		wantConflict(t, st.CreateProjectSecret(f.ctx, dup), "CreateProjectSecret with a duplicate hash in the same project")
		dup2 := newSecret(other.pid, nil)
		dup2.Hash = s.Hash
		wantConflict(t, st.CreateProjectSecret(f.ctx, dup2), "CreateProjectSecret with a duplicate hash in another project (hashes are unique across projects)")

		got, err := st.FindProjectSecret(f.ctx, s.Hash)
		must(t, err, "FindProjectSecret")
		wantEqual(t, s, got, "FindProjectSecret after the refused duplicates")
		list, err := st.ListProjectSecrets(f.ctx, other.pid)
		must(t, err, "ListProjectSecrets(other)")
		wantIDs(t, nil, idsOf(list), "ListProjectSecrets of the project whose duplicate was refused")
	})

	t.Run("Retire", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		other := inNewProject(t, st)
		retireAt := at(time.Hour)
		keep := newSecret(f.pid, nil)
		open := newSecret(f.pid, nil)
		earlier := newSecret(f.pid, ptr(at(30*time.Minute)))
		later := newSecret(f.pid, ptr(at(48*time.Hour)))
		foreign := newSecret(other.pid, nil)
		for _, s := range []store.ProjectSecret{keep, open, earlier, later, foreign} {
			must(t, st.CreateProjectSecret(f.ctx, s), "CreateProjectSecret(%s)", s.ID)
		}
		must(t, st.RetireProjectSecrets(f.ctx, f.pid, keep.ID, retireAt), "RetireProjectSecrets")

		wantAfter := map[string]store.ProjectSecret{keep.ID: keep, open.ID: open, earlier.ID: earlier, later.ID: later, foreign.ID: foreign}
		o := wantAfter[open.ID]
		o.ExpiresAt = ptr(retireAt)
		wantAfter[open.ID] = o
		l := wantAfter[later.ID]
		l.ExpiresAt = ptr(retireAt)
		wantAfter[later.ID] = l
		why := map[string]string{
			keep.ID:    "the kept secret must not expire",
			open.ID:    "a secret with no expiry must expire at `at`",
			earlier.ID: "an earlier expiry must not be extended",
			later.ID:   "a later expiry must be brought forward to `at`",
			foreign.ID: "another project's secret must not change",
		}
		for id, want := range wantAfter {
			got, err := st.FindProjectSecret(f.ctx, want.Hash)
			must(t, err, "FindProjectSecret(%s)", id)
			wantEqual(t, want, got, "after RetireProjectSecrets: %s", why[id])
		}
	})
}
