// Package passkeyhttp serves the passkey routes (API.md §6), /.well-known/webauthn and the
// small passkey sign-in page at /login/passkey.
package passkeyhttp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/login/loginhttp"
	"github.com/latchkey-dev/latchkey/internal/passkey"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Passkeys is the passkey service.
type Passkeys interface {
	BeginRegistration(ctx context.Context, p store.Project, userID string, signedIn time.Time) (passkey.Options, error)
	FinishRegistration(ctx context.Context, p store.Project, userID, authCode string, response []byte) (store.Passkey, error)
	BeginLogin(ctx context.Context, p store.Project, identifier string) (passkey.Options, error)
	FinishLogin(ctx context.Context, p store.Project, authCode string, response []byte, meta audit.Meta) (login.Result, error)
	Status(ctx context.Context, p store.Project, identifier string) (passkey.Status, error)
	List(ctx context.Context, p store.Project, userID string) ([]store.Passkey, error)
	Rename(ctx context.Context, p store.Project, userID, id, name string) (store.Passkey, error)
	Delete(ctx context.Context, p store.Project, userID, id string) error
	DeleteAll(ctx context.Context, p store.Project, userID string) (int, error)
	RelatedOrigins(p store.Project) ([]string, error)
	RPID(p store.Project) (string, error)
}

// Users reads users (the directory).
type Users interface {
	GetUser(ctx context.Context, projectID, id string) (directory.User, error)
}

// Projects finds the project a /.well-known/webauthn request is for.
type Projects interface {
	ProjectByClientID(ctx context.Context, clientID string) (store.Project, error)
	ListProjects(ctx context.Context) ([]store.Project, error)
}

// Handler serves the passkey routes.
type Handler struct {
	Passkeys Passkeys
	Users    Users
	Projects Projects
}

const base = "/api/v1/auth/passwordless/passkey/"

// maxResponseBytes bounds an authenticator response: attestation certificate chains are a few
// kilobytes; nothing legitimate comes near this.
const maxResponseBytes = 64 << 10

// Mount registers the routes on rt.
func (h Handler) Mount(rt *httpserver.Router) {
	rt.Handle("GET "+base+"register", httpserver.User, h.beginRegistration)
	rt.Handle("POST "+base+"register", httpserver.User, h.finishRegistration)
	rt.Handle("GET "+base+"login", httpserver.ClientID, h.beginLogin)
	rt.Handle("POST "+base+"login", httpserver.ClientID, h.finishLogin)
	rt.Handle("GET "+base+"status", httpserver.ClientID, h.status)
	rt.Handle("GET "+base+"credentials", httpserver.User, h.myCredentials)
	rt.Handle("PATCH "+base+"credentials/{id}", httpserver.User, h.rename)
	rt.Handle("DELETE "+base+"credentials/{id}", httpserver.User, h.delete)
	rt.Handle("GET /api/v1/users/{id}/passkeys", httpserver.Secret, h.userCredentials)
	rt.Handle("DELETE /api/v1/users/{id}/passkeys", httpserver.Secret, h.deleteUserCredentials)
	rt.Handle("GET /.well-known/webauthn", httpserver.Public, h.wellKnown)
	rt.Handle("GET /login/passkey", httpserver.Public, servePage)
	rt.Handle("GET /login/passkey.js", httpserver.Public, serveScript)
}

func (h Handler) beginRegistration(w http.ResponseWriter, r *http.Request) error {
	c, _ := httpserver.CallerFrom(r.Context())
	opts, err := h.Passkeys.BeginRegistration(r.Context(), c.Project, c.Claims.Subject, c.Session.CreatedAt)
	if err != nil {
		return err
	}
	writeNoStore(w, http.StatusOK, opts)
	return nil
}

func (h Handler) finishRegistration(w http.ResponseWriter, r *http.Request) error {
	c, _ := httpserver.CallerFrom(r.Context())
	code, response, err := readResponse(w, r)
	if err != nil {
		return err
	}
	pk, err := h.Passkeys.FinishRegistration(r.Context(), c.Project, c.Claims.Subject, code, response)
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusCreated, newCredentialBody(pk))
	return nil
}

