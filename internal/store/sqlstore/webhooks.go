package sqlstore

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

const webhookColumns = `id, project_id, url, events, secret, enabled, created_at, updated_at`

// CreateWebhook stores w with its event patterns; ErrNotFound when its project does not exist.
func (s *Store) CreateWebhook(ctx context.Context, w store.Webhook) error {
	events, err := stringsJSON(w.Events)
	if err != nil {
		return s.wrap(err, "create webhook %s", w.ID)
	}
	err = s.atomic(ctx, func(s *Store) error {
		if _, err := s.exec(ctx, `INSERT INTO webhooks (`+webhookColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			w.ID, w.ProjectID, w.URL, events, w.Secret, w.Enabled, toMicros(w.CreatedAt), toMicros(w.UpdatedAt)); err != nil {
			return err
		}
		return s.insertWebhookPatterns(ctx, w.ID, w.Events)
	})
	return s.wrap(err, "create webhook %s", w.ID)
}

// insertWebhookPatterns indexes the webhook's patterns for AddAuditEvent's match.
func (s *Store) insertWebhookPatterns(ctx context.Context, webhookID string, events []string) error {
	patterns := sortedUnique(events)
	if len(patterns) == 0 {
		return nil
	}
	q := `INSERT INTO webhook_event_types (webhook_id, pattern) VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?, ?), ", len(patterns)), ", ")
	a := make([]any, 0, 2*len(patterns))
	for _, p := range patterns {
		a = append(a, webhookID, p)
	}
	_, err := s.exec(ctx, q, a...)
	return err
}

// GetWebhook returns the project's webhook with id.
func (s *Store) GetWebhook(ctx context.Context, projectID, id string) (store.Webhook, error) {
	w, err := scanWebhook(s.queryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE project_id = ? AND id = ?`, projectID, id))
	if err != nil {
		return store.Webhook{}, s.wrap(err, "get webhook %s", id)
	}
	return w, nil
}

