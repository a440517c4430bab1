package auditloghttp

import (
	"net/http"

	"github.com/latchkey-dev/latchkey/internal/auditlog"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
)

// Handler serves the audit log. It requires the project secret.
type Handler struct {
	Log auditlog.Service
}

// Mount registers the handler's routes on rt.
func (h Handler) Mount(rt *httpserver.Router) {
	rt.Handle("GET /api/v1/logs", httpserver.Secret, h.list)
}

func (h Handler) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	page, err := h.Log.List(r.Context(), httpserver.ProjectFrom(r.Context()).ID, auditlog.Query{
		Type: q.Get("type"), UserID: q.Get("user_id"), OrganizationID: q.Get("organization_id"),
		From: q.Get("from"), To: q.Get("to"), Limit: q.Get("limit"), Cursor: q.Get("cursor"),
	})
	if err != nil {
		return err
	}
	out := struct {
		Logs       []auditlog.Event `json:"logs"`
		NextCursor *string          `json:"next_cursor"`
	}{Logs: make([]auditlog.Event, 0, len(page.Events))}
	for _, e := range page.Events {
		out.Logs = append(out.Logs, auditlog.View(e))
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	httpserver.WriteJSON(w, http.StatusOK, out)
	return nil
}
