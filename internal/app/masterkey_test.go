package app_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the PostgreSQL driver of the raw connection below

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/config"
	"github.com/latchkey-dev/latchkey/internal/secretbox"
	"github.com/latchkey-dev/latchkey/internal/testdb"
	"github.com/latchkey-dev/latchkey/internal/token"
)

func newKey(t *testing.T) string {
	t.Helper()
	k, err := secretbox.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return secretbox.EncodeKey(k)
}

// start builds the server cfg describes, bootstraps its Default project and gives it a signing
// key: a database with a sealed value, as the first token leaves it.
func start(t *testing.T, cfg config.Config) (*app.App, error) {
	t.Helper()
	ctx := context.Background()
	a, err := app.New(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { a.Close() })
	if _, _, err := a.Projects().Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	ps, err := a.Store().ListProjects(ctx)
	if err != nil || len(ps) == 0 {
		t.Fatalf("ListProjects: %d projects, %v", len(ps), err)
	}
	if _, err := a.Keys().Rotate(ctx, audit.Actor{Kind: audit.ActorCLI}, ps[0].ID, token.ES256, 0); err != nil {
		t.Fatal(err)
	}
	return a, nil
}

// TestGeneratedKeyLivesNextToTheDatabase: with --database-url sqlite:PATH and no key, the
// generated key goes next to PATH, not into the working directory's data dir, so a start from
// another directory finds it.
func TestGeneratedKeyLivesNextToTheDatabase(t *testing.T) {
	dbDir, dirA, dirB := t.TempDir(), t.TempDir(), t.TempDir()
	cfg := config.Default() // DataDir ./latchkey-data, relative to the working directory
	cfg.DatabaseURL = "sqlite:" + filepath.Join(dbDir, "auth.db")

	t.Chdir(dirA)
	mk, err := app.LoadMasterKeys(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dbDir, "master.key"); mk.File != want || !mk.Generated {
		t.Fatalf("generated key file %s (generated %v), want %s", mk.File, mk.Generated, want)
	}
	if _, err := os.Stat(filepath.Join(dirA, "latchkey-data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the working directory got a data dir: %v", err)
	}
	a, err := start(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()

	t.Chdir(dirB)
	again, err := app.LoadMasterKeys(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Generated || again.Ring.CurrentID() != mk.Ring.CurrentID() {
		t.Fatalf("from another directory: generated %v, key %s; want the key %s next to the database",
			again.Generated, again.Ring.CurrentID(), mk.Ring.CurrentID())
	}
	if _, err := start(t, cfg); err != nil {
		t.Fatalf("second start from another directory: %v", err)
	}
}

// TestWrongMasterKeyRefusesToStart: a server whose keys do not open the database refuses to
// start and says what to set, on SQLite and PostgreSQL, including a database written before
// key checks existed, and a key this start generated is not left behind.
func TestWrongMasterKeyRefusesToStart(t *testing.T) {
	backends := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "db", "latchkey.db") }},
		{"postgres", func(t *testing.T) string { return testdb.PostgresURL(t) }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.DataDir = t.TempDir()
			cfg.DatabaseURL = b.url(t)
			right := newKey(t)
			cfg.MasterKey = right
			a, err := start(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			a.Close()

			wrong := cfg
			wrong.MasterKey = newKey(t)
			_, err = start(t, wrong)
			if !errors.Is(err, app.ErrWrongMasterKey) || !strings.Contains(err.Error(), "set LATCHKEY_MASTER_KEY or --master-key-file") {
				t.Fatalf("start with another master key: %v, want ErrWrongMasterKey saying what to set", err)
			}
			if strings.Contains(err.Error(), right) || strings.Contains(err.Error(), wrong.MasterKey) {
				t.Fatal("the error shows a master key")
			}

			// A database from before key checks: its sealed values decide.
			dropKeyCheck(t, cfg)
			if _, err := start(t, wrong); !errors.Is(err, app.ErrWrongMasterKey) {
				t.Fatalf("start with another key on a database without a key check: %v, want ErrWrongMasterKey", err)
			}
			dropKeyCheck(t, cfg)
			if _, err := start(t, cfg); err != nil {
				t.Fatalf("start with the right key on a database without a key check: %v", err)
			}
			// That start wrote the check: now it alone refuses the wrong key.
			if _, err := start(t, wrong); !errors.Is(err, app.ErrWrongMasterKey) {
				t.Fatalf("start with another key after the check was written: %v", err)
			}

			// Old and new key together (a rotation in progress) open it.
			both := cfg
			both.MasterKey = wrong.MasterKey + "," + right
			if _, err := start(t, both); err != nil {
				t.Fatalf("start with a new key first and the database's key second: %v", err)
			}
		})
	}
}

// TestGeneratedKeyForAnotherDatabaseIsNotKept: when the key next to a SQLite database is
// missing, the one generated for it cannot open the data, and is removed again so that the
// operator puts the right one in its place.
func TestGeneratedKeyForAnotherDatabaseIsNotKept(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	a, err := start(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	keyFile := filepath.Join(cfg.DataDir, "master.key")
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	_, err = start(t, cfg)
	if !errors.Is(err, app.ErrWrongMasterKey) || !strings.Contains(err.Error(), "put its master.key next to it") {
		t.Fatalf("start after the key file was lost: %v, want ErrWrongMasterKey", err)
	}
	if _, err := os.Stat(keyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the key generated for a database it cannot open was left at %s: %v", keyFile, err)
	}
}

// dropKeyCheck deletes the key check behind the store's back, as a database written before
// key checks existed would be.
func dropKeyCheck(t *testing.T, cfg config.Config) {
	t.Helper()
	kind, dsn, err := cfg.Database()
	if err != nil {
		t.Fatal(err)
	}
	driver := "sqlite"
	if kind == config.Postgres {
		driver = "pgx"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM master_key_check`); err != nil {
		t.Fatal(err)
	}
}

// TestKeyLeftInTheDataDirIsStillUsed: an earlier version kept the key of a sqlite:PATH
// database in the data dir; that key is used (with a warning to move it), never replaced by a
// new one next to the database.
func TestKeyLeftInTheDataDirIsStillUsed(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "latchkey-data")
	cfg.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "auth.db")
	legacy := config.Default()
	legacy.DataDir = cfg.DataDir // the old layout: the key in the data dir
	old, err := app.LoadMasterKeys(legacy, nil)
	if err != nil || !old.Generated {
		t.Fatalf("generate the old key: %v (generated %v)", err, old.Generated)
	}
	mk, err := app.LoadMasterKeys(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if mk.Generated || mk.File != old.File || mk.Ring.CurrentID() != old.Ring.CurrentID() {
		t.Errorf("LoadMasterKeys = %s (generated %v, key %s), want the data dir's key %s", mk.File, mk.Generated,
			mk.Ring.CurrentID(), old.File)
	}
}
