package login

import (
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/passwordless"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// render saves the attempt and shows its screen, with se's message when it is set.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, c *pageContext, a *attempt, status int, se *screenError) error {
	ctx := r.Context()
	v := &view{Screen: a.Screen, CSRF: a.CSRF, Legacy: c.legacy, Request: c.request, ClientID: c.project.ClientID,
		Redirect: c.redirect, PageURL: c.pageURL(), Identifier: a.Identifier, Methods: h.offers(c),
		BotAlways: c.settings.Protect.BotCheck == project.BotCheckAlways}
	v.brand(c)
	v.Lang = h.language(r, c, a)
	if se != nil {
		v.ErrorCode, v.Field = se.code, se.field
		key := "error." + se.code
		if !h.pages.has(key) {
			key = "error.generic"
		}
		v.Error = h.pages.translate(v.Lang, key)
		if se.code == "invalid_code" || se.code == "invalid_otp" {
			if fl, err := h.d.Flows.GetFlow(ctx, c.project.ID, a.Flow); err == nil && a.Flow != "" {
				v.Error = h.pages.translate(v.Lang, "error.invalid_code_left", max(fl.MaxAttempts-fl.Attempts, 0))
			}
		}
	}
	switch a.Screen {
	case screenIdentifier:
		si, ok, err := h.signedIn(r, c)
		if err != nil {
			return h.failed(w, r, c, err)
		}
		if ok {
			u, err := h.d.Directory.GetUser(ctx, c.project.ID, si.UserID)
			if err != nil {
				return err
			}
			v.ContinueAs = u.Email
			if v.ContinueAs == "" {
				v.ContinueAs = u.Phone
			}
		}
	case screenCode, screenWait:
		v.Channel = a.Channel
		v.Destination = a.Identifier
		if fl, err := h.d.Flows.GetFlow(ctx, c.project.ID, a.Flow); err == nil {
			v.Destination = fl.Destination
			v.TriesLeft = max(fl.MaxAttempts-fl.Attempts, 0)
			if fl.Resends < passwordless.MaxResends {
				v.ResendIn = max(int(fl.SentAt.Add(passwordless.ResendInterval).Sub(h.d.Now()).Round(time.Second)/time.Second), 0)
			} else {
				v.ResendIn = -1
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if a.Screen == screenWait {
			v.Refresh = waitRefresh
		}
	case screenMFA:
		sub, err := h.d.MFA.TokenSubject(ctx, c.project, a.MFAToken)
		if err != nil {
			return h.failed(w, r, c, fatalf(http.StatusBadRequest, "request_expired"))
		}
		auths, err := h.d.MFA.Authenticators(ctx, sub)
		if err != nil {
			return err
		}
		for _, au := range auths {
			if au.AuthenticatorType == "passkey" {
				continue // a passkey answers on the first screen, not here
			}
			fv := factorView{Type: au.AuthenticatorType, Channel: au.OOBChannel, Name: au.Name}
			if !slices.ContainsFunc(v.Factors, func(f factorView) bool { return f.Type == fv.Type && f.Channel == fv.Channel }) {
				v.Factors = append(v.Factors, fv)
			}
		}
		v.OOBSent = a.OOBCode != ""
	case screenMFAEnroll:
		sub, err := h.d.MFA.TokenSubject(ctx, c.project, a.MFAToken)
		if err != nil {
			return h.failed(w, r, c, fatalf(http.StatusBadRequest, "request_expired"))
		}
		png, err := h.d.MFA.QRCode(ctx, sub, a.Factor)
		if err != nil {
			return err
		}
		v.QR = template.URL(qrDataURL(png)) // a data: URL of our own PNG, nothing a user wrote
		v.Secret = a.OTPSecret
		v.RecoveryCodes = a.RecoveryCodes
	case screenOrganization:
		orgs, err := h.d.Directory.ListUserOrganizations(ctx, c.project.ID, a.UserID)
		if err != nil {
			return err
		}
		for _, o := range orgs {
			v.Orgs = append(v.Orgs, orgView{ID: o.ID, Name: o.Name})
		}
	case screenConsent:
		// Only scopes the page can describe: the provider drops unknown ones from the grant.
		for _, sc := range c.pending.Scopes {
			if h.pages.has("scope." + sc) {
				v.Scopes = append(v.Scopes, sc)
			}
		}
	}
	if err := h.saveAttempt(w, c, a); err != nil {
		return err
	}
	return h.write(w, r, c, v, status)
}

// passkeyRequest is what the page's script posts to the passkey routes.
type passkeyRequest struct {
	CSRF        string          `json:"csrf"`
	Mode        string          `json:"mode"` // "login" or "register"
	Conditional bool            `json:"conditional"`
	Credential  json.RawMessage `json:"credential"`
}

// jsonContext resolves a script's call: the context from the query string, the attempt from
// the cookie, the CSRF token from the body.
func (h *Handler) jsonContext(w http.ResponseWriter, r *http.Request) (*pageContext, *attempt, passkeyRequest, error) {
	var in passkeyRequest
	c, err := h.resolve(w, r)
	if err != nil {
		return nil, nil, in, failure.New(failure.Invalid, "request_expired", "this sign-in cannot continue: reload the page")
	}
	c.json = true
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return nil, nil, in, err
	}
	a := h.loadAttempt(r, c)
	if !checkCSRF(a, in.CSRF) {
		return nil, nil, in, failure.New(failure.Forbidden, "csrf", "this form is not this browser's: reload the page")
	}
	return c, a, in, nil
}

// passkeyBegin serves POST /login/passkey/begin: the options for navigator.credentials.get()
// (a login, by autofill or button) or .create() (the passkey offer after a login). The
// ceremony's code stays in the sealed attempt.
func (h *Handler) passkeyBegin(w http.ResponseWriter, r *http.Request) error {
	c, a, in, err := h.jsonContext(w, r)
	if err != nil {
		return err
	}
	if !h.offers(c).Passkey {
		return failure.New(failure.Forbidden, "passkeys_disabled", "passkeys are not enabled for this project")
	}
	var publicKey any
	switch in.Mode {
	case "login":
		id := a.Identifier
		if in.Conditional {
			id = "" // autofill offers any passkey of the site
		}
		o, err := h.d.Passkeys.BeginLogin(r.Context(), c.project, id)
		if err != nil {
			return err
		}
		a.Ceremony, publicKey = o.AuthCode, o.PublicKey
	case "register":
		if !a.loggedIn() || a.Screen != screenPasskeyOffer {
			return failure.New(failure.Forbidden, "request_expired", "sign in first")
		}
		sess, err := h.d.Sessions.GetSession(r.Context(), c.project.ID, a.SessionID)
		if err != nil {
			return err
		}
		o, err := h.d.Passkeys.BeginRegistration(r.Context(), c.project, a.UserID, sess.CreatedAt)
		if err != nil {
			return err
		}
		a.Ceremony, publicKey = o.AuthCode, o.PublicKey
	default:
		return failure.InvalidField("invalid_request", "mode", `must be "login" or "register"`)
	}
	if err := h.saveAttempt(w, c, a); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"publicKey": publicKey})
	return nil
}

