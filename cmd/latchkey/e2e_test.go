package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/testdb"
)

func TestFirstStartPrintsTheDefaultSecretOnce(t *testing.T) {
	dir := t.TempDir()
	first := startServer(t, "--data-dir", dir)
	clientID, secret := first.credentials()
	if n := strings.Count(first.stderr.String(), secret); n != 1 {
		t.Errorf("the secret appears %d times on stderr, want exactly once (in the framed block)", n)
	}

	status, body, err := request(t, http.DefaultClient, "GET", first.base+"/api/v1/project", secret, "")
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /api/v1/project with the printed secret: %d %s %v", status, body, err)
	}
	var doc struct {
		ClientID string `json:"client_id"`
		Name     string `json:"name"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.ClientID != clientID || doc.Name != "Default" {
		t.Fatalf("project document %s (%v)", body, err)
	}
	if code := first.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit code %d, want 0 after a graceful shutdown", code)
	}

	second := startServer(t, "--data-dir", dir)
	if strings.Contains(second.stderr.String(), "sk_") {
		t.Errorf("a later start printed a secret:\n%s", second.stderr.String())
	}
	if status, _, err := request(t, http.DefaultClient, "GET", second.base+"/api/v1/project", secret, ""); err != nil || status != http.StatusOK {
		t.Errorf("the Default secret stopped working after a restart: %d %v", status, err)
	}
	second.stop(syscall.SIGTERM)
}

// TestSIGKILLDuringABurst kills the server while concurrent user creations are in flight and
// checks that every creation the server acknowledged survived, and that the database is sound.
func TestSIGKILLDuringABurst(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		burstAndKill(t, []string{"--data-dir", dir}, func(t *testing.T) {
			checkSQLiteIntegrity(t, filepath.Join(dir, "latchkey.db"))
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dbURL := testdb.PostgresURL(t)
		burstAndKill(t, append([]string{"--database-url", dbURL}, masterKeyArgs(t)...), nil)
	})
}

func burstAndKill(t *testing.T, args []string, afterKill func(t *testing.T)) {
	const (
		workers   = 8
		perWorker = 1000 // bounds the burst if the kill comes late
		killAfter = 200  // acknowledged creations before the kill
	)
	s := startServer(t, args...)
	_, secret := s.credentials()
	client := &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()

	var (
		mu      sync.Mutex
		acked   = map[string]string{} // user id -> email
		count   atomic.Int64
		enough  = make(chan struct{})
		wg      sync.WaitGroup
		workErr atomic.Value
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				if ctx.Err() != nil {
					return
				}
				email := fmt.Sprintf("w%d-%d@burst.example", w, i)
				status, body, err := request(t, client, "POST", s.base+"/api/v1/users", secret, `{"email":"`+email+`"}`)
				if err != nil {
					return // the server is gone
				}
				if status/100 != 2 {
					workErr.Store(fmt.Sprintf("POST /api/v1/users: %d %s", status, body))
					return
				}
				var u struct {
					ID string `json:"id"`
				}
				if err := json.Unmarshal([]byte(body), &u); err != nil || u.ID == "" {
					workErr.Store("POST /api/v1/users answered without an id: " + body)
					return
				}
				mu.Lock()
				acked[u.ID] = email
				mu.Unlock()
				if count.Add(1) == killAfter {
					close(enough)
				}
			}
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()

	select {
	case <-enough:
	case <-allDone:
		t.Fatalf("the burst ended before %d creations were acknowledged: %v", killAfter, workErr.Load())
	}
	s.stop(syscall.SIGKILL)
	cancel()
	<-allDone
	if e := workErr.Load(); e != nil {
		t.Fatal(e)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d creations acknowledged before SIGKILL", len(acked))

	if afterKill != nil {
		afterKill(t)
	}

	restarted := startServer(t, args...)
	for id, email := range acked {
		status, body, err := request(t, http.DefaultClient, "GET", restarted.base+"/api/v1/users/"+id, secret, "")
		if err != nil || status != http.StatusOK || !strings.Contains(body, email) {
			t.Fatalf("acknowledged user %s (%s) after restart: %d %s %v", id, email, status, body, err)
		}
	}
	listed := listAllUsers(t, restarted.base, secret)
	if listed < len(acked) {
		t.Errorf("the user list has %d users, fewer than the %d acknowledged", listed, len(acked))
	}
	restarted.stop(syscall.SIGTERM)
}

// listAllUsers pages through GET /api/v1/users and returns how many users it saw.
func listAllUsers(t *testing.T, base, secret string) int {
	t.Helper()
	total, cursor := 0, ""
	for range 10_000 { // bound: a cursor bug must not loop forever
		status, body, err := request(t, http.DefaultClient, "GET",
			base+"/api/v1/users?limit=100&cursor="+url.QueryEscape(cursor), secret, "")
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET /api/v1/users: %d %s %v", status, body, err)
		}
		var page struct {
			Users      []json.RawMessage `json:"users"`
			NextCursor *string           `json:"next_cursor"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatalf("user page %s: %v", body, err)
		}
		total += len(page.Users)
		if page.NextCursor == nil || *page.NextCursor == "" {
			return total
		}
		cursor = *page.NextCursor
	}
	t.Fatal("GET /api/v1/users never reached the last page")
	return 0
}

