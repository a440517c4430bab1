package passwordlesshttp

import (
	"context"
	"net/http"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/passwordless"
)

// Templates is the template part of the passwordless service.
type Templates interface {
	Template(ctx context.Context, projectID, name string) (passwordless.TemplateView, error)
	PutTemplate(ctx context.Context, by audit.Actor, projectID, name string, t notify.Template) (passwordless.TemplateView, error)
	ResetTemplate(ctx context.Context, by audit.Actor, projectID, name string) (passwordless.TemplateView, error)
}

// TemplateHandler serves the message templates in the management API.
type TemplateHandler struct {
	Templates Templates
}

// Mount registers the routes on rt.
func (h TemplateHandler) Mount(rt *httpserver.Router) {
	rt.Handle("GET /api/v1/templates/{name}", httpserver.Secret, h.get)
	rt.Handle("PUT /api/v1/templates/{name}", httpserver.Secret, h.put)
	rt.Handle("DELETE /api/v1/templates/{name}", httpserver.Secret, h.reset)
}

type templateBody struct {
	Name    string `json:"name"`
	Default bool   `json:"is_default"`
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html"`
}

func writeTemplate(w http.ResponseWriter, v passwordless.TemplateView) {
	httpserver.WriteJSON(w, http.StatusOK, templateBody{Name: string(v.Name), Default: v.Default,
		Subject: v.Subject, Text: v.Text, HTML: v.HTML})
}

func (h TemplateHandler) get(w http.ResponseWriter, r *http.Request) error {
	v, err := h.Templates.Template(r.Context(), httpserver.ProjectFrom(r.Context()).ID, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeTemplate(w, v)
	return nil
}

func (h TemplateHandler) put(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Subject string `json:"subject"`
		Text    string `json:"text"`
		HTML    string `json:"html"`
	}
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	v, err := h.Templates.PutTemplate(r.Context(), httpserver.Actor(r), httpserver.ProjectFrom(r.Context()).ID, r.PathValue("name"),
		notify.Template{Subject: in.Subject, Text: in.Text, HTML: in.HTML})
	if err != nil {
		return err
	}
	writeTemplate(w, v)
	return nil
}

func (h TemplateHandler) reset(w http.ResponseWriter, r *http.Request) error {
	v, err := h.Templates.ResetTemplate(r.Context(), httpserver.Actor(r), httpserver.ProjectFrom(r.Context()).ID, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeTemplate(w, v)
	return nil
}