// passkeyFinish serves POST /login/passkey/finish: it checks the authenticator's answer and
// answers where the browser goes next ({"location": …}), never with tokens.
func (h *Handler) passkeyFinish(w http.ResponseWriter, r *http.Request) error {
	c, a, in, err := h.jsonContext(w, r)
	if err != nil {
		return err
	}
	if a.Ceremony == "" {
		return failure.New(failure.Invalid, "ceremony_not_found", "start the passkey ceremony again")
	}
	cred, err := decodeCredential(in.Credential)
	if err != nil {
		return err
	}
	code := a.Ceremony
	a.Ceremony = ""
	switch in.Mode {
	case "login":
		res, err := h.d.Passkeys.FinishLogin(r.Context(), c.project, code, cred, httpserver.Meta(r))
		if err != nil {
			return err
		}
		return h.jsonFinish(h.finish(w, r, c, a, res))
	case "register":
		if !a.loggedIn() {
			return failure.New(failure.Forbidden, "request_expired", "sign in first")
		}
		if _, err := h.d.Passkeys.FinishRegistration(r.Context(), c.project, a.UserID, code, cred); err != nil {
			return err
		}
		a.Offered = true
		return h.jsonFinish(h.advance(w, r, c, a, nil))
	}
	return failure.InvalidField("invalid_request", "mode", `must be "login" or "register"`)
}

// jsonFinish turns the page's own errors into the JSON shape for the script.
func (h *Handler) jsonFinish(err error) error {
	var se *screenError
	if errors.As(err, &se) {
		if se.err != nil {
			return se.err
		}
		return failure.New(failure.Invalid, se.code, "%s", strings.ReplaceAll(se.code, "_", " "))
	}
	var fe *fatalError
	if errors.As(err, &fe) {
		return failure.New(failure.Invalid, fe.code, "this sign-in cannot continue: reload the page")
	}
	return err
}