// checkSQLiteIntegrity opens the database file a killed process left behind (recovering its
// write-ahead log) and asks SQLite to check every page, index and foreign key.
func checkSQLiteIntegrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var result string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&result); err != nil || result != "ok" {
		t.Fatalf("PRAGMA integrity_check = %q, %v", result, err)
	}
	rows, err := db.Query("PRAGMA foreign_key_check")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if rows.Next() {
		t.Fatal("PRAGMA foreign_key_check found rows that break a foreign key")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestProjectCommands(t *testing.T) {
	dir := t.TempDir()
	data := []string{"--data-dir", dir}

	out := runOK(t, append([]string{"project", "create", "--name", "Acme", "--origin", "https://app.acme.example",
		"--redirect-uri", "https://app.acme.example/callback", "--json"}, data...)...)
	var created struct {
		ProjectID    string `json:"project_id"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.ProjectID == "" ||
		!bootClientIDRE.MatchString("client_id: "+created.ClientID) || !bootSecretRE.MatchString("client_secret: "+created.ClientSecret) {
		t.Fatalf("project create --json printed %s (%v)", out, err)
	}

	out = runOK(t, append([]string{"project", "list", "--json"}, data...)...)
	var list []struct {
		ProjectID string `json:"project_id"`
		ClientID  string `json:"client_id"`
		Name      string `json:"name"`
		Settings  struct {
			AllowedOrigins []string `json:"allowed_origins"`
		} `json:"settings"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].ClientID != created.ClientID ||
		list[0].Name != "Acme" || len(list[0].Settings.AllowedOrigins) != 1 {
		t.Fatalf("project list --json printed %s (%v)", out, err)
	}
	if strings.Contains(out, "sk_") {
		t.Errorf("project list reveals a secret: %s", out)
	}

	out = runOK(t, append([]string{"project", "update", "--client-id", created.ClientID, "--name", "Acme 2",
		"--settings", `{"codes":{"length":8}}`}, data...)...)
	if !strings.Contains(out, `"Acme 2"`) || !strings.Contains(out, `"length": 8`) {
		t.Errorf("project update printed %s", out)
	}
	_, stderr, code := runCLI(t, append([]string{"project", "update", "--client-id", created.ClientID,
		"--settings", `{"codes":{"length":12}}`}, data...)...)
	if code != 1 || !strings.Contains(stderr, "codes.length: must be between 6 and 8") {
		t.Errorf("invalid setting: exit %d, stderr %s", code, stderr)
	}

	// The server on the same data uses the CLI's project; it creates no Default project.
	s := startServer(t, data...)
	if strings.Contains(s.stderr.String(), "sk_") {
		t.Errorf("serve printed a secret although a project existed:\n%s", s.stderr.String())
	}
	works := func(secret string) int {
		t.Helper()
		status, _, err := request(t, http.DefaultClient, "GET", s.base+"/api/v1/project", secret, "")
		if err != nil {
			t.Fatal(err)
		}
		return status
	}
	if st := works(created.ClientSecret); st != http.StatusOK {
		t.Fatalf("the created secret: %d", st)
	}

	rotate := func(grace string) string {
		t.Helper()
		out := runOK(t, append([]string{"project", "rotate-secret", "--client-id", created.ClientID,
			"--grace", grace, "--json"}, data...)...)
		var r struct {
			ClientSecret string `json:"client_secret"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil || !strings.HasPrefix(r.ClientSecret, "sk_") {
			t.Fatalf("rotate-secret --json printed %s (%v)", out, err)
		}
		return r.ClientSecret
	}
	second := rotate("0")
	if works(created.ClientSecret) != http.StatusUnauthorized || works(second) != http.StatusOK {
		t.Errorf("after --grace 0: old %d, new %d; want 401 and 200", works(created.ClientSecret), works(second))
	}
	third := rotate("1h")
	if works(second) != http.StatusOK || works(third) != http.StatusOK {
		t.Errorf("after --grace 1h: old %d, new %d; want both 200", works(second), works(third))
	}
	s.stop(syscall.SIGTERM)
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage:"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"project"}, 2, "project needs a subcommand"},
		{[]string{"project", "create", "--data-dir", t.TempDir()}, 2, "--name is required"},
		{[]string{"project", "rotate-secret", "--client-id", "cli_x", "--grace", "1000h"}, 2, "--grace"},
		{[]string{"serve", "--no-such-flag"}, 2, "no-such-flag"},
		{[]string{"serve", "--log-format", "xml", "--addr", "nonsense"}, 2, "log_format"},
		{[]string{"project", "update", "--client-id", "cli_000000000000000000000000", "--name", "x",
			"--data-dir", t.TempDir()}, 1, "project_not_found"},
	}
	for _, c := range cases {
		_, stderr, code := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("latchkey %v: exit %d, stderr:\n%s\nwant exit %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
	// Both configuration problems are reported at once.
	_, stderr, _ := runCLI(t, "serve", "--log-format", "xml", "--addr", "nonsense")
	if !strings.Contains(stderr, "addr:") {
		t.Errorf("invalid config reports only some problems:\n%s", stderr)
	}

	out := runOK(t, "version")
	if !strings.HasPrefix(out, "latchkey ") {
		t.Errorf("version printed %q", out)
	}
}

func TestMigrateCommand(t *testing.T) {
	dir := t.TempDir()
	for range 2 { // a second run finds nothing to do
		if out := runOK(t, "migrate", "--data-dir", dir); !strings.Contains(out, "up to date") {
			t.Errorf("migrate printed %q", out)
		}
	}
}

var adminListeningRE = regexp.MustCompile(`msg="latchkey admin listening" addr=(\S+)`)

// TestMetricsOnlyOnTheAdminListener: the binary serves /metrics (and pprof, when asked) on the
// admin listener and answers 404 for them on the public port; health and readiness are on both.
func TestMetricsOnlyOnTheAdminListener(t *testing.T) {
	s := startServer(t, "--data-dir", t.TempDir(), "--pprof")
	m := adminListeningRE.FindStringSubmatch(s.stderr.String())
	if m == nil {
		t.Fatalf("no admin listener logged:\n%s", s.stderr.String())
	}
	admin := "http://" + m[1]
	for _, c := range []struct {
		url    string
		status int
	}{
		{s.base + "/metrics", 404},
		{s.base + "/debug/pprof/", 404},
		{s.base + "/healthz", 200},
		{s.base + "/readyz", 200},
		{admin + "/metrics", 200},
		{admin + "/healthz", 200},
		{admin + "/readyz", 200},
		{admin + "/debug/pprof/", 200},
	} {
		status, body, err := request(t, http.DefaultClient, "GET", c.url, "", "")
		if err != nil || status != c.status {
			t.Errorf("GET %s = %d %v, want %d", c.url, status, err, c.status)
		}
		if c.url == admin+"/metrics" && !strings.Contains(body, "latchkey_http_requests_total") {
			t.Errorf("admin /metrics lacks the HTTP metrics:\n%.300s", body)
		}
	}
	s.stop(syscall.SIGTERM)
}

// TestDevRefusedOnAPublicAddress: --dev on an address others can reach would show every
// project's codes at /dev/inbox, so serve refuses it and says how to accept it; with
// --dev-allow-remote it starts and warns.
func TestDevRefusedOnAPublicAddress(t *testing.T) {
	_, stderr, code := runCLI(t, "serve", "--dev", "--addr", "0.0.0.0:0", "--admin-addr", "off", "--data-dir", t.TempDir())
	if code == 0 || !strings.Contains(stderr, "--dev-allow-remote") {
		t.Fatalf("--dev on 0.0.0.0: exit %d, stderr:\n%s", code, stderr)
	}
	s := launchServer(t, nil, "--dev", "--addr", "0.0.0.0:0", "--dev-allow-remote", "--data-dir", t.TempDir())
	if !strings.Contains(s.stderr.String(), "level=WARN") || !strings.Contains(s.stderr.String(), "/dev/inbox") {
		t.Errorf("no warning for --dev-allow-remote:\n%s", s.stderr.String())
	}
	s.stop(syscall.SIGTERM)
}
