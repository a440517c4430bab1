package secretbox

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is reduced by the umask; tests need the exact mode.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

// assertNoTempFiles fails if a write left a temporary file behind in dir.
func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestLoadFromEnvironment(t *testing.T) {
	a, b := testKey(1), testKey(2)
	ring, generated, err := Load(Source{Keys: EncodeKey(a) + "," + EncodeKey(b), DataDir: t.TempDir(), Postgres: true})
	if err != nil || generated || ring.CurrentID() != idOf(a) {
		t.Fatalf("Load = %v, generated %v, %v", ring, generated, err)
	}
	old := mustSeal(t, mustRing(t, b), []byte("x"), nil)
	if _, err := ring.Open(old, nil); err != nil {
		t.Errorf("the second key does not open: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	key := EncodeKey(testKey(1))
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "keys")
	writeFile(t, keyFile, key+"\n", 0o600)
	for _, tc := range []struct {
		name string
		src  Source
		want []string // all in the error
	}{
		{"both", Source{Keys: key, KeyFile: keyFile}, []string{"LATCHKEY_MASTER_KEY or LATCHKEY_MASTER_KEY_FILE, not both"}},
		{"neither on PostgreSQL", Source{DataDir: dir, Postgres: true},
			[]string{"set LATCHKEY_MASTER_KEY", "LATCHKEY_MASTER_KEY_FILE", "every instance must use the same master key"}},
		{"bad key in the environment", Source{Keys: key + ",no*pe"}, []string{"LATCHKEY_MASTER_KEY:", "entry 2 is not valid base64"}},
		{"duplicate key in the environment", Source{Keys: key + " " + key}, []string{"LATCHKEY_MASTER_KEY:", "master key 2 of 2 repeats key 1"}},
		{"missing key file", Source{KeyFile: filepath.Join(dir, "absent")}, []string{"LATCHKEY_MASTER_KEY_FILE:", "absent"}},
		{"key file is a directory", Source{KeyFile: dir}, []string{"is not a regular file"}},
		{"no data dir", Source{DataDir: " "}, []string{"no data dir"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ring, _, err := Load(tc.src)
			if err == nil {
				t.Fatalf("Load accepted it: %v", ring)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), key[:20]) {
				t.Errorf("error %q quotes the key", err)
			}
		})
	}
	if _, err := os.Stat(DefaultKeyFile(dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused Load left a key file: %v", err)
	}
}

func TestLoadGeneratesDefaultKeyOnce(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	src := Source{DataDir: dataDir, Rand: bytes.NewReader(testKey(0x11))}
	ring, generated, err := Load(src)
	if err != nil || !generated {
		t.Fatalf("first Load: generated %v, %v", generated, err)
	}
	if ring.CurrentID() != idOf(testKey(0x11)) {
		t.Errorf("generated key is not the one read from Rand")
	}
	path := DefaultKeyFile(dataDir)
	if path != filepath.Join(dataDir, "master.key") {
		t.Errorf("DefaultKeyFile = %s", path)
	}
	if m := fileMode(t, path); m != 0o600 {
		t.Errorf("key file mode %04o, want 0600", m)
	}
	if m := fileMode(t, dataDir); m != 0o700 {
		t.Errorf("data dir mode %04o, want 0700", m)
	}
	assertNoTempFiles(t, dataDir)
	ct := mustSeal(t, ring, []byte("secret"), nil)

	src.Rand = bytes.NewReader(testKey(0x22)) // a second key, if Load wrongly made one
	again, generated, err := Load(src)
	if err != nil || generated || again.CurrentID() != ring.CurrentID() {
		t.Fatalf("second Load = %v, generated %v, %v; want the same key", again, generated, err)
	}
	if got, err := again.Open(ct, nil); err != nil || string(got) != "secret" {
		t.Errorf("second ring opens the first's ciphertext: %q, %v", got, err)
	}
}

func TestLoadDefaultConcurrentFirstStarts(t *testing.T) {
	dataDir := t.TempDir()
	const n = 8
	var (
		wg        sync.WaitGroup
		ids       [n]string
		generated [n]bool
		errs      [n]error
	)
	for i := range n {
		wg.Go(func() {
			var ring *Keyring
			ring, generated[i], errs[i] = Load(Source{DataDir: dataDir})
			if errs[i] == nil {
				ids[i] = ring.CurrentID()
			}
		})
	}
	wg.Wait()
	made := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Load %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Errorf("Load %d got key %s, Load 0 got %s", i, ids[i], ids[0])
		}
		if generated[i] {
			made++
		}
	}
	if made != 1 {
		t.Errorf("%d Loads say they generated the key, want 1", made)
	}
	assertNoTempFiles(t, dataDir)
}

