package sqlstore_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestMigrationRekeysEmails writes users as the code before migration 0015 keyed them (the
// whole address lower-cased with Unicode rules), runs 0015 again and checks that every key is
// now store.EmailKey: the KELVIN SIGN address no longer holds kim's key, so kim can exist and
// be found, and the look-alike finds only its own row.
func TestMigrationRekeysEmails(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := t.Context()
		now := time.Now().UTC().Truncate(time.Second)
		p := store.Project{ID: "6b1300c6a3db901269d0dc4e", ClientID: "cli_rekey", Name: "Rekey", Settings: []byte(`{}`),
			CreatedAt: now, UpdatedAt: now}
		if err := st.CreateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
		db := st.WriterDB()
		rebind := func(q string) string {
			if st.Dialect() != "postgres" {
				return q
			}
			for i := 1; strings.Contains(q, "?"); i++ {
				q = strings.Replace(q, "?", "$"+string(rune('0'+i)), 1)
			}
			return q
		}
		users := map[string]string{ // id -> email; each stored under its old key
			"6b1300c6e8d5fb3eef2ef830": "\u212aim@acme.example",
			"6b1300c6e8d5fb3eef2ef831": "\u03a9mega@acme.example",
			"6b1300c6e8d5fb3eef2ef832": "Ann@acme.example",
		}
		for id, email := range users {
			u := store.User{ID: id, ProjectID: p.ID, Email: email, Active: true, ConnectionType: "ManualUser",
				Groups: []string{}, RawAttributes: map[string]any{}, CreatedAt: now, UpdatedAt: now}
			if err := st.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, rebind("UPDATE users SET email_key = ? WHERE id = ?"), strings.ToLower(email), id); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.ExecContext(ctx, "DELETE FROM schema_migrations WHERE version = 15"); err != nil {
			t.Fatal(err)
		}
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		for id, email := range users {
			var key string
			if err := db.QueryRowContext(ctx, rebind("SELECT email_key FROM users WHERE id = ?"), id).Scan(&key); err != nil {
				t.Fatal(err)
			}
			if key != store.EmailKey(email) {
				t.Errorf("key of %q = %q, want %q", email, key, store.EmailKey(email))
			}
		}
		if _, err := st.GetUserByEmail(ctx, p.ID, "kim@acme.example"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("kim@acme.example finds the KELVIN SIGN user after the migration: %v", err)
		}
		kim := store.User{ID: "6b1300c6e8d5fb3eef2ef833", ProjectID: p.ID, Email: "kim@acme.example", Active: true,
			ConnectionType: "ManualUser", Groups: []string{}, RawAttributes: map[string]any{}, CreatedAt: now, UpdatedAt: now}
		if err := st.CreateUser(ctx, kim); err != nil {
			t.Fatalf("create kim beside the look-alike: %v", err)
		}
		if u, err := st.GetUserByEmail(ctx, p.ID, "\u212aim@acme.example"); err != nil || u.ID != "6b1300c6e8d5fb3eef2ef830" {
			t.Errorf("the look-alike finds %+v, %v; want its own row", u, err)
		}
		if u, err := st.GetUserByEmail(ctx, p.ID, "ann@ACME.example"); err != nil || u.ID != "6b1300c6e8d5fb3eef2ef832" {
			t.Errorf("an ASCII case variant finds %+v, %v; want Ann", u, err)
		}
	})
}
