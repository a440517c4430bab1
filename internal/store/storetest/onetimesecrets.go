package storetest

import (
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// newOneTimeSecret returns an unsaved one-time secret that expires ten minutes after at(0).
func newOneTimeSecret(projectID, purpose string) store.OneTimeSecret {
	id := newID()
	return store.OneTimeSecret{
		ID: id, ProjectID: projectID, Purpose: purpose,
		Hash:      randomHash(),
		Subject:   "flow-" + id,
		Payload:   []byte(`{"email":"a@example.com","redirect_uri":"https://app.example.com/cb","n":[1,2]}`),
		CreatedAt: at(0),
		ExpiresAt: at(10 * time.Minute),
	}
}

func testOneTimeSecrets(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("ConsumeSubjectSecrets", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		mine := []store.OneTimeSecret{newOneTimeSecret(f.pid, "password_reset"), newOneTimeSecret(f.pid, "password_reset")}
		other := newOneTimeSecret(f.pid, "password_reset")
		other.Subject = "someone else"
		link := newOneTimeSecret(f.pid, "magic_link")
		for i := range mine {
			mine[i].Subject = "user 1"
		}
		link.Subject = "user 1"
		for _, s := range append(mine, other, link) {
			must(t, st.CreateOneTimeSecret(f.ctx, s), "CreateOneTimeSecret")
		}
		n, err := st.ConsumeSubjectSecrets(g.ctx, g.pid, "password_reset", "user 1", at(time.Minute))
		must(t, err, "ConsumeSubjectSecrets")
		if n != 0 {
			t.Errorf("ConsumeSubjectSecrets through another project spent %d", n)
		}
		n, err = st.ConsumeSubjectSecrets(f.ctx, f.pid, "password_reset", "user 1", at(time.Minute))
		must(t, err, "ConsumeSubjectSecrets")
		if n != 2 {
			t.Errorf("ConsumeSubjectSecrets spent %d, want the subject's 2", n)
		}
		for _, s := range mine {
			_, err := st.ConsumeOneTimeSecret(f.ctx, f.pid, s.Purpose, s.Hash, at(time.Minute))
			wantNotFound(t, err, "a secret spent with its subject's")
		}
		for _, s := range []store.OneTimeSecret{other, link} {
			_, err := st.ConsumeOneTimeSecret(f.ctx, f.pid, s.Purpose, s.Hash, at(time.Minute))
			must(t, err, "another subject's or purpose's secret")
		}
	})

	t.Run("ConsumeOnce", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		s := newOneTimeSecret(f.pid, "magic_link")
		must(t, st.CreateOneTimeSecret(f.ctx, s), "CreateOneTimeSecret")
		when := at(time.Minute)
		got, err := st.ConsumeOneTimeSecret(f.ctx, f.pid, s.Purpose, s.Hash, when)
		must(t, err, "ConsumeOneTimeSecret")
		want := s
		want.ConsumedAt = ptr(when)
		wantEqual(t, want, got, "ConsumeOneTimeSecret (the record, consumed at now)")

		_, err = st.ConsumeOneTimeSecret(f.ctx, f.pid, s.Purpose, s.Hash, at(2*time.Minute))
		wantNotFound(t, err, "ConsumeOneTimeSecret a second time")
		_, err = st.ConsumeOneTimeSecret(f.ctx, f.pid, s.Purpose, randomHash(), when)
		wantNotFound(t, err, "ConsumeOneTimeSecret(unknown hash)")
	})

	t.Run("Expired", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		s := newOneTimeSecret(f.pid, "email_code")
		must(t, st.CreateOneTimeSecret(f.ctx, s), "CreateOneTimeSecret")
		_, err := st.ConsumeOneTimeSecret(f.ctx, f.pid, s.Purpose, s.Hash, s.ExpiresAt.Add(time.Microsecond))
		wantNotFound(t, err, "ConsumeOneTimeSecret 1µs after it expired")
		_, err = st.ConsumeOneTimeSecret(f.ctx, f.pid, s.Purpose, s.Hash, s.ExpiresAt.Add(time.Hour))
		wantNotFound(t, err, "ConsumeOneTimeSecret an hour after it expired")
		// The failed attempts did not use it up.
		got, err := st.ConsumeOneTimeSecret(f.ctx, f.pid, s.Purpose, s.Hash, s.ExpiresAt.Add(-time.Microsecond))
		must(t, err, "ConsumeOneTimeSecret 1µs before it expires")
		want := s
		want.ConsumedAt = ptr(s.ExpiresAt.Add(-time.Microsecond))
		wantEqual(t, want, got, "ConsumeOneTimeSecret 1µs before expiry")
	})

	t.Run("WrongPurposeOrProject", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		g := inNewProject(t, st)
		s := newOneTimeSecret(f.pid, "auth_code")
		must(t, st.CreateOneTimeSecret(f.ctx, s), "CreateOneTimeSecret")
		when := at(time.Minute)
		_, err := st.ConsumeOneTimeSecret(f.ctx, f.pid, "magic_link", s.Hash, when)
		wantNotFound(t, err, "ConsumeOneTimeSecret with the wrong purpose")
		_, err = st.ConsumeOneTimeSecret(f.ctx, g.pid, s.Purpose, s.Hash, when)
		wantNotFound(t, err, "ConsumeOneTimeSecret through another project")
		_, err = st.ConsumeOneTimeSecret(f.ctx, newID(), s.Purpose, s.Hash, when)
		wantNotFound(t, err, "ConsumeOneTimeSecret through an unknown project")
		_, err = st.ConsumeOneTimeSecret(f.ctx, f.pid, s.Purpose, s.Hash, when)
		must(t, err, "ConsumeOneTimeSecret with the right project and purpose after the failed attempts")
	})

	t.Run("DuplicateHash", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		s := newOneTimeSecret(f.pid, "magic_link")
		must(t, st.CreateOneTimeSecret(f.ctx, s), "CreateOneTimeSecret")
		dup := newOneTimeSecret(f.pid, s.Purpose)
		dup.Hash = s.Hash
		wantConflict(t, st.CreateOneTimeSecret(f.ctx, dup), "CreateOneTimeSecret with a duplicate hash for the same purpose")

		other := newOneTimeSecret(f.pid, "email_code")
		other.Hash = s.Hash
		must(t, st.CreateOneTimeSecret(f.ctx, other), "CreateOneTimeSecret with the same hash for another purpose (hashes are unique per purpose)")

		when := at(time.Minute)
		for _, want := range []store.OneTimeSecret{s, other} {
			got, err := st.ConsumeOneTimeSecret(f.ctx, f.pid, want.Purpose, want.Hash, when)
			must(t, err, "ConsumeOneTimeSecret(%s)", want.Purpose)
			want.ConsumedAt = ptr(when)
			wantEqual(t, want, got, "ConsumeOneTimeSecret(%s) of a hash shared by two purposes", want.Purpose)
		}
	})
}
