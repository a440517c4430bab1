package storetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// newWebhook returns an unsaved webhook of the project.
func newWebhook(projectID string, events ...string) store.Webhook {
	id := newID()
	return store.Webhook{
		ID: id, ProjectID: projectID, URL: "https://hooks.example.com/" + id, Events: events,
		Secret: []byte("sealed secret of " + id), Enabled: true, CreatedAt: at(0), UpdatedAt: at(time.Minute),
	}
}

// webhook creates a webhook receiving events.
func (f *fixture) webhook(events ...string) store.Webhook {
	f.t.Helper()
	w := newWebhook(f.pid, events...)
	must(f.t, f.st.CreateWebhook(f.ctx, w), "CreateWebhook(%v)", events)
	return w
}

// event adds an audit event of the given type, made at `when`.
func (f *fixture) event(typ string, when time.Time) store.AuditEvent {
	f.t.Helper()
	e := store.AuditEvent{ID: newID(), ProjectID: f.pid, Type: typ, UserID: "u1", CreatedAt: when,
		Detail: map[string]any{"k": "v"}}
	must(f.t, f.st.AddAuditEvent(f.ctx, e), "AddAuditEvent(%s)", typ)
	return e
}

// deliveredTo returns the ids of the webhooks, among ws, that have a delivery of event.
func deliveredTo(t *testing.T, st store.Store, event store.AuditEvent, ws ...store.Webhook) []string {
	t.Helper()
	var out []string
	for _, w := range ws {
		ds, err := st.ListWebhookDeliveries(t.Context(), w.ProjectID, w.ID, 0, "")
		must(t, err, "ListWebhookDeliveries")
		for _, d := range ds {
			if d.EventID == event.ID {
				out = append(out, w.ID)
			}
		}
	}
	return out
}

