package outbox_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/outbox"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestComposeUsesTheProjectsTemplate: a message is rendered from the project's override of its
// template when there is one and the default otherwise, sealed to its own id, and delivered as
// rendered.
func TestComposeUsesTheProjectsTemplate(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newWorld(t, st)
		ctx := t.Context()
		data := notify.TemplateData{Code: "123456", Expiry: "10 minutes", Brand: "Acme", Email: "ada@example.com"}
		compose := func(id string) store.OutboxMessage {
			t.Helper()
			m, err := outbox.Compose(ctx, st, w.ring, outbox.Message{ID: id, ProjectID: w.pid, Channel: notify.Email, Recipient: data.Email,
				Template: notify.EmailOTP, Data: data, At: w.now, ExpiresAt: w.now.Add(5 * time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		open := func(m store.OutboxMessage) outbox.Content {
			t.Helper()
			plain, err := w.ring.Open(m.Payload, outbox.AAD(m.ID))
			if err != nil {
				t.Fatal(err)
			}
			var c outbox.Content
			if err := json.Unmarshal(plain, &c); err != nil {
				t.Fatal(err)
			}
			return c
		}

		def := compose(w.ids.New())
		if c := open(def); !strings.Contains(c.Text, "123456") || strings.Contains(c.Text, "Your Acme code is") {
			t.Fatalf("default template rendered %q", c.Text)
		}
		if def.ExpiresAt == nil || !def.ExpiresAt.Equal(w.now.Add(5*time.Minute)) || def.Recipient != data.Email {
			t.Errorf("row %+v", def)
		}
		// Sealed to its id: the payload does not open as another row's.
		if _, err := w.ring.Open(def.Payload, outbox.AAD(w.ids.New())); err == nil {
			t.Error("the payload opened under another message's id")
		}

		if err := st.PutTemplate(ctx, store.MessageTemplate{ProjectID: w.pid, Name: string(notify.EmailOTP), Subject: "{{.brand}} code",
			Text: "Your {{.brand}} code is {{.code}}.", UpdatedAt: w.now}); err != nil {
			t.Fatal(err)
		}
		custom := compose(w.ids.New())
		if c := open(custom); c.Text != "Your Acme code is 123456." || c.Subject != "Acme code" {
			t.Fatalf("override rendered %+v", c)
		}
		if err := st.EnqueueMessage(ctx, custom); err != nil {
			t.Fatal(err)
		}
		if n, err := w.w.RunOnce(ctx); err != nil || n != 1 {
			t.Fatalf("RunOnce = %d, %v", n, err)
		}
		if got := w.sender.texts(); len(got) != 1 || got[0] != "Your Acme code is 123456." {
			t.Errorf("sent %q", got)
		}
	})
}
