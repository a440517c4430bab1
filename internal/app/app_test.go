package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/config"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

func newApp(t *testing.T, st *sqlstore.Store) (*app.App, *httptest.Server) {
	t.Helper()
	a, err := app.NewWithStore(st, app.WithPublicURL("https://auth.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	checkAgainstOpenAPI(t, srv)
	t.Cleanup(srv.Close)
	return a, srv
}

func call(t *testing.T, method, url, body string, header map[string]string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := clientFor(url).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestOperationalRoutes(t *testing.T) {
	a, srv := newApp(t, testdb.SQLite(t))

	if status, body := call(t, "GET", srv.URL+"/healthz", "", nil); status != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Errorf("/healthz: %d %s", status, body)
	}
	if status, body := call(t, "GET", srv.URL+"/readyz", "", nil); status != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Errorf("/readyz: %d %s", status, body)
	}
	status, body := call(t, "GET", srv.URL+"/api/v1/openapi.json", "", nil)
	if status != 200 || !json.Valid([]byte(body)) || !strings.Contains(body, `"openapi"`) {
		t.Errorf("/api/v1/openapi.json: %d", status)
	}
	// Metrics and pprof are on the admin listener only; health and readiness are on both.
	for _, p := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/heap"} {
		if status, body := call(t, "GET", srv.URL+p, "", nil); status != 404 {
			t.Errorf("public %s: %d %.100s, want 404", p, status, body)
		}
	}
	admin := httptest.NewServer(a.AdminHandler())
	t.Cleanup(admin.Close)
	for _, p := range []string{"/healthz", "/readyz"} {
		if status, body := call(t, "GET", admin.URL+p, "", nil); status != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
			t.Errorf("admin %s: %d %s", p, status, body)
		}
	}
	if status, _ := call(t, "GET", admin.URL+"/debug/pprof/", "", nil); status != 404 {
		t.Errorf("admin /debug/pprof/ without WithPprof: %d, want 404", status)
	}
	status, body = call(t, "GET", admin.URL+"/metrics", "", nil)
	if status != 200 {
		t.Fatalf("/metrics: %d", status)
	}
	for _, metric := range []string{
		`latchkey_http_requests_total{method="GET",route="GET /healthz",status="200"} 1`,
		"latchkey_http_request_duration_seconds_bucket",
		"go_goroutines",
		"process_resident_memory_bytes",
		`go_sql_open_connections{db_name="latchkey_writer"}`,
	} {
		if !strings.Contains(body, metric) {
			t.Errorf("/metrics lacks %s", metric)
		}
	}
	if status, body := call(t, "GET", srv.URL+"/nope", "", nil); status != 404 || !strings.Contains(body, "route_not_found") {
		t.Errorf("unknown route: %d %s", status, body)
	}
}

func TestReadyzReportsAnUnavailableDatabase(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "l.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	_, srv := newApp(t, st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if status, body := call(t, "GET", srv.URL+"/readyz", "", nil); status != 503 || strings.TrimSpace(body) != `{"status":"unavailable"}` {
		t.Errorf("/readyz on a closed database: %d %s", status, body)
	}
	if status, _ := call(t, "GET", srv.URL+"/healthz", "", nil); status != 200 {
		t.Errorf("/healthz must not depend on the database: %d", status)
	}
}

// TestWiring drives the bootstrap secret through the project and directory routes on both
// databases: the services share the store and the Default project has its seeded roles.
func TestWiring(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		a, srv := newApp(t, st)
		issued, created, err := a.Projects().Bootstrap(context.Background())
		if err != nil || !created {
			t.Fatalf("Bootstrap = %v, %v", created, err)
		}
		secret := map[string]string{"x-client-secret": issued.ClientSecret}

		status, body := call(t, "GET", srv.URL+"/api/v1/project", "", secret)
		if status != 200 || !strings.Contains(body, issued.Project.ClientID) {
			t.Fatalf("GET /api/v1/project: %d %s", status, body)
		}
		status, body = call(t, "GET", srv.URL+"/api/v1/config?client_id="+issued.Project.ClientID, "", nil)
		if status != 200 || !strings.Contains(body, `"rp_id":"auth.example.com"`) {
			t.Errorf("GET /api/v1/config: %d %s", status, body)
		}
		status, body = call(t, "GET", srv.URL+"/api/v1/roles", "", secret)
		for _, slug := range []string{`"owner"`, `"admin"`, `"developer"`} {
			if status != 200 || !strings.Contains(body, slug) {
				t.Errorf("GET /api/v1/roles lacks %s: %d %s", slug, status, body)
			}
		}
		status, body = call(t, "POST", srv.URL+"/api/v1/users", `{"email":"ada@example.com"}`, secret)
		if status/100 != 2 {
			t.Errorf("POST /api/v1/users: %d %s", status, body)
		}
		if status, _ := call(t, "GET", srv.URL+"/api/v1/users", "", nil); status != 401 {
			t.Errorf("GET /api/v1/users without a secret: %d", status)
		}
	})
}

func TestServeFinishesInFlightRequests(t *testing.T) {
	a, err := app.NewWithStore(testdb.SQLite(t), app.WithShutdownTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	a.Router().Handle("GET /test/slow", httpserver.Public, func(w http.ResponseWriter, r *http.Request) error {
		close(started)
		<-release
		httpserver.WriteJSON(w, http.StatusOK, map[string]string{"status": "done"})
		return nil
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/test/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{status: resp.StatusCode, body: string(b), err: err}
	}()
	<-started
	cancel()

	// Wait until the server has stopped accepting connections, so that the request is
	// finished during the shutdown and not before it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections after shutdown began")
		}
		time.Sleep(10 * time.Millisecond) // poll interval, not synchronisation
	}
	close(release)

	r := <-got
	if r.err != nil || r.status != 200 || !strings.Contains(r.body, "done") {
		t.Fatalf("in-flight request: %+v", r)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v, want nil after a clean shutdown", err)
	}
}

func TestNewRefusesAnInvalidConfig(t *testing.T) {
	cfg := config.Default()
	cfg.LogFormat = "xml"
	cfg.DataDir = t.TempDir()
	_, err := app.New(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "log_format") {
		t.Fatalf("New = %v", err)
	}
}

func TestNewOpensAndMigratesSQLite(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	a, err := app.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Projects().Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Store().Ping(context.Background()); err == nil {
		t.Error("Close left the database open")
	}
	if err := app.Migrate(context.Background(), cfg); err != nil {
		t.Errorf("Migrate on an up-to-date database: %v", err)
	}
}

// TestPprofOnTheAdminListener: with WithPprof the admin listener serves Go's profiles; the
// public one still does not.
func TestPprofOnTheAdminListener(t *testing.T) {
	a, err := app.NewWithStore(testdb.SQLite(t), app.WithPprof(true))
	if err != nil {
		t.Fatal(err)
	}
	pub := httptest.NewServer(a.Handler())
	t.Cleanup(pub.Close)
	admin := httptest.NewServer(a.AdminHandler())
	t.Cleanup(admin.Close)
	if status, body := call(t, "GET", admin.URL+"/debug/pprof/goroutine?debug=1", "", nil); status != 200 || !strings.Contains(body, "goroutine profile") {
		t.Errorf("admin pprof: %d %.100s", status, body)
	}
	if status, _ := call(t, "GET", pub.URL+"/debug/pprof/goroutine?debug=1", "", nil); status != 404 {
		t.Errorf("public pprof: %d, want 404", status)
	}
}
