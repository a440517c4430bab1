package passwordauth

import (
	"fmt"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/password"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestUnknownEmailsImitateTheProjectsHashes: a login for an email without a password does the
// work of a hash drawn from the project's stored hashes in their proportions, the same one for
// the same email every time, and argon2id's when the project has no passwords. Before, it was
// always argon2id's, so a user on an imported bcrypt-12 hash answered 276 ms against 45 ms and
// stood out from unknown emails.
func TestUnknownEmailsImitateTheProjectsHashes(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := t.Context()
		ids := ident.NewGenerator()
		now := time.Now().UTC().Truncate(time.Microsecond)
		clock := now
		s := New(Deps{Store: st, Now: func() time.Time { return clock }, EnumerationKey: []byte("a test enumeration key, 32 bytes")})
		p := store.Project{ID: ids.New(), ClientID: "cli_" + ids.New(), Name: "Mix", Settings: []byte(`{}`), CreatedAt: now, UpdatedAt: now}
		if err := st.CreateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
		share := func() (map[string]int, map[string]string) {
			got, kinds := map[string]int{}, map[string]string{}
			for i := range 400 {
				key := fmt.Sprintf("stranger-%d@example.com", i)
				k, err := s.standInKind(ctx, p.ID, key)
				if err != nil {
					t.Fatal(err)
				}
				got[k]++
				kinds[key] = k
			}
			return got, kinds
		}
		if got, _ := share(); got[password.KindArgon2id] != 400 {
			t.Fatalf("without passwords: %v, want argon2id only", got)
		}
		hashes := []string{"$2b$12$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQ", "$2a$12$x", "$2y$12$y", "$argon2id$v=19$m=19456,t=2,p=1$a$b"}
		for i, h := range hashes {
			u := store.User{ID: ids.New(), ProjectID: p.ID, Email: fmt.Sprintf("u%d@example.com", i), Active: true,
				ConnectionType: "ManualUser", Groups: []string{}, RawAttributes: map[string]any{}, CreatedAt: now, UpdatedAt: now}
			if err := st.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			if err := st.SetPasswordHash(ctx, p.ID, u.ID, h, now); err != nil {
				t.Fatal(err)
			}
		}
		// The mix counted before is reused for a minute, then counted again.
		if got, _ := share(); got[password.KindArgon2id] != 400 {
			t.Fatalf("within a minute of the count: %v", got)
		}
		clock = clock.Add(mixTTL)
		got, first := share()
		if b := got["bcrypt-12"]; b < 250 || b > 350 || got[password.KindArgon2id] != 400-b {
			t.Errorf("three hashes in four are bcrypt-12, the stand-ins were %v", got)
		}
		_, again := share()
		for key, k := range first {
			if again[key] != k {
				t.Errorf("%s: stand-in %s then %s", key, k, again[key])
			}
		}

		// One more user signs up with argon2id: the bcrypt share falls from 3/4 to 3/5, and only
		// about that difference of the emails (15%, some 60 of 400) changes kind, all from
		// bcrypt to argon2id, as an upgrade at login changes a known user's.
		u := store.User{ID: ids.New(), ProjectID: p.ID, Email: "late@example.com", Active: true, ConnectionType: "ManualUser",
			Groups: []string{}, RawAttributes: map[string]any{}, CreatedAt: now, UpdatedAt: now}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := st.SetPasswordHash(ctx, p.ID, u.ID, "$argon2id$v=19$m=19456,t=2,p=1$c$d", now); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(mixTTL)
		_, later := share()
		flipped := 0
		for key, k := range first {
			if later[key] != k {
				flipped++
				if k != "bcrypt-12" || later[key] != password.KindArgon2id {
					t.Errorf("%s: %s became %s", key, k, later[key])
				}
			}
		}
		if flipped > 100 {
			t.Errorf("%d of 400 emails changed kind when one user signed up", flipped)
		}
	})
}
