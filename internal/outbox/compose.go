package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Sealer seals outbox payloads (secretbox.Keyring).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
}

// Templates reads a project's template overrides.
type Templates interface {
	GetTemplate(ctx context.Context, projectID, name string) (store.MessageTemplate, error)
}

// Message is a message to compose from a template.
type Message struct {
	ID        string
	ProjectID string
	Channel   notify.Channel
	Recipient string
	Template  notify.TemplateName
	Data      notify.TemplateData
	At        time.Time
	// ExpiresAt is when the message dies with the secret it carries: a retry after it must not
	// deliver it.
	ExpiresAt time.Time
}

// Compose renders m with the project's override of its template, or the default, and seals
// the result into the outbox row it is to be. Reading the override through st lets a flow
// compose inside its own transaction.
func Compose(ctx context.Context, st Templates, sealer Sealer, m Message) (store.OutboxMessage, error) {
	tmpl, _ := notify.DefaultTemplate(m.Template)
	switch override, err := st.GetTemplate(ctx, m.ProjectID, string(m.Template)); {
	case err == nil:
		tmpl = notify.Template{Subject: override.Subject, Text: override.Text, HTML: override.HTML}
	case !errors.Is(err, store.ErrNotFound):
		return store.OutboxMessage{}, fmt.Errorf("load template %s: %w", m.Template, err)
	}
	subject, text, html, err := tmpl.Render(m.Template, m.Data)
	if err != nil {
		return store.OutboxMessage{}, fmt.Errorf("render template %s: %w", m.Template, err)
	}
	content, err := json.Marshal(Content{Subject: subject, Text: text, HTML: html})
	if err != nil {
		return store.OutboxMessage{}, fmt.Errorf("encode message: %w", err)
	}
	sealed, err := sealer.Seal(content, AAD(m.ID))
	if err != nil {
		return store.OutboxMessage{}, fmt.Errorf("seal message: %w", err)
	}
	expires := m.ExpiresAt
	return store.OutboxMessage{ID: m.ID, ProjectID: m.ProjectID, Channel: string(m.Channel), Recipient: m.Recipient,
		Payload: sealed, CreatedAt: m.At, AvailableAt: m.At, ExpiresAt: &expires}, nil
}
