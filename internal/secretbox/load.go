package secretbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// Source says where the master keys come from at start-up.
type Source struct {
	Keys     string    // LATCHKEY_MASTER_KEY: one or more keys (first current)
	KeyFile  string    // LATCHKEY_MASTER_KEY_FILE: a file with one key per line (first current); '#' comments and blank lines ignored
	DataDir  string    // where the embedded default keeps its generated key file (DataDir/master.key)
	Postgres bool      // the database is PostgreSQL
	Rand     io.Reader // nil = crypto/rand
}

// maxKeyFileSize bounds what is read from a key file: a key line is 45 bytes, so anything near
// this is not a key file (or is /dev/zero).
const maxKeyFileSize = 64 << 10

// generatedHeader opens a key file that Load generates, for whoever finds it later.
const generatedHeader = `# Latchkey master keys, one per line, base64. The first seals new secrets; all of them open.
# Secrets in the database cannot be read without these keys: keep this file, and keep it apart
# from backups of the database. Rotate with "latchkey keys rotate-master".
`

// Load returns the key ring. Keys and KeyFile together: error. With neither: on PostgreSQL an
// error that says why (several instances must share one key, so generating one locally would
// lose data) and what to set; on SQLite it reads DataDir/master.key, generating it (mode 0600,
// directory 0700, written atomically) on first start, and reports generated=true so the caller
// logs a warning that production should supply its own key. A key file that group or others
// may access is refused.
func Load(src Source) (ring *Keyring, generated bool, err error) {
	switch {
	case src.Keys != "" && src.KeyFile != "":
		return nil, false, errors.New("set LATCHKEY_MASTER_KEY or LATCHKEY_MASTER_KEY_FILE, not both")
	case src.Keys != "":
		keys, err := ParseKeys(src.Keys)
		if err != nil {
			return nil, false, fmt.Errorf("LATCHKEY_MASTER_KEY: %w", err)
		}
		ring, err := NewKeyring(keys...)
		if err != nil {
			return nil, false, fmt.Errorf("LATCHKEY_MASTER_KEY: %w", err)
		}
		return ring, false, nil
	case src.KeyFile != "":
		ring, err := loadKeyFile(src.KeyFile)
		if err != nil {
			return nil, false, fmt.Errorf("LATCHKEY_MASTER_KEY_FILE: %w", err)
		}
		return ring, false, nil
	case src.Postgres:
		return nil, false, errors.New("no master key: set LATCHKEY_MASTER_KEY (base64, e.g. from `openssl rand -base64 32`) " +
			"or LATCHKEY_MASTER_KEY_FILE. With PostgreSQL every instance must use the same master key: a key generated " +
			"by one instance would seal secrets that the others cannot open, and that are lost with its disk")
	}
	return loadDefault(src.DataDir, src.Rand)
}

// DefaultKeyFile returns DataDir/master.key, where the embedded default keeps its master key.
func DefaultKeyFile(dataDir string) string { return filepath.Join(dataDir, "master.key") }

// loadDefault reads the embedded default's key file, generating it on first start.
func loadDefault(dataDir string, random io.Reader) (*Keyring, bool, error) {
	if strings.TrimSpace(dataDir) == "" {
		return nil, false, errors.New("no master key and no data dir to keep a generated one in: " +
			"set LATCHKEY_MASTER_KEY, LATCHKEY_MASTER_KEY_FILE or LATCHKEY_DATA_DIR")
	}
	path := DefaultKeyFile(dataDir)
	ring, err := loadKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return ring, false, err
	}
	key, err := GenerateKey(random)
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create the data dir for the master key: %w", err)
	}
	err = createFile(path, []byte(generatedHeader+EncodeKey(key)+"\n"))
	if errors.Is(err, fs.ErrExist) {
		// Another process started at the same moment and generated the key first: use its key,
		// never replace it, or whatever it sealed already would be lost.
		ring, err := loadKeyFile(path)
		return ring, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("write generated master key %s: %w", path, err)
	}
	ring, err = NewKeyring(key)
	return ring, true, err
}

