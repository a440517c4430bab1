package botcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Verifier checks a token that a CAPTCHA widget gave the browser. remoteIP is the client's
// address, sent to the provider as a signal when it parses; it may be empty. A refused token
// is bot_check_failed (403); a provider that gives no verdict is bot_check_unavailable (503);
// any other error is a configuration fault (a secret the provider does not know) that must
// not be mistaken for an outage.
type Verifier interface {
	Verify(ctx context.Context, token, remoteIP string) error
}

// CAPTCHA defaults.
const (
	DefaultCAPTCHATimeout     = 5 * time.Second
	DefaultMaxResponseBytes   = 64 << 10
	DefaultTurnstileBaseURL   = "https://challenges.cloudflare.com"
	DefaultHCaptchaBaseURL    = "https://api.hcaptcha.com"
	turnstilePath             = "/turnstile/v0/siteverify"
	hcaptchaPath              = "/siteverify"
	maxTurnstileToken         = 2048 // documented by Cloudflare
	maxHCaptchaToken          = 32 << 10
	formContentType           = "application/x-www-form-urlencoded"
	turnstileProvider         = "turnstile"
	hcaptchaProvider          = "hcaptcha"
	errorCodeTurnstileBackend = "internal-error"
)

// CAPTCHAConfig configures a siteverify client. Secret is required and is only ever sent in
// the body of the POST to BaseURL: never logged, never in an error. SiteKey is the widget's
// public key; hCaptcha is asked to check that the token was issued for it (Turnstile's
// siteverify has no such parameter: a Turnstile secret belongs to one widget already).
// BaseURL defaults to the provider's (tests point it at a local server); ExpectedHostname, if
// set, refuses tokens solved on another site. HTTPClient defaults to one that follows no
// redirects (which would resend the secret elsewhere); Timeout (default 5 s) bounds each
// call whatever the client; MaxResponseBytes (default 64 KiB) bounds what is read back.
type CAPTCHAConfig struct {
	Secret           string
	SiteKey          string
	BaseURL          string
	ExpectedHostname string
	HTTPClient       *http.Client
	Timeout          time.Duration
	MaxResponseBytes int64
}

// siteverify is the protocol Turnstile and hCaptcha share (reCAPTCHA's): a form POST of
// secret, response and remoteip, answered with {"success": bool, "error-codes": [...],
// "hostname", "challenge_ts", ...}.
type siteverify struct {
	provider string
	endpoint string
	maxToken int
	cfg      CAPTCHAConfig
	// extra adds the provider's own form fields.
	extra func(url.Values)
	// configCodes are the error codes that blame this server's configuration, not the token.
	configCodes []string
	// outageCodes are the error codes that mean the provider could not decide.
	outageCodes []string
}

// Turnstile verifies Cloudflare Turnstile tokens.
type Turnstile struct{ sv siteverify }

// HCaptcha verifies hCaptcha tokens.
type HCaptcha struct{ sv siteverify }

// NewTurnstile returns a Turnstile verifier, or an error naming the bad setting.
func NewTurnstile(c CAPTCHAConfig) (*Turnstile, error) {
	sv, err := newSiteverify(turnstileProvider, DefaultTurnstileBaseURL, turnstilePath, maxTurnstileToken, c)
	if err != nil {
		return nil, err
	}
	sv.configCodes = []string{"missing-input-secret", "invalid-input-secret", "bad-request"}
	sv.outageCodes = []string{errorCodeTurnstileBackend}
	return &Turnstile{sv: sv}, nil
}

// NewHCaptcha returns an hCaptcha verifier, or an error naming the bad setting.
func NewHCaptcha(c CAPTCHAConfig) (*HCaptcha, error) {
	sv, err := newSiteverify(hcaptchaProvider, DefaultHCaptchaBaseURL, hcaptchaPath, maxHCaptchaToken, c)
	if err != nil {
		return nil, err
	}
	if c.SiteKey != "" {
		sv.extra = func(f url.Values) { f.Set("sitekey", c.SiteKey) }
	}
	sv.configCodes = []string{"missing-input-secret", "invalid-input-secret", "bad-request", "sitekey-secret-mismatch"}
	return &HCaptcha{sv: sv}, nil
}

// Verify implements Verifier.
func (t *Turnstile) Verify(ctx context.Context, token, remoteIP string) error {
	return t.sv.verify(ctx, token, remoteIP)
}

