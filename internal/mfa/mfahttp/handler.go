// Package mfahttp serves the MFA routes (API.md §8) and the management of a user's MFA.
package mfahttp

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/login/loginhttp"
	"github.com/latchkey-dev/latchkey/internal/mfa"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// MFA is the MFA service.
type MFA interface {
	TokenSubject(ctx context.Context, p store.Project, token string) (mfa.Subject, error)
	StartStep(ctx context.Context, p store.Project, identifier string) (mfa.Issued, error)
	Authenticators(ctx context.Context, sub mfa.Subject) ([]mfa.Authenticator, error)
	UserAuthenticators(ctx context.Context, p store.Project, userID string) ([]mfa.Authenticator, error)
	Enroll(ctx context.Context, sub mfa.Subject, types []string) (mfa.Enrolled, error)
	Confirm(ctx context.Context, sub mfa.Subject, factorID, code string) error
	QRCode(ctx context.Context, sub mfa.Subject, factorID string) ([]byte, error)
	Initiate(ctx context.Context, p store.Project, mfaToken, authenticatorType, channel, ip string) (mfa.Initiated, error)
	Validate(ctx context.Context, p store.Project, a mfa.Answer, meta audit.Meta) (login.Result, error)
	NewRecoveryCodes(ctx context.Context, sub mfa.Subject) ([]string, error)
	DeleteAuthenticator(ctx context.Context, sub mfa.Subject, id string) error
	Reset(ctx context.Context, p store.Project, userID string) (int, error)
}

// Projects finds the project of a request that carries an mfa_token.
type Projects interface {
	ProjectByClientID(ctx context.Context, clientID string) (store.Project, error)
}

// Bearer checks users' access tokens.
type Bearer interface {
	AuthenticateBearer(ctx context.Context, clientID, raw string) (token.Caller, error)
}

// Handler serves the MFA routes.
type Handler struct {
	MFA      MFA
	Projects Projects
	Bearer   Bearer
}

const base = "/api/v1/auth/mfa/"

// mfaTokenPrefix tells an mfa_token in the Authorization header from an access token.
const mfaTokenPrefix = "mfa_"

// Mount registers the routes on rt. The routes that take "an mfa_token or an access token"
// are Public to the router and check either credential themselves (subject).
func (h Handler) Mount(rt *httpserver.Router) {
	rt.Handle("POST "+base+"token", httpserver.Secret, h.startStep)
	rt.Handle("GET "+base+"authenticators", httpserver.Public, h.authenticators)
	rt.Handle("DELETE "+base+"authenticators/{id}", httpserver.User, h.deleteAuthenticator)
	rt.Handle("POST "+base+"enroll", httpserver.Public, h.enroll)
	rt.Handle("POST "+base+"confirm", httpserver.User, h.confirm)
	rt.Handle("GET "+base+"qr-code", httpserver.Public, h.qrCode)
	rt.Handle("POST "+base+"initiate", httpserver.ClientID, h.initiate)
	rt.Handle("POST "+base+"validate", httpserver.ClientID, h.validate)
	rt.Handle("GET "+base+"backupcode", httpserver.User, h.backupCodes)
	rt.Handle("GET /api/v1/users/{id}/mfa", httpserver.Secret, h.userAuthenticators)
	rt.Handle("DELETE /api/v1/users/{id}/mfa", httpserver.Secret, h.reset)
}