func TestLoadRefusesAccessibleKeyFile(t *testing.T) {
	dir := t.TempDir()
	key := EncodeKey(testKey(1)) + "\n"
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620, 0o660, 0o666} {
		path := filepath.Join(dir, fmt.Sprintf("key-%04o", mode))
		writeFile(t, path, key, mode)
		_, _, err := Load(Source{KeyFile: path})
		want := fmt.Sprintf("mode %04o", mode)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), want) {
			t.Errorf("mode %04o: %v; want an error naming %s and %s", mode, err, path, want)
		}
	}
	// The default file is held to the same rule: an operator may have loosened it.
	dataDir := t.TempDir()
	writeFile(t, DefaultKeyFile(dataDir), key, 0o644)
	if _, _, err := Load(Source{DataDir: dataDir}); err == nil || !strings.Contains(err.Error(), "0644") {
		t.Errorf("permissive default key file: %v", err)
	}
	if b, _ := os.ReadFile(DefaultKeyFile(dataDir)); string(b) != key {
		t.Error("Load replaced a permissive default key file")
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		path := filepath.Join(dir, fmt.Sprintf("ok-%04o", mode))
		writeFile(t, path, key, mode)
		if _, _, err := Load(Source{KeyFile: path}); err != nil {
			t.Errorf("mode %04o refused: %v", mode, err)
		}
	}
}

func TestLoadKeyFile(t *testing.T) {
	a, b := testKey(1), testKey(2)
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		want          string // error; "" = loads with a current, b old
	}{
		{"comments and blank lines", "# Latchkey master keys\n\n" + EncodeKey(a) + "   # since 2026-11\n\n# old:\n" + EncodeKey(b) + "\n", ""},
		{"CRLF and no final newline", EncodeKey(a) + "\r\n" + EncodeKey(b), ""},
		{"no key", "# to do\n", "holds no master key"},
		{"bad line", "# keys\n" + EncodeKey(a) + "\nnot-a-key\n", "line 3 is not valid base64"},
		{"duplicate", EncodeKey(a) + "\n" + EncodeKey(a) + "\n", "repeats key 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			writeFile(t, path, tc.content, 0o600)
			ring, generated, err := Load(Source{KeyFile: path, DataDir: dir})
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
					t.Fatalf("Load: %v; want an error naming %s and saying %q", err, path, tc.want)
				}
				return
			}
			if err != nil || generated || ring.CurrentID() != idOf(a) {
				t.Fatalf("Load = %v, generated %v, %v", ring, generated, err)
			}
			if _, err := ring.Open(mustSeal(t, mustRing(t, b), nil, nil), nil); err != nil {
				t.Errorf("second key does not open: %v", err)
			}
		})
	}
	if _, err := os.Stat(DefaultKeyFile(dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load with a key file generated a default key: %v", err)
	}
}

