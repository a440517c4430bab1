package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/secretbox"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// The master key and the database it encrypts: the generated key follows the database, not
// the working directory, and a server whose keys do not open the database refuses to start
// with exit code 2 (a configuration error) and a message that says what to set, instead of
// starting and failing every request that needs a sealed secret.

const wrongKeyMessage = "the master key does not open this database"

// TestSQLiteKeyFollowsTheDatabase starts with --database-url sqlite:PATH from one directory,
// then from another: the second start finds the key generated next to the database, and
// tokens work; a wrong LATCHKEY_MASTER_KEY is refused; after rotate-master (from a third
// directory) the server starts and the earlier token still verifies.
func TestSQLiteKeyFollowsTheDatabase(t *testing.T) {
	dbDir, dirA, dirB, dirC := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	args := []string{"--database-url", "sqlite:" + filepath.Join(dbDir, "auth.db"), "--public-url", "http://auth.test"}

	s := startServerIn(t, dirA, nil, args...)
	if !strings.Contains(s.stderr.String(), "generated a master key") {
		t.Errorf("first start did not say it generated a master key:\n%s", s.stderr.String())
	}
	clientID, secret := s.credentials()
	before := machineToken(t, s, clientID, secret)
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exited with %d", code)
	}
	if _, err := os.Stat(filepath.Join(dbDir, "master.key")); err != nil {
		t.Fatalf("no key next to the database: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dirA, "latchkey-data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the first start's working directory got a data dir: %v", err)
	}

	s = startServerIn(t, dirB, nil, args...)
	if strings.Contains(s.stderr.String(), "generated a master key") {
		t.Errorf("a start from another directory generated a new master key:\n%s", s.stderr.String())
	}
	if status := getWithBearer(t, s.base+"/api/v1/users", before); status != http.StatusOK {
		t.Errorf("a token from the first start is refused after a start from another directory: %d", status)
	}
	machineToken(t, s, clientID, secret)
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exited with %d", code)
	}

	wantWrongKey(t, dirB, []string{"LATCHKEY_MASTER_KEY=" + generateKey(t)}, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	wantWrongKey(t, dirB, []string{"LATCHKEY_MASTER_KEY=" + generateKey(t)}, append([]string{"keys", "rotate-master"}, args...)...)

	rotate := exec.Command(binary, append([]string{"keys", "rotate-master"}, args...)...)
	rotate.Dir, rotate.Env = dirC, cleanEnv()
	if out, err := rotate.CombinedOutput(); err != nil {
		t.Fatalf("keys rotate-master from another directory: %v\n%s", err, out)
	}
	s = startServerIn(t, dirA, nil, args...)
	if status := getWithBearer(t, s.base+"/api/v1/users", before); status != http.StatusOK {
		t.Errorf("a token signed before rotate-master is refused: %d", status)
	}
	machineToken(t, s, clientID, secret)
}

// TestPostgresRefusesAnotherMasterKey: the key check protects PostgreSQL too, where the key is
// always configured and a deployment may hand an instance the wrong one.
func TestPostgresRefusesAnotherMasterKey(t *testing.T) {
	dbURL := testdb.PostgresURL(t)
	keyArgs := masterKeyArgs(t)
	args := append([]string{"--database-url", dbURL, "--public-url", "http://auth.test"}, keyArgs...)
	s := startServerIn(t, t.TempDir(), nil, args...)
	clientID, secret := s.credentials()
	before := machineToken(t, s, clientID, secret)
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exited with %d", code)
	}

	wantWrongKey(t, t.TempDir(), []string{"LATCHKEY_MASTER_KEY=" + generateKey(t)},
		"serve", "--addr", "127.0.0.1:0", "--database-url", dbURL, "--public-url", "http://auth.test")

	runOK(t, append([]string{"keys", "rotate-master"}, args...)...)
	s = startServerIn(t, t.TempDir(), nil, args...)
	if status := getWithBearer(t, s.base+"/api/v1/users", before); status != http.StatusOK {
		t.Errorf("a token signed before rotate-master is refused: %d", status)
	}
	machineToken(t, s, clientID, secret)
}

// wantWrongKey runs the binary in dir and wants it to refuse the master key: exit code 2 and
// the message. A server that starts anyway is stopped after a minute and fails the test.
func wantWrongKey(t *testing.T, dir string, env []string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir, cmd.Env = dir, append(cleanEnv(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitUsage || !strings.Contains(stderr.String(), wrongKeyMessage) ||
		!strings.Contains(stderr.String(), "set LATCHKEY_MASTER_KEY or --master-key-file") {
		t.Fatalf("latchkey %s with another master key: %v, want exit %d saying %q:\n%s",
			args[0], err, exitUsage, wrongKeyMessage, stderr.String())
	}
}

func generateKey(t *testing.T) string {
	t.Helper()
	k, err := secretbox.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return secretbox.EncodeKey(k)
}