func (h Handler) beginLogin(w http.ResponseWriter, r *http.Request) error {
	opts, err := h.Passkeys.BeginLogin(r.Context(), httpserver.ProjectFrom(r.Context()), r.URL.Query().Get("identifier"))
	if err != nil {
		return err
	}
	writeNoStore(w, http.StatusOK, opts)
	return nil
}

func (h Handler) finishLogin(w http.ResponseWriter, r *http.Request) error {
	code, response, err := readResponse(w, r)
	if err != nil {
		return err
	}
	res, err := h.Passkeys.FinishLogin(r.Context(), httpserver.ProjectFrom(r.Context()), code, response, httpserver.Meta(r))
	if err != nil {
		return err
	}
	loginhttp.Write(w, res)
	return nil
}

func (h Handler) status(w http.ResponseWriter, r *http.Request) error {
	st, err := h.Passkeys.Status(r.Context(), httpserver.ProjectFrom(r.Context()), r.URL.Query().Get("identifier"))
	if err != nil {
		return err
	}
	writeNoStore(w, http.StatusOK, st)
	return nil
}

func (h Handler) myCredentials(w http.ResponseWriter, r *http.Request) error {
	c, _ := httpserver.CallerFrom(r.Context())
	pks, err := h.Passkeys.List(r.Context(), c.Project, c.Claims.Subject)
	if err != nil {
		return err
	}
	writeCredentials(w, pks)
	return nil
}

type renameIn struct {
	Name *string `json:"name"`
}

func (h Handler) rename(w http.ResponseWriter, r *http.Request) error {
	c, _ := httpserver.CallerFrom(r.Context())
	var in renameIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Name == nil {
		return failure.InvalidField("invalid_name", "name", "is required")
	}
	if _, err := h.Passkeys.Rename(r.Context(), c.Project, c.Claims.Subject, r.PathValue("id"), *in.Name); err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, outcome{Status: "success", Message: "passkey renamed"})
	return nil
}

func (h Handler) delete(w http.ResponseWriter, r *http.Request) error {
	c, _ := httpserver.CallerFrom(r.Context())
	if err := h.Passkeys.Delete(r.Context(), c.Project, c.Claims.Subject, r.PathValue("id")); err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, outcome{Status: "success", Message: "passkey deleted"})
	return nil
}

func (h Handler) userCredentials(w http.ResponseWriter, r *http.Request) error {
	p := httpserver.ProjectFrom(r.Context())
	u, err := h.Users.GetUser(r.Context(), p.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	pks, err := h.Passkeys.List(r.Context(), p, u.ID)
	if err != nil {
		return err
	}
	writeCredentials(w, pks)
	return nil
}

func (h Handler) deleteUserCredentials(w http.ResponseWriter, r *http.Request) error {
	p := httpserver.ProjectFrom(r.Context())
	u, err := h.Users.GetUser(r.Context(), p.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	n, err := h.Passkeys.DeleteAll(r.Context(), p, u.ID)
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, deletedAll{Status: "success", Message: "passkeys deleted", Deleted: n})
	return nil
}

// wellKnown serves the WebAuthn related origins document of the project whose RP id is the
// host asked for (browsers fetch https://<rp id>/.well-known/webauthn with no parameters), or
// of the project that client_id names.
func (h Handler) wellKnown(w http.ResponseWriter, r *http.Request) error {
	p, err := h.wellKnownProject(r)
	if err != nil {
		return err
	}
	origins, err := h.Passkeys.RelatedOrigins(p)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	httpserver.WriteJSON(w, http.StatusOK, relatedOrigins{Origins: origins})
	return nil
}

func (h Handler) wellKnownProject(r *http.Request) (store.Project, error) {
	if id := strings.TrimSpace(r.URL.Query().Get("client_id")); id != "" {
		return h.Projects.ProjectByClientID(r.Context(), id)
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	ps, err := h.Projects.ListProjects(r.Context())
	if err != nil {
		return store.Project{}, err
	}
	for _, p := range ps {
		if rpID, err := h.Passkeys.RPID(p); err == nil && rpID == host {
			return p, nil
		}
	}
	return store.Project{}, failure.New(failure.NotFound, "project_not_found", "no project has this host as its passkey RP id")
}

// readResponse reads a finish call's body: the credential JSON itself, or {auth_code,
// publicKey: credential}. The auth_code may also be a query parameter.
func readResponse(w http.ResponseWriter, r *http.Request) (string, []byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxResponseBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return "", nil, failure.New(failure.TooLarge, "request_too_large", "the request body is larger than %d bytes", maxResponseBytes)
	}
	if err != nil {
		return "", nil, failure.New(failure.Invalid, "invalid_request", "could not read the request body")
	}
	// The same rule as every other body: no key twice, case-insensitively, at any level.
	if err := httpserver.CheckJSON(body); err != nil {
		if fe, ok := failure.As(err); ok && fe.Field != "" {
			return "", nil, err
		}
	}
	var envelope struct {
		AuthCode  string          `json:"auth_code"`
		PublicKey json.RawMessage `json:"publicKey"`
		ID        string          `json:"id"`
	}
	if err := json.Unmarshal(body, &envelope); err != nil {
		return "", nil, failure.New(failure.Invalid, "invalid_passkey_response", "the body must be a JSON credential or {\"auth_code\", \"publicKey\"}")
	}
	response := body
	if envelope.ID == "" && len(envelope.PublicKey) > 0 {
		response = envelope.PublicKey
	}
	code := strings.TrimSpace(r.URL.Query().Get("auth_code"))
	if code == "" {
		code = strings.TrimSpace(envelope.AuthCode)
	} else if envelope.AuthCode != "" && envelope.AuthCode != code {
		return "", nil, failure.New(failure.Invalid, "auth_code_mismatch", "auth_code in the query and in the body differ")
	}
	return code, response, nil
}

type outcome struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

type deletedAll struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Deleted int    `json:"deleted"`
}

