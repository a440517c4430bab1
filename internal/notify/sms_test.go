package notify_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/notify"
)

const (
	testSID   = "AC00000000000000000000000000000001"
	testToken = "tok-9f8e7d6c5b4a"
)

// twilioAPI stands in for Twilio's Messages API (there is no local Twilio): it checks each
// request as Twilio does and answers with the status and body the test sets.
type twilioAPI struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	status int
	body   string
	got    []url.Values
}

func newTwilioAPI(t *testing.T) *twilioAPI {
	a := &twilioAPI{t: t, status: http.StatusCreated,
		body: `{"sid":"SM0123","status":"queued"}`}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *twilioAPI) serve(w http.ResponseWriter, r *http.Request) {
	fail := func(format string, args ...any) {
		a.t.Errorf("twilio request: "+format, args...)
		http.Error(w, `{"code":20001,"message":"bad test request","status":400}`, http.StatusBadRequest)
	}
	if r.Method != http.MethodPost {
		fail("method %s", r.Method)
		return
	}
	if want := "/2010-04-01/Accounts/" + testSID + "/Messages.json"; r.URL.Path != want {
		fail("path %s, want %s", r.URL.Path, want)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		fail("content type %q", ct)
		return
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != testSID || pass != testToken {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}`))
		return
	}
	if err := r.ParseForm(); err != nil {
		fail("form: %v", err)
		return
	}
	a.mu.Lock()
	a.got = append(a.got, r.PostForm)
	status, body := a.status, a.body
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func (a *twilioAPI) answer(status int, body string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status, a.body = status, body
}

func (a *twilioAPI) requests() []url.Values {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]url.Values(nil), a.got...)
}

func twilioSender(t *testing.T, a *twilioAPI, mod func(*notify.TwilioConfig)) *notify.TwilioSender {
	t.Helper()
	cfg := notify.TwilioConfig{BaseURL: a.srv.URL, AccountSID: testSID, AuthToken: testToken, From: "+15005550006"}
	if mod != nil {
		mod(&cfg)
	}
	s, err := notify.NewTwilioSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sms(to string) notify.Message {
	return notify.Message{ID: "65f1c2a7e9b3d4c6a8e0f1c4", ProjectID: "p1", Channel: notify.SMS, To: to,
		Text: "271828 is your Acme code. It expires in 10 minutes."}
}

func TestTwilioSends(t *testing.T) {
	a := newTwilioAPI(t)
	s := twilioSender(t, a, nil)
	if err := s.Send(context.Background(), sms("+15551234567")); err != nil {
		t.Fatal(err)
	}
	got := a.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests, want 1", len(got))
	}
	want := url.Values{"To": {"+15551234567"}, "From": {"+15005550006"}, "Body": {"271828 is your Acme code. It expires in 10 minutes."}}
	if got[0].Encode() != want.Encode() {
		t.Fatalf("form %v, want %v", got[0], want)
	}
}

func TestTwilioMessagingService(t *testing.T) {
	a := newTwilioAPI(t)
	s := twilioSender(t, a, func(c *notify.TwilioConfig) { c.From = "MG0123456789abcdef0123456789abcdef" })
	if err := s.Send(context.Background(), sms("+15551234567")); err != nil {
		t.Fatal(err)
	}
	f := a.requests()[0]
	if f.Get("MessagingServiceSid") != "MG0123456789abcdef0123456789abcdef" || f.Has("From") {
		t.Fatalf("form %v", f)
	}
}

func TestTwilioErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		token     string
		permanent bool
		want      []string
	}{
		{name: "invalid number", status: 400, permanent: true,
			body: `{"code":21211,"message":"The 'To' number +15551234567 is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}`,
			want: []string{"400", "21211", "+1******4567", "not a valid phone number"}},
		{name: "wrong token", token: "wrong-token", want: []string{"401", "20003"}},
		{name: "rate limited", status: 429, body: `{"code":20429,"message":"Too Many Requests","status":429}`, want: []string{"429", "20429"}},
		{name: "unavailable", status: 503, body: `<html>Service Unavailable</html>`, want: []string{"503"}},
		{name: "server error", status: 500, body: `{"code":20500,"message":"Internal Server Error","status":500}`, want: []string{"500", "20500"}},
		{name: "no permission for the region", status: 403, permanent: true,
			body: `{"code":21408,"message":"Permission to send an SMS has not been enabled for the region indicated by the 'To' number: +15551234567.","status":403}`,
			want: []string{"403", "21408", "+1******4567"}},
		{name: "not found", status: 404, body: `{"code":20404,"message":"The requested resource was not found","status":404}`, permanent: true, want: []string{"404", "20404"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTwilioAPI(t)
			if tc.status != 0 {
				a.answer(tc.status, tc.body)
			}
			token := testToken
			if tc.token != "" {
				token = tc.token
			}
			s := twilioSender(t, a, func(c *notify.TwilioConfig) { c.AuthToken = token })
			err := s.Send(context.Background(), sms("+15551234567"))
			if err == nil {
				t.Fatal("no error")
			}
			t.Logf("%v", err)
			if errors.Is(err, notify.ErrPermanent) != tc.permanent {
				t.Errorf("permanent = %v, want %v", errors.Is(err, notify.ErrPermanent), tc.permanent)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q", w)
				}
			}
			for _, secret := range []string{token, "+15551234567", "271828", "Service Unavailable"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error holds %q", secret)
				}
			}
			wantStatus := tc.status
			if wantStatus == 0 {
				wantStatus = http.StatusUnauthorized
			}
			var te *notify.TwilioError
			if !errors.As(err, &te) || te.Status != wantStatus {
				t.Errorf("errors.As TwilioError: %+v, want status %d", te, wantStatus)
			}
		})
	}
}