// Verify implements Verifier.
func (h *HCaptcha) Verify(ctx context.Context, token, remoteIP string) error {
	return h.sv.verify(ctx, token, remoteIP)
}

// String leaves the secret out of any log line that prints the verifier.
func (t *Turnstile) String() string { return "botcheck.Turnstile{" + t.sv.endpoint + "}" }

// String leaves the secret out of any log line that prints the verifier.
func (h *HCaptcha) String() string { return "botcheck.HCaptcha{" + h.sv.endpoint + "}" }

func newSiteverify(provider, defaultBase, path string, maxToken int, c CAPTCHAConfig) (siteverify, error) {
	if strings.TrimSpace(c.Secret) == "" {
		return siteverify{}, fmt.Errorf("botcheck: the %s secret is required", provider)
	}
	if c.BaseURL == "" {
		c.BaseURL = defaultBase
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
		return siteverify{}, fmt.Errorf("botcheck: the %s base URL must be an absolute http(s) URL without a query, got %q", provider, c.BaseURL)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultCAPTCHATimeout
	}
	if c.Timeout < 0 {
		return siteverify{}, fmt.Errorf("botcheck: the %s timeout must be positive", provider)
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.MaxResponseBytes < 0 {
		return siteverify{}, fmt.Errorf("botcheck: the %s response bound must be positive", provider)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{
			Timeout: c.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return errors.New("siteverify redirected: not following with the secret")
			},
		}
	}
	return siteverify{provider: provider, endpoint: strings.TrimSuffix(c.BaseURL, "/") + path, maxToken: maxToken, cfg: c}, nil
}

// siteverifyResponse is the part of the answer that decides; the rest is ignored.
type siteverifyResponse struct {
	Success    *bool    `json:"success"`
	ErrorCodes []string `json:"error-codes"`
	Hostname   string   `json:"hostname"`
}

func (s *siteverify) verify(ctx context.Context, token, remoteIP string) error {
	if token == "" {
		return refused("complete the CAPTCHA", errors.New(s.provider+": no token"))
	}
	if len(token) > s.maxToken {
		return refused("the CAPTCHA is not valid: try again", fmt.Errorf("%s: token of %d bytes", s.provider, len(token)))
	}
	form := url.Values{"secret": {s.cfg.Secret}, "response": {token}}
	if addr, err := netip.ParseAddr(remoteIP); err == nil {
		form.Set("remoteip", addr.Unmap().String())
	}
	if s.extra != nil {
		s.extra(form)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("botcheck: %s request: %w", s.provider, err)
	}
	req.Header.Set("Content-Type", formContentType)
	req.Header.Set("Accept", "application/json")
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		// A *url.Error names the endpoint, never the body that holds the secret.
		return unavailable(s.provider, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxResponseBytes+1))
	if err != nil {
		return unavailable(s.provider, fmt.Errorf("read the answer: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		return unavailable(s.provider, fmt.Errorf("HTTP status %d", resp.StatusCode))
	}
	if int64(len(body)) > s.cfg.MaxResponseBytes {
		return unavailable(s.provider, fmt.Errorf("answer larger than %d bytes", s.cfg.MaxResponseBytes))
	}
	var r siteverifyResponse
	if err := json.Unmarshal(body, &r); err != nil || r.Success == nil {
		return unavailable(s.provider, errors.New("answer is not siteverify JSON"))
	}
	if *r.Success {
		if s.cfg.ExpectedHostname != "" && !strings.EqualFold(r.Hostname, s.cfg.ExpectedHostname) {
			return refused("the CAPTCHA is not valid: try again",
				fmt.Errorf("%s: token solved on host %q", s.provider, r.Hostname))
		}
		return nil
	}
	codes := strings.Join(r.ErrorCodes, ",")
	for _, c := range r.ErrorCodes {
		if slices.Contains(s.configCodes, c) {
			return fmt.Errorf("botcheck: %s refused this server's request (%s): check the secret and site key", s.provider, codes)
		}
	}
	for _, c := range r.ErrorCodes {
		if slices.Contains(s.outageCodes, c) {
			return unavailable(s.provider, fmt.Errorf("error codes %s", codes))
		}
	}
	return refused("the CAPTCHA is not valid: try again", fmt.Errorf("%s: error codes %s", s.provider, codes))
}
