package webhookhttp

import (
	"net/http"
	"time"

	"github.com/latchkey-dev/latchkey/internal/auditlog"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/webhook"
)

// Handler serves a project's webhooks. Every route requires the project secret.
type Handler struct {
	Webhooks *webhook.Service
}

// Mount registers the handler's routes on rt.
func (h Handler) Mount(rt *httpserver.Router) {
	for _, r := range []struct {
		pattern string
		handle  httpserver.HandlerFunc
	}{
		{"POST /api/v1/webhooks", h.create},
		{"GET /api/v1/webhooks", h.list},
		{"GET /api/v1/webhooks/{id}", h.get},
		{"PATCH /api/v1/webhooks/{id}", h.update},
		{"DELETE /api/v1/webhooks/{id}", h.delete},
		{"POST /api/v1/webhooks/{id}/rotate-secret", h.rotate},
		{"GET /api/v1/webhooks/{id}/deliveries", h.deliveries},
	} {
		rt.Handle(r.pattern, httpserver.Secret, r.handle)
	}
}

func projectID(r *http.Request) string { return httpserver.ProjectFrom(r.Context()).ID }

type input struct {
	URL     *string   `json:"url"`
	Events  *[]string `json:"events"`
	Enabled *bool     `json:"enabled"`
}

func (in input) webhook() webhook.Input {
	return webhook.Input{URL: in.URL, Events: in.Events, Enabled: in.Enabled}
}

type webhookOut struct {
	ID        string   `json:"id"`
	URL       string   `json:"url"`
	Events    []string `json:"events"`
	Enabled   bool     `json:"enabled"`
	CreatedAt string   `json:"created_at"`
	UpdatedAt string   `json:"updated_at"`
	// Secret is set only when the webhook is made and when its secret is rotated.
	Secret string `json:"secret,omitempty"`
}

func view(w store.Webhook) webhookOut {
	return webhookOut{ID: w.ID, URL: w.URL, Events: w.Events, Enabled: w.Enabled, CreatedAt: ts(w.CreatedAt), UpdatedAt: ts(w.UpdatedAt)}
}

type deliveryOut struct {
	EventID       string  `json:"event_id"`
	EventType     string  `json:"event_type"`
	Status        string  `json:"status"` // pending, delivered or failed
	Attempts      int     `json:"attempts"`
	StatusCode    *int    `json:"status_code"` // of the last attempt; null when none got an answer
	LastError     string  `json:"last_error"`
	CreatedAt     string  `json:"created_at"`
	NextAttemptAt *string `json:"next_attempt_at"`
	DeliveredAt   *string `json:"delivered_at"`
	FailedAt      *string `json:"failed_at"`
}

func deliveryView(d store.WebhookDelivery) deliveryOut {
	out := deliveryOut{EventID: d.EventID, EventType: d.EventType, Status: "pending", Attempts: d.Attempts,
		LastError: d.LastError, CreatedAt: ts(d.CreatedAt)}
	if d.StatusCode != 0 {
		out.StatusCode = &d.StatusCode
	}
	switch {
	case d.DeliveredAt != nil:
		out.Status, out.DeliveredAt = "delivered", tsp(*d.DeliveredAt)
	case d.FailedAt != nil:
		out.Status, out.FailedAt = "failed", tsp(*d.FailedAt)
	default:
		out.NextAttemptAt = tsp(d.AvailableAt)
	}
	return out
}

func ts(t time.Time) string { return auditlog.Time(t) }

func tsp(t time.Time) *string {
	s := ts(t)
	return &s
}

func cursor(next string) *string {
	if next == "" {
		return nil
	}
	return &next
}

func (h Handler) create(w http.ResponseWriter, r *http.Request) error {
	var in input
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	made, err := h.Webhooks.Create(r.Context(), projectID(r), in.webhook())
	if err != nil {
		return err
	}
	out := view(made.Webhook)
	out.Secret = made.Secret
	httpserver.WriteJSON(w, http.StatusCreated, out)
	return nil
}

func (h Handler) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	ws, next, err := h.Webhooks.List(r.Context(), projectID(r), q.Get("limit"), q.Get("cursor"))
	if err != nil {
		return err
	}
	out := struct {
		Webhooks   []webhookOut `json:"webhooks"`
		NextCursor *string      `json:"next_cursor"`
	}{Webhooks: make([]webhookOut, 0, len(ws)), NextCursor: cursor(next)}
	for _, wh := range ws {
		out.Webhooks = append(out.Webhooks, view(wh))
	}
	httpserver.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h Handler) get(w http.ResponseWriter, r *http.Request) error {
	wh, err := h.Webhooks.Get(r.Context(), projectID(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, view(wh))
	return nil
}

func (h Handler) update(w http.ResponseWriter, r *http.Request) error {
	var in input
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	wh, err := h.Webhooks.Update(r.Context(), projectID(r), r.PathValue("id"), in.webhook())
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, view(wh))
	return nil
}

func (h Handler) delete(w http.ResponseWriter, r *http.Request) error {
	if err := h.Webhooks.Delete(r.Context(), projectID(r), r.PathValue("id")); err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, struct {
		IsDeleted bool `json:"is_deleted"`
	}{true})
	return nil
}

func (h Handler) rotate(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength != 0 { // no body is needed; one that is sent must be JSON
		var none struct{}
		if err := httpserver.DecodeJSON(w, r, &none); err != nil {
			return err
		}
	}
	made, err := h.Webhooks.RotateSecret(r.Context(), projectID(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	out := view(made.Webhook)
	out.Secret = made.Secret
	httpserver.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h Handler) deliveries(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	ds, next, err := h.Webhooks.Deliveries(r.Context(), projectID(r), r.PathValue("id"), q.Get("limit"), q.Get("cursor"))
	if err != nil {
		return err
	}
	out := struct {
		Deliveries []deliveryOut `json:"deliveries"`
		NextCursor *string       `json:"next_cursor"`
	}{Deliveries: make([]deliveryOut, 0, len(ds)), NextCursor: cursor(next)}
	for _, d := range ds {
		out.Deliveries = append(out.Deliveries, deliveryView(d))
	}
	httpserver.WriteJSON(w, http.StatusOK, out)
	return nil
}
