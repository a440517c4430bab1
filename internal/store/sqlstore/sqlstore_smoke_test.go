package sqlstore_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// These tests cover what is particular to sqlstore (migrations, pools, savepoints, query
// plans) plus a quick pass over each area; the full contract is checked by storetest.

var seq atomic.Int64

var start = time.Now().Unix()

// id returns a fresh 24-hex-digit id that sorts after every earlier one in this process.
func id() string { return fmt.Sprintf("%012x%012x", start, seq.Add(1)) }

func project(t *testing.T, s store.Store) string {
	t.Helper()
	pid := id()
	now := time.Now()
	if err := s.CreateProject(t.Context(), store.Project{ID: pid, ClientID: "cli_" + pid, Name: "P",
		Settings: []byte(`{}`), CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	return pid
}

func user(t *testing.T, s store.Store, pid, email string) store.User {
	t.Helper()
	u := store.User{ID: id(), ProjectID: pid, Email: email, Active: true, ConnectionType: "ManualUser",
		CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	return u
}

func TestMigrate(t *testing.T) {
	testdb.Each(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := t.Context()
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		var n int
		if err := s.WriterDB().QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if want := s.MigrationCount(); n != want {
			t.Errorf("schema_migrations has %d rows, want %d", n, want)
		}

		if _, err := s.WriterDB().ExecContext(ctx,
			"INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'from_the_future', 0)"); err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); !errors.Is(err, sqlstore.ErrSchemaTooNew) {
			t.Errorf("Migrate on a newer schema: err = %v, want ErrSchemaTooNew", err)
		}
	})
}

// TestMigrateConcurrently starts several processes' worth of Migrate on one fresh database:
// each migration must be applied once and every caller must succeed.
func TestMigrateConcurrently(t *testing.T) {
	ctx := t.Context()
	open := map[string]func(t *testing.T) func() (*sqlstore.Store, error){
		"sqlite": func(t *testing.T) func() (*sqlstore.Store, error) {
			path := filepath.Join(t.TempDir(), "db", "latchkey.db")
			return func() (*sqlstore.Store, error) { return sqlstore.OpenSQLite(ctx, path) }
		},
		"postgres": func(t *testing.T) func() (*sqlstore.Store, error) {
			url := testdb.PostgresURL(t)
			return func() (*sqlstore.Store, error) { return sqlstore.OpenPostgres(ctx, url) }
		},
	}
	for name, opener := range open {
		t.Run(name, func(t *testing.T) {
			openStore := opener(t)
			const n = 5
			stores := make([]*sqlstore.Store, n)
			for i := range stores {
				s, err := openStore()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				stores[i] = s
			}
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i, s := range stores {
				wg.Go(func() { errs[i] = s.Migrate(ctx) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("Migrate %d: %v", i, err)
				}
			}
			var count int
			if err := stores[0].WriterDB().QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations").Scan(&count); err != nil {
				t.Fatal(err)
			}
			if want := stores[0].MigrationCount(); count != want {
				t.Errorf("schema_migrations has %d rows, want %d", count, want)
			}
		})
	}
}

func TestSQLiteFileAndPools(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sub", "dir", "latchkey.db")
	s, err := sqlstore.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, path + "-wal": 0o600, filepath.Dir(path): 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
	pragma := func(name string) string {
		var v string
		if err := s.WriterDB().QueryRowContext(ctx, "PRAGMA "+name).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for name, want := range map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "10000"} {
		if got := pragma(name); got != want {
			t.Errorf("PRAGMA %s = %s, want %s", name, got, want)
		}
	}
	if _, err := s.ReaderDB().ExecContext(ctx, "DELETE FROM projects"); err == nil {
		t.Error("the read pool accepted a write")
	}
	if s.Dialect() != "sqlite" || len(s.Collectors()) != 2 {
		t.Errorf("Dialect %q, %d collectors", s.Dialect(), len(s.Collectors()))
	}
	for _, bad := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if s, err := sqlstore.OpenSQLite(ctx, bad); err == nil {
			s.Close()
			t.Errorf("OpenSQLite(%q) succeeded", bad)
		}
	}
}

