// Package devinbox shows the messages a development server "sent": with --dev and no sender
// configured, messages stay in the outbox and are listed at /dev/inbox, newest first.
package devinbox

import (
	"encoding/json"
	"html/template"
	"net/http"
	"time"

	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/outbox"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Handler serves the development inbox. Mount it only in development mode: it shows codes and
// links to anyone who can reach the server.
type Handler struct {
	Store  store.Outbox
	Opener outbox.Opener
}

// Mount registers the routes on rt.
func (h Handler) Mount(rt *httpserver.Router) {
	rt.Handle("GET /dev/inbox", httpserver.Public, h.page)
	rt.Handle("GET /dev/inbox.json", httpserver.Public, h.json)
}

// Message is one message as the inbox shows it.
type Message struct {
	ID        string     `json:"id"`
	ProjectID string     `json:"project_id"`
	Channel   string     `json:"channel"`
	To        string     `json:"to"`
	Subject   string     `json:"subject"`
	Text      string     `json:"text"`
	HTML      string     `json:"html"`
	CreatedAt time.Time  `json:"created_at"`
	SentAt    *time.Time `json:"sent_at"`
}

func (h Handler) messages(r *http.Request) ([]Message, error) {
	rows, err := h.Store.ListOutbox(r.Context(), 100)
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(rows))
	for _, m := range rows {
		msg := Message{ID: m.ID, ProjectID: m.ProjectID, Channel: m.Channel, To: m.Recipient, CreatedAt: m.CreatedAt, SentAt: m.SentAt}
		if len(m.Payload) > 0 {
			if raw, err := h.Opener.Open(m.Payload, outbox.AAD(m.ID)); err == nil {
				var c outbox.Content
				if json.Unmarshal(raw, &c) == nil {
					msg.Subject, msg.Text, msg.HTML = c.Subject, c.Text, c.HTML
				}
			}
		}
		out = append(out, msg)
	}
	return out, nil
}

func (h Handler) json(w http.ResponseWriter, r *http.Request) error {
	ms, err := h.messages(r)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpserver.WriteJSON(w, http.StatusOK, struct {
		Messages []Message `json:"messages"`
	}{ms})
	return nil
}

func (h Handler) page(w http.ResponseWriter, r *http.Request) error {
	ms, err := h.messages(r)
	if err != nil {
		return err
	}
	// The page is static apart from its messages: no script, its one stylesheet by nonce. It
	// shows live codes and links, so it is never cached (a stored copy would also reuse the
	// nonce).
	nonce := httpserver.SetPageHeaders(w, r, pagePolicy)
	w.Header().Set("Cache-Control", "no-store")
	return inbox.Execute(w, inboxPage{Nonce: nonce, Messages: ms})
}

var pagePolicy = httpserver.PagePolicy{Style: []string{httpserver.NonceSource}}

type inboxPage struct {
	Nonce    string
	Messages []Message
}

// The HTML body of a message is shown as text: this page is not a mail client, and rendering
// stored HTML here would run whatever a template put there.
var inbox = template.Must(template.New("inbox").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Latchkey dev inbox</title>
<style nonce="{{.Nonce}}">body{font-family:system-ui,sans-serif;margin:2rem;color:#1f2937}article{border:1px solid #d1d5db;border-radius:6px;padding:1rem;margin:0 0 1rem}pre{white-space:pre-wrap}small{color:#6b7280}</style>
</head><body><h1>Dev inbox</h1><p><small>Development mode: messages are kept here instead of sent. Newest first.</small></p>
{{range .Messages}}<article><small>{{.CreatedAt.Format "2006-01-02 15:04:05"}} · {{.Channel}} · project {{.ProjectID}}</small>
<h2>To {{.To}}{{if .Subject}}: {{.Subject}}{{end}}</h2><pre>{{.Text}}</pre></article>
{{else}}<p>No messages yet.</p>{{end}}
</body></html>
`))
