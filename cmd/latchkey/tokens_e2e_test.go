package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestTwoInstancesShareKeys runs two "latchkey serve" processes on one PostgreSQL database: a
// token minted by one verifies at the other, and after a rotation (by the CLI, a third
// process) the other instance publishes the new key before anyone signs with it.
func TestTwoInstancesShareKeys(t *testing.T) {
	dbURL := testdb.PostgresURL(t)
	common := append([]string{"--database-url", dbURL, "--key-cache-ttl", "1s", "--public-url", "http://auth.test"}, masterKeyArgs(t)...)
	clock := newTestClock(t)
	a := startServerEnv(t, clock.env(), common...)
	clientID, secret := a.credentials()
	b := startServerEnv(t, clock.env(), common...)
	if strings.Contains(b.stderr.String(), "client_secret:") {
		t.Fatal("the second instance printed a secret")
	}

	tokA := machineToken(t, a, clientID, secret)
	kid1 := jwtKID(t, tokA)
	for _, s := range []*server{a, b} {
		if status := getWithBearer(t, s.base+"/api/v1/users", tokA); status != http.StatusOK {
			t.Fatalf("%s refuses a token minted by the first instance: %d", s.base, status)
		}
	}
	if kids := publishedKIDs(t, b, clientID); len(kids) != 1 || kids[0] != kid1 {
		t.Fatalf("second instance publishes %v, want [%s]", kids, kid1)
	}

	// Rotate from a third process; the new key signs in 2 minutes: far longer than the
	// instances need to publish it (their caches live 1s), on the slowest machine. The servers'
	// clock then moves past it, so nothing waits for real.
	out := runOK(t, append([]string{"keys", "rotate", "--client-id", clientID, "--activate-in", "2m", "--json"}, common...)...)
	var rotated struct {
		KID         string    `json:"kid"`
		ActivatesAt time.Time `json:"activates_at"`
	}
	if err := json.Unmarshal([]byte(out), &rotated); err != nil {
		t.Fatalf("keys rotate --json printed %q: %v", out, err)
	}
	var listed []struct {
		KID       string     `json:"kid"`
		RetiresAt *time.Time `json:"retires_at"`
	}
	if err := json.Unmarshal([]byte(runOK(t, append([]string{"keys", "list", "--client-id", clientID, "--json"}, common...)...)), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || listed[0].KID != kid1 || listed[0].RetiresAt == nil || listed[1].KID != rotated.KID || listed[1].RetiresAt != nil {
		t.Errorf("keys list after rotation = %+v, want the old key (retiring) then the new one", listed)
	}
	// Both instances publish it before it activates: their caches live 1s.
	for _, s := range []*server{a, b} {
		for !contains(publishedKIDs(t, s, clientID), rotated.KID) {
			if clock.Now().After(rotated.ActivatesAt) {
				t.Fatalf("%s did not publish the new key %s before it activated at %s", s.base, rotated.KID, rotated.ActivatesAt)
			}
			time.Sleep(100 * time.Millisecond) // poll interval
		}
	}
	if clock.Now().After(rotated.ActivatesAt) {
		t.Fatal("the test was too slow to observe publication before activation; raise --activate-in")
	}
	// Until activation, tokens are still signed with the old key.
	if kid := jwtKID(t, machineToken(t, b, clientID, secret)); kid != kid1 {
		t.Errorf("before activation a token was signed with %s, want the old key %s", kid, kid1)
	}

	clock.Advance(rotated.ActivatesAt.Sub(clock.Now()) + 2*time.Second) // past activation and one cache TTL
	for _, minter := range []*server{a, b} {
		tok := machineToken(t, minter, clientID, secret)
		if kid := jwtKID(t, tok); kid != rotated.KID {
			t.Errorf("after activation %s signs with %s, want the new key %s", minter.base, kid, rotated.KID)
		}
		for _, verifier := range []*server{a, b} {
			if status := getWithBearer(t, verifier.base+"/api/v1/users", tok); status != http.StatusOK {
				t.Errorf("%s refuses a token minted by %s after rotation: %d", verifier.base, minter.base, status)
			}
		}
	}
	// The token signed before the rotation still verifies at both.
	for _, s := range []*server{a, b} {
		if status := getWithBearer(t, s.base+"/api/v1/users", tokA); status != http.StatusOK {
			t.Errorf("%s refuses a pre-rotation token that has not expired: %d", s.base, status)
		}
	}
}

func machineToken(t *testing.T, s *server, clientID, secret string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}}
	resp, err := http.PostForm(s.base+"/api/v1/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &body) != nil || body.AccessToken == "" {
		t.Fatalf("client_credentials at %s: %d %s", s.base, resp.StatusCode, raw)
	}
	return body.AccessToken
}