// TestRotateKeyFile is the story of "latchkey keys rotate-master" on a key file.
func TestRotateKeyFile(t *testing.T) {
	dataDir := t.TempDir()
	ringA, _, err := Load(Source{DataDir: dataDir, Rand: bytes.NewReader(testKey(0xa))})
	if err != nil {
		t.Fatal(err)
	}
	path := DefaultKeyFile(dataDir)
	aad := []byte("row-1")
	ct := mustSeal(t, ringA, []byte("secret"), aad)

	ringBA, err := AddKeyToFile(path, bytes.NewReader(testKey(0xb)))
	if err != nil {
		t.Fatal(err)
	}
	if ringBA.CurrentID() != idOf(testKey(0xb)) {
		t.Fatalf("AddKeyToFile's ring is current on %s, want the new key", ringBA.CurrentID())
	}
	if m := fileMode(t, path); m != 0o600 {
		t.Errorf("key file mode %04o after AddKeyToFile", m)
	}
	loaded, _, err := Load(Source{DataDir: dataDir})
	if err != nil || loaded.CurrentID() != ringBA.CurrentID() {
		t.Fatalf("Load after AddKeyToFile = %v, %v", loaded, err)
	}
	if _, err := loaded.Open(ct, aad); err != nil {
		t.Fatalf("old ciphertext does not open after adding a key: %v", err)
	}
	moved, changed, err := loaded.Rewrap(ct)
	if err != nil || !changed {
		t.Fatalf("Rewrap = %v, %v", changed, err)
	}

	if err := DropOldKeysFromFile(path); err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(content), generatedHeader) || strings.Contains(string(content), EncodeKey(testKey(0xa))) ||
		!strings.Contains(string(content), EncodeKey(testKey(0xb))) {
		t.Errorf("key file after DropOldKeysFromFile:\n%s", content)
	}
	if m := fileMode(t, path); m != 0o600 {
		t.Errorf("key file mode %04o after DropOldKeysFromFile", m)
	}
	ringB, _, err := Load(Source{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ringB.Open(moved, aad); err != nil || string(got) != "secret" {
		t.Errorf("rewrapped ciphertext under {B}: %q, %v", got, err)
	}
	if _, err := ringB.Open(ct, aad); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("ciphertext still wrapped by the dropped key: %v; want ErrUnknownKey", err)
	}
	if err := DropOldKeysFromFile(path); err != nil {
		t.Errorf("DropOldKeysFromFile with one key: %v", err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, content) {
		t.Error("DropOldKeysFromFile with one key changed the file")
	}
	assertNoTempFiles(t, dataDir)
}

func TestAddKeyToFileKeepsLayout(t *testing.T) {
	dir := t.TempDir()
	a, b := EncodeKey(testKey(1)), EncodeKey(testKey(2))
	path := filepath.Join(dir, "keys")
	writeFile(t, path, "# managed by ops\n\n"+a+"  # 2026\n"+b+"\n# end\n", 0o400)
	if _, err := AddKeyToFile(path, bytes.NewReader(testKey(3))); err != nil {
		t.Fatal(err)
	}
	c := EncodeKey(testKey(3))
	want := "# managed by ops\n\n" + c + "\n" + a + "  # 2026\n" + b + "\n# end\n"
	if got, _ := os.ReadFile(path); string(got) != want {
		t.Errorf("after AddKeyToFile:\n%s\nwant:\n%s", got, want)
	}
	if err := DropOldKeysFromFile(path); err != nil {
		t.Fatal(err)
	}
	want = "# managed by ops\n\n" + c + "\n# end\n"
	if got, _ := os.ReadFile(path); string(got) != want {
		t.Errorf("after DropOldKeysFromFile:\n%s\nwant:\n%s", got, want)
	}
}

func TestAddKeyToFileFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.key")
	writeFile(t, target, EncodeKey(testKey(1))+"\n", 0o600)
	link := filepath.Join(dir, "master.key")
	if err := os.Symlink("real.key", link); err != nil {
		t.Skip("no symlinks here:", err)
	}
	if _, err := AddKeyToFile(link, bytes.NewReader(testKey(2))); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Lstat(link); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v, %v", info, err)
	}
	ring, _, err := Load(Source{KeyFile: link})
	if err != nil || ring.CurrentID() != idOf(testKey(2)) {
		t.Errorf("Load through the link = %v, %v", ring, err)
	}
}

func TestAddKeyToFileRefuses(t *testing.T) {
	dir := t.TempDir()
	if _, err := AddKeyToFile(filepath.Join(dir, "absent"), nil); err == nil {
		t.Error("AddKeyToFile created a missing key file")
	}
	loose := filepath.Join(dir, "loose")
	content := EncodeKey(testKey(1)) + "\n"
	writeFile(t, loose, content, 0o644)
	if _, err := AddKeyToFile(loose, nil); err == nil || !strings.Contains(err.Error(), "0644") {
		t.Errorf("AddKeyToFile on a mode 0644 file: %v", err)
	}
	if err := DropOldKeysFromFile(loose); err == nil {
		t.Error("DropOldKeysFromFile accepted a mode 0644 file")
	}
	broken := filepath.Join(dir, "broken")
	writeFile(t, broken, content+"garbage\n", 0o600)
	if _, err := AddKeyToFile(broken, nil); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("AddKeyToFile on a broken file: %v", err)
	}
	for path, want := range map[string]string{loose: content, broken: content + "garbage\n"} {
		if got, _ := os.ReadFile(path); string(got) != want {
			t.Errorf("refused rewrite changed %s", path)
		}
	}
	assertNoTempFiles(t, dir)
}