// subject authenticates a request that takes an mfa_token (Authorization: Bearer mfa_..., or
// the body's mfa_token, with the client id) or a user's access token.
func (h Handler) subject(r *http.Request, bodyToken string) (mfa.Subject, error) {
	ctx := r.Context()
	clientID, err := httpserver.ClientIDOf(r)
	if err != nil {
		return mfa.Subject{}, err
	}
	raw := httpserver.BearerOf(r)
	tok := strings.TrimSpace(bodyToken)
	if strings.HasPrefix(raw, mfaTokenPrefix) {
		if tok != "" && tok != raw {
			return mfa.Subject{}, failure.New(failure.Invalid, "invalid_request", "two different mfa_tokens were given")
		}
		tok = raw
	}
	if tok != "" {
		if clientID == "" {
			return mfa.Subject{}, failure.New(failure.Invalid, "missing_client_id",
				"client_id is required with an mfa_token (query parameter client_id or header x-client-id)")
		}
		p, err := h.Projects.ProjectByClientID(ctx, clientID)
		if err != nil {
			return mfa.Subject{}, err
		}
		return h.MFA.TokenSubject(ctx, p, tok)
	}
	if raw == "" {
		return mfa.Subject{}, failure.New(failure.Unauthenticated, "missing_token",
			"an mfa_token or an access token is required (Authorization: Bearer <token>)")
	}
	c, err := h.Bearer.AuthenticateBearer(ctx, clientID, raw)
	if err != nil {
		return mfa.Subject{}, err
	}
	if c.Machine() {
		return mfa.Subject{}, failure.New(failure.Forbidden, "user_token_required", "this endpoint takes a user's access token")
	}
	return userSubject(c), nil
}

func userSubject(c token.Caller) mfa.Subject {
	s := c.Session
	return mfa.Subject{Project: c.Project, UserID: c.Claims.Subject, Session: &s}
}

func (h Handler) callerSubject(r *http.Request) mfa.Subject {
	c, _ := httpserver.CallerFrom(r.Context())
	return userSubject(c)
}

type startIn struct {
	Identifier string `json:"identifier"`
}

type startOut struct {
	MFAToken  string `json:"mfa_token"`
	ExpiresIn int    `json:"expires_in"`
}

func (h Handler) startStep(w http.ResponseWriter, r *http.Request) error {
	var in startIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	iss, err := h.MFA.StartStep(r.Context(), httpserver.ProjectFrom(r.Context()), in.Identifier)
	if err != nil {
		return err
	}
	writeNoStore(w, http.StatusOK, startOut{MFAToken: iss.Token, ExpiresIn: iss.ExpiresIn})
	return nil
}

func (h Handler) authenticators(w http.ResponseWriter, r *http.Request) error {
	sub, err := h.subject(r, "")
	if err != nil {
		return err
	}
	list, err := h.MFA.Authenticators(r.Context(), sub)
	if err != nil {
		return err
	}
	writeNoStore(w, http.StatusOK, list)
	return nil
}

type enrollIn struct {
	AuthenticatorTypes []string `json:"authenticator_types"`
	MFAToken           string   `json:"mfa_token"`
}

type enrollOut struct {
	AuthenticatorID   string   `json:"authenticator_id"`
	AuthenticatorType string   `json:"authenticator_type"`
	Secret            string   `json:"secret"`
	BarcodeURI        string   `json:"barcode_uri"`
	RecoveryCodes     []string `json:"recovery_codes"`
}

func (h Handler) enroll(w http.ResponseWriter, r *http.Request) error {
	var in enrollIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	sub, err := h.subject(r, in.MFAToken)
	if err != nil {
		return err
	}
	e, err := h.MFA.Enroll(r.Context(), sub, in.AuthenticatorTypes)
	if err != nil {
		return err
	}
	writeNoStore(w, http.StatusOK, enrollOut{AuthenticatorID: e.AuthenticatorID, AuthenticatorType: mfa.TypeOTP,
		Secret: e.Secret, BarcodeURI: e.BarcodeURI, RecoveryCodes: e.RecoveryCodes})
	return nil
}

type confirmIn struct {
	AuthenticatorID string `json:"authenticator_id"`
	OTP             string `json:"otp"`
}

func (h Handler) confirm(w http.ResponseWriter, r *http.Request) error {
	var in confirmIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.AuthenticatorID == "" {
		return failure.InvalidField("invalid_request", "authenticator_id", "is required")
	}
	if in.OTP == "" {
		return failure.InvalidField("invalid_request", "otp", "is required")
	}
	if err := h.MFA.Confirm(r.Context(), h.callerSubject(r), in.AuthenticatorID, in.OTP); err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, struct {
		AuthenticatorID string `json:"authenticator_id"`
		Active          bool   `json:"active"`
	}{in.AuthenticatorID, true})
	return nil
}

