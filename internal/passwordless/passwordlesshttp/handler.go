// Package passwordlesshttp serves the magic link, email code and SMS code endpoints (API.md
// §3–§5) and the message template endpoints.
package passwordlesshttp

import (
	"context"
	"html/template"
	"net/http"
	"strings"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/login/loginhttp"
	"github.com/latchkey-dev/latchkey/internal/passwordless"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Flows is the passwordless service.
type Flows interface {
	Send(ctx context.Context, p store.Project, r passwordless.SendRequest) (string, error)
	Resend(ctx context.Context, p store.Project, channels []passwordless.Channel, state, ip string) error
	VerifyCodeDevice(ctx context.Context, p store.Project, channels []passwordless.Channel, state, code, device string, meta audit.Meta) (login.Result, error)
	VerifyLink(ctx context.Context, p store.Project, state, secret string, meta audit.Meta) (string, error)
	Status(ctx context.Context, p store.Project, state string, meta audit.Meta) (login.Result, error)
}

// Handler serves the passwordless routes.
type Handler struct {
	Flows Flows
}

const base = "/api/v1/auth/passwordless/"

// Mount registers the routes on rt. Every route needs the project's client id only: these are
// called from browsers and apps that hold no secret.
func (h Handler) Mount(rt *httpserver.Router) {
	rt.Handle("POST "+base+"magic-link/send", httpserver.ClientID, h.send(passwordless.MagicLink), httpserver.BotChecked)
	rt.Handle("POST "+base+"magic-link/resend", httpserver.ClientID, h.resend(passwordless.MagicLink), httpserver.BotChecked)
	rt.Handle("GET "+base+"magic-link/verify", httpserver.ClientID, h.verifyLink)
	rt.Handle("GET "+base+"magic-link/status", httpserver.ClientID, h.status)
	rt.Handle("POST "+base+"magic-otp/send", httpserver.ClientID, h.send(passwordless.EmailOTP), httpserver.BotChecked)
	rt.Handle("POST "+base+"email-otp/send", httpserver.ClientID, h.send(passwordless.EmailOTP), httpserver.BotChecked)
	rt.Handle("POST "+base+"email-otp/resend", httpserver.ClientID, h.resend(passwordless.EmailOTP), httpserver.BotChecked)
	rt.Handle("POST "+base+"email-otp/verify", httpserver.ClientID, h.verifyCode(passwordless.EmailOTP))
	rt.Handle("POST "+base+"phone-otp/send", httpserver.ClientID, h.send(passwordless.PhoneOTP), httpserver.BotChecked)
	rt.Handle("POST "+base+"phone-otp/resend", httpserver.ClientID, h.resend(passwordless.PhoneOTP), httpserver.BotChecked)
	rt.Handle("POST "+base+"phone-otp/verify", httpserver.ClientID, h.verifyCode(passwordless.PhoneOTP))
}

type sendIn struct {
	Email       string  `json:"email"`
	PhoneID     *string `json:"phone_id"`
	Phone       *string `json:"phone"`
	RedirectURL string  `json:"redirect_url"`
}

func (h Handler) send(ch passwordless.Channel) httpserver.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in sendIn
		if err := httpserver.DecodeJSON(w, r, &in); err != nil {
			return err
		}
		dest := in.Email
		if ch == passwordless.PhoneOTP {
			dest = ""
			for _, p := range []*string{in.PhoneID, in.Phone} {
				if p != nil && dest == "" {
					dest = *p
				}
			}
			if strings.TrimSpace(dest) == "" {
				return failure.InvalidField("invalid_phone", "phone_id", "is required")
			}
		}
		state, err := h.Flows.Send(r.Context(), httpserver.ProjectFrom(r.Context()),
			passwordless.SendRequest{Channel: ch, Destination: dest, RedirectURL: strings.TrimSpace(in.RedirectURL),
				IP: httpserver.ClientIP(r)})
		if err != nil {
			return err
		}
		if ch == passwordless.PhoneOTP {
			httpserver.WriteJSON(w, http.StatusOK, map[string]string{"state_id": state, "state": state})
			return nil
		}
		httpserver.WriteJSON(w, http.StatusOK, map[string]string{"state": state})
		return nil
	}
}

type stateIn struct {
	State string `json:"state"`
	OTP   string `json:"otp"`
}

// channels a resend or verify of ch accepts: the email code endpoints serve flows started by
// either email code path.
func channels(ch passwordless.Channel) []passwordless.Channel { return []passwordless.Channel{ch} }

func (h Handler) resend(ch passwordless.Channel) httpserver.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in stateIn
		if err := httpserver.DecodeJSON(w, r, &in); err != nil {
			return err
		}
		if err := h.Flows.Resend(r.Context(), httpserver.ProjectFrom(r.Context()), channels(ch), in.State, httpserver.ClientIP(r)); err != nil {
			return err
		}
		httpserver.WriteJSON(w, http.StatusOK, struct{}{})
		return nil
	}
}

func (h Handler) verifyCode(ch passwordless.Channel) httpserver.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in stateIn
		if err := httpserver.DecodeJSON(w, r, &in); err != nil {
			return err
		}
		res, err := h.Flows.VerifyCodeDevice(r.Context(), httpserver.ProjectFrom(r.Context()), channels(ch), in.State, in.OTP,
			loginhttp.DeviceFrom(r), httpserver.Meta(r))
		if err != nil {
			return err
		}
		loginhttp.Write(w, res)
		return nil
	}
}

// verifyLink is what the emailed link opens, possibly on another device than the one polling.
func (h Handler) verifyLink(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p := httpserver.ProjectFrom(r.Context())
	redirect, err := h.Flows.VerifyLink(r.Context(), p, q.Get("state"), q.Get("magictext"), httpserver.Meta(r))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer") // the URL holds the link's secret
	if err != nil {
		// A person opened this in a browser: they get a page, with the status the API maps err to.
		return httpserver.AsPage(err, httpserver.ErrorPage{Brand: p.Name, Title: "This link cannot be used", Message: linkFailure(err)})
	}
	if redirect != "" {
		http.Redirect(w, r, redirect, http.StatusSeeOther)
		return nil
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	return linkPage.Execute(w, page{Title: "You are signed in", Body: "Go back to the app or tab where you asked for the link: it is signing you in now.", Brand: p.Name})
}

func (h Handler) status(w http.ResponseWriter, r *http.Request) error {
	res, err := h.Flows.Status(r.Context(), httpserver.ProjectFrom(r.Context()), r.URL.Query().Get("state"), httpserver.Meta(r))
	if err != nil {
		return err
	}
	if !res.Authenticated && res.Challenge == nil {
		w.Header().Set("Cache-Control", "no-store")
		httpserver.WriteJSON(w, http.StatusOK, map[string]bool{"authenticated": false})
		return nil
	}
	loginhttp.Write(w, res)
	return nil
}

type page struct{ Title, Body, Brand string }

var linkPage = template.Must(template.New("link").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1f2937}h1{font-size:1.4rem}</style>
</head><body><p>{{.Brand}}</p><h1>{{.Title}}</h1><p>{{.Body}}</p></body></html>
`))

func linkFailure(err error) string {
	fe, _ := failure.As(err)
	if fe != nil && fe.Code == "flow_dead" {
		return "Too many attempts were made with this link. Ask for a new one."
	}
	return "The link has expired or was already used. Ask for a new one."
}
