package sqlstore

import (
	"context"

	"github.com/latchkey-dev/latchkey/internal/store"
)

const loginLogColumns = `id, project_id, user_id, ip_address, country, city, user_agent, connection_type,
	os, device, browser, created_at`

// AddLoginLog stores l. ErrNotFound when its user is not in its project: the foreign key on
// (project_id, user_id) checks that in the same statement.
func (s *Store) AddLoginLog(ctx context.Context, l store.LoginLog) error {
	err := s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO login_logs (`+loginLogColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			l.ID, l.ProjectID, l.UserID, l.IPAddress, l.Country, l.City, l.UserAgent, l.ConnectionType,
			l.OS, l.Device, l.Browser, toMicros(l.CreatedAt))
		return err
	})
	return s.wrap(err, "add login log of user %s", l.UserID)
}

func scanLoginLog(sc scanner) (store.LoginLog, error) {
	var l store.LoginLog
	var created int64
	if err := sc.Scan(&l.ID, &l.ProjectID, &l.UserID, &l.IPAddress, &l.Country, &l.City, &l.UserAgent,
		&l.ConnectionType, &l.OS, &l.Device, &l.Browser, &created); err != nil {
		return store.LoginLog{}, err
	}
	l.CreatedAt = fromMicros(created)
	return l, nil
}

// ListLoginLogs returns the user's logs newest first: at most limit rows (all when limit is zero
// or less) below the log whose id is before ("" for the newest). Newest first is by created_at,
// the id breaking ties: ids carry only the second they were made in, so logs of one second
// would otherwise come in random order.
func (s *Store) ListLoginLogs(ctx context.Context, projectID, userID string, limit int, before string) ([]store.LoginLog, error) {
	q := `SELECT ` + loginLogColumns + ` FROM login_logs WHERE project_id = ? AND user_id = ?`
	a := []any{projectID, userID}
	tail, ta, found, err := s.newestFirst(ctx, "login_logs", "project_id = ? AND user_id = ?", []any{projectID, userID}, before, limit)
	if err != nil {
		return nil, s.wrap(err, "list login logs of user %s", userID)
	}
	if !found {
		return []store.LoginLog{}, nil // not one of this user's logs: nothing is below it
	}
	q, a = q+tail, append(a, ta...)
	rows, err := s.query(ctx, q, a...)
	if err != nil {
		return nil, s.wrap(err, "list login logs of user %s", userID)
	}
	out, err := collect(rows, scanLoginLog)
	return out, s.wrap(err, "list login logs of user %s", userID)
}
