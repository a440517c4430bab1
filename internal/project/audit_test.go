package project_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// operator is the actor of the changes the tests make.
var operator = audit.Actor{Kind: audit.ActorSecret, ID: "cli_project_test",
	Meta: audit.Meta{IPAddress: "198.51.100.7", UserAgent: "project-test/1"}}

// events returns the project's audit events of type typ, oldest first.
func events(t *testing.T, st store.Store, projectID, typ string) []store.AuditEvent {
	t.Helper()
	es, err := st.ListAuditEvents(context.Background(), projectID, store.AuditFilter{Type: typ}, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(es)
	return es
}

// wantActor checks that e names operator as its actor, with its IP address and user agent.
func wantActor(t *testing.T, e store.AuditEvent) {
	t.Helper()
	a, _ := e.Detail["actor"].(map[string]any)
	if a["kind"] != operator.Kind || a["id"] != operator.ID || e.IPAddress != operator.IPAddress ||
		e.UserAgent != operator.UserAgent {
		t.Errorf("event %s: actor %v, ip %q, user agent %q; want %+v", e.Type, e.Detail["actor"], e.IPAddress, e.UserAgent, operator)
	}
}

func strs(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestUpdateIsAudited(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		svc := newService(st, newClock())
		p, err := svc.Create(ctx, project.NewProject{Name: "Audited"})
		if err != nil {
			t.Fatal(err)
		}
		name := "Renamed"
		if _, err := svc.Update(ctx, operator, p.Project.ID, project.Update{Name: &name,
			Settings: []byte(`{"codes":{"length":8},"login_methods":{"password":true},"allow_signup":true}`)}); err != nil {
			t.Fatal(err)
		}
		es := events(t, st, p.Project.ID, project.EventSettingsUpdated)
		if len(es) != 1 {
			t.Fatalf("%d %s events, want 1", len(es), project.EventSettingsUpdated)
		}
		wantActor(t, es[0])
		// allow_signup was already true: only what changed is named, and never a value.
		want := []string{"name", "settings.codes.length", "settings.login_methods.password"}
		if got := strs(es[0].Detail["changed"]); !slices.Equal(got, want) {
			t.Errorf("changed = %q, want %q", got, want)
		}
		if raw, _ := json.Marshal(es[0].Detail); strings.Contains(string(raw), "Renamed") {
			t.Errorf("detail holds a value: %s", raw)
		}

		// Refused updates write nothing.
		_, err = svc.Update(ctx, operator, p.Project.ID, project.Update{Settings: []byte(`{"codes":{"length":2}}`)})
		wantFailure(t, err, failure.Invalid, "invalid_setting")
		_, err = svc.Update(ctx, operator, p.Project.ID, project.Update{Name: ptr(" ")})
		wantFailure(t, err, failure.Invalid, "invalid_request")
		if es := events(t, st, p.Project.ID, project.EventSettingsUpdated); len(es) != 1 {
			t.Errorf("%d events after refused updates, want 1", len(es))
		}
	})
}

func TestRotateSecretIsAudited(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		svc := newService(st, newClock())
		first, err := svc.Create(ctx, project.NewProject{Name: "Rotating"})
		if err != nil {
			t.Fatal(err)
		}
		second, err := svc.RotateSecret(ctx, operator, first.Project.ClientID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		es := events(t, st, first.Project.ID, project.EventSecretRotated)
		if len(es) != 1 {
			t.Fatalf("%d %s events, want 1", len(es), project.EventSecretRotated)
		}
		e := es[0]
		wantActor(t, e)
		if e.Detail["secret_id"] != second.Secret.ID || !slices.Equal(strs(e.Detail["retired_secret_ids"]), []string{first.Secret.ID}) ||
			e.Detail["grace_seconds"] != float64(3600) {
			t.Errorf("detail = %v", e.Detail)
		}
		raw, _ := json.Marshal(e)
		for _, secret := range []string{first.ClientSecret, second.ClientSecret, second.Secret.Hint} {
			if strings.Contains(string(raw), secret) {
				t.Errorf("the event holds a secret or its hint %q: %s", secret, raw)
			}
		}

		// A refused rotation writes nothing.
		_, err = svc.RotateSecret(ctx, operator, first.Project.ClientID, -time.Second)
		wantFailure(t, err, failure.Invalid, "invalid_request")
		if es := events(t, st, first.Project.ID, project.EventSecretRotated); len(es) != 1 {
			t.Errorf("%d events after a refused rotation, want 1", len(es))
		}
	})
}

var errAudit = errors.New("audit write failed")

// failingAudit is a store whose audit writes fail, inside transactions too.
type failingAudit struct{ store.Store }

func (failingAudit) AddAuditEvent(context.Context, store.AuditEvent) error { return errAudit }

func (f failingAudit) InTx(ctx context.Context, fn func(tx store.Store) error) error {
	return f.Store.InTx(ctx, func(tx store.Store) error { return fn(failingAudit{tx}) })
}

// TestChangeAndEventCommitTogether checks that a change whose event cannot be written is
// rolled back: a change is never without its event.
func TestChangeAndEventCommitTogether(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		p, err := newService(st, newClock()).Create(ctx, project.NewProject{Name: "Before"})
		if err != nil {
			t.Fatal(err)
		}
		svc := newService(failingAudit{st}, newClock())
		name := "After"
		if _, err := svc.Update(ctx, operator, p.Project.ID, project.Update{Name: &name}); !errors.Is(err, errAudit) {
			t.Fatalf("Update = %v, want the audit error", err)
		}
		if _, err := svc.RotateSecret(ctx, operator, p.Project.ClientID, 0); !errors.Is(err, errAudit) {
			t.Fatalf("RotateSecret = %v, want the audit error", err)
		}
		v, err := svc.Get(ctx, p.Project.ID)
		if err != nil {
			t.Fatal(err)
		}
		if v.Project.Name != "Before" || len(v.Secrets) != 1 || v.Secrets[0].ID != p.Secret.ID || v.Secrets[0].ExpiresAt != nil {
			t.Errorf("a change without its event was committed: name %q, secrets %+v", v.Project.Name, v.Secrets)
		}
		if _, err := svc.AuthenticateSecret(ctx, "", p.ClientSecret); err != nil {
			t.Errorf("the first secret stopped working: %v", err)
		}
	})
}

func ptr[T any](v T) *T { return &v }
