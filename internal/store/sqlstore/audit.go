package sqlstore

import (
	"context"
	"fmt"

	"github.com/latchkey-dev/latchkey/internal/store"
)

const auditEventColumns = `id, project_id, type, user_id, session_id, ip_address, user_agent, detail, created_at,
	organization_id`

// AddAuditEvent stores e and queues its webhook deliveries, together; ErrNotFound when its
// project does not exist.
//
// The deliveries are one INSERT ... SELECT over the project's enabled webhooks that have a
// pattern matching e's type, so a project without webhooks pays one indexed probe, and every
// writer of audit events gets webhooks without knowing of them.
func (s *Store) AddAuditEvent(ctx context.Context, e store.AuditEvent) error {
	detail, err := objectJSON(e.Detail)
	if err != nil {
		return fmt.Errorf("add audit event %s: %w", e.ID, err)
	}
	patterns := store.EventPatterns(e.Type)
	err = s.atomic(ctx, func(s *Store) error {
		if _, err := s.exec(ctx, `INSERT INTO audit_events (`+auditEventColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.ID, e.ProjectID, e.Type, e.UserID, e.SessionID, e.IPAddress, e.UserAgent, detail, toMicros(e.CreatedAt),
			e.OrganizationID); err != nil {
			return err
		}
		_, err := s.exec(ctx, `INSERT INTO webhook_deliveries (project_id, webhook_id, event_id, event_type, created_at, available_at)
			SELECT e.project_id, w.id, e.id, e.type, e.created_at, e.created_at
			FROM audit_events e JOIN webhooks w ON w.project_id = e.project_id
			WHERE e.id = ? AND w.enabled AND EXISTS (SELECT 1 FROM webhook_event_types t
				WHERE t.webhook_id = w.id AND t.pattern IN (`+placeholders(len(patterns))+`))`,
			withIDs([]any{e.ID}, patterns)...)
		return err
	})
	return s.wrap(err, "add audit event %s (%s)", e.ID, e.Type)
}

// ListAuditEvents returns the project's events matching f, newest first.
func (s *Store) ListAuditEvents(ctx context.Context, projectID string, f store.AuditFilter, limit int, before string) ([]store.AuditEvent, error) {
	q := `SELECT ` + auditEventColumns + ` FROM audit_events WHERE project_id = ?`
	a := []any{projectID}
	if f.Type != "" {
		q += ` AND type = ?`
		a = append(a, f.Type)
	}
	if f.TypePrefix != "" {
		// substr, not LIKE: event types hold "_", which LIKE would take for a wildcard.
		q += ` AND substr(type, 1, ?) = ?`
		a = append(a, len([]rune(f.TypePrefix)), f.TypePrefix)
	}
	if f.UserID != "" {
		q += ` AND user_id = ?`
		a = append(a, f.UserID)
	}
	if f.OrganizationID != "" {
		q += ` AND organization_id = ?`
		a = append(a, f.OrganizationID)
	}
	if !f.From.IsZero() {
		q += ` AND created_at >= ?`
		a = append(a, toMicros(f.From))
	}
	if !f.To.IsZero() {
		q += ` AND created_at < ?`
		a = append(a, toMicros(f.To))
	}
	tail, ta, found, err := s.newestFirst(ctx, "audit_events", "project_id = ?", []any{projectID}, before, limit)
	if err != nil {
		return nil, s.wrap(err, "list audit events of project %s", projectID)
	}
	if !found {
		return []store.AuditEvent{}, nil // not an event of this project: nothing is below it
	}
	q, a = q+tail, append(a, ta...)
	rows, err := s.query(ctx, q, a...)
	if err != nil {
		return nil, s.wrap(err, "list audit events of project %s", projectID)
	}
	out, err := collect(rows, scanAuditEvent)
	return out, s.wrap(err, "list audit events of project %s", projectID)
}

func scanAuditEvent(sc scanner) (store.AuditEvent, error) {
	var e store.AuditEvent
	var detail string
	var created int64
	if err := sc.Scan(&e.ID, &e.ProjectID, &e.Type, &e.UserID, &e.SessionID, &e.IPAddress, &e.UserAgent, &detail, &created,
		&e.OrganizationID); err != nil {
		return store.AuditEvent{}, err
	}
	var err error
	if e.Detail, err = objectFromJSON(detail); err != nil {
		return store.AuditEvent{}, fmt.Errorf("audit event %s detail: %w", e.ID, err)
	}
	e.CreatedAt = fromMicros(created)
	return e, nil
}