func TestTwilioNetworkErrorIsRetryable(t *testing.T) {
	a := newTwilioAPI(t)
	s := twilioSender(t, a, nil)
	a.srv.Close()
	err := s.Send(context.Background(), sms("+15551234567"))
	if err == nil || errors.Is(err, notify.ErrPermanent) || strings.Contains(err.Error(), testToken) {
		t.Fatalf("closed server: %v, want a retryable error without the token", err)
	}
}

// A redirect is not followed: it would repeat the POST, with the credentials, elsewhere.
func TestTwilioDoesNotFollowRedirects(t *testing.T) {
	other := newTwilioAPI(t)
	a := newTwilioAPI(t)
	a.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.srv.URL+r.URL.Path, http.StatusTemporaryRedirect)
	})
	err := twilioSender(t, a, nil).Send(context.Background(), sms("+15551234567"))
	if !errors.Is(err, notify.ErrPermanent) {
		t.Fatalf("redirect: %v, want a permanent error", err)
	}
	if n := len(other.requests()); n != 0 {
		t.Fatalf("the redirect target got %d requests", n)
	}
}

func TestTwilioRefusesBadMessages(t *testing.T) {
	a := newTwilioAPI(t)
	s := twilioSender(t, a, nil)
	for name, mod := range map[string]func(*notify.Message){
		"email channel": func(m *notify.Message) { m.Channel = notify.Email },
		"no recipient":  func(m *notify.Message) { m.To = "" },
		"no text":       func(m *notify.Message) { m.Text = "" },
		"too long":      func(m *notify.Message) { m.Text = strings.Repeat("é", 1601) },
	} {
		m := sms("+15551234567")
		mod(&m)
		if err := s.Send(context.Background(), m); !errors.Is(err, notify.ErrPermanent) {
			t.Errorf("%s: %v, want a permanent error", name, err)
		}
	}
	if n := len(a.requests()); n != 0 {
		t.Fatalf("%d requests for refused messages", n)
	}
}

func TestNewTwilioSenderValidates(t *testing.T) {
	ok := notify.TwilioConfig{AccountSID: testSID, AuthToken: testToken, From: "+15005550006"}
	for name, mod := range map[string]func(*notify.TwilioConfig){
		"no sid":             func(c *notify.TwilioConfig) { c.AccountSID = "" },
		"sid with a slash":   func(c *notify.TwilioConfig) { c.AccountSID = "AC1/../x" },
		"no token":           func(c *notify.TwilioConfig) { c.AuthToken = "" },
		"no from":            func(c *notify.TwilioConfig) { c.From = " " },
		"http to a remote":   func(c *notify.TwilioConfig) { c.BaseURL = "http://api.twilio.com" },
		"not a URL":          func(c *notify.TwilioConfig) { c.BaseURL = "api.twilio.com" },
		"credentials in URL": func(c *notify.TwilioConfig) { c.BaseURL = "https://u:p@api.twilio.com" },
		"negative timeout":   func(c *notify.TwilioConfig) { c.Timeout = -1 },
	} {
		cfg := ok
		mod(&cfg)
		_, err := notify.NewTwilioSender(cfg)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), testToken) {
			t.Errorf("%s: error holds the token: %v", name, err)
		}
	}
	for name, mod := range map[string]func(*notify.TwilioConfig){
		"default base URL":   func(*notify.TwilioConfig) {},
		"https gateway":      func(c *notify.TwilioConfig) { c.BaseURL = "https://sms.example.com/" },
		"http to loopback":   func(c *notify.TwilioConfig) { c.BaseURL = "http://127.0.0.1:8080" },
		"http to localhost":  func(c *notify.TwilioConfig) { c.BaseURL = "http://localhost:8080" },
		"messaging service":  func(c *notify.TwilioConfig) { c.From = "MG0123" },
		"own HTTP client":    func(c *notify.TwilioConfig) { c.HTTPClient = &http.Client{} },
		"short account sids": func(c *notify.TwilioConfig) { c.AccountSID = "AC0123" },
	} {
		cfg := ok
		mod(&cfg)
		if _, err := notify.NewTwilioSender(cfg); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
