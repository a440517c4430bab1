package directory_test

import (
	"context"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// env is a directory service on a real store, with one project to work in.
type env struct {
	t   *testing.T
	ctx context.Context
	st  store.Store
	svc *directory.Service
	pid string
}

var ids = ident.NewGenerator()

// operator is the actor of the changes the tests make.
var operator = audit.Actor{Kind: audit.ActorSecret, ID: "cli_directory_test",
	Meta: audit.Meta{IPAddress: "192.0.2.10", UserAgent: "directory-test/1"}}

// newEnv returns a service over st with a fresh project.
func newEnv(t *testing.T, st store.Store) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), st: st, svc: directory.New(directory.Deps{Store: st})}
	e.pid = newProject(t, st)
	return e
}

// newProject stores a project and returns its id.
func newProject(t *testing.T, st store.Store) string {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	p := store.Project{ID: ids.New(), ClientID: "cli_" + ids.New(), Name: "Test", Settings: []byte(`{}`), CreatedAt: now, UpdatedAt: now}
	if err := st.CreateProject(context.Background(), p); err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	return p.ID
}

// each runs fn on SQLite and PostgreSQL (when a server is reachable).
func each(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	t.Parallel()
	testdb.Each(t, func(t *testing.T, s *sqlstore.Store) { fn(t, newEnv(t, s)) })
}

// sqlite runs fn on SQLite only, for cases whose logic does not depend on the backend.
func sqlite(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	t.Parallel()
	fn(t, newEnv(t, testdb.SQLite(t)))
}

func ptr[T any](v T) *T { return &v }

// wantFailure checks that err is a failure with the given kind, code and (if not "") field.
func wantFailure(t *testing.T, err error, kind failure.Kind, code, field string) {
	t.Helper()
	fe, ok := failure.As(err)
	if !ok {
		t.Fatalf("error = %v, want failure %s", err, code)
	}
	if fe.Kind != kind || fe.Code != code || (field != "" && fe.Field != field) {
		t.Fatalf("failure = {kind %d, code %q, field %q} (%v), want {kind %d, code %q, field %q}",
			fe.Kind, fe.Code, fe.Field, fe, kind, code, field)
	}
}

// must(f())(t) returns f's value, failing t if f returned an error.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return v
	}
}

func (e *env) user(email string) directory.User {
	e.t.Helper()
	return must(e.svc.CreateUser(e.ctx, operator, e.pid, directory.UserInput{Email: ptr(email)}))(e.t)
}

func (e *env) org(name string) store.Organization {
	e.t.Helper()
	return must(e.svc.CreateOrganization(e.ctx, operator, e.pid, directory.OrganizationInput{Name: ptr(name)}))(e.t)
}

func (e *env) permission(name string) store.Permission {
	e.t.Helper()
	return must(e.svc.CreatePermission(e.ctx, operator, e.pid, directory.PermissionInput{Name: ptr(name)}))(e.t)
}

func (e *env) role(name string, permIDs ...string) store.Role {
	e.t.Helper()
	return must(e.svc.CreateRole(e.ctx, operator, e.pid, directory.RoleInput{Name: ptr(name), PermissionIDs: &permIDs}))(e.t)
}