// AddKeyToFile generates a new key and writes it as the first key of the key file (the old keys
// stay below it, so ciphertexts they wrap still open), atomically, mode 0600. Comments and the
// other lines are kept. It returns the new ring. A symbolic link is followed and its target
// rewritten.
func AddKeyToFile(path string, rand io.Reader) (*Keyring, error) {
	target, kf, err := openKeyFileForRewrite(path)
	if err != nil {
		return nil, fmt.Errorf("add a master key to %s: %w", path, err)
	}
	key, err := GenerateKey(rand)
	if err != nil {
		return nil, err
	}
	// Build the ring before writing, so a file that cannot make one is left as it was.
	ring, err := NewKeyring(append([][]byte{key}, kf.keys...)...)
	if err != nil {
		return nil, fmt.Errorf("add a master key to %s: %w", path, err)
	}
	kf.lines = slices.Insert(kf.lines, kf.keyLines[0], EncodeKey(key))
	if err := replaceFile(target, kf.content()); err != nil {
		return nil, fmt.Errorf("add a master key to %s: %w", path, err)
	}
	return ring, nil
}

// DropOldKeysFromFile rewrites the key file with only its first (current) key, keeping comments
// and blank lines. Call it only once every ciphertext has been rewrapped under the current key.
func DropOldKeysFromFile(path string) error {
	target, kf, err := openKeyFileForRewrite(path)
	if err != nil {
		return fmt.Errorf("drop old master keys from %s: %w", path, err)
	}
	if len(kf.keys) == 1 {
		return nil
	}
	old := kf.keyLines[1:]
	lines := make([]string, 0, len(kf.lines)-len(old))
	for i, line := range kf.lines {
		if !slices.Contains(old, i) {
			lines = append(lines, line)
		}
	}
	kf.lines = lines
	if err := replaceFile(target, kf.content()); err != nil {
		return fmt.Errorf("drop old master keys from %s: %w", path, err)
	}
	return nil
}

// loadKeyFile returns the ring of the key file at path.
func loadKeyFile(path string) (*Keyring, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	kf, err := parseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s %w", path, err)
	}
	ring, err := NewKeyring(kf.keys...)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return ring, nil
}

// openKeyFileForRewrite resolves path to the file it names and parses it.
func openKeyFileForRewrite(path string) (string, keyFile, error) {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", keyFile{}, err
	}
	data, err := readKeyFile(target)
	if err != nil {
		return "", keyFile{}, err
	}
	kf, err := parseKeyFile(data)
	if err != nil {
		return "", keyFile{}, fmt.Errorf("key file %s %w", path, err)
	}
	return target, kf, nil
}

// readKeyFile reads a key file, refusing one that group or others may access: a key anyone can
// read is no longer secret, and one others can write lets them choose the key new secrets are
// sealed with. The mode is checked on the open file, so it is the file that is read.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	// Windows has no such permission bits: Go reports every writable file as 0666 there.
	if perm := info.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("key file %s has mode %04o: group and others must have no access to it (chmod 600 %s)",
			path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("key file %s is larger than %d bytes: not a key file", path, maxKeyFileSize)
	}
	return data, nil
}

// createFile writes data to a new file at path, mode 0600, failing with fs.ErrExist if there is
// one already. A hard link makes the complete file appear at once and, unlike a rename, never
// replaces a file that another process has just created.
func createFile(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// replaceFile atomically replaces the file at path with data, mode 0600: a crash leaves either
// the old file or the new one, never a part.
func replaceFile(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes data to a new, synced temporary file next to path and returns its name. It
// is mode 0600 from its creation, so the key is never readable by others, not even briefly.
func writeTemp(path string, data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", err
	}
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// syncDir makes a new or renamed directory entry durable: the key must survive a power loss
// before anything it seals is committed, or those secrets would be lost with it.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // Windows cannot sync a directory
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
