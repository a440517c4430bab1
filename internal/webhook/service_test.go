package webhook_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/secretbox"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testclock"
	"github.com/latchkey-dev/latchkey/internal/testdb"
	"github.com/latchkey-dev/latchkey/internal/webhook"
)

// hooks is the webhook service and dispatcher on a real store, for two projects.
type hooks struct {
	t        *testing.T
	st       *sqlstore.Store
	clock    *testclock.Clock
	ring     *secretbox.Keyring
	svc      *webhook.Service
	dispatch *webhook.Dispatcher
	p, other string // project ids
}

func newHooks(t *testing.T, st *sqlstore.Store) *hooks {
	t.Helper()
	ring, err := secretbox.NewKeyring([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	h := &hooks{t: t, st: st, ring: ring, clock: testclock.New(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))}
	// The receivers are httptest servers on loopback, which only AllowPrivate reaches.
	h.svc = webhook.New(webhook.Deps{Store: st, Sealer: ring, Now: h.clock.Now, AllowPrivate: true})
	h.dispatch = webhook.NewDispatcher(webhook.Dispatcher{Queue: st, Opener: ring, AllowPrivate: true, Now: h.clock.Now})
	ids := ident.NewGenerator()
	for _, id := range []*string{&h.p, &h.other} {
		*id = ids.New()
		now := h.clock.Now()
		if err := st.CreateProject(t.Context(), store.Project{ID: *id, ClientID: "cli_" + *id, Name: "Hooks", Settings: []byte(`{}`),
			CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func ptr[T any](v T) *T { return &v }

func wantFailure(t *testing.T, err error, code, field string) {
	t.Helper()
	if fe, ok := failure.As(err); !ok || fe.Code != code || fe.Field != field {
		t.Fatalf("err = %v, want %s (field %q)", err, code, field)
	}
}

// event stores an audit event of project p, which queues its deliveries.
func (h *hooks) event(typ string) store.AuditEvent {
	h.t.Helper()
	e := store.AuditEvent{ID: ident.NewGenerator().New(), ProjectID: h.p, Type: typ, UserID: ident.NewGenerator().New(),
		Detail: map[string]any{"k": "v"}, CreatedAt: h.clock.Now()}
	if err := h.st.AddAuditEvent(h.t.Context(), e); err != nil {
		h.t.Fatal(err)
	}
	return e
}

func TestWebhookLifecycle(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		h := newHooks(t, st)
		ctx := t.Context()

		_, err := h.svc.Create(ctx, h.p, webhook.Input{Events: &[]string{"*"}})
		wantFailure(t, err, "invalid_url", "url")
		_, err = h.svc.Create(ctx, h.p, webhook.Input{URL: ptr("https://hooks.example.com/x")})
		wantFailure(t, err, "invalid_events", "events")
		_, err = h.svc.Create(ctx, h.p, webhook.Input{URL: ptr("ftp://hooks.example.com/x"), Events: &[]string{"*"}})
		wantFailure(t, err, "invalid_url", "url")
		_, err = h.svc.Create(ctx, h.p, webhook.Input{URL: ptr("https://hooks.example.com/x"), Events: &[]string{}})
		wantFailure(t, err, "invalid_events", "events")

		made, err := h.svc.Create(ctx, h.p, webhook.Input{URL: ptr("https://hooks.example.com/x"), Events: &[]string{"mfa.", "session.revoked_all"}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(made.Secret, webhook.SecretPrefix) || !made.Webhook.Enabled || made.Webhook.ProjectID != h.p {
			t.Fatalf("created %+v", made)
		}
		// The secret is stored sealed, never as it was shown.
		got, err := h.svc.Get(ctx, h.p, made.Webhook.ID)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(got.Secret), made.Secret) || got.URL != "https://hooks.example.com/x" {
			t.Fatalf("stored %+v", got)
		}
		// Another project, an unknown id and a malformed one see nothing.
		for _, tc := range []struct{ project, id string }{{h.other, made.Webhook.ID}, {h.p, ident.NewGenerator().New()}, {h.p, "not-an-id"}} {
			_, err := h.svc.Get(ctx, tc.project, tc.id)
			wantFailure(t, err, "webhook_not_found", "")
			_, err = h.svc.Update(ctx, tc.project, tc.id, webhook.Input{Enabled: ptr(false)})
			wantFailure(t, err, "webhook_not_found", "")
			_, err = h.svc.RotateSecret(ctx, tc.project, tc.id)
			wantFailure(t, err, "webhook_not_found", "")
			wantFailure(t, h.svc.Delete(ctx, tc.project, tc.id), "webhook_not_found", "")
			_, _, err = h.svc.Deliveries(ctx, tc.project, tc.id, "", "")
			wantFailure(t, err, "webhook_not_found", "")
		}

		// Update leaves what it is not given.
		_, err = h.svc.Update(ctx, h.p, made.Webhook.ID, webhook.Input{URL: ptr("http://hooks.example.com/plain")})
		wantFailure(t, err, "invalid_url", "url")
		up, err := h.svc.Update(ctx, h.p, made.Webhook.ID, webhook.Input{Enabled: ptr(false)})
		if err != nil {
			t.Fatal(err)
		}
		if up.Enabled || up.URL != "https://hooks.example.com/x" || len(up.Events) != 2 {
			t.Fatalf("after update %+v", up)
		}

		rotated, err := h.svc.RotateSecret(ctx, h.p, made.Webhook.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rotated.Secret == made.Secret || !strings.HasPrefix(rotated.Secret, webhook.SecretPrefix) {
			t.Fatalf("rotated secret %q (was %q)", rotated.Secret, made.Secret)
		}

		if err := h.svc.Delete(ctx, h.p, made.Webhook.ID); err != nil {
			t.Fatal(err)
		}
		_, err = h.svc.Get(ctx, h.p, made.Webhook.ID)
		wantFailure(t, err, "webhook_not_found", "")
	})
}

func TestWebhookListPages(t *testing.T) {
	h := newHooks(t, testdb.SQLite(t))
	ctx := t.Context()
	var want []string
	for range 5 {
		w, err := h.svc.Create(ctx, h.p, webhook.Input{URL: ptr("https://hooks.example.com/x"), Events: &[]string{"*"}})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, w.Webhook.ID)
	}
	if _, err := h.svc.Create(ctx, h.other, webhook.Input{URL: ptr("https://hooks.example.com/y"), Events: &[]string{"*"}}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(want) // ids made in one instant are not in the order they were made
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		page, next, err := h.svc.List(ctx, h.p, "2", cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range page {
			got = append(got, w.ID)
		}
		if next == "" {
			if pages != 2 {
				t.Errorf("%d pages of 2, want 3", pages+1)
			}
			break
		}
		cursor = next
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("listed %v, want the project's own %v in id order", got, want)
	}
	_, _, err := h.svc.List(ctx, h.p, "101", "")
	wantFailure(t, err, "invalid_limit", "limit")
	_, _, err = h.svc.List(ctx, h.p, "", "%%")
	wantFailure(t, err, "invalid_cursor", "cursor")
}

// receiver records the requests a webhook endpoint gets and answers with status.
type receiver struct {
	mu     sync.Mutex
	status int
	got    []*http.Request
	bodies [][]byte
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.got, rc.bodies = append(rc.got, r), append(rc.bodies, body)
	w.WriteHeader(rc.status)
}

// subscribed makes a receiver that answers status and a webhook of project p to it for events.
func (h *hooks) subscribed(t *testing.T, status int, events ...string) (*receiver, webhook.WithSecret) {
	t.Helper()
	rc := &receiver{status: status}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	made, err := h.svc.Create(t.Context(), h.p, webhook.Input{URL: ptr(srv.URL + "/hook"), Events: &events})
	if err != nil {
		t.Fatal(err)
	}
	return rc, made
}

func TestDispatcherSignsDeliversAndRetries(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		h := newHooks(t, st)
		ctx := t.Context()
		rc, made := h.subscribed(t, http.StatusInternalServerError, "mfa.")
		h.event("session.revoked_all") // not subscribed: never delivered
		e := h.event("mfa.totp.reset")

		if n, err := h.dispatch.RunOnce(ctx); err != nil || n != 1 {
			t.Fatalf("first run claimed %d, %v; want the one subscribed event", n, err)
		}
		ds, _, err := h.svc.Deliveries(ctx, h.p, made.Webhook.ID, "", "")
		if err != nil || len(ds) != 1 || ds[0].Attempts != 1 || ds[0].StatusCode != 500 || ds[0].DeliveredAt != nil || ds[0].LastError == "" {
			t.Fatalf("after a failed attempt: %+v, %v", ds, err)
		}
		// Not again before the retry delay; then once more, and delivered.
		if n, _ := h.dispatch.RunOnce(ctx); n != 0 {
			t.Fatalf("claimed %d before the retry delay", n)
		}
		h.clock.Advance(webhook.RetryDelay(1) + time.Second)
		rc.mu.Lock()
		rc.status = http.StatusNoContent
		rc.mu.Unlock()
		if n, err := h.dispatch.RunOnce(ctx); err != nil || n != 1 {
			t.Fatalf("retry claimed %d, %v", n, err)
		}
		ds, _, err = h.svc.Deliveries(ctx, h.p, made.Webhook.ID, "", "")
		if err != nil || len(ds) != 1 || ds[0].Attempts != 2 || ds[0].StatusCode != 204 || ds[0].DeliveredAt == nil {
			t.Fatalf("after delivery: %+v, %v", ds, err)
		}
		if n, _ := h.dispatch.RunOnce(ctx); n != 0 {
			t.Fatalf("claimed %d after delivery", n)
		}

		rc.mu.Lock()
		defer rc.mu.Unlock()
		if len(rc.got) != 2 {
			t.Fatalf("receiver got %d requests, want 2", len(rc.got))
		}
		last, body := rc.got[1], rc.bodies[1]
		if last.Header.Get(webhook.EventIDHeader) != e.ID {
			t.Errorf("event id header %q, want %s", last.Header.Get(webhook.EventIDHeader), e.ID)
		}
		if want := webhook.Sign(made.Secret, h.clock.Now(), body); last.Header.Get(webhook.SignatureHeader) != want {
			t.Errorf("signature %q, want %q", last.Header.Get(webhook.SignatureHeader), want)
		}
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil || p.ID != e.ID || p.Type != "mfa.totp.reset" {
			t.Errorf("payload %s: %+v, %v", body, p, err)
		}
	})
}

// TestDispatcherSignsWithTheRotatedSecret: a delivery made after a rotation carries the new
// secret's signature, not the old one's.
func TestDispatcherSignsWithTheRotatedSecret(t *testing.T) {
	h := newHooks(t, testdb.SQLite(t))
	ctx := t.Context()
	rc, made := h.subscribed(t, http.StatusOK, "*")
	rotated, err := h.svc.RotateSecret(ctx, h.p, made.Webhook.ID)
	if err != nil {
		t.Fatal(err)
	}
	h.event("user.created")
	if n, err := h.dispatch.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("claimed %d, %v", n, err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	sig := rc.got[0].Header.Get(webhook.SignatureHeader)
	if sig != webhook.Sign(rotated.Secret, h.clock.Now(), rc.bodies[0]) || sig == webhook.Sign(made.Secret, h.clock.Now(), rc.bodies[0]) {
		t.Errorf("signature %q is not the rotated secret's", sig)
	}
}

// TestDispatcherRefusesPrivateAddresses: without AllowPrivate, a webhook cannot reach the
// server's own network, and the attempt is recorded as failed.
func TestDispatcherRefusesPrivateAddresses(t *testing.T) {
	h := newHooks(t, testdb.SQLite(t))
	ctx := t.Context()
	rc, made := h.subscribed(t, http.StatusOK, "*")
	h.event("user.created")
	strict := webhook.NewDispatcher(webhook.Dispatcher{Queue: h.st, Opener: h.ring, Now: h.clock.Now})
	if n, err := strict.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("claimed %d, %v", n, err)
	}
	ds, _, err := h.svc.Deliveries(ctx, h.p, made.Webhook.ID, "", "")
	if err != nil || len(ds) != 1 || ds[0].DeliveredAt != nil || !strings.Contains(ds[0].LastError, "non-public") {
		t.Fatalf("deliveries %+v, %v", ds, err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) != 0 {
		t.Errorf("the loopback receiver got %d requests", len(rc.got))
	}
}