func (h Handler) qrCode(w http.ResponseWriter, r *http.Request) error {
	sub, err := h.subject(r, "")
	if err != nil {
		return err
	}
	id := strings.TrimSpace(r.URL.Query().Get("authenticator_id"))
	if id == "" {
		return failure.InvalidField("invalid_request", "authenticator_id", "is required")
	}
	png, err := h.MFA.QRCode(r.Context(), sub, id)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store") // the image holds the TOTP secret
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(png) // the status is sent; a failed write means the client went away
	return nil
}

type initiateIn struct {
	MFAToken          string   `json:"mfa_token"`
	AuthenticatorType string   `json:"authenticator_type"`
	OOBChannels       channels `json:"oob_channels"`
}

// channels reads oob_channels as API.md has it ("sms") or as Auth0 sends it (["sms"]).
type channels string

func (c *channels) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*c = channels(one)
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil || len(list) > 1 {
		return failure.InvalidField("invalid_request", "oob_channels", `must be "sms" or "email"`)
	}
	if len(list) == 1 {
		*c = channels(list[0])
	}
	return nil
}

func (h Handler) initiate(w http.ResponseWriter, r *http.Request) error {
	var in initiateIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	tok := in.MFAToken
	if raw := httpserver.BearerOf(r); tok == "" && strings.HasPrefix(raw, mfaTokenPrefix) {
		tok = raw
	}
	if tok == "" {
		return failure.InvalidField("invalid_request", "mfa_token", "is required")
	}
	out, err := h.MFA.Initiate(r.Context(), httpserver.ProjectFrom(r.Context()), tok, in.AuthenticatorType, string(in.OOBChannels),
		httpserver.ClientIP(r))
	if err != nil {
		return err
	}
	writeNoStore(w, http.StatusOK, out)
	return nil
}

type validateIn struct {
	MFAToken     string `json:"mfa_token"`
	OTP          string `json:"otp"`
	OOBCode      string `json:"oob_code"`
	RecoveryCode string `json:"recovery_code"`
}

func (h Handler) validate(w http.ResponseWriter, r *http.Request) error {
	var in validateIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	if raw := httpserver.BearerOf(r); in.MFAToken == "" && strings.HasPrefix(raw, mfaTokenPrefix) {
		in.MFAToken = raw
	}
	res, err := h.MFA.Validate(r.Context(), httpserver.ProjectFrom(r.Context()),
		mfa.Answer{MFAToken: in.MFAToken, OTP: in.OTP, OOBCode: in.OOBCode, RecoveryCode: in.RecoveryCode}, httpserver.Meta(r))
	if err != nil {
		return err
	}
	loginhttp.Write(w, res)
	return nil
}

func (h Handler) backupCodes(w http.ResponseWriter, r *http.Request) error {
	codes, err := h.MFA.NewRecoveryCodes(r.Context(), h.callerSubject(r))
	if err != nil {
		return err
	}
	writeNoStore(w, http.StatusOK, struct {
		BackupCodes []string `json:"backup_codes"`
	}{codes})
	return nil
}

type outcome struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func (h Handler) deleteAuthenticator(w http.ResponseWriter, r *http.Request) error {
	if err := h.MFA.DeleteAuthenticator(r.Context(), h.callerSubject(r), r.PathValue("id")); err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, outcome{Status: "success", Message: "authenticator deleted"})
	return nil
}

func (h Handler) userAuthenticators(w http.ResponseWriter, r *http.Request) error {
	list, err := h.MFA.UserAuthenticators(r.Context(), httpserver.ProjectFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, struct {
		UserID         string              `json:"user_id"`
		Authenticators []mfa.Authenticator `json:"authenticators"`
	}{r.PathValue("id"), list})
	return nil
}

func (h Handler) reset(w http.ResponseWriter, r *http.Request) error {
	n, err := h.MFA.Reset(r.Context(), httpserver.ProjectFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, struct {
		outcome
		Deleted int `json:"deleted"`
	}{outcome{Status: "success", Message: "MFA reset: the user enrolls again at their next sign-in"}, n})
	return nil
}

// writeNoStore answers with v and no-store: these bodies carry tokens, secrets or codes.
func writeNoStore(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	httpserver.WriteJSON(w, status, v)
}
