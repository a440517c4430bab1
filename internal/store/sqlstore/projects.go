package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// ClaimBootstrap reports true to exactly one caller per database, ever: the insert of the one
// row instance_bootstrap may hold either happens or, for every later or concurrent caller,
// does nothing.
func (s *Store) ClaimBootstrap(ctx context.Context, at time.Time) (bool, error) {
	n, err := s.execAffected(ctx,
		`INSERT INTO instance_bootstrap (id, claimed_at) VALUES (1, ?) ON CONFLICT (id) DO NOTHING`,
		toMicros(at))
	if err != nil {
		return false, s.wrap(err, "claim bootstrap")
	}
	return n == 1, nil
}

// CreateProject stores p; ErrConflict when its id or client id is taken.
func (s *Store) CreateProject(ctx context.Context, p store.Project) error {
	err := s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx,
			`INSERT INTO projects (id, client_id, name, settings, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
			p.ID, p.ClientID, p.Name, docText(p.Settings), toMicros(p.CreatedAt), toMicros(p.UpdatedAt))
		return err
	})
	return s.wrap(err, "create project %s", p.ID)
}

const projectColumns = `id, client_id, name, settings, created_at, updated_at`

func scanProject(sc scanner) (store.Project, error) {
	var p store.Project
	var settings string
	var created, updated int64
	if err := sc.Scan(&p.ID, &p.ClientID, &p.Name, &settings, &created, &updated); err != nil {
		return store.Project{}, err
	}
	p.Settings = docBytes(settings)
	p.CreatedAt = fromMicros(created)
	p.UpdatedAt = fromMicros(updated)
	return p, nil
}

// GetProject returns the project with id.
func (s *Store) GetProject(ctx context.Context, id string) (store.Project, error) {
	p, err := scanProject(s.queryRow(ctx, `SELECT `+projectColumns+` FROM projects WHERE id = ?`, id))
	if err != nil {
		return store.Project{}, s.wrap(err, "get project %s", id)
	}
	return p, nil
}

// LockProject returns the project with id, locked until the transaction ends (PostgreSQL: a row
// lock; SQLite: the single writer's immediate transaction already excludes every other writer).
func (s *Store) LockProject(ctx context.Context, id string) (store.Project, error) {
	p, err := scanProject(s.writeRow(ctx, `SELECT `+projectColumns+` FROM projects WHERE id = ?`+s.d.forUpdate(), id))
	if err != nil {
		return store.Project{}, s.wrap(err, "lock project %s", id)
	}
	return p, nil
}

// GetProjectByClientID returns the project with the client id.
func (s *Store) GetProjectByClientID(ctx context.Context, clientID string) (store.Project, error) {
	p, err := scanProject(s.queryRow(ctx, `SELECT `+projectColumns+` FROM projects WHERE client_id = ?`, clientID))
	if err != nil {
		return store.Project{}, s.wrap(err, "get project by client id %s", clientID)
	}
	return p, nil
}

// ListProjects returns every project, by id.
func (s *Store) ListProjects(ctx context.Context) ([]store.Project, error) {
	rows, err := s.query(ctx, `SELECT `+projectColumns+` FROM projects ORDER BY id`)
	if err != nil {
		return nil, s.wrap(err, "list projects")
	}
	out, err := collect(rows, scanProject)
	return out, s.wrap(err, "list projects")
}

// UpdateProject stores p's name, settings and updated_at.
func (s *Store) UpdateProject(ctx context.Context, p store.Project) error {
	err := mustAffect(s.execAffected(ctx,
		`UPDATE projects SET name = ?, settings = ?, updated_at = ? WHERE id = ?`,
		p.Name, docText(p.Settings), toMicros(p.UpdatedAt), p.ID))
	return s.wrap(err, "update project %s", p.ID)
}

// CreateProjectSecret stores sec; ErrConflict when its id or hash is taken, ErrNotFound when
// its project does not exist.
func (s *Store) CreateProjectSecret(ctx context.Context, sec store.ProjectSecret) error {
	err := s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx,
			`INSERT INTO project_secrets (id, project_id, hash, hint, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			sec.ID, sec.ProjectID, sec.Hash, sec.Hint, toMicros(sec.CreatedAt), toNullMicros(sec.ExpiresAt))
		return err
	})
	return s.wrap(err, "create project secret %s", sec.ID)
}

const projectSecretColumns = `id, project_id, hash, hint, created_at, expires_at`

func scanProjectSecret(sc scanner) (store.ProjectSecret, error) {
	var ps store.ProjectSecret
	var created int64
	var expires sql.NullInt64
	if err := sc.Scan(&ps.ID, &ps.ProjectID, &ps.Hash, &ps.Hint, &created, &expires); err != nil {
		return store.ProjectSecret{}, err
	}
	ps.CreatedAt = fromMicros(created)
	ps.ExpiresAt = fromNullMicros(expires)
	return ps, nil
}

// FindProjectSecret returns the secret with this hash, in whichever project. This is the one
// lookup that does not filter by project: it is how a client secret finds its project.
func (s *Store) FindProjectSecret(ctx context.Context, hash []byte) (store.ProjectSecret, error) {
	ps, err := scanProjectSecret(s.queryRow(ctx, `SELECT `+projectSecretColumns+` FROM project_secrets WHERE hash = ?`, hash))
	if err != nil {
		return store.ProjectSecret{}, s.wrap(err, "find project secret")
	}
	return ps, nil
}

// ListProjectSecrets returns the project's secrets, by id.
func (s *Store) ListProjectSecrets(ctx context.Context, projectID string) ([]store.ProjectSecret, error) {
	rows, err := s.query(ctx,
		`SELECT `+projectSecretColumns+` FROM project_secrets WHERE project_id = ? ORDER BY id`, projectID)
	if err != nil {
		return nil, s.wrap(err, "list secrets of project %s", projectID)
	}
	out, err := collect(rows, scanProjectSecret)
	return out, s.wrap(err, "list secrets of project %s", projectID)
}

// RetireProjectSecrets makes every secret of the project but keepID expire at `at`, unless it
// already expires earlier.
func (s *Store) RetireProjectSecrets(ctx context.Context, projectID, keepID string, at time.Time) error {
	_, err := s.exec(ctx,
		`UPDATE project_secrets SET expires_at = ?
		 WHERE project_id = ? AND id <> ? AND (expires_at IS NULL OR expires_at > ?)`,
		toMicros(at), projectID, keepID, toMicros(at))
	return s.wrap(err, "retire secrets of project %s", projectID)
}

// collect scans every row with scan, closing rows. The result is never nil.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