// TestSQLitePagingUsesIndex checks that paging queries walk an index instead of sorting.
func TestSQLitePagingUsesIndex(t *testing.T) {
	s := testdb.SQLite(t)
	for _, q := range []string{
		"SELECT id FROM users WHERE project_id = 'p' AND id > '' ORDER BY id LIMIT 10",
		"SELECT id FROM organizations WHERE project_id = 'p' AND id > '' ORDER BY id LIMIT 10",
		"SELECT id FROM roles WHERE project_id = 'p' AND id > '' ORDER BY id LIMIT 10",
		"SELECT id FROM permissions WHERE project_id = 'p' AND id > '' ORDER BY id LIMIT 10",
		"SELECT user_id FROM memberships WHERE project_id = 'p' AND organization_id = 'o' AND user_id > '' ORDER BY user_id LIMIT 10",
		"SELECT id FROM login_logs WHERE project_id = 'p' AND user_id = 'u' AND (created_at < 5 OR (created_at = 5 AND id < 'z')) ORDER BY created_at DESC, id DESC LIMIT 10",
	} {
		rows, err := s.WriterDB().QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var a, b, c int
			var detail string
			if err := rows.Scan(&a, &b, &c, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if !strings.Contains(p, "USING") || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%s\n\tplan: %s", q, p)
		}
	}
}

func TestRoundTripAndErrors(t *testing.T) {
	testdb.Each(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := t.Context()
		pid, other := project(t, s), project(t, s)
		login := time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.FixedZone("x", 3600))
		u := store.User{ID: id(), ProjectID: pid, Email: "a@example.com", FirstName: "A", EmailVerified: true,
			Active: true, Groups: []string{"g1", "g2"}, RawAttributes: map[string]any{"k": "v", "n": 1.5},
			CreatedAt: login, UpdatedAt: login, LastLoginAt: &login}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetUser(ctx, pid, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := login.Truncate(time.Microsecond)
		if !got.CreatedAt.Equal(want) || got.CreatedAt.Location() != time.UTC || !got.LastLoginAt.Equal(want) {
			t.Errorf("times: %v %v, want %v in UTC", got.CreatedAt, got.LastLoginAt, want)
		}
		if got.Phone != "" || len(got.Groups) != 2 || got.RawAttributes["n"] != 1.5 || !got.EmailVerified || got.PhoneVerified {
			t.Errorf("got %+v", got)
		}
		if _, err := s.GetUser(ctx, other, u.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetUser from another project: %v", err)
		}
		dup := u
		dup.ID = id()
		if err := s.CreateUser(ctx, dup); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate email: %v", err)
		}
		dup.ProjectID = other // same email, other project: fine
		if err := s.CreateUser(ctx, dup); err != nil {
			t.Errorf("same email in another project: %v", err)
		}
		// Any number of users without email or phone.
		user(t, s, pid, "")
		user(t, s, pid, "")
		bare, err := s.GetUser(ctx, pid, user(t, s, pid, "").ID)
		if err != nil || bare.Groups == nil || bare.RawAttributes == nil || bare.LastLoginAt != nil {
			t.Errorf("bare user: %+v, %v", bare, err)
		}

		u.ProjectID = other
		if err := s.UpdateUser(ctx, u); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UpdateUser through another project: %v", err)
		}
		if err := s.DeleteUser(ctx, other, u.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteUser through another project: %v", err)
		}
		if err := s.AddLoginLog(ctx, store.LoginLog{ID: id(), ProjectID: other, UserID: u.ID}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("AddLoginLog through another project: %v", err)
		}
		if err := s.CreateUser(ctx, store.User{ID: id(), ProjectID: "missing"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("CreateUser in a missing project: %v", err)
		}
	})
}