// ListWebhooks returns one page of the project's webhooks, by id.
func (s *Store) ListWebhooks(ctx context.Context, projectID string, p store.Page) ([]store.Webhook, error) {
	page, pa := pageClause("id", p.Limit)
	rows, err := s.query(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE project_id = ? AND id > ?`+page,
		append([]any{projectID, p.After}, pa...)...)
	if err != nil {
		return nil, s.wrap(err, "list webhooks of project %s", projectID)
	}
	out, err := collect(rows, scanWebhook)
	return out, s.wrap(err, "list webhooks of project %s", projectID)
}

// UpdateWebhook replaces the webhook's fields and event patterns.
func (s *Store) UpdateWebhook(ctx context.Context, w store.Webhook) error {
	events, err := stringsJSON(w.Events)
	if err != nil {
		return s.wrap(err, "update webhook %s", w.ID)
	}
	err = s.atomic(ctx, func(s *Store) error {
		if err := mustAffect(s.execAffected(ctx, `UPDATE webhooks SET url = ?, events = ?, secret = ?, enabled = ?, updated_at = ?
			WHERE project_id = ? AND id = ?`,
			w.URL, events, w.Secret, w.Enabled, toMicros(w.UpdatedAt), w.ProjectID, w.ID)); err != nil {
			return err
		}
		if _, err := s.exec(ctx, `DELETE FROM webhook_event_types WHERE webhook_id = ?`, w.ID); err != nil {
			return err
		}
		return s.insertWebhookPatterns(ctx, w.ID, w.Events)
	})
	return s.wrap(err, "update webhook %s", w.ID)
}

// DeleteWebhook removes the webhook; its patterns and deliveries go with it (ON DELETE CASCADE).
func (s *Store) DeleteWebhook(ctx context.Context, projectID, id string) error {
	err := mustAffect(s.execAffected(ctx, `DELETE FROM webhooks WHERE project_id = ? AND id = ?`, projectID, id))
	return s.wrap(err, "delete webhook %s", id)
}

func scanWebhook(sc scanner) (store.Webhook, error) {
	var w store.Webhook
	var events string
	var created, updated int64
	if err := sc.Scan(&w.ID, &w.ProjectID, &w.URL, &events, &w.Secret, &w.Enabled, &created, &updated); err != nil {
		return store.Webhook{}, err
	}
	var err error
	if w.Events, err = stringsFromJSON(events); err != nil {
		return store.Webhook{}, err
	}
	w.CreatedAt, w.UpdatedAt = fromMicros(created), fromMicros(updated)
	return w, nil
}

const deliveryColumns = `project_id, webhook_id, event_id, event_type, created_at, available_at, attempts, status_code,
	last_error, delivered_at, failed_at`

// ListWebhookDeliveries returns the webhook's deliveries newest first.
func (s *Store) ListWebhookDeliveries(ctx context.Context, projectID, webhookID string, limit int, before string) ([]store.WebhookDelivery, error) {
	q := `SELECT ` + deliveryColumns + ` FROM webhook_deliveries WHERE project_id = ? AND webhook_id = ?`
	a := []any{projectID, webhookID}
	if before != "" {
		q += ` AND event_id < ?`
		a = append(a, before)
	}
	q += ` ORDER BY event_id DESC`
	if limit > 0 {
		q += ` LIMIT ?`
		a = append(a, limit)
	}
	rows, err := s.query(ctx, q, a...)
	if err != nil {
		return nil, s.wrap(err, "list deliveries of webhook %s", webhookID)
	}
	out, err := collect(rows, scanDelivery)
	return out, s.wrap(err, "list deliveries of webhook %s", webhookID)
}

// ClaimWebhookDeliveries leases due deliveries in one statement (SKIP LOCKED on PostgreSQL, as
// ClaimMessages), then reads their webhooks and events.
func (s *Store) ClaimWebhookDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.WebhookCall, error) {
	rows, err := s.writeQuery(ctx, `UPDATE webhook_deliveries SET available_at = ?, attempts = attempts + 1
		WHERE (webhook_id, event_id) IN (SELECT d.webhook_id, d.event_id FROM webhook_deliveries d
			WHERE d.delivered_at IS NULL AND d.failed_at IS NULL AND d.available_at <= ?
			AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id AND w.enabled)
			ORDER BY d.available_at, d.event_id LIMIT ?`+s.d.skipLocked()+`)
		RETURNING `+deliveryColumns, toMicros(now.Add(lease)), toMicros(now), limit)
	if err != nil {
		return nil, s.wrap(err, "claim webhook deliveries")
	}
	claimed, err := collect(rows, scanDelivery)
	if err != nil || len(claimed) == 0 {
		return nil, s.wrap(err, "claim webhook deliveries")
	}
	// RETURNING follows no ORDER BY: put the batch back in event order.
	slices.SortFunc(claimed, func(a, b store.WebhookDelivery) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.EventID+a.WebhookID, b.EventID+b.WebhookID)
	})

	var hookIDs, eventIDs []string
	for _, d := range claimed {
		hookIDs, eventIDs = append(hookIDs, d.WebhookID), append(eventIDs, d.EventID)
	}
	hooks := map[string]store.Webhook{}
	for _, chunk := range chunks(sortedUnique(hookIDs)) {
		rows, err := s.query(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id IN (`+placeholders(len(chunk))+`)`,
			withIDs(nil, chunk)...)
		if err != nil {
			return nil, s.wrap(err, "read claimed deliveries' webhooks")
		}
		ws, err := collect(rows, scanWebhook)
		if err != nil {
			return nil, s.wrap(err, "read claimed deliveries' webhooks")
		}
		for _, w := range ws {
			hooks[w.ID] = w
		}
	}
	events := map[string]store.AuditEvent{}
	for _, chunk := range chunks(sortedUnique(eventIDs)) {
		rows, err := s.query(ctx, `SELECT `+auditEventColumns+` FROM audit_events WHERE id IN (`+placeholders(len(chunk))+`)`,
			withIDs(nil, chunk)...)
		if err != nil {
			return nil, s.wrap(err, "read claimed deliveries' events")
		}
		es, err := collect(rows, scanAuditEvent)
		if err != nil {
			return nil, s.wrap(err, "read claimed deliveries' events")
		}
		for _, e := range es {
			events[e.ID] = e
		}
	}
	out := make([]store.WebhookCall, 0, len(claimed))
	for _, d := range claimed {
		w, okW := hooks[d.WebhookID]
		e, okE := events[d.EventID]
		// Deleted since the claim (with the delivery, by cascade): nothing left to deliver.
		if okW && okE && w.ProjectID == d.ProjectID && e.ProjectID == d.ProjectID {
			out = append(out, store.WebhookCall{Delivery: d, Webhook: w, Event: e})
		}
	}
	return out, nil
}

// RecordWebhookAttempt records an attempt's outcome.
func (s *Store) RecordWebhookAttempt(ctx context.Context, projectID, webhookID, eventID string, a store.WebhookAttempt) error {
	var delivered, failed any
	available := toMicros(a.At)
	switch {
	case a.Error == "":
		delivered = toMicros(a.At)
	case a.RetryAt != nil:
		available = toMicros(*a.RetryAt)
	default:
		failed = toMicros(a.At)
	}
	err := mustAffect(s.execAffected(ctx, `UPDATE webhook_deliveries
		SET status_code = ?, last_error = ?, available_at = ?, delivered_at = ?, failed_at = ?
		WHERE project_id = ? AND webhook_id = ? AND event_id = ?`,
		a.StatusCode, a.Error, available, delivered, failed, projectID, webhookID, eventID))
	return s.wrap(err, "record attempt of webhook %s for event %s", webhookID, eventID)
}

func scanDelivery(sc scanner) (store.WebhookDelivery, error) {
	var d store.WebhookDelivery
	var created, available int64
	var delivered, failed sql.NullInt64
	if err := sc.Scan(&d.ProjectID, &d.WebhookID, &d.EventID, &d.EventType, &created, &available, &d.Attempts,
		&d.StatusCode, &d.LastError, &delivered, &failed); err != nil {
		return store.WebhookDelivery{}, err
	}
	d.CreatedAt, d.AvailableAt = fromMicros(created), fromMicros(available)
	d.DeliveredAt, d.FailedAt = fromNullMicros(delivered), fromNullMicros(failed)
	return d, nil
}
