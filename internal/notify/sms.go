package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// maxSMSChars is Twilio's limit on a message body (it splits longer texts into segments up to
// this many characters and refuses anything longer with error 21617).
const maxSMSChars = 1600

// TwilioConfig configures a TwilioSender.
type TwilioConfig struct {
	// BaseURL is the API's origin, default https://api.twilio.com. A Twilio-compatible gateway
	// or a test server can stand in; plain http is accepted only for a loopback host, because
	// the auth token travels in every request.
	BaseURL    string
	AccountSID string
	AuthToken  string
	// From is the sending number in E.164 form, or a Messaging Service SID (MG...), which is
	// sent as MessagingServiceSid so that Twilio picks the number.
	From string
	// HTTPClient makes the requests; nil means a client of our own that does not follow
	// redirects (a redirected POST would resend the message and the credentials elsewhere).
	HTTPClient *http.Client
	// Timeout bounds one request, default 10 s; a context deadline that comes sooner wins.
	Timeout time.Duration
}

// TwilioSender sends SMS through Twilio's Messages API
// (POST /2010-04-01/Accounts/{AccountSID}/Messages.json).
type TwilioSender struct {
	cfg      TwilioConfig
	endpoint string
	client   *http.Client
}

// NewTwilioSender checks cfg and returns a sender. Errors name the setting at fault and never
// hold the auth token.
func NewTwilioSender(cfg TwilioConfig) (*TwilioSender, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.twilio.com"
	}
	u, err := url.Parse(strings.TrimSuffix(cfg.BaseURL, "/"))
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("twilio base url %q: want an origin such as https://api.twilio.com", cfg.BaseURL)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	default:
		return nil, fmt.Errorf("twilio base url %q: want https (http only for a loopback host)", cfg.BaseURL)
	}
	if cfg.AccountSID == "" || !isAlnum(cfg.AccountSID) {
		return nil, fmt.Errorf("twilio account sid %q: want letters and digits (AC...)", cfg.AccountSID)
	}
	if cfg.AuthToken == "" {
		return nil, errors.New("twilio auth token is empty")
	}
	if strings.TrimSpace(cfg.From) == "" {
		return nil, errors.New("twilio from is empty: want a number in E.164 form or a messaging service sid")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("twilio timeout %s: want a positive duration", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &TwilioSender{cfg: cfg, client: client,
		endpoint: u.String() + "/2010-04-01/Accounts/" + url.PathEscape(cfg.AccountSID) + "/Messages.json"}, nil
}

// Send posts m.Text to m.To as Twilio's API expects: a form with To, From (or
// MessagingServiceSid) and Body, with HTTP Basic auth AccountSID:AuthToken.
//
// A 2xx answer is success. 429, 5xx, 401 (our credentials) and network errors are retryable;
// any other answer is Permanent. Errors are *TwilioError with Twilio's error code and message
// (e.g. 21211, an invalid number), the recipient masked; never the request body or the token.
func (s *TwilioSender) Send(ctx context.Context, m Message) error {
	if m.Channel != SMS {
		return Permanent(fmt.Errorf("twilio: cannot send a %q message", m.Channel))
	}
	if strings.TrimSpace(m.To) == "" {
		return Permanent(errors.New("twilio: no recipient"))
	}
	if m.Text == "" {
		return Permanent(errors.New("twilio: message has no text"))
	}
	if n := utf8.RuneCountInString(m.Text); n > maxSMSChars {
		return Permanent(fmt.Errorf("twilio: message has %d characters, more than %d", n, maxSMSChars))
	}
	form := url.Values{"To": {m.To}, "Body": {m.Text}}
	if strings.HasPrefix(s.cfg.From, "MG") && isAlnum(s.cfg.From) {
		form.Set("MessagingServiceSid", s.cfg.From)
	} else {
		form.Set("From", s.cfg.From)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Permanent(fmt.Errorf("twilio: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(s.cfg.AccountSID, s.cfg.AuthToken)
	resp, err := s.client.Do(req)
	if err != nil {
		// *url.Error names the URL, which holds the account sid but not the token.
		return fmt.Errorf("twilio: %w", err)
	}
	defer resp.Body.Close()
	// Read a bounded amount: enough for Twilio's error object, and draining lets the
	// connection be reused.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = s.apiError(resp.StatusCode, body, m.To)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return err
	case resp.StatusCode == http.StatusUnauthorized:
		// Our credentials, not this message: an operator who fixes the token should find the
		// outbox still waiting rather than emptied (the SMTP sender treats AUTH the same way).
		return err
	}
	return Permanent(err)
}

// apiError describes a failed answer from Twilio's error object
// ({"code":21211,"message":"...","more_info":"...","status":400}).
func (s *TwilioSender) apiError(status int, body []byte, to string) error {
	var e struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil || (e.Code == 0 && e.Message == "") {
		return &TwilioError{Status: status}
	}
	// Twilio quotes the number in some messages ("The 'To' number +15551234567 is not valid").
	msg := strings.ReplaceAll(e.Message, to, maskRecipient(to))
	msg = strings.ReplaceAll(msg, s.cfg.AuthToken, "[redacted]")
	if len(msg) > 300 {
		msg = strings.ToValidUTF8(msg[:300], "") // drops a rune cut in two
	}
	return &TwilioError{Status: status, Code: e.Code, Message: msg}
}

// TwilioError is a failed answer from Twilio: the HTTP status and, when Twilio sent its error
// object, its error code (https://www.twilio.com/docs/api/errors) and message.
type TwilioError struct {
	Status  int
	Code    int
	Message string
}

func (e *TwilioError) Error() string {
	if e.Code == 0 && e.Message == "" {
		return fmt.Sprintf("twilio: HTTP %d", e.Status)
	}
	return fmt.Sprintf("twilio: HTTP %d: error %d: %s", e.Status, e.Code, e.Message)
}

func isAlnum(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