func TestMembershipsAndRoles(t *testing.T) {
	testdb.Each(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := t.Context()
		pid, other := project(t, s), project(t, s)
		now := time.Now()
		org := store.Organization{ID: id(), ProjectID: pid, Name: "O", CreatedAt: now, UpdatedAt: now}
		if err := s.CreateOrganization(ctx, org); err != nil {
			t.Fatal(err)
		}
		u1, u2 := user(t, s, pid, "1@x"), user(t, s, pid, "2@x")
		stranger := user(t, s, other, "3@x")
		perm := store.Permission{ID: id(), ProjectID: pid, Slug: "p"}
		foreignPerm := store.Permission{ID: id(), ProjectID: other, Slug: "p"}
		for _, p := range []store.Permission{perm, foreignPerm} {
			if err := s.CreatePermission(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		role := store.Role{ID: id(), ProjectID: pid, Slug: "r", PermissionIDs: []string{perm.ID}}
		if err := s.CreateRole(ctx, role); err != nil {
			t.Fatal(err)
		}
		bad := store.Role{ID: id(), ProjectID: pid, Slug: "bad", PermissionIDs: []string{perm.ID, foreignPerm.ID}}
		if err := s.CreateRole(ctx, bad); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("CreateRole with a foreign permission: %v", err)
		}
		if _, err := s.GetRole(ctx, pid, bad.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the failed role was written: %v", err)
		}

		if err := s.AddMembers(ctx, pid, org.ID, []string{u1.ID, stranger.ID}, now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("AddMembers with a foreign user: %v", err)
		}
		if ms, _ := s.ListMembers(ctx, pid, org.ID, store.Page{}); len(ms) != 0 {
			t.Errorf("the failed AddMembers wrote %v", ms)
		}
		if err := s.AddMembers(ctx, pid, org.ID, []string{u2.ID, u1.ID, u1.ID}, now); err != nil {
			t.Fatal(err)
		}
		if err := s.SetMemberRoles(ctx, pid, org.ID, u1.ID, []string{role.ID}, now); err != nil {
			t.Fatal(err)
		}
		ms, err := s.ListMemberships(ctx, pid, []string{u2.ID, u1.ID})
		if err != nil || len(ms) != 2 || ms[0].UserID != u1.ID || len(ms[0].RoleIDs) != 1 || ms[1].RoleIDs == nil || len(ms[1].RoleIDs) != 0 {
			t.Errorf("ListMemberships = %+v, %v", ms, err)
		}
		page, err := s.ListMembers(ctx, pid, org.ID, store.Page{Limit: 1})
		if err != nil || len(page) != 1 || page[0].UserID != u1.ID || len(page[0].RoleIDs) != 1 {
			t.Errorf("ListMembers page 1 = %+v, %v", page, err)
		}
		if err := s.DeletePermission(ctx, pid, perm.ID); err != nil {
			t.Fatal(err)
		}
		if r, err := s.GetRole(ctx, pid, role.ID); err != nil || len(r.PermissionIDs) != 0 {
			t.Errorf("role after its permission was deleted: %+v, %v", r, err)
		}
		if err := s.DeleteRole(ctx, pid, role.ID); err != nil {
			t.Fatal(err)
		}
		if ms := must(s.ListMembers(ctx, pid, org.ID, store.Page{})); len(ms) != 2 || len(ms[0].RoleIDs) != 0 {
			t.Errorf("members after their role was deleted: %+v", ms)
		}
		if err := s.DeleteUser(ctx, pid, u1.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteOrganization(ctx, pid, org.ID); err != nil {
			t.Fatal(err)
		}
		if ms := must(s.ListMemberships(ctx, pid, []string{u1.ID, u2.ID})); len(ms) != 0 {
			t.Errorf("memberships outlived their organization: %+v", ms)
		}
	})
}

func TestInTx(t *testing.T) {
	testdb.Each(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := t.Context()
		pid := project(t, s)
		taken := user(t, s, pid, "taken@x")
		boom := errors.New("boom")
		var inside store.User
		err := s.InTx(ctx, func(tx store.Store) error {
			inside = user(t, tx, pid, "new@x")
			if _, err := tx.GetUser(ctx, pid, inside.ID); err != nil {
				t.Errorf("read own write: %v", err)
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Errorf("InTx = %v, want boom", err)
		}
		if _, err := s.GetUser(ctx, pid, inside.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("rolled-back user: %v", err)
		}

		// A failed write inside a transaction leaves it usable on both backends.
		err = s.InTx(ctx, func(tx store.Store) error {
			dup := store.User{ID: id(), ProjectID: pid, Email: taken.Email}
			if err := tx.CreateUser(ctx, dup); !errors.Is(err, store.ErrConflict) {
				t.Errorf("duplicate in tx: %v", err)
			}
			if err := tx.AddMembers(ctx, pid, "missing", []string{taken.ID}, time.Now()); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("AddMembers to a missing org in tx: %v", err)
			}
			return tx.InTx(ctx, func(inner store.Store) error {
				inside = user(t, inner, pid, "kept@x")
				return nil
			})
		})
		if err != nil {
			t.Fatalf("InTx after a failed write: %v", err)
		}
		if _, err := s.GetUser(ctx, pid, inside.ID); err != nil {
			t.Errorf("user committed after a failed write: %v", err)
		}
	})
}

func TestRaces(t *testing.T) {
	testdb.Each(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := t.Context()
		pid := project(t, s)
		hash := []byte("0123456789abcdef0123456789abcdef")
		now := time.Now()
		if err := s.CreateOneTimeSecret(ctx, store.OneTimeSecret{ID: id(), ProjectID: pid, Purpose: "code", Hash: hash,
			Payload: []byte(`{"a":1}`), CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		const n = 50
		var won, lost, claimed atomic.Int64
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				sec, err := s.ConsumeOneTimeSecret(ctx, pid, "code", hash, time.Now())
				switch {
				case err == nil && sec.ConsumedAt != nil && string(sec.Payload) == `{"a":1}`:
					won.Add(1)
				case errors.Is(err, store.ErrNotFound):
					lost.Add(1)
				default:
					t.Errorf("Consume: %+v, %v", sec, err)
				}
				ok, err := s.ClaimBootstrap(ctx, time.Now())
				if err != nil {
					t.Errorf("ClaimBootstrap: %v", err)
				}
				if ok {
					claimed.Add(1)
				}
			})
		}
		wg.Wait()
		if won.Load() != 1 || lost.Load() != n-1 {
			t.Errorf("%d won, %d lost; want 1 and %d", won.Load(), lost.Load(), n-1)
		}
		if claimed.Load() != 1 {
			t.Errorf("ClaimBootstrap returned true %d times, want once", claimed.Load())
		}
		if ok, err := s.ClaimBootstrap(ctx, time.Now()); ok || err != nil {
			t.Errorf("ClaimBootstrap after the race = %v, %v", ok, err)
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestConcurrentReplacements checks the row locks that keep concurrent replacements of one
// membership's roles or one role's permissions from mixing, and the sorted write order that
// keeps overlapping AddMembers calls from deadlocking on PostgreSQL.
func TestConcurrentReplacements(t *testing.T) {
	testdb.Each(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := t.Context()
		pid := project(t, s)
		now := time.Now()
		org := store.Organization{ID: id(), ProjectID: pid, CreatedAt: now, UpdatedAt: now}
		if err := s.CreateOrganization(ctx, org); err != nil {
			t.Fatal(err)
		}
		var users, roles, perms []string
		for i := range 6 {
			users = append(users, user(t, s, pid, fmt.Sprintf("%d@x", i)).ID)
			p := store.Permission{ID: id(), ProjectID: pid, Slug: fmt.Sprintf("p%d", i)}
			r := store.Role{ID: id(), ProjectID: pid, Slug: fmt.Sprintf("r%d", i)}
			if err := s.CreatePermission(ctx, p); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateRole(ctx, r); err != nil {
				t.Fatal(err)
			}
			perms, roles = append(perms, p.ID), append(roles, r.ID)
		}
		target := store.Role{ID: id(), ProjectID: pid, Slug: "target"}
		if err := s.CreateRole(ctx, target); err != nil {
			t.Fatal(err)
		}

		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				// Each call's set is a pair; a merge of two calls would hold three or four.
				pair := []string{roles[i%6], roles[(i+1)%6]}
				if err := s.SetMemberRoles(ctx, pid, org.ID, users[0], pair, now); err != nil {
					t.Errorf("SetMemberRoles: %v", err)
				}
				r := target
				r.PermissionIDs = []string{perms[i%6], perms[(i+1)%6]}
				if err := s.UpdateRole(ctx, r); err != nil {
					t.Errorf("UpdateRole: %v", err)
				}
				members := []string{users[(i+2)%6], users[(i+3)%6], users[(i+4)%6]}
				if i%2 == 1 {
					members[0], members[2] = members[2], members[0]
				}
				if err := s.AddMembers(ctx, pid, org.ID, members, now); err != nil {
					t.Errorf("AddMembers: %v", err)
				}
			})
		}
		wg.Wait()
		ms := must(s.ListMemberships(ctx, pid, users[:1]))
		if len(ms) != 1 || len(ms[0].RoleIDs) != 2 {
			t.Errorf("membership after concurrent SetMemberRoles: %+v", ms)
		}
		if r := must(s.GetRole(ctx, pid, target.ID)); len(r.PermissionIDs) != 2 {
			t.Errorf("role after concurrent UpdateRole: %+v", r)
		}
	})
}
