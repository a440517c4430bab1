package passwordless_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/passwordless"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

var operator = audit.Actor{Kind: audit.ActorSecret, ID: "cli_templates_test",
	Meta: audit.Meta{IPAddress: "203.0.113.9", UserAgent: "templates-test/1"}}

var errAudit = errors.New("audit write failed")

// failingAudit is a store whose audit writes fail, inside transactions too.
type failingAudit struct{ store.Store }

func (failingAudit) AddAuditEvent(context.Context, store.AuditEvent) error { return errAudit }

func (f failingAudit) InTx(ctx context.Context, fn func(tx store.Store) error) error {
	return f.Store.InTx(ctx, func(tx store.Store) error { return fn(failingAudit{tx}) })
}

func newProject(t *testing.T, st store.Store) string {
	t.Helper()
	ids := ident.NewGenerator()
	now := time.Now().UTC().Truncate(time.Microsecond)
	p := store.Project{ID: ids.New(), ClientID: "cli_" + ids.New(), Name: "Templates", Settings: []byte(`{}`), CreatedAt: now, UpdatedAt: now}
	if err := st.CreateProject(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p.ID
}

func TestTemplateChangesAreAudited(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		pid := newProject(t, st)
		events := func() []store.AuditEvent {
			es, err := st.ListAuditEvents(ctx, pid, store.AuditFilter{TypePrefix: "template."}, 10, "")
			if err != nil {
				t.Fatal(err)
			}
			return es
		}
		good := notify.Template{Subject: "Your code", Text: "Use {{.code}}."}

		// When the event cannot be written, the override is not stored either.
		failing := passwordless.New(passwordless.Deps{Store: failingAudit{st}})
		if _, err := failing.PutTemplate(ctx, operator, pid, "email_otp", good); !errors.Is(err, errAudit) {
			t.Fatalf("PutTemplate = %v, want the audit error", err)
		}
		if _, err := st.GetTemplate(ctx, pid, "email_otp"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("an override without its event was stored: %v", err)
		}

		svc := passwordless.New(passwordless.Deps{Store: st})
		if _, err := svc.PutTemplate(ctx, operator, pid, "email_otp", notify.Template{Subject: "x", Text: "{{.code"}); err == nil {
			t.Fatal("a broken template was accepted")
		}
		if _, err := svc.PutTemplate(ctx, operator, pid, "welcome", good); err == nil {
			t.Fatal("an unknown template was accepted")
		}
		if es := events(); len(es) != 0 {
			t.Fatalf("refused changes wrote %d events", len(es))
		}
		if _, err := svc.PutTemplate(ctx, operator, pid, "email_otp", good); err != nil {
			t.Fatal(err)
		}
		if _, err := failing.ResetTemplate(ctx, operator, pid, "email_otp"); !errors.Is(err, errAudit) {
			t.Fatalf("ResetTemplate = %v, want the audit error", err)
		}
		if _, err := st.GetTemplate(ctx, pid, "email_otp"); err != nil {
			t.Fatalf("a reset without its event dropped the override: %v", err)
		}
		if _, err := svc.ResetTemplate(ctx, operator, pid, "email_otp"); err != nil {
			t.Fatal(err)
		}
		es := events()
		if len(es) != 2 {
			t.Fatalf("%d events, want 2", len(es))
		}
		for _, e := range es {
			a, _ := e.Detail["actor"].(map[string]any)
			if e.Detail["template"] != "email_otp" || a["kind"] != operator.Kind || a["id"] != operator.ID ||
				e.IPAddress != operator.IPAddress || e.UserAgent != operator.UserAgent {
				t.Errorf("event %+v", e)
			}
			if e.Detail["text"] != nil || e.Detail["subject"] != nil {
				t.Errorf("event %s holds the template's text", e.Type)
			}
		}
		if got := map[string]bool{es[0].Type: true, es[1].Type: true}; !got[passwordless.EventTemplateUpdated] || !got[passwordless.EventTemplateReset] {
			t.Errorf("types %s, %s; want template.updated and template.reset", es[0].Type, es[1].Type)
		}
	})
}
