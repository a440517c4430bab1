package login

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// Why per-attempt state lives in a sealed cookie.
//
// An attempt's state (the passwordless flow's state, the mfa_token, the passkey ceremony's
// code, who has signed in while the later screens run) is as good as a login to whoever holds
// it: with a magic link's state and the client id anyone can collect the tokens. So it never
// appears in the page, in a URL or in a hidden field: it is sealed (AES-GCM, internal/secretbox)
// into an HttpOnly cookie that no script and no other origin can read. The seal's associated
// data binds it to the authorization request and to the browser's binding cookie (in legacy
// mode, to the page's own CSRF cookie), so a cookie copied into another attempt or another
// browser does not open. The page keeps nothing on the server, so any instance serves any
// request.
//
// CSRF: OIDC-mode posts must carry the provider's binding cookie, which SameSite=Lax keeps off
// cross-site posts, and the per-page token (attempt.CSRF, random, inside the sealed state and
// in every form): a site that cannot read our pages cannot learn it. Legacy mode has no binding
// cookie, so it sets its own random cookie and binds the state to that.

// Screens.
const (
	screenIdentifier   = "identifier"
	screenMethods      = "methods"
	screenCode         = "code"
	screenWait         = "wait"
	screenPassword     = "password"
	screenSignup       = "signup"
	screenResetSent    = "reset_sent"
	screenMFA          = "mfa"
	screenMFAEnroll    = "mfa_enroll"
	screenPasskeyOffer = "passkey_offer"
	screenOrganization = "organization"
	screenConsent      = "consent"
)

// attemptTTL bounds an attempt: longer than any code or link lives, shorter than a day.
const attemptTTL = 30 * time.Minute

// attempt is one browser's progress through the page for one authorization request.
type attempt struct {
	CSRF       string `json:"c"`
	Screen     string `json:"s"`
	Lang       string `json:"l,omitempty"`
	Identifier string `json:"i,omitempty"`
	// Channel and Flow are the passwordless flow in progress.
	Channel string `json:"ch,omitempty"`
	Flow    string `json:"f,omitempty"`
	// MFAToken, OOBCode, Factor and RecoveryCodes are the second-factor step.
	MFAToken      string   `json:"m,omitempty"`
	OOBCode       string   `json:"o,omitempty"`
	Factor        string   `json:"fa,omitempty"`
	RecoveryCodes []string `json:"rc,omitempty"`
	// OTPSecret is the enrolling authenticator app's secret, for typing in when the QR code
	// cannot be scanned; kept only until the enrolment's first code.
	OTPSecret string `json:"ts,omitempty"`
	// Ceremony is the passkey ceremony's auth code, kept here rather than given to the script.
	Ceremony string `json:"pk,omitempty"`
	// UserID, SessionID and Connection are the finished login, while the screens after it
	// (passkey offer, organization, consent) run.
	UserID     string `json:"u,omitempty"`
	SessionID  string `json:"se,omitempty"`
	Connection string `json:"cn,omitempty"`
	Offered    bool   `json:"of,omitempty"`
	Org        string `json:"org,omitempty"`
	OrgChosen  bool   `json:"oc,omitempty"`
	Expires    int64  `json:"x"`
}

func (a *attempt) loggedIn() bool { return a.SessionID != "" }

func newAttempt(now time.Time) *attempt {
	return &attempt{CSRF: randomToken(), Screen: screenIdentifier, Expires: now.Add(attemptTTL).Unix()}
}

// Cookie names. Over https they are __Host- cookies (Secure, Path=/, no Domain: no subdomain
// can set or read them); browsers refuse that prefix without Secure, so plain-http development
// servers use the bare names.
const (
	attemptCookieBase = "lk_login_"
	legacyCSRFCookie  = "lk_legacy"
)

func (h *Handler) cookieName(base string) string {
	if h.secure {
		return "__Host-" + base
	}
	return base
}

// attemptCookie is the cookie of one request's attempt: one per request, so that two tabs
// signing in to two applications do not overwrite each other.
func (h *Handler) attemptCookie(c *pageContext) string {
	sum := sha256.Sum256([]byte(c.key()))
	return h.cookieName(attemptCookieBase + hex.EncodeToString(sum[:6]))
}

// aad binds a sealed attempt to its request and to the browser's binding.
func attemptAAD(c *pageContext) []byte {
	b := sha256.Sum256([]byte(c.binding))
	return []byte("latchkey/web/login/attempt/v1\x00" + c.key() + "\x00" + hex.EncodeToString(b[:]))
}

// loadAttempt returns the browser's attempt for c, or nil when it has none that opens (none
// yet, expired, or not this request's or this browser's).
func (h *Handler) loadAttempt(r *http.Request, c *pageContext) *attempt {
	ck, err := r.Cookie(h.attemptCookie(c))
	if err != nil || len(ck.Value) > 3800 {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil {
		return nil
	}
	plain, err := h.d.Sealer.Open(raw, attemptAAD(c))
	if err != nil {
		return nil
	}
	var a attempt
	if json.Unmarshal(plain, &a) != nil || a.CSRF == "" || h.d.Now().Unix() >= a.Expires {
		return nil
	}
	return &a
}

// saveAttempt seals a into its cookie on w.
func (h *Handler) saveAttempt(w http.ResponseWriter, c *pageContext, a *attempt) error {
	plain, err := json.Marshal(a)
	if err != nil {
		return err
	}
	sealed, err := h.d.Sealer.Seal(plain, attemptAAD(c))
	if err != nil {
		return err
	}
	v := base64.RawURLEncoding.EncodeToString(sealed)
	if len(v) > 3800 {
		return errors.New("login page: the attempt's state outgrew its cookie")
	}
	http.SetCookie(w, &http.Cookie{Name: h.attemptCookie(c), Value: v, Path: "/", HttpOnly: true, Secure: h.secure,
		// Max-Age rather than Expires: the browser's clock need not agree with ours.
		SameSite: http.SameSiteLaxMode, MaxAge: max(int(a.Expires-h.d.Now().Unix()), 1)})
	return nil
}

// dropAttempt deletes the attempt's cookie once the attempt has ended.
func (h *Handler) dropAttempt(w http.ResponseWriter, c *pageContext) {
	http.SetCookie(w, &http.Cookie{Name: h.attemptCookie(c), Value: "", Path: "/", HttpOnly: true, Secure: h.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// checkCSRF compares the token a form or script sent with the attempt's, in constant time.
func checkCSRF(a *attempt, sent string) bool {
	return a != nil && sent != "" && subtle.ConstantTimeCompare([]byte(a.CSRF), []byte(sent)) == 1
}

// randomToken is 256 random bits, base64url.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
