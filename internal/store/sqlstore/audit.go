package sqlstore

import (
	"context"
	"fmt"

	"github.com/latchkey-dev/latchkey/internal/store"
)

const auditEventColumns = `id, project_id, type, user_id, session_id, ip_address, user_agent, detail, created_at`

// AddAuditEvent stores e; ErrNotFound when its project does not exist.
func (s *Store) AddAuditEvent(ctx context.Context, e store.AuditEvent) error {
	detail, err := objectJSON(e.Detail)
	if err != nil {
		return fmt.Errorf("add audit event %s: %w", e.ID, err)
	}
	err = s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO audit_events (`+auditEventColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.ID, e.ProjectID, e.Type, e.UserID, e.SessionID, e.IPAddress, e.UserAgent, detail, toMicros(e.CreatedAt))
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
	if f.UserID != "" {
		q += ` AND user_id = ?`
		a = append(a, f.UserID)
	}
	tail, ta := newestFirstClause(before, limit)
	rows, err := s.query(ctx, q+tail, append(a, ta...)...)
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
	if err := sc.Scan(&e.ID, &e.ProjectID, &e.Type, &e.UserID, &e.SessionID, &e.IPAddress, &e.UserAgent, &detail, &created); err != nil {
		return store.AuditEvent{}, err
	}
	var err error
	if e.Detail, err = objectFromJSON(detail); err != nil {
		return store.AuditEvent{}, fmt.Errorf("audit event %s detail: %w", e.ID, err)
	}
	e.CreatedAt = fromMicros(created)
	return e, nil
}
