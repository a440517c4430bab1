package sqlstore

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// TestMigrationSetsMatch checks house rule 7: the SQLite and PostgreSQL migrations are pairs,
// with the same numbers and names, numbered 0001, 0002, ... without gaps.
func TestMigrationSetsMatch(t *testing.T) {
	names := map[string][]string{}
	for _, d := range []dialect{dialectSQLite, dialectPostgres} {
		dir := "migrations/" + d.String()
		entries, err := fs.ReadDir(migrationFiles, dir)
		if err != nil {
			t.Fatalf("read %s: %v", dir, err)
		}
		for _, e := range entries {
			names[d.String()] = append(names[d.String()], e.Name())
		}
		// loadMigrations rejects stray files, bad names and gaps in the numbering.
		ms, err := loadMigrations(migrationFiles, dir)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if len(ms) == 0 {
			t.Fatalf("%s: no migrations", dir)
		}
		for i, m := range ms {
			if m.version != i+1 {
				t.Errorf("%s: migration %d has version %d", dir, i, m.version)
			}
			if m.sql == "" {
				t.Errorf("%s: %04d_%s is empty", dir, m.version, m.name)
			}
		}
	}
	if !slices.Equal(names["sqlite"], names["postgres"]) {
		t.Errorf("migration files differ:\n\tsqlite:   %v\n\tpostgres: %v", names["sqlite"], names["postgres"])
	}
}

// TestLoadMigrationsRejectsGaps checks that a missing number or a stray file is refused.
func TestLoadMigrationsRejectsGaps(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	cases := map[string]fstest.MapFS{
		"gap":        {"m/0001_a.sql": file("x"), "m/0003_c.sql": file("x")},
		"from two":   {"m/0002_b.sql": file("x")},
		"stray file": {"m/0001_a.sql": file("x"), "m/README.md": file("x")},
		"bad name":   {"m/0001_A-b.sql": file("x")},
		"short":      {"m/001_a.sql": file("x")},
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := loadMigrations(files, "m"); err == nil {
				t.Errorf("loadMigrations accepted %v", files)
			}
		})
	}
	ms, err := loadMigrations(fstest.MapFS{"m/0001_a.sql": file("one"), "m/0002_b_c.sql": file("two")}, "m")
	if err != nil || len(ms) != 2 || ms[1].version != 2 || ms[1].name != "b_c" || ms[1].sql != "two" {
		t.Errorf("loadMigrations = %+v, %v", ms, err)
	}
}

// TestReleasedMigrationsAreUnchanged checks house rule 7 for released migrations: each file
// listed in migrations/released.sha256 still has its recorded hash, and every migration file is
// listed, so that a migration is frozen from its first commit on (0001 was once edited in place,
// which a database migrated before the edit never sees).
func TestReleasedMigrationsAreUnchanged(t *testing.T) {
	raw, err := os.ReadFile("migrations/released.sha256")
	if err != nil {
		t.Fatal(err)
	}
	released := map[string]string{}
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 64 {
			t.Fatalf("released.sha256 line %d is not \"<sha256>  <file>\": %q", i+1, line)
		}
		released[name] = sum
	}
	for _, d := range []dialect{dialectSQLite, dialectPostgres} {
		entries, err := fs.ReadDir(migrationFiles, "migrations/"+d.String())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			name := d.String() + "/" + e.Name()
			b, err := fs.ReadFile(migrationFiles, "migrations/"+name)
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("%x", sha256.Sum256(b))
			want, ok := released[name]
			switch {
			case !ok:
				t.Errorf("%s is not in migrations/released.sha256: add the line %q; from then on the file is frozen", name, got+"  "+name)
			case got != want:
				t.Errorf("%s was edited after its release (sha256 %s, released as %s): write a new migration instead", name, got, want)
			}
			delete(released, name)
		}
	}
	for name := range released {
		t.Errorf("released migration %s is missing", name)
	}
}