func testWebhooks(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("CRUD", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		w := f.webhook("mfa.", "session.revoked_all")
		got, err := st.GetWebhook(f.ctx, f.pid, w.ID)
		must(t, err, "GetWebhook")
		wantEqual(t, w, got, "GetWebhook")
		_, err = st.GetWebhook(f.ctx, g.pid, w.ID)
		wantNotFound(t, err, "GetWebhook from another project")
		wantNotFound(t, st.CreateWebhook(f.ctx, newWebhook(newID(), "*")), "CreateWebhook in an unknown project")
		wantConflict(t, st.CreateWebhook(f.ctx, w), "CreateWebhook with a taken id")

		w.URL, w.Events, w.Secret, w.Enabled, w.UpdatedAt = "https://other.example.com/x", []string{"*"}, []byte("new sealed"), false, at(time.Hour)
		must(t, st.UpdateWebhook(f.ctx, w), "UpdateWebhook")
		got, err = st.GetWebhook(f.ctx, f.pid, w.ID)
		must(t, err, "GetWebhook after update")
		wantEqual(t, w, got, "GetWebhook after update")
		moved := w
		moved.ProjectID = g.pid
		wantNotFound(t, st.UpdateWebhook(f.ctx, moved), "UpdateWebhook through another project")
		wantNotFound(t, st.DeleteWebhook(f.ctx, g.pid, w.ID), "DeleteWebhook through another project")

		w2 := f.webhook("*")
		list, err := st.ListWebhooks(f.ctx, f.pid, store.Page{Limit: 10})
		must(t, err, "ListWebhooks")
		want := []store.Webhook{w, w2}
		sortByID(want)
		wantRecords(t, want, list, "ListWebhooks")
		list, err = st.ListWebhooks(f.ctx, f.pid, store.Page{Limit: 1, After: want[0].ID})
		must(t, err, "ListWebhooks page 2")
		wantRecords(t, want[1:], list, "ListWebhooks page 2")
		list, err = st.ListWebhooks(f.ctx, g.pid, store.Page{Limit: 10})
		must(t, err, "ListWebhooks of another project")
		if len(list) != 0 {
			t.Errorf("ListWebhooks of another project = %d webhooks, want 0", len(list))
		}

		e := f.event("user.deleted", at(0))
		must(t, st.DeleteWebhook(f.ctx, f.pid, w2.ID), "DeleteWebhook")
		_, err = st.GetWebhook(f.ctx, f.pid, w2.ID)
		wantNotFound(t, err, "GetWebhook after DeleteWebhook")
		wantNotFound(t, st.DeleteWebhook(f.ctx, f.pid, w2.ID), "DeleteWebhook again")
		ds, err := st.ListWebhookDeliveries(f.ctx, f.pid, w2.ID, 0, "")
		must(t, err, "ListWebhookDeliveries of a deleted webhook")
		if len(ds) != 0 {
			t.Errorf("deliveries of event %s outlived their webhook: %v", e.ID, ds)
		}
	})

	t.Run("EventsMatch", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		all := f.webhook("*")
		mfa := f.webhook("mfa.")
		exact := f.webhook("session.revoked_all", "passkey.")
		off := f.webhook("*")
		off.Enabled = false
		must(t, st.UpdateWebhook(f.ctx, off), "UpdateWebhook(disable)")
		foreign := g.webhook("*")
		hooks := []store.Webhook{all, mfa, exact, off, foreign}

		for _, tc := range []struct {
			typ  string
			want []string
		}{
			{"mfa.reset", []string{all.ID, mfa.ID}},
			{"mfa.totp.confirmed", []string{all.ID, mfa.ID}},
			{"session.revoked_all", []string{all.ID, exact.ID}},
			{"session.revoked", []string{all.ID}},
			{"passkey.registered", []string{all.ID, exact.ID}},
			{"mfa_reset", []string{all.ID}},             // "mfa." is a prefix up to the dot, not a LIKE pattern
			{"mfaxreset", []string{all.ID}},             // nor does "." match any character
			{"xmfa.reset", []string{all.ID}},            // a prefix matches at the start only
			{"session.revoked_all.x", []string{all.ID}}, // an exact type is not a prefix
		} {
			e := f.event(tc.typ, at(0))
			got := deliveredTo(t, st, e, hooks...)
			if !slices.Equal(sortedCopy(got), sortedCopy(tc.want)) {
				t.Errorf("event %s went to %v, want %v", tc.typ, got, tc.want)
			}
		}

		e := f.event("user.updated", at(time.Second))
		ds, err := st.ListWebhookDeliveries(f.ctx, f.pid, all.ID, 1, "")
		must(t, err, "ListWebhookDeliveries")
		if len(ds) != 1 {
			t.Fatalf("ListWebhookDeliveries(limit 1) = %d rows", len(ds))
		}
		wantEqual(t, store.WebhookDelivery{ProjectID: f.pid, WebhookID: all.ID, EventID: ds[0].EventID, EventType: ds[0].EventType,
			CreatedAt: ds[0].CreatedAt, AvailableAt: ds[0].CreatedAt}, ds[0], "a new delivery")
		all10, err := st.ListWebhookDeliveries(f.ctx, f.pid, all.ID, 0, "")
		must(t, err, "ListWebhookDeliveries")
		if len(all10) != 10 {
			t.Errorf("the \"*\" webhook has %d deliveries, want 10", len(all10))
		}
		for i := 1; i < len(all10); i++ {
			if all10[i-1].EventID <= all10[i].EventID {
				t.Errorf("deliveries are not newest first: %s before %s", all10[i-1].EventID, all10[i].EventID)
			}
		}
		rest, err := st.ListWebhookDeliveries(f.ctx, f.pid, all.ID, 100, all10[4].EventID)
		must(t, err, "ListWebhookDeliveries before the 5th")
		if len(rest) != 5 || rest[0].EventID != all10[5].EventID {
			t.Errorf("ListWebhookDeliveries before the 5th = %d rows", len(rest))
		}
		_ = e
		other, err := st.ListWebhookDeliveries(f.ctx, g.pid, all.ID, 0, "")
		must(t, err, "ListWebhookDeliveries through another project")
		if len(other) != 0 {
			t.Errorf("another project sees %d deliveries of this one's webhook", len(other))
		}
	})

	t.Run("DeliveriesCommitWithTheEvent", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		w := f.webhook("*")
		e := store.AuditEvent{ID: newID(), ProjectID: f.pid, Type: "user.deleted", CreatedAt: at(0)}
		err := st.InTx(f.ctx, func(tx store.Store) error {
			must(t, tx.AddAuditEvent(f.ctx, e), "AddAuditEvent in a transaction")
			ds, err := tx.ListWebhookDeliveries(f.ctx, f.pid, w.ID, 0, "")
			must(t, err, "ListWebhookDeliveries in the transaction")
			if len(ds) != 1 {
				t.Errorf("inside the transaction: %d deliveries, want 1", len(ds))
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatalf("InTx = %v", err)
		}
		ds, err := st.ListWebhookDeliveries(f.ctx, f.pid, w.ID, 0, "")
		must(t, err, "ListWebhookDeliveries")
		evs, err := st.ListAuditEvents(f.ctx, f.pid, store.AuditFilter{}, 0, "")
		must(t, err, "ListAuditEvents")
		if len(ds) != 0 || len(evs) != 0 {
			t.Errorf("after a rollback: %d deliveries and %d events, want none", len(ds), len(evs))
		}
		// A failed event writes no delivery either.
		wantConflict(t, st.AddAuditEvent(f.ctx, f.event("user.created", at(0))), "AddAuditEvent with a taken id")
		ds, err = st.ListWebhookDeliveries(f.ctx, f.pid, w.ID, 0, "")
		must(t, err, "ListWebhookDeliveries")
		if len(ds) != 1 {
			t.Errorf("after one event and one refused duplicate: %d deliveries, want 1", len(ds))
		}
	})

	// Claims see every project's deliveries: each case has a database to itself.
	t.Run("ClaimAndRecord", func(t *testing.T) {
		t.Parallel()
		st := newStore(t)
		f := inNewProject(t, st)
		w := f.webhook("*")
		off := f.webhook("*")
		t0 := time.Now().UTC().Truncate(time.Microsecond)
		e1 := f.event("user.created", t0.Add(-2*time.Second))
		e2 := f.event("user.updated", t0.Add(-time.Second))
		f.event("user.deleted", t0.Add(time.Hour)) // not due yet
		off.Enabled = false
		must(t, st.UpdateWebhook(f.ctx, off), "UpdateWebhook(disable)")

		calls, err := st.ClaimWebhookDeliveries(f.ctx, t0, time.Minute, 10)
		must(t, err, "ClaimWebhookDeliveries")
		if len(calls) != 2 || calls[0].Delivery.EventID != e1.ID || calls[1].Delivery.EventID != e2.ID {
			t.Fatalf("claimed %v, want the due deliveries of the enabled webhook, oldest first", calls)
		}
		c := calls[0]
		wantEqual(t, w, c.Webhook, "the claimed delivery's webhook")
		wantEqual(t, e1, c.Event, "the claimed delivery's event")
		if c.Delivery.Attempts != 1 || !c.Delivery.AvailableAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("claimed delivery = %+v, want attempt 1 leased for a minute", c.Delivery)
		}
		again, err := st.ClaimWebhookDeliveries(f.ctx, t0.Add(30*time.Second), time.Minute, 10)
		must(t, err, "ClaimWebhookDeliveries during the lease")
		if len(again) != 0 {
			t.Errorf("claimed %d deliveries still leased", len(again))
		}

		retry := t0.Add(5 * time.Second)
		must(t, st.RecordWebhookAttempt(f.ctx, f.pid, w.ID, e1.ID, store.WebhookAttempt{StatusCode: 500, Error: "HTTP 500", At: t0, RetryAt: &retry}), "record a failure")
		must(t, st.RecordWebhookAttempt(f.ctx, f.pid, w.ID, e2.ID, store.WebhookAttempt{StatusCode: 204, At: t0}), "record a delivery")
		wantNotFound(t, st.RecordWebhookAttempt(f.ctx, newID(), w.ID, e2.ID, store.WebhookAttempt{At: t0}), "record through another project")

		calls, err = st.ClaimWebhookDeliveries(f.ctx, retry, time.Minute, 10)
		must(t, err, "ClaimWebhookDeliveries at the retry")
		if len(calls) != 1 || calls[0].Delivery.EventID != e1.ID || calls[0].Delivery.Attempts != 2 ||
			calls[0].Delivery.StatusCode != 500 || calls[0].Delivery.LastError != "HTTP 500" {
			t.Fatalf("claimed at the retry: %+v, want the failed delivery's second attempt", calls)
		}
		must(t, st.RecordWebhookAttempt(f.ctx, f.pid, w.ID, e1.ID, store.WebhookAttempt{Error: "connection refused", At: retry}), "give up")
		calls, err = st.ClaimWebhookDeliveries(f.ctx, t0.Add(48*time.Hour), time.Minute, 10)
		must(t, err, "ClaimWebhookDeliveries much later")
		if len(calls) != 1 || calls[0].Delivery.EventType != "user.deleted" {
			t.Errorf("claimed much later: %+v, want only the delivery not yet due before", calls)
		}

		ds, err := st.ListWebhookDeliveries(f.ctx, f.pid, w.ID, 0, "")
		must(t, err, "ListWebhookDeliveries")
		byEvent := map[string]store.WebhookDelivery{}
		for _, d := range ds {
			byEvent[d.EventID] = d
		}
		wantEqual(t, store.WebhookDelivery{ProjectID: f.pid, WebhookID: w.ID, EventID: e1.ID, EventType: "user.created",
			CreatedAt: e1.CreatedAt, AvailableAt: retry, Attempts: 2, LastError: "connection refused", FailedAt: &retry},
			byEvent[e1.ID], "the given-up delivery")
		wantEqual(t, store.WebhookDelivery{ProjectID: f.pid, WebhookID: w.ID, EventID: e2.ID, EventType: "user.updated",
			CreatedAt: e2.CreatedAt, AvailableAt: t0, Attempts: 1, StatusCode: 204, DeliveredAt: &t0},
			byEvent[e2.ID], "the delivered one")

		off.Enabled = true
		must(t, st.UpdateWebhook(f.ctx, off), "UpdateWebhook(enable)")
		calls, err = st.ClaimWebhookDeliveries(f.ctx, t0, time.Minute, 10)
		must(t, err, "ClaimWebhookDeliveries after enabling")
		if len(calls) != 2 || calls[0].Webhook.ID != off.ID {
			t.Errorf("after enabling the webhook: claimed %d, want its 2 due deliveries", len(calls))
		}
	})

	t.Run("ClaimRace", func(t *testing.T) {
		t.Parallel()
		st := newStore(t)
		f := inNewProject(t, st)
		for range 3 {
			f.webhook("*")
		}
		for range 10 {
			f.event("user.created", at(0))
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				calls, err := st.ClaimWebhookDeliveries(context.Background(), at(time.Hour), time.Hour, 5)
				if err != nil {
					t.Errorf("ClaimWebhookDeliveries: %v", err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for _, c := range calls {
					seen[c.Delivery.WebhookID+c.Delivery.EventID]++
				}
			})
		}
		wg.Wait()
		if len(seen) != 30 {
			t.Errorf("20 concurrent claims took %d distinct deliveries, want all 30", len(seen))
		}
		for k, n := range seen {
			if n != 1 {
				t.Errorf("delivery %s claimed %d times", k, n)
			}
		}
	})

	t.Run("RewrapSealed", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		w := f.webhook("*")
		n, err := st.RewrapSealed(f.ctx, func(sealed []byte) ([]byte, bool, error) {
			if bytes.Equal(sealed, w.Secret) {
				return append([]byte("rewrapped:"), sealed...), true, nil
			}
			return sealed, false, nil
		})
		must(t, err, "RewrapSealed")
		if n != 1 {
			t.Errorf("RewrapSealed changed %d values, want the webhook's secret", n)
		}
		got, err := st.GetWebhook(f.ctx, f.pid, w.ID)
		must(t, err, "GetWebhook")
		if string(got.Secret) != "rewrapped:"+string(w.Secret) {
			t.Errorf("the webhook's sealed secret was not saved rewrapped")
		}
	})

	t.Run("AuditFilters", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		var all []store.AuditEvent
		for i, id := range sortedIDs(5) {
			e := store.AuditEvent{ID: id, ProjectID: f.pid, Type: []string{"mfa.reset", "mfa_x.y", "session.revoked", "mfa.totp.confirmed", "mfax"}[i],
				OrganizationID: []string{"", "o1", "o1", "o2", ""}[i], Detail: map[string]any{}, CreatedAt: at(time.Duration(i) * time.Minute)}
			must(t, st.AddAuditEvent(f.ctx, e), "AddAuditEvent")
			all = append(all, e)
		}
		for _, tc := range []struct {
			name string
			f    store.AuditFilter
			want []store.AuditEvent
		}{
			{"prefix mfa.", store.AuditFilter{TypePrefix: "mfa."}, []store.AuditEvent{all[3], all[0]}},
			{"prefix mfa_", store.AuditFilter{TypePrefix: "mfa_"}, []store.AuditEvent{all[1]}},
			{"organization o1", store.AuditFilter{OrganizationID: "o1"}, []store.AuditEvent{all[2], all[1]}},
			{"from", store.AuditFilter{From: at(2 * time.Minute)}, []store.AuditEvent{all[4], all[3], all[2]}},
			{"to (exclusive)", store.AuditFilter{To: at(2 * time.Minute)}, []store.AuditEvent{all[1], all[0]}},
			{"from, to and prefix", store.AuditFilter{TypePrefix: "mfa", From: at(time.Minute), To: at(4 * time.Minute)}, []store.AuditEvent{all[3], all[1]}},
		} {
			got, err := st.ListAuditEvents(f.ctx, f.pid, tc.f, 0, "")
			must(t, err, "ListAuditEvents(%s)", tc.name)
			wantRecords(t, tc.want, got, "ListAuditEvents(%s)", tc.name)
		}
	})
}
