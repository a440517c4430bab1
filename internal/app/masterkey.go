package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/latchkey-dev/latchkey/internal/config"
	"github.com/latchkey-dev/latchkey/internal/secretbox"
)

// MasterKeys is the configured master key ring and where it came from.
type MasterKeys struct {
	Ring *secretbox.Keyring
	// File is the key file the ring was read from: LATCHKEY_MASTER_KEY_FILE or the embedded
	// default's generated file; "" when the keys came from LATCHKEY_MASTER_KEY.
	File string
}

// LoadMasterKeys loads the master key ring cfg describes. The embedded default (SQLite, no key
// configured) generates one into the data dir on first use and warns: production should hold
// its key outside the data it protects. PostgreSQL without a key is refused, because
// instances that each generated their own could not read one another's secrets.
func LoadMasterKeys(cfg config.Config, log *slog.Logger) (MasterKeys, error) {
	kind, _, err := cfg.Database()
	if err != nil {
		return MasterKeys{}, err
	}
	src := secretbox.Source{Keys: cfg.MasterKey, KeyFile: cfg.MasterKeyFile, DataDir: cfg.DataDir, Postgres: kind == config.Postgres}
	ring, generated, err := secretbox.Load(src)
	if err != nil {
		return MasterKeys{}, fmt.Errorf("master key: %w", err)
	}
	mk := MasterKeys{Ring: ring, File: cfg.MasterKeyFile}
	if cfg.MasterKey == "" && cfg.MasterKeyFile == "" {
		mk.File = secretbox.DefaultKeyFile(cfg.DataDir)
	}
	if generated {
		log.WarnContext(context.Background(), "generated a master key for secrets at rest next to the database; "+
			"production should supply its own with LATCHKEY_MASTER_KEY or LATCHKEY_MASTER_KEY_FILE and keep it apart from backups of the data",
			"file", mk.File)
	}
	return mk, nil
}
