package projecthttp

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/project"
)

// Handler serves the project routes.
type Handler struct {
	Projects *project.Service
	// PublicHost is the host of the server's public URL: the WebAuthn relying party id of a
	// project that sets none and names no allowed origin.
	PublicHost string
}

// Mount registers the routes on rt.
func (h Handler) Mount(rt *httpserver.Router) {
	rt.Handle("GET /api/v1/project", httpserver.Secret, h.get)
	rt.Handle("PATCH /api/v1/project", httpserver.Secret, h.patch)
	rt.Handle("GET /api/v1/config", httpserver.ClientID, h.config)
}

func (h Handler) get(w http.ResponseWriter, r *http.Request) error {
	v, err := h.Projects.Get(r.Context(), httpserver.ProjectFrom(r.Context()).ID)
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, projectDoc(v))
	return nil
}

type patchRequest struct {
	Name     *string         `json:"name"`
	Settings json.RawMessage `json:"settings"`
}

func (h Handler) patch(w http.ResponseWriter, r *http.Request) error {
	var req patchRequest
	if err := httpserver.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	u := project.Update{Name: req.Name}
	if len(req.Settings) > 0 && !bytes.Equal(req.Settings, []byte("null")) {
		u.Settings = req.Settings // absent or null: the settings stay as they are
	}
	v, err := h.Projects.Update(r.Context(), httpserver.Actor(r), httpserver.ProjectFrom(r.Context()).ID, u)
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, projectDoc(v))
	return nil
}

func (h Handler) config(w http.ResponseWriter, r *http.Request) error {
	p := httpserver.ProjectFrom(r.Context())
	s, err := h.Projects.Settings(p)
	if err != nil {
		return err
	}
	display := s.Branding.DisplayName
	if display == "" {
		display = p.Name
	}
	httpserver.WriteJSON(w, http.StatusOK, publicConfig{
		ClientID:        p.ClientID,
		Name:            p.Name,
		DisplayName:     display,
		LoginMethods:    s.LoginMethods,
		AllowSignup:     s.AllowSignup,
		AllowedOrigins:  s.AllowedOrigins,
		Branding:        s.Branding,
		SocialProviders: []string{},
		Passkey:         passkeyConfig{RPID: s.EffectiveRPID(h.PublicHost)},
	})
	return nil
}

// projectDocument is the project as GET and PATCH /api/v1/project answer it: never a secret or
// a secret's hash.
type projectDocument struct {
	ID         string           `json:"id"`
	ClientID   string           `json:"client_id"`
	Name       string           `json:"name"`
	Settings   project.Settings `json:"settings"`
	Secrets    []secretDocument `json:"secrets"`
	CreatedAt  time.Time        `json:"created_at"`
	ModifiedAt time.Time        `json:"modified_at"`
}

type secretDocument struct {
	ID        string     `json:"id"`
	Hint      string     `json:"hint"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
}

func projectDoc(v project.View) projectDocument {
	secrets := make([]secretDocument, len(v.Secrets))
	for i, s := range v.Secrets {
		secrets[i] = secretDocument{ID: s.ID, Hint: s.Hint, CreatedAt: s.CreatedAt.UTC(), ExpiresAt: utcPtr(s.ExpiresAt)}
	}
	return projectDocument{
		ID: v.Project.ID, ClientID: v.Project.ClientID, Name: v.Project.Name,
		Settings: v.Settings, Secrets: secrets,
		CreatedAt: v.Project.CreatedAt.UTC(), ModifiedAt: v.Project.UpdatedAt.UTC(),
	}
}

// publicConfig is what GET /api/v1/config tells anyone who knows the client id: only what a
// login page needs to render itself.
type publicConfig struct {
	ClientID        string               `json:"client_id"`
	Name            string               `json:"name"`
	DisplayName     string               `json:"display_name"`
	LoginMethods    project.LoginMethods `json:"login_methods"`
	AllowSignup     bool                 `json:"allow_signup"`
	AllowedOrigins  []string             `json:"allowed_origins"`
	Branding        project.Branding     `json:"branding"`
	SocialProviders []string             `json:"social_providers"`
	Passkey         passkeyConfig        `json:"passkey"`
}

type passkeyConfig struct {
	RPID string `json:"rp_id"`
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
