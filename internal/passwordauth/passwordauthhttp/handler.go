// Package passwordauthhttp serves the password routes: sign-up, login, reset and change, and
// setting or importing a user's password through the management API.
package passwordauthhttp

import (
	"context"
	"net/http"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/login/loginhttp"
	"github.com/latchkey-dev/latchkey/internal/passwordauth"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Passwords is the password service.
type Passwords interface {
	SignUp(ctx context.Context, p store.Project, in passwordauth.Signup, meta audit.Meta) (login.Result, error)
	LoginDevice(ctx context.Context, p store.Project, email, pw, device string, meta audit.Meta) (login.Result, error)
	SendReset(ctx context.Context, p store.Project, email, redirectURL, ip string) error
	Reset(ctx context.Context, p store.Project, tok, newPassword string, meta audit.Meta) error
	Change(ctx context.Context, p store.Project, sess store.Session, current, newPassword string, meta audit.Meta) error
	SetByAdmin(ctx context.Context, p store.Project, userID, pw, importHash string, meta audit.Meta) error
}

// Handler serves the password routes.
type Handler struct {
	Passwords Passwords
}

const base = "/api/v1/auth/password/"

// Mount registers the routes on rt.
func (h Handler) Mount(rt *httpserver.Router) {
	rt.Handle("POST "+base+"signup", httpserver.ClientID, h.signup, httpserver.BotChecked)
	rt.Handle("POST "+base+"login", httpserver.ClientID, h.login)
	rt.Handle("POST "+base+"reset/send", httpserver.ClientID, h.sendReset, httpserver.BotChecked)
	rt.Handle("POST "+base+"reset/verify", httpserver.ClientID, h.reset)
	rt.Handle("POST "+base+"change", httpserver.User, h.change)
	rt.Handle("PUT /api/v1/users/{id}/password", httpserver.Secret, h.set)
}

type signupIn struct {
	Email     string `json:"email"`
	Password  string `json:"password"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
}

func (h Handler) signup(w http.ResponseWriter, r *http.Request) error {
	var in signupIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	res, err := h.Passwords.SignUp(r.Context(), httpserver.ProjectFrom(r.Context()),
		passwordauth.Signup{Email: in.Email, Password: in.Password, FirstName: in.FirstName, LastName: in.LastName}, httpserver.Meta(r))
	if err != nil {
		return err
	}
	loginhttp.Write(w, res)
	return nil
}

type loginIn struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (h Handler) login(w http.ResponseWriter, r *http.Request) error {
	var in loginIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Password == "" {
		return failure.InvalidField("invalid_request", "password", "is required")
	}
	res, err := h.Passwords.LoginDevice(r.Context(), httpserver.ProjectFrom(r.Context()), in.Email, in.Password,
		loginhttp.DeviceFrom(r), httpserver.Meta(r))
	if err != nil {
		return err
	}
	loginhttp.Write(w, res)
	return nil
}

type sendResetIn struct {
	Email       string `json:"email"`
	RedirectURL string `json:"redirect_url"`
}

type outcome struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func (h Handler) sendReset(w http.ResponseWriter, r *http.Request) error {
	var in sendResetIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	if err := h.Passwords.SendReset(r.Context(), httpserver.ProjectFrom(r.Context()), in.Email, in.RedirectURL, httpserver.ClientIP(r)); err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, outcome{Status: "success",
		Message: "if an account has this email, a link to reset its password is on its way"})
	return nil
}

type resetIn struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

func (h Handler) reset(w http.ResponseWriter, r *http.Request) error {
	var in resetIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Token == "" {
		return failure.InvalidField("invalid_request", "token", "is required")
	}
	if err := h.Passwords.Reset(r.Context(), httpserver.ProjectFrom(r.Context()), in.Token, in.Password, httpserver.Meta(r)); err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, outcome{Status: "success", Message: "password changed: sign in with it"})
	return nil
}

type changeIn struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

func (h Handler) change(w http.ResponseWriter, r *http.Request) error {
	var in changeIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	c, _ := httpserver.CallerFrom(r.Context())
	if err := h.Passwords.Change(r.Context(), c.Project, c.Session, in.CurrentPassword, in.NewPassword, httpserver.Meta(r)); err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, outcome{Status: "success", Message: "password changed"})
	return nil
}

type setIn struct {
	Password     string `json:"password"`
	PasswordHash string `json:"password_hash"`
}

func (h Handler) set(w http.ResponseWriter, r *http.Request) error {
	var in setIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	if err := h.Passwords.SetByAdmin(r.Context(), httpserver.ProjectFrom(r.Context()), r.PathValue("id"), in.Password,
		in.PasswordHash, httpserver.Meta(r)); err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, outcome{Status: "success", Message: "password set"})
	return nil
}