type relatedOrigins struct {
	Origins []string `json:"origins"`
}

// CredentialBody is a passkey as SSOJet lists it: the Go-style capitalised names of its first
// fields are SSOJet's own.
type CredentialBody struct {
	ID              string     `json:"id"`
	Name            string     `json:"Name"`
	SignCount       uint32     `json:"SignCount"`
	LastUsedAt      *time.Time `json:"LastUsedAt"`
	CreatedAt       time.Time  `json:"CreatedAt"`
	UpdatedAt       time.Time  `json:"UpdatedAt"`
	CredentialID    string     `json:"credential_id"` // base64url, as the browser reports it
	PublicKey       string     `json:"public_key"`    // base64url COSE key
	AttestationType string     `json:"attestation_type"`
	AAGUID          string     `json:"aaguid"`
	Transports      []string   `json:"transports"`
	BackupEligible  bool       `json:"backup_eligible"`
	BackupState     bool       `json:"backup_state"`
	CloneSuspected  bool       `json:"clone_suspected"`
}

func newCredentialBody(pk store.Passkey) CredentialBody {
	aaguid := ""
	if id, err := uuid.FromBytes(pk.AAGUID); err == nil {
		aaguid = id.String()
	}
	ts := pk.Transports
	if ts == nil {
		ts = []string{}
	}
	return CredentialBody{
		ID: pk.ID, Name: pk.Name, SignCount: pk.SignCount, LastUsedAt: pk.LastUsedAt, CreatedAt: pk.CreatedAt,
		UpdatedAt: pk.UpdatedAt, CredentialID: base64.RawURLEncoding.EncodeToString(pk.CredentialID),
		PublicKey: base64.RawURLEncoding.EncodeToString(pk.PublicKey), AttestationType: pk.AttestationType,
		AAGUID: aaguid, Transports: ts, BackupEligible: pk.BackupEligible, BackupState: pk.BackupState,
		CloneSuspected: pk.CloneSuspected,
	}
}

func writeCredentials(w http.ResponseWriter, pks []store.Passkey) {
	out := make([]CredentialBody, len(pks))
	for i, pk := range pks {
		out[i] = newCredentialBody(pk)
	}
	httpserver.WriteJSON(w, http.StatusOK, out)
}

// writeNoStore answers with v and no-store: ceremony options hold a single-use auth_code.
func writeNoStore(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	httpserver.WriteJSON(w, status, v)
}
