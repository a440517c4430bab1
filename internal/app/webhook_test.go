package app_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testclock"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// received is one request a webhook receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is a webhook endpoint: it records every request by path and answers with the
// statuses queued for that path, then 200.
type receiver struct {
	mu      sync.Mutex
	got     map[string][]received
	answers map[string][]int
	srv     *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{got: map[string][]received{}, answers: map[string][]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got[r.URL.Path] = append(rc.got[r.URL.Path], received{r.Header.Clone(), body})
		status := http.StatusOK
		if q := rc.answers[r.URL.Path]; len(q) > 0 {
			status, rc.answers[r.URL.Path] = q[0], q[1:]
		}
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests(path string) []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got[path]...)
}

func (rc *receiver) answer(path string, statuses ...int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answers[path] = append(rc.answers[path], statuses...)
}

// hookWorld is a server with one project, a user and a webhook receiver.
type hookWorld struct {
	t      *testing.T
	a      *app.App
	srv    *httptest.Server
	clock  *testclock.Clock
	creds  map[string]string
	user   string
	rc     *receiver
	client string
}

func newHookWorld(t *testing.T, st *sqlstore.Store, opts ...app.Option) *hookWorld {
	w := &hookWorld{t: t, clock: testclock.New(time.Now().UTC().Truncate(time.Second)), rc: newReceiver(t)}
	var err error
	w.a, err = app.NewWithStore(st, append([]app.Option{app.WithClock(w.clock.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	w.srv = httptest.NewServer(w.a.Handler())
	checkAgainstOpenAPI(t, w.srv)
	t.Cleanup(w.srv.Close)
	issued, err := w.a.Projects().Create(context.Background(), project.NewProject{Name: "Hooks"})
	if err != nil {
		t.Fatal(err)
	}
	w.client = issued.Project.ClientID
	w.creds = map[string]string{"X-Client-Id": issued.Project.ClientID, "X-Client-Secret": issued.ClientSecret,
		"Content-Type": "application/json"}
	w.user = w.json("POST", "/api/v1/users", `{"email":"ada@example.com"}`, 201)["id"].(string)
	return w
}

// json sends a management request and decodes the answer, which must have status want.
func (w *hookWorld) json(method, path, body string, want int) map[string]any {
	w.t.Helper()
	status, raw := call(w.t, method, w.srv.URL+path, body, w.creds)
	if status != want {
		w.t.Fatalf("%s %s = %d %s, want %d", method, path, status, raw, want)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	return v
}

// hook creates a webhook posting to the receiver at path and returns its id and secret.
func (w *hookWorld) hook(path, events string) (id, secret string) {
	w.t.Helper()
	got := w.json("POST", "/api/v1/webhooks", `{"url":"`+w.rc.srv.URL+path+`","events":`+events+`}`, 201)
	secret, _ = got["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") {
		w.t.Fatalf("created webhook's secret = %q, want whsec_...", secret)
	}
	if !strings.Contains(w.hookList(), got["id"].(string)) || strings.Contains(w.hookList(), secret) {
		w.t.Fatalf("the webhook list does not show the new webhook, or shows its secret")
	}
	return got["id"].(string), secret
}

func (w *hookWorld) hookList() string {
	_, raw := call(w.t, "GET", w.srv.URL+"/api/v1/webhooks", "", w.creds)
	return raw
}

// run runs the outbox worker once and returns how many items it claimed.
func (w *hookWorld) run() int {
	w.t.Helper()
	n, err := w.a.Worker().RunOnce(context.Background())
	if err != nil {
		w.t.Fatalf("RunOnce: %v", err)
	}
	return n
}

func (w *hookWorld) deliveries(id string) []any {
	w.t.Helper()
	return w.json("GET", "/api/v1/webhooks/"+id+"/deliveries", "", 200)["deliveries"].([]any)
}

// verify checks a request's signature with an HMAC computed here, independently of the server's
// code, and returns the decoded body.
func verify(t *testing.T, r received, secret string, now time.Time) map[string]any {
	t.Helper()
	sig := r.header.Get("Latchkey-Signature")
	var ts, v1 string
	for _, part := range strings.Split(sig, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = v
		}
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(r.body)))
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(v1), []byte(want)) {
		t.Fatalf("signature %q does not verify with the secret (want v1=%s)", sig, want)
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(unix, 0)).Abs() > 5*time.Minute {
		t.Errorf("signature time %q is not close to now (%s)", ts, now)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	if id := r.header.Get("Latchkey-Event-Id"); id == "" || body["id"] != id {
		t.Errorf("Latchkey-Event-Id = %q, body id = %v", id, body["id"])
	}
	return body
}

func TestWebhookDelivery(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newHookWorld(t, st, app.WithPrivateWebhooks(true))
		all, allSecret := w.hook("/all", `["*"]`)
		mfa, mfaSecret := w.hook("/mfa", `["mfa."]`)

		// An event through a real route reaches the "*" webhook only, signed.
		w.json("DELETE", "/api/v1/users/"+w.user+"/sessions", "", 200)
		if n := w.run(); n != 1 {
			t.Fatalf("the worker claimed %d items, want the one delivery", n)
		}
		got := w.rc.requests("/all")
		if len(got) != 1 || len(w.rc.requests("/mfa")) != 0 {
			t.Fatalf("receivers got %d (all) and %d (mfa) requests, want 1 and 0", len(got), len(w.rc.requests("/mfa")))
		}
		body := verify(t, got[0], allSecret, w.clock.Now())
		data, _ := body["data"].(map[string]any)
		if body["type"] != "session.revoked_all" || data["type"] != "session.revoked_all" || data["user_id"] != w.user ||
			data["id"] != body["id"] || body["created_at"] == "" {
			t.Errorf("payload = %s", got[0].body)
		}
		ds := w.deliveries(all)
		if len(ds) != 1 || field[string](t, ds[0], "status") != "delivered" || field[float64](t, ds[0], "status_code") != 200 ||
			field[float64](t, ds[0], "attempts") != 1 || field[string](t, ds[0], "event_id") != body["id"] {
			t.Errorf("delivery log of the \"*\" webhook = %v", ds)
		}
		if ds := w.deliveries(mfa); len(ds) != 0 {
			t.Errorf("the \"mfa.\" webhook has deliveries of a session event: %v", ds)
		}

		// An MFA event: its first attempt to the "mfa." webhook gets a 500 and is retried.
		w.rc.answer("/mfa", 500)
		w.json("DELETE", "/api/v1/users/"+w.user+"/mfa", "", 200)
		if n := w.run(); n != 2 {
			t.Fatalf("the worker claimed %d items, want 2 deliveries", n)
		}
		ds = w.deliveries(mfa)
		if len(ds) != 1 || field[string](t, ds[0], "status") != "pending" || field[float64](t, ds[0], "status_code") != 500 ||
			field[string](t, ds[0], "last_error") != "HTTP 500" || field[float64](t, ds[0], "attempts") != 1 ||
			field[string](t, ds[0], "next_attempt_at") == "" {
			t.Fatalf("delivery log after a 500 = %v", ds)
		}
		if n := w.run(); n != 0 {
			t.Errorf("the worker retried at once (%d items), before the backoff", n)
		}
		w.clock.Advance(31 * time.Second)
		if n := w.run(); n != 1 {
			t.Fatalf("after the backoff the worker claimed %d items, want the retry", n)
		}
		ds = w.deliveries(mfa)
		if len(ds) != 1 || field[string](t, ds[0], "status") != "delivered" || field[float64](t, ds[0], "attempts") != 2 ||
			field[float64](t, ds[0], "status_code") != 200 || field[string](t, ds[0], "delivered_at") == "" {
			t.Errorf("delivery log after the retry = %v", ds)
		}
		tries := w.rc.requests("/mfa")
		if len(tries) != 2 {
			t.Fatalf("the mfa receiver got %d requests, want 2", len(tries))
		}
		first, second := verify(t, tries[0], mfaSecret, w.clock.Now()), verify(t, tries[1], mfaSecret, w.clock.Now())
		if first["id"] != second["id"] || first["type"] != "mfa.reset" {
			t.Errorf("the retry is not the same event: %v then %v", first, second)
		}
		if len(w.rc.requests("/all")) != 2 || len(w.deliveries(all)) != 2 {
			t.Errorf("the \"*\" webhook did not get the MFA event once")
		}

		// A rotated secret signs from then on; the old one no longer verifies.
		rotated := w.json("POST", "/api/v1/webhooks/"+all+"/rotate-secret", "", 200)
		newSecret, _ := rotated["secret"].(string)
		if !strings.HasPrefix(newSecret, "whsec_") || newSecret == allSecret {
			t.Fatalf("rotated secret = %q", newSecret)
		}
		w.json("DELETE", "/api/v1/users/"+w.user+"/sessions", "", 200)
		w.run()
		last := w.rc.requests("/all")[2]
		verify(t, last, newSecret, w.clock.Now())
		ts, _, _ := strings.Cut(strings.TrimPrefix(last.header.Get("Latchkey-Signature"), "t="), ",")
		mac := hmac.New(sha256.New, []byte(allSecret))
		mac.Write([]byte(ts + "." + string(last.body)))
		if strings.Contains(last.header.Get("Latchkey-Signature"), hex.EncodeToString(mac.Sum(nil))) {
			t.Error("the old secret still signs")
		}

		// A disabled webhook gets nothing; a deleted one is gone with its log.
		w.json("PATCH", "/api/v1/webhooks/"+mfa, `{"enabled":false}`, 200)
		w.json("DELETE", "/api/v1/users/"+w.user+"/mfa", "", 200)
		w.run()
		if len(w.rc.requests("/mfa")) != 2 {
			t.Error("a disabled webhook was called")
		}
		w.json("DELETE", "/api/v1/webhooks/"+all, "", 200)
		w.json("GET", "/api/v1/webhooks/"+all+"/deliveries", "", 404)
	})
}

// TestWebhooksReachOnlyPublicAddresses checks that, by default, a webhook cannot make the
// server connect to its own network: a URL naming a non-public address is refused when the
// webhook is made, and one whose name resolves to loopback is refused when dialled, so the
// loopback receiver is never called.
func TestWebhooksReachOnlyPublicAddresses(t *testing.T) {
	w := newHookWorld(t, testdb.SQLite(t))
	for _, u := range []string{w.rc.srv.URL + "/all", "https://[::ffff:127.0.0.1]/x", "https://[64:ff9b::a9fe:a9fe]/latest",
		"https://[2002:a9fe:a9fe::1]/x", "https://198.18.0.1/x", "https://10.0.0.1/x"} {
		got := w.json("POST", "/api/v1/webhooks", `{"url":"`+u+`","events":["*"]}`, 400)
		if got["error_code"] != "invalid_url" || got["field"] != "url" {
			t.Errorf("webhook to %s: %v, want 400 invalid_url naming url", u, got)
		}
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(w.rc.srv.URL, "http://"))
	got := w.json("POST", "/api/v1/webhooks", `{"url":"http://localhost:`+port+`/all","events":["*"]}`, 201)
	id := got["id"].(string)
	w.json("DELETE", "/api/v1/users/"+w.user+"/sessions", "", 200)
	w.run()
	if n := len(w.rc.requests("/all")); n != 0 {
		t.Fatalf("the loopback receiver got %d requests", n)
	}
	ds := w.deliveries(id)
	if len(ds) != 1 || field[string](t, ds[0], "status") != "pending" ||
		!strings.Contains(field[string](t, ds[0], "last_error"), "non-public address") {
		t.Errorf("delivery log = %v, want a pending delivery refused as non-public", ds)
	}
}

func TestAuditLogAPI(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newHookWorld(t, st)
		// Creating users is audited too (user.created), a minute before the rest.
		other := w.json("POST", "/api/v1/users", `{"email":"bob@example.com"}`, 201)["id"].(string)
		w.clock.Advance(time.Minute)
		w.json("DELETE", "/api/v1/users/"+w.user+"/sessions", "", 200)
		w.clock.Advance(time.Minute)
		mid := w.clock.Now()
		w.json("DELETE", "/api/v1/users/"+w.user+"/mfa", "", 200)
		w.clock.Advance(time.Minute)
		w.json("DELETE", "/api/v1/users/"+other+"/mfa", "", 200)

		list := func(query string) ([]any, any) {
			t.Helper()
			got := w.json("GET", "/api/v1/logs"+query, "", 200)
			return got["logs"].([]any), got["next_cursor"]
		}
		types := func(logs []any) string {
			var out []string
			for _, l := range logs {
				out = append(out, field[string](t, l, "type"))
			}
			return strings.Join(out, " ")
		}
		logs, next := list("")
		if types(logs) != "mfa.reset mfa.reset session.revoked_all user.created user.created" || next != nil {
			t.Fatalf("logs = %s (next %v), want newest first", types(logs), next)
		}
		e := logs[2].(map[string]any)
		for _, k := range []string{"id", "type", "user_id", "session_id", "ip_address", "user_agent", "detail", "created_at"} {
			if _, ok := e[k]; !ok {
				t.Errorf("a log entry has no %q: %v", k, e)
			}
		}
		if _, ok := e["project_id"]; ok {
			t.Errorf("a log entry shows its project id: %v", e)
		}
		if logs, _ := list("?type=mfa."); types(logs) != "mfa.reset mfa.reset" {
			t.Errorf("type=mfa. = %s", types(logs))
		}
		if logs, _ := list("?type=session.revoked_all"); types(logs) != "session.revoked_all" {
			t.Errorf("type=session.revoked_all = %s", types(logs))
		}
		if logs, _ := list("?type=mfa"); len(logs) != 0 {
			t.Errorf("type=mfa (exact, no such type) = %s", types(logs))
		}
		if logs, _ := list("?user_id=" + other); types(logs) != "mfa.reset user.created" || field[string](t, logs[0], "user_id") != other {
			t.Errorf("user_id filter = %v", logs)
		}
		if logs, _ := list("?from=" + url.QueryEscape(mid.Format(time.RFC3339))); types(logs) != "mfa.reset mfa.reset" {
			t.Errorf("from filter = %s", types(logs))
		}
		if logs, _ := list("?to=" + url.QueryEscape(mid.Format(time.RFC3339))); types(logs) != "session.revoked_all user.created user.created" {
			t.Errorf("to filter = %s", types(logs))
		}

		var paged []string
		for path := "?limit=1"; ; {
			logs, next := list(path)
			if len(logs) != 1 {
				t.Fatalf("a page of limit 1 has %d entries", len(logs))
			}
			paged = append(paged, field[string](t, logs[0], "type"))
			if next == nil {
				break
			}
			path = "?limit=1&cursor=" + url.QueryEscape(next.(string))
		}
		if strings.Join(paged, " ") != "mfa.reset mfa.reset session.revoked_all user.created user.created" {
			t.Errorf("paging by one = %v", paged)
		}

		for _, bad := range []struct{ query, code, field string }{
			{"?limit=0", "invalid_limit", "limit"},
			{"?limit=101", "invalid_limit", "limit"},
			{"?cursor=%21", "invalid_cursor", "cursor"},
			{"?type=Not%20a%20type", "invalid_request", "type"},
			{"?from=yesterday", "invalid_request", "from"},
			{"?to=2025-13-01T00:00:00Z", "invalid_request", "to"},
			{"?from=2025-02-01T00:00:00Z&to=2025-01-01T00:00:00Z", "invalid_request", "to"},
			{"?user_id=nobody", "invalid_request", "user_id"},
			{"?organization_id=x", "invalid_request", "organization_id"},
		} {
			status, raw := call(t, "GET", w.srv.URL+"/api/v1/logs"+bad.query, "", w.creds)
			var v any
			_ = json.Unmarshal([]byte(raw), &v)
			if code, f := errorOf(status, v); status != 400 || code != bad.code || f != bad.field {
				t.Errorf("GET /api/v1/logs%s = %d %s", bad.query, status, raw)
			}
		}
	})
}

// TestWebhookSecretsAreNotInTheDatabaseFile reads the SQLite files byte by byte for webhook
// signing secrets, as shown and raw.
func TestWebhookSecretsAreNotInTheDatabaseFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	st, err := sqlstore.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	w := newHookWorld(t, st, app.WithPrivateWebhooks(true)) // the receiver is on loopback
	id, first := w.hook("/all", `["*"]`)
	second, _ := w.json("POST", "/api/v1/webhooks/"+id+"/rotate-secret", "", 200)["secret"].(string)
	_, third := w.hook("/other", `["mfa.", "session.revoked_all"]`)
	w.json("DELETE", "/api/v1/users/"+w.user+"/sessions", "", 200)
	files, _ := filepath.Glob(path + "*")
	seen := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		seen += len(b)
		for _, secret := range []string{first, second, third} {
			raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
			if err != nil || len(raw) != 32 {
				t.Fatalf("secret %q: %v", secret, err)
			}
			if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, raw) ||
				bytes.Contains(b, []byte(strings.TrimPrefix(secret, "whsec_"))) {
				t.Errorf("%s holds a webhook secret", filepath.Base(f))
			}
		}
	}
	if seen == 0 {
		t.Fatal("no database file was read")
	}
}
