package loginhttp

import (
	"net/http"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/directory/directoryhttp"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/protect"
)

// Body is the login result as clients of both SSOJet documentation generations read it.
type Body struct {
	Authenticated bool     `json:"authenticated"`
	AccessToken   string   `json:"access_token,omitempty"`
	RefreshToken  string   `json:"refresh_token,omitempty"`
	TokenType     string   `json:"token_type,omitempty"`
	ExpiresAt     string   `json:"expires_at,omitempty"`
	ExpiresIn     int      `json:"expires_in,omitempty"`
	OAuth         *oauth   `json:"oauth,omitempty"`
	User          *user    `json:"user,omitempty"`
	Profile       *profile `json:"profile,omitempty"`

	MFARequired bool   `json:"mfa_required,omitempty"`
	MFAToken    string `json:"mfa_token,omitempty"`
	// Authenticators is a pointer so that a challenge lists none as [] while a login result
	// leaves the field out.
	Authenticators *[]any `json:"authenticators,omitempty"`
}

type oauth struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresAt    string `json:"expires_at"`
	TokenType    string `json:"token_type"`
}

type user struct {
	UserID      string  `json:"user_id"`
	Identifier  string  `json:"identifier"`
	Email       string  `json:"email"`
	Issuer      string  `json:"issuer"`
	CreatedAt   string  `json:"created_at"`
	UpdatedAt   string  `json:"updated_at"`
	LastLoginAt *string `json:"last_login_at"`
}

type profile struct {
	directoryhttp.UserBody
	ConnectionType string `json:"connection_type"`
}

// NewBody renders r.
func NewBody(r login.Result) Body {
	if r.Challenge != nil {
		auths := nonNil(r.Challenge.Authenticators)
		return Body{MFARequired: true, MFAToken: r.Challenge.MFAToken, Authenticators: &auths}
	}
	t := r.Tokens
	expires := rfc3339(t.ExpiresAt)
	u := directoryhttp.NewUserBody(r.User)
	identifier := r.User.Email
	if identifier == "" {
		identifier = r.User.Phone
	}
	return Body{
		Authenticated: true,
		AccessToken:   t.AccessToken, RefreshToken: t.RefreshToken, TokenType: "Bearer",
		ExpiresAt: expires, ExpiresIn: t.ExpiresIn,
		OAuth: &oauth{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, ExpiresAt: expires, TokenType: "Bearer"},
		User: &user{UserID: r.User.ID, Identifier: identifier, Email: r.User.Email, Issuer: t.Claims.Issuer,
			CreatedAt: u.CreatedAt, UpdatedAt: u.ModifiedAt, LastLoginAt: u.LastLoginAt},
		Profile: &profile{UserBody: u, ConnectionType: r.User.ConnectionType},
	}
}

// Write answers with r, and no-store: the body carries tokens (RFC 6749 §5.1). A device token
// in r goes out in both DeviceHeader and DeviceCookie.
func Write(w http.ResponseWriter, r login.Result) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if r.Device != "" {
		w.Header().Set(DeviceHeader, r.Device)
		http.SetCookie(w, &http.Cookie{Name: DeviceCookie, Value: r.Device, Path: "/", MaxAge: int(protect.DeviceTTL / time.Second),
			Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	}
	httpserver.WriteJSON(w, http.StatusOK, NewBody(r))
}

// Where a device token travels. A successful login by a guessable secret (a password, an
// email or SMS code) answers with a fresh one in both; a login sends it back in either (the
// header wins), so that the attempt counts on the device and not against the account-wide
// lock that strangers can fill.
const (
	// DeviceHeader carries the token for API clients: a server that signs users in keeps
	// each user's token (e.g. in its own session cookie) and sends it with their logins.
	DeviceHeader = "Latchkey-Device"
	// DeviceCookie carries it for browsers on the server's own pages.
	DeviceCookie = "__Host-latchkey-device"
)

// DeviceFrom is the device token a login request presents, or "".
func DeviceFrom(r *http.Request) string {
	if v := strings.TrimSpace(r.Header.Get(DeviceHeader)); v != "" {
		return v
	}
	if c, err := r.Cookie(DeviceCookie); err == nil {
		return c.Value
	}
	return ""
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func nonNil(s []any) []any {
	if s == nil {
		return []any{}
	}
	return s
}
