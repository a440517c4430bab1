package sqlstore

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

const outboxColumns = `id, project_id, channel, recipient, payload, created_at, available_at, attempts, last_error,
	sent_at, failed_at, expires_at`

// EnqueueMessage stores m; ErrNotFound when its project does not exist.
func (s *Store) EnqueueMessage(ctx context.Context, m store.OutboxMessage) error {
	err := s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO outbox (`+outboxColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			m.ID, m.ProjectID, m.Channel, m.Recipient, m.Payload, toMicros(m.CreatedAt), toMicros(m.AvailableAt),
			m.Attempts, m.LastError, toNullMicros(m.SentAt), toNullMicros(m.FailedAt), toNullMicros(m.ExpiresAt))
		return err
	})
	return s.wrap(err, "enqueue message %s", m.ID)
}

// ClaimMessages leases available messages in one statement. On PostgreSQL SKIP LOCKED lets
// workers on several instances claim disjoint batches without waiting on each other; SQLite's
// single writer already serialises claims.
func (s *Store) ClaimMessages(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.OutboxMessage, error) {
	rows, err := s.writeQuery(ctx, `UPDATE outbox SET available_at = ?, attempts = attempts + 1
		WHERE id IN (SELECT id FROM outbox
			WHERE sent_at IS NULL AND failed_at IS NULL AND available_at <= ?
			ORDER BY available_at, id LIMIT ?`+s.d.skipLocked()+`)
		RETURNING `+outboxColumns, toMicros(now.Add(lease)), toMicros(now), limit)
	if err != nil {
		return nil, s.wrap(err, "claim messages")
	}
	out, err := collect(rows, scanOutboxMessage)
	if err != nil {
		return nil, s.wrap(err, "claim messages")
	}
	// RETURNING follows no ORDER BY: put the batch back in creation order.
	slices.SortFunc(out, func(a, b store.OutboxMessage) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// MarkMessageSent records delivery, dropping the content unless keepPayload.
func (s *Store) MarkMessageSent(ctx context.Context, id string, at time.Time, keepPayload bool) error {
	q := `UPDATE outbox SET sent_at = ?, last_error = '' WHERE id = ?`
	if !keepPayload {
		q = `UPDATE outbox SET sent_at = ?, last_error = '', payload = ? WHERE id = ?`
		err := mustAffect(s.execAffected(ctx, q, toMicros(at), []byte{}, id))
		return s.wrap(err, "mark message %s sent", id)
	}
	err := mustAffect(s.execAffected(ctx, q, toMicros(at), id))
	return s.wrap(err, "mark message %s sent", id)
}

// MarkMessageFailed records a failed attempt.
func (s *Store) MarkMessageFailed(ctx context.Context, id string, retryAt time.Time, lastError string, giveUp bool) error {
	var failed any
	if giveUp {
		failed = toMicros(retryAt)
	}
	err := mustAffect(s.execAffected(ctx, `UPDATE outbox SET available_at = ?, last_error = ?, failed_at = ? WHERE id = ?`,
		toMicros(retryAt), lastError, failed, id))
	return s.wrap(err, "mark message %s failed", id)
}

// ListOutbox returns messages newest first.
func (s *Store) ListOutbox(ctx context.Context, limit int) ([]store.OutboxMessage, error) {
	rows, err := s.query(ctx, `SELECT `+outboxColumns+` FROM outbox ORDER BY created_at DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, s.wrap(err, "list outbox")
	}
	out, err := collect(rows, scanOutboxMessage)
	return out, s.wrap(err, "list outbox")
}

func scanOutboxMessage(sc scanner) (store.OutboxMessage, error) {
	var m store.OutboxMessage
	var created, available int64
	var sent, failed, expires sql.NullInt64
	if err := sc.Scan(&m.ID, &m.ProjectID, &m.Channel, &m.Recipient, &m.Payload, &created, &available, &m.Attempts,
		&m.LastError, &sent, &failed, &expires); err != nil {
		return store.OutboxMessage{}, err
	}
	m.CreatedAt, m.AvailableAt = fromMicros(created), fromMicros(available)
	m.SentAt, m.FailedAt, m.ExpiresAt = fromNullMicros(sent), fromNullMicros(failed), fromNullMicros(expires)
	return m, nil
}

const templateColumns = `project_id, name, subject, text_body, html_body, updated_at`

// PutTemplate creates or replaces a template override.
func (s *Store) PutTemplate(ctx context.Context, t store.MessageTemplate) error {
	err := s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO message_templates (`+templateColumns+`) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (project_id, name) DO UPDATE SET subject = excluded.subject, text_body = excluded.text_body,
				html_body = excluded.html_body, updated_at = excluded.updated_at`,
			t.ProjectID, t.Name, t.Subject, t.Text, t.HTML, toMicros(t.UpdatedAt))
		return err
	})
	return s.wrap(err, "put template %s", t.Name)
}

// GetTemplate returns the project's override of a template.
func (s *Store) GetTemplate(ctx context.Context, projectID, name string) (store.MessageTemplate, error) {
	var t store.MessageTemplate
	var updated int64
	err := s.queryRow(ctx, `SELECT `+templateColumns+` FROM message_templates WHERE project_id = ? AND name = ?`, projectID, name).
		Scan(&t.ProjectID, &t.Name, &t.Subject, &t.Text, &t.HTML, &updated)
	if err != nil {
		return store.MessageTemplate{}, s.wrap(err, "get template %s", name)
	}
	t.UpdatedAt = fromMicros(updated)
	return t, nil
}

// DeleteTemplate removes an override.
func (s *Store) DeleteTemplate(ctx context.Context, projectID, name string) error {
	err := mustAffect(s.execAffected(ctx, `DELETE FROM message_templates WHERE project_id = ? AND name = ?`, projectID, name))
	return s.wrap(err, "delete template %s", name)
}
