package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

const userColumns = `id, project_id, email, phone, first_name, last_name, email_verified, phone_verified,
	active, connection_type, groups_json, raw_attributes, created_at, updated_at, last_login_at`

// userDocs encodes the JSON columns of u.
func userDocs(u store.User) (groups, attrs string, err error) {
	if groups, err = stringsJSON(u.Groups); err != nil {
		return "", "", fmt.Errorf("encode groups: %w", err)
	}
	if attrs, err = objectJSON(u.RawAttributes); err != nil {
		return "", "", fmt.Errorf("encode raw attributes: %w", err)
	}
	return groups, attrs, nil
}

func scanUser(sc scanner) (store.User, error) {
	var u store.User
	var email, phone sql.NullString
	var groups, attrs string
	var created, updated int64
	var lastLogin sql.NullInt64
	if err := sc.Scan(&u.ID, &u.ProjectID, &email, &phone, &u.FirstName, &u.LastName, &u.EmailVerified,
		&u.PhoneVerified, &u.Active, &u.ConnectionType, &groups, &attrs, &created, &updated, &lastLogin); err != nil {
		return store.User{}, err
	}
	u.Email = email.String
	u.Phone = phone.String
	var err error
	if u.Groups, err = stringsFromJSON(groups); err != nil {
		u.Groups, u.Unreadable = []string{}, append(u.Unreadable, "groups")
	}
	if u.RawAttributes, err = objectFromJSON(attrs); err != nil {
		u.RawAttributes, u.Unreadable = map[string]any{}, append(u.Unreadable, "raw_attributes")
	}
	u.CreatedAt = fromMicros(created)
	u.UpdatedAt = fromMicros(updated)
	u.LastLoginAt = fromNullMicros(lastLogin)
	return u, nil
}

// CreateUser stores u; ErrConflict when its id, or its email or phone in the project, is taken.
// An empty email or phone is stored as NULL, so any number of users may have none.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	groups, attrs, err := userDocs(u)
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.ID, err)
	}
	err = s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO users (email_key, `+userColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			nullString(store.EmailKey(u.Email)), u.ID, u.ProjectID, nullString(u.Email), nullString(u.Phone), u.FirstName, u.LastName,
			u.EmailVerified, u.PhoneVerified, u.Active, u.ConnectionType, groups, attrs,
			toMicros(u.CreatedAt), toMicros(u.UpdatedAt), toNullMicros(u.LastLoginAt))
		return err
	})
	return s.wrap(err, "create user %s", u.ID)
}

// GetUser returns the user of the project with id.
func (s *Store) GetUser(ctx context.Context, projectID, id string) (store.User, error) {
	u, err := scanUser(s.queryRow(ctx,
		`SELECT `+userColumns+` FROM users WHERE project_id = ? AND id = ?`, projectID, id))
	if err != nil {
		return store.User{}, s.wrap(err, "get user %s", id)
	}
	s.noteUnreadable(ctx, u)
	return u, nil
}

// GetUserByEmail returns the user of the project with the email, compared case-insensitively.
func (s *Store) GetUserByEmail(ctx context.Context, projectID, email string) (store.User, error) {
	if email == "" { // "" means "no email", which is stored as NULL and matches nobody
		return store.User{}, fmt.Errorf("get user by email: %w", store.ErrNotFound)
	}
	u, err := scanUser(s.queryRow(ctx,
		`SELECT `+userColumns+` FROM users WHERE project_id = ? AND email_key = ?`, projectID, store.EmailKey(email)))
	if err != nil {
		// The email is personal data: it stays out of the error, which may be logged.
		return store.User{}, s.wrap(err, "get user by email")
	}
	s.noteUnreadable(ctx, u)
	return u, nil
}

// ListUsers returns one page of the project's users matching f, by id.
func (s *Store) ListUsers(ctx context.Context, projectID string, f store.UserFilter, p store.Page) ([]store.User, error) {
	q := `SELECT ` + userColumns + ` FROM users WHERE project_id = ? AND id > ?`
	a := []any{projectID, p.After}
	if f.Email != "" {
		q += ` AND email_key = ?`
		a = append(a, store.EmailKey(f.Email))
	}
	if f.Phone != "" {
		q += ` AND phone = ?`
		a = append(a, f.Phone)
	}
	page, pa := pageClause("id", p.Limit)
	rows, err := s.query(ctx, q+page, append(a, pa...)...)
	if err != nil {
		return nil, s.wrap(err, "list users of project %s", projectID)
	}
	out, err := collect(rows, scanUser)
	for _, u := range out {
		s.noteUnreadable(ctx, u)
	}
	return out, s.wrap(err, "list users of project %s", projectID)
}

// noteUnreadable logs a user whose stored documents could not be decoded: the read goes on
// with them empty, and an operator should know which row to look at. Ids only; the documents
// may hold personal data.
func (s *Store) noteUnreadable(ctx context.Context, u store.User) {
	if len(u.Unreadable) == 0 {
		return
	}
	s.logger().WarnContext(ctx, "stored user document cannot be decoded; it reads as empty until the user is updated",
		"project_id", u.ProjectID, "user_id", u.ID, "fields", u.Unreadable)
}

// UpdateUser replaces every field of the user but ID, ProjectID and CreatedAt.
func (s *Store) UpdateUser(ctx context.Context, u store.User) error {
	groups, attrs, err := userDocs(u)
	if err != nil {
		return fmt.Errorf("update user %s: %w", u.ID, err)
	}
	err = s.guarded(ctx, func(s *Store) error {
		return mustAffect(s.execAffected(ctx, `UPDATE users SET
			email = ?, email_key = ?, phone = ?, first_name = ?, last_name = ?, email_verified = ?, phone_verified = ?,
			active = ?, connection_type = ?, groups_json = ?, raw_attributes = ?, updated_at = ?, last_login_at = ?
			WHERE project_id = ? AND id = ?`,
			nullString(u.Email), nullString(store.EmailKey(u.Email)), nullString(u.Phone), u.FirstName, u.LastName, u.EmailVerified, u.PhoneVerified,
			u.Active, u.ConnectionType, groups, attrs, toMicros(u.UpdatedAt), toNullMicros(u.LastLoginAt),
			u.ProjectID, u.ID))
	})
	return s.wrap(err, "update user %s", u.ID)
}

// DeleteUser removes the user; the foreign keys remove their memberships, their roles in
// them and their login logs in the same statement.
func (s *Store) DeleteUser(ctx context.Context, projectID, id string) error {
	err := mustAffect(s.execAffected(ctx, `DELETE FROM users WHERE project_id = ? AND id = ?`, projectID, id))
	return s.wrap(err, "delete user %s", id)
}

// RecordLogin sets last_login_at and connection_type of the user.
func (s *Store) RecordLogin(ctx context.Context, projectID, id string, at time.Time, connectionType string) error {
	err := mustAffect(s.execAffected(ctx, `UPDATE users SET last_login_at = ?, connection_type = ?
		WHERE project_id = ? AND id = ?`, toMicros(at), connectionType, projectID, id))
	return s.wrap(err, "record login of user %s", id)
}