func getWithBearer(t *testing.T, u, tok string) int {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func publishedKIDs(t *testing.T, s *server, clientID string) []string {
	t.Helper()
	resp, err := http.Get(s.base + "/.well-known/jwks.json?client_id=" + clientID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("JWKS at %s: %d %v", s.base, resp.StatusCode, err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KID)
	}
	return kids
}

func jwtKID(t *testing.T, tok string) string {
	t.Helper()
	head, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.KID
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestRotateMasterKey rotates the embedded default's generated master key between two starts:
// the signing key sealed under the old master key still signs and verifies afterwards, and the
// key file holds only the new key.
func TestRotateMasterKey(t *testing.T) {
	dir := t.TempDir()
	// A fixed public URL: it is the tokens' issuer, and the two starts get different ports.
	args := []string{"--data-dir", dir, "--public-url", "http://auth.test"}
	s := startServer(t, args...)
	if !strings.Contains(s.stderr.String(), "generated a master key") {
		t.Errorf("first start did not warn that it generated a master key:\n%s", s.stderr.String())
	}
	clientID, secret := s.credentials()
	before := machineToken(t, s, clientID, secret)
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exited with %d", code)
	}
	keyFile := filepath.Join(dir, "master.key")
	oldKey := readKeyLines(t, keyFile)

	out := runOK(t, "keys", "rotate-master", "--data-dir", dir)
	if !strings.Contains(out, "re-encrypted 1 secrets") {
		t.Errorf("rotate-master said %q, want it to report the one sealed signing key", out)
	}
	newKey := readKeyLines(t, keyFile)
	if len(newKey) != 1 || newKey[0] == oldKey[0] {
		t.Fatalf("key file after rotation holds %d keys (changed: %v), want only a new one", len(newKey), newKey[0] != oldKey[0])
	}
	if info, err := os.Stat(keyFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode after rotation: %v %v", info.Mode(), err)
	}

	s = startServer(t, args...)
	if strings.Contains(s.stderr.String(), "generated a master key") {
		t.Error("the second start generated a new master key instead of using the rotated one")
	}
	if status := getWithBearer(t, s.base+"/api/v1/users", before); status != http.StatusOK {
		t.Errorf("a token signed before the master key rotation is refused: %d", status)
	}
	after := machineToken(t, s, clientID, secret)
	if jwtKID(t, after) != jwtKID(t, before) {
		t.Error("the signing key changed: rotating the master key should only re-wrap it")
	}
	if status := getWithBearer(t, s.base+"/api/v1/users", after); status != http.StatusOK {
		t.Errorf("a token signed after the rotation is refused: %d", status)
	}
}

func readKeyLines(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, line := range strings.Split(string(raw), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			keys = append(keys, line)
		}
	}
	return keys
}

// TestPostgresNeedsAMasterKey: instances that each generated their own key could not read one
// another's secrets, so serve on PostgreSQL without a key refuses to start and says what to set.
func TestPostgresNeedsAMasterKey(t *testing.T) {
	dbURL := testdb.PostgresURL(t)
	_, stderr, code := runCLI(t, "serve", "--addr", "127.0.0.1:0", "--database-url", dbURL)
	if code == 0 || !strings.Contains(stderr, "LATCHKEY_MASTER_KEY") {
		t.Fatalf("serve on PostgreSQL without a master key: exit %d, stderr:\n%s", code, stderr)
	}
}
