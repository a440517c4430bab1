package app_test

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
)

// smallDisk mounts a tmpfs of the given size in a temp directory and returns its path; it is
// unmounted when the test ends, after everything registered later (the store) has closed. It
// skips the test where mounting is impossible (not root, no mount), except under CI=true.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs for the disk-full test: %v %s", err, out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; it is required in CI")
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file on dir's file system until it is full, and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for size := len(chunk); size > 0; {
		if _, err := f.Write(chunk[:size]); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			size /= 2 // the last blocks, down to a byte
		}
	}
	return path
}

// TestDiskFullIsAnnouncedAndRecovered runs the server on a SQLite file on a small disk and
// fills the disk. A write then answers 503 storage_unavailable with Retry-After (not an
// anonymous 500), /readyz reports not ready, and reads still work; once space is freed, the
// next readiness probe finds that writes succeed again, and writes do.
func TestDiskFullIsAnnouncedAndRecovered(t *testing.T) {
	dir := smallDisk(t, "16m")
	st, err := sqlstore.OpenSQLite(t.Context(), filepath.Join(dir, "latchkey.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	w := newFlowWorld(t, st, app.WithDev(true))
	admin := w.secret()
	admin["Content-Type"] = "application/json"
	w.want(w.call("POST", "/api/v1/users", `{"email":"before@example.com"}`, admin), 201, "")
	w.want(w.call("GET", "/readyz", "", nil), 200, "")

	filler := fill(t, dir)
	// SQLite reuses the space its write-ahead log already has, so the first writes after the
	// disk fills may still fit; every write after that needs space the disk does not have.
	var full response
	created := 0
	for i := range 5000 {
		full = w.call("POST", "/api/v1/users", fmt.Sprintf(`{"email":"u%d@example.com","raw_attributes":{"pad":%q}}`, i, strings.Repeat("x", 2000)), admin)
		if full.status != 201 {
			break
		}
		created++
	}
	if full.status != 503 || full.body["error_code"] != "storage_unavailable" || full.header.Get("Retry-After") == "" {
		t.Fatalf("a write to a full disk (after %d that fit) = %d %s (Retry-After %q), want 503 storage_unavailable with Retry-After",
			created, full.status, full.raw, full.header.Get("Retry-After"))
	}
	t.Logf("%d users fitted after the disk filled; then %s", created, full.raw)
	w.want(w.call("POST", "/api/v1/users", `{"email":"again@example.com"}`, admin), 503, "storage_unavailable")
	// A sign-in writes a flow and its message: refused the same way, never half done.
	w.want(w.post("email-otp/send", `{"email":"before@example.com"}`), 503, "storage_unavailable")
	if r := w.call("GET", "/readyz", "", nil); r.status != 503 {
		t.Errorf("/readyz on a full disk = %d %s, want 503", r.status, r.raw)
	}
	if r := w.call("GET", "/api/v1/users?limit=100", "", admin); r.status != 200 || len(r.body["users"].([]any)) != created+1 {
		t.Errorf("reads on a full disk: %d, %d users, want 200 and %d", r.status, len(r.body["users"].([]any)), created+1)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if r := w.call("GET", "/readyz", "", nil); r.status != 200 {
		t.Fatalf("/readyz after space was freed = %d %s, want 200", r.status, r.raw)
	}
	w.want(w.call("POST", "/api/v1/users", `{"email":"after@example.com"}`, admin), 201, "")
	s := w.post("email-otp/send", `{"email":"after@example.com"}`)
	w.want(s, 200, "")
	w.want(w.post("email-otp/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, s.body["state"], w.lastCode("after@example.com"))), 200, "")

	// The failed writes left nothing half-written behind.
	db, err := sql.Open("sqlite", filepath.Join(dir, "latchkey.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check after the disk was full = %q, %v", check, err)
	}
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM users WHERE email IN ('again@example.com')").Scan(&n); err != nil || n != 0 {
		t.Errorf("a refused user creation was stored: %d, %v", n, err)
	}
}
