package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/config"
	"github.com/latchkey-dev/latchkey/internal/secretbox"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// MasterKeys is the configured master key ring and where it came from.
type MasterKeys struct {
	Ring *secretbox.Keyring
	// File is the key file the ring was read from: LATCHKEY_MASTER_KEY_FILE or the embedded
	// default's generated file; "" when the keys came from LATCHKEY_MASTER_KEY.
	File string
	// Generated is set when this start generated File: nothing is sealed with it yet.
	Generated bool
}

// ErrWrongMasterKey is returned (wrapped, with what to do) when none of the configured master
// keys opens the database's key check: the server would start and then fail every request
// that needs a sealed secret, so it refuses to start instead. It is a configuration error.
var ErrWrongMasterKey = errors.New("the master key does not open this database")

// LoadMasterKeys loads the master key ring cfg describes. The embedded default (SQLite, no key
// configured) keeps its key in master.key next to the database file it encrypts, generating
// it on first use with a warning: production should hold its key outside the data it
// protects. PostgreSQL without a key is refused, because instances that each generated their
// own could not read one another's secrets. A nil log discards.
func LoadMasterKeys(cfg config.Config, log *slog.Logger) (MasterKeys, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kind, dsn, err := cfg.Database()
	if err != nil {
		return MasterKeys{}, err
	}
	keyDir := ""
	if kind == config.SQLite {
		keyDir = defaultKeyDir(cfg, dsn, log)
	}
	src := secretbox.Source{Keys: cfg.MasterKey, KeyFile: cfg.MasterKeyFile, DataDir: keyDir, Postgres: kind == config.Postgres}
	ring, generated, err := secretbox.Load(src)
	if err != nil {
		return MasterKeys{}, fmt.Errorf("master key: %w", err)
	}
	mk := MasterKeys{Ring: ring, File: cfg.MasterKeyFile, Generated: generated}
	if cfg.MasterKey == "" && cfg.MasterKeyFile == "" {
		mk.File = secretbox.DefaultKeyFile(keyDir)
	}
	if generated {
		log.WarnContext(context.Background(), "generated a master key for secrets at rest next to the database; "+
			"production should supply its own with LATCHKEY_MASTER_KEY or LATCHKEY_MASTER_KEY_FILE and keep it apart from backups of the data",
			"file", mk.File)
	}
	return mk, nil
}

// defaultKeyDir is where the embedded default keeps master.key: the directory of the SQLite
// file, so that the key goes wherever the database goes, whatever the working directory.
// Earlier versions put it in the data dir even for --database-url sqlite:PATH; a key found
// only there is still used, with a warning to move it.
func defaultKeyDir(cfg config.Config, dbPath string, log *slog.Logger) string {
	dir := filepath.Dir(dbPath)
	if cfg.MasterKey != "" || cfg.MasterKeyFile != "" || strings.TrimSpace(cfg.DataDir) == "" {
		return dir
	}
	if sameDir(dir, cfg.DataDir) || exists(secretbox.DefaultKeyFile(dir)) || !exists(secretbox.DefaultKeyFile(cfg.DataDir)) {
		return dir
	}
	log.WarnContext(context.Background(), "using the master key in the data dir; move it next to the database, "+
		"where this version looks for it first", "file", secretbox.DefaultKeyFile(cfg.DataDir), "move_to", dir)
	return cfg.DataDir
}

func sameDir(a, b string) bool {
	a, errA := filepath.Abs(a)
	b, errB := filepath.Abs(b)
	return errA == nil && errB == nil && a == b
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// keyCheckPlaintext is what the key check seals; keyCheckAAD binds it to its purpose.
var (
	keyCheckPlaintext = []byte("latchkey master key check v1")
	keyCheckAAD       = []byte("master_key_check")
)

// CheckMasterKey makes sure mk's ring opens what the database was sealed with, before anything
// reads or writes a sealed value: it opens the database's key check, or, in a database that
// predates the check, any sealed value the database keeps, and then records a check sealed
// with the ring. A ring that fails is ErrWrongMasterKey with what to do; a key file this start
// generated for it is removed, since nothing is sealed with it and the next start must not
// mistake it for the database's key.
func CheckMasterKey(ctx context.Context, st store.SealedSecrets, mk MasterKeys, now time.Time) error {
	err := checkMasterKey(ctx, st, mk.Ring, now)
	if errors.Is(err, ErrWrongMasterKey) {
		if mk.Generated && mk.File != "" {
			if rmErr := os.Remove(mk.File); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
				return fmt.Errorf("%w (and remove the key generated just now, %s: %v)", err, mk.File, rmErr)
			}
		}
		return fmt.Errorf("%w: %s", err, keyAdvice(mk))
	}
	return err
}

func checkMasterKey(ctx context.Context, st store.SealedSecrets, ring *secretbox.Keyring, now time.Time) error {
	sealed, err := st.KeyCheck(ctx)
	switch {
	case err == nil:
		return openKeyCheck(ring, sealed)
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("master key check: %w", err)
	}
	// No check yet: a new database, or one from before checks. Such a database's sealed
	// values must open with the ring before a check sealed with it vouches for it.
	sample, err := st.AnySealed(ctx)
	switch {
	case err == nil:
		if _, _, err := ring.Rewrap(sample); err != nil {
			return wrongKey(ring, sample)
		}
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("master key check: %w", err)
	}
	fresh, err := ring.Seal(keyCheckPlaintext, keyCheckAAD)
	if err != nil {
		return fmt.Errorf("master key check: %w", err)
	}
	stored, err := st.AddKeyCheck(ctx, fresh, now.UTC())
	if err != nil {
		return fmt.Errorf("master key check: %w", err)
	}
	// Another instance may have written its own check first: it must open too.
	return openKeyCheck(ring, stored)
}

func openKeyCheck(ring *secretbox.Keyring, sealed []byte) error {
	plain, err := ring.Open(sealed, keyCheckAAD)
	if err != nil || !bytes.Equal(plain, keyCheckPlaintext) {
		return wrongKey(ring, sealed)
	}
	return nil
}

// wrongKey names, by key id only, the key the database needs and the keys the server has.
func wrongKey(ring *secretbox.Keyring, sealed []byte) error {
	if id, err := secretbox.KeyID(sealed); err == nil {
		return fmt.Errorf("%w (it was sealed with master key %s; this server's current key is %s)", ErrWrongMasterKey,
			id, ring.CurrentID())
	}
	return ErrWrongMasterKey
}

// keyAdvice says what to do about a ring that does not open the database.
func keyAdvice(mk MasterKeys) string {
	const set = "set LATCHKEY_MASTER_KEY or --master-key-file (LATCHKEY_MASTER_KEY_FILE) to the key it was created with"
	switch {
	case mk.Generated:
		return set + ": no key was found next to the database, and a new one cannot open what the old one sealed " +
			"(if the database was moved or copied, put its master.key next to it)"
	case mk.File != "":
		return set + " (the keys were read from " + mk.File + ")"
	}
	return set + " (the keys were read from LATCHKEY_MASTER_KEY)"
}
