package botcheck

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/failure"
)

const (
	testSecret  = "0x4AAAAAAAtest-secret-do-not-echo"
	testSiteKey = "10000000-ffff-ffff-ffff-000000000001"
	goodToken   = "XXXX.DUMMY.TOKEN.XXXX"
)

// siteverifyServer speaks a provider's siteverify: it checks the request as the provider
// would (method, path, content type, form fields, secret) and answers with answer's reply.
type siteverifyServer struct {
	t        *testing.T
	path     string
	wantSite string // hCaptcha's sitekey field; "" for Turnstile, which has none
	calls    atomic.Int32
	lastIP   atomic.Value
	answer   func(w http.ResponseWriter, r *http.Request)
}

func newSiteverifyServer(t *testing.T, path, wantSite string, answer func(w http.ResponseWriter, r *http.Request)) (*siteverifyServer, string) {
	s := &siteverifyServer{t: t, path: path, wantSite: wantSite, answer: answer}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func (s *siteverifyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	if r.Method != http.MethodPost || r.URL.Path != s.path {
		s.t.Errorf("%s %s, want POST %s", r.Method, r.URL.Path, s.path)
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		s.t.Errorf("Content-Type %q", ct)
	}
	if r.URL.RawQuery != "" {
		s.t.Errorf("query %q: the secret must travel in the body only", r.URL.RawQuery)
	}
	if err := r.ParseForm(); err != nil {
		s.t.Errorf("ParseForm: %v", err)
	}
	f := r.PostForm
	for k := range f {
		switch k {
		case "secret", "response", "remoteip":
		case "sitekey":
			if s.wantSite == "" {
				s.t.Errorf("unexpected form field sitekey")
			}
		default:
			s.t.Errorf("unexpected form field %q", k)
		}
	}
	if f.Get("sitekey") != s.wantSite {
		s.t.Errorf("sitekey %q, want %q", f.Get("sitekey"), s.wantSite)
	}
	s.lastIP.Store(f.Get("remoteip"))
	switch {
	case f.Get("secret") == "":
		writeJSON(w, `{"success":false,"error-codes":["missing-input-secret"]}`)
	case f.Get("secret") != testSecret:
		writeJSON(w, `{"success":false,"error-codes":["invalid-input-secret"]}`)
	case f.Get("response") == "":
		writeJSON(w, `{"success":false,"error-codes":["missing-input-response"]}`)
	default:
		s.answer(w, r)
	}
}

func writeJSON(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, body)
}

func reply(body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.PostForm.Get("response") != goodToken {
			writeJSON(w, `{"success":false,"error-codes":["invalid-input-response"]}`)
			return
		}
		writeJSON(w, body)
	}
}

const turnstileOK = `{"success":true,"error-codes":[],"challenge_ts":"2026-03-14T15:09:26.535Z","hostname":"login.example.com","action":"signup","cdata":"","metadata":{"interactive":false}}`
const hcaptchaOK = `{"success":true,"challenge_ts":"2026-03-14T15:09:26Z","hostname":"login.example.com","credit":false}`

type provider struct {
	name     string
	path     string
	wantSite string
	ok       string
	make     func(CAPTCHAConfig) (Verifier, error)
}

var providers = []provider{
	{name: "turnstile", path: "/turnstile/v0/siteverify", ok: turnstileOK,
		make: func(c CAPTCHAConfig) (Verifier, error) { return NewTurnstile(c) }},
	{name: "hcaptcha", path: "/siteverify", wantSite: testSiteKey, ok: hcaptchaOK,
		make: func(c CAPTCHAConfig) (Verifier, error) { return NewHCaptcha(c) }},
}

func (p provider) verifier(t *testing.T, answer func(http.ResponseWriter, *http.Request), edit func(*CAPTCHAConfig)) (Verifier, *siteverifyServer) {
	t.Helper()
	srv, base := newSiteverifyServer(t, p.path, p.wantSite, answer)
	c := CAPTCHAConfig{Secret: testSecret, SiteKey: testSiteKey, BaseURL: base}
	if edit != nil {
		edit(&c)
	}
	v, err := p.make(c)
	if err != nil {
		t.Fatal(err)
	}
	return v, srv
}

// noSecret fails the test if the error, or anything it wraps, shows the secret.
func noSecret(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), testSecret) {
		t.Fatalf("error shows the secret: %v", err)
	}
	if fe, ok := failure.As(err); ok && strings.Contains(fe.Description, testSecret) {
		t.Fatalf("description shows the secret: %v", fe.Description)
	}
}

func wantKind(t *testing.T, err error, kind failure.Kind, code string) {
	t.Helper()
	noSecret(t, err)
	fe, ok := failure.As(err)
	if !ok || fe.Kind != kind || fe.Code != code {
		t.Fatalf("got %v, want kind %d code %s", err, kind, code)
	}
}

func TestCAPTCHAProviders(t *testing.T) {
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			ctx := context.Background()

			t.Run("success", func(t *testing.T) {
				v, srv := p.verifier(t, reply(p.ok), nil)
				if err := v.Verify(ctx, goodToken, "203.0.113.7"); err != nil {
					t.Fatal(err)
				}
				if ip := srv.lastIP.Load(); ip != "203.0.113.7" {
					t.Fatalf("remoteip %q", ip)
				}
				if err := v.Verify(ctx, goodToken, "not an address"); err != nil {
					t.Fatal(err)
				}
				if ip := srv.lastIP.Load(); ip != "" {
					t.Fatalf("remoteip %q sent for an unparsable address", ip)
				}
			})

			t.Run("refused token", func(t *testing.T) {
				v, _ := p.verifier(t, reply(p.ok), nil)
				wantKind(t, v.Verify(ctx, "forged", "203.0.113.7"), failure.Forbidden, CodeFailed)
			})

			t.Run("replayed token", func(t *testing.T) {
				codes := map[string]string{"turnstile": "timeout-or-duplicate", "hcaptcha": "already-seen-response"}
				v, _ := p.verifier(t, reply(`{"success":false,"error-codes":["`+codes[p.name]+`"]}`), nil)
				wantKind(t, v.Verify(ctx, goodToken, ""), failure.Forbidden, CodeFailed)
			})

			t.Run("no token, no call", func(t *testing.T) {
				v, srv := p.verifier(t, reply(p.ok), nil)
				wantKind(t, v.Verify(ctx, "", "203.0.113.7"), failure.Forbidden, CodeFailed)
				wantKind(t, v.Verify(ctx, strings.Repeat("x", 40<<10), ""), failure.Forbidden, CodeFailed)
				if n := srv.calls.Load(); n != 0 {
					t.Fatalf("%d calls to the provider", n)
				}
			})

			t.Run("wrong secret is a configuration error", func(t *testing.T) {
				v, _ := p.verifier(t, reply(p.ok), func(c *CAPTCHAConfig) { c.Secret = "wrong" })
				err := v.Verify(ctx, goodToken, "")
				if err == nil || failure.IsKind(err, failure.Forbidden) || failure.IsKind(err, failure.Unavailable) {
					t.Fatalf("got %v, want an internal error", err)
				}
			})

			t.Run("server error", func(t *testing.T) {
				v, _ := p.verifier(t, func(w http.ResponseWriter, r *http.Request) {
					http.Error(w, "upstream connect error", http.StatusInternalServerError)
				}, nil)
				wantKind(t, v.Verify(ctx, goodToken, ""), failure.Unavailable, CodeUnavailable)
			})

			t.Run("not JSON", func(t *testing.T) {
				v, _ := p.verifier(t, func(w http.ResponseWriter, r *http.Request) {
					fmt.Fprint(w, "<html>Just a moment...</html>")
				}, nil)
				wantKind(t, v.Verify(ctx, goodToken, ""), failure.Unavailable, CodeUnavailable)
			})

			t.Run("JSON without a verdict", func(t *testing.T) {
				v, _ := p.verifier(t, reply(`{"hostname":"login.example.com"}`), nil)
				wantKind(t, v.Verify(ctx, goodToken, ""), failure.Unavailable, CodeUnavailable)
			})

			t.Run("slow", func(t *testing.T) {
				v, _ := p.verifier(t, func(w http.ResponseWriter, r *http.Request) {
					select {
					case <-r.Context().Done():
					case <-time.After(5 * time.Second):
					}
					writeJSON(w, p.ok)
				}, func(c *CAPTCHAConfig) { c.Timeout = 50 * time.Millisecond })
				start := time.Now()
				wantKind(t, v.Verify(ctx, goodToken, ""), failure.Unavailable, CodeUnavailable)
				if d := time.Since(start); d > 3*time.Second {
					t.Fatalf("Verify took %s despite a 50 ms timeout", d)
				}
			})

			t.Run("oversize", func(t *testing.T) {
				v, _ := p.verifier(t, func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, `{"success":true,"hostname":"`+strings.Repeat("a", 2<<10)+`"}`)
				}, func(c *CAPTCHAConfig) { c.MaxResponseBytes = 1 << 10 })
				wantKind(t, v.Verify(ctx, goodToken, ""), failure.Unavailable, CodeUnavailable)
			})

			t.Run("expected hostname", func(t *testing.T) {
				v, _ := p.verifier(t, reply(p.ok), func(c *CAPTCHAConfig) { c.ExpectedHostname = "LOGIN.example.com" })
				if err := v.Verify(ctx, goodToken, ""); err != nil {
					t.Fatal(err)
				}
				v, _ = p.verifier(t, reply(p.ok), func(c *CAPTCHAConfig) { c.ExpectedHostname = "evil.example.net" })
				wantKind(t, v.Verify(ctx, goodToken, ""), failure.Forbidden, CodeFailed)
			})

			t.Run("redirect not followed", func(t *testing.T) {
				var elsewhere atomic.Int32
				other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					elsewhere.Add(1)
					writeJSON(w, p.ok)
				}))
				t.Cleanup(other.Close)
				v, _ := p.verifier(t, func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, other.URL+p.path, http.StatusTemporaryRedirect)
				}, nil)
				wantKind(t, v.Verify(ctx, goodToken, ""), failure.Unavailable, CodeUnavailable)
				if elsewhere.Load() != 0 {
					t.Fatal("the request, secret included, was resent to the redirect target")
				}
			})

			t.Run("canceled context", func(t *testing.T) {
				v, _ := p.verifier(t, reply(p.ok), nil)
				cctx, cancel := context.WithCancel(ctx)
				cancel()
				wantKind(t, v.Verify(cctx, goodToken, ""), failure.Unavailable, CodeUnavailable)
			})

			t.Run("printing hides the secret", func(t *testing.T) {
				v, _ := p.verifier(t, reply(p.ok), nil)
				for _, s := range []string{fmt.Sprint(v), fmt.Sprintf("%v %+v %s", v, v, v)} {
					if strings.Contains(s, testSecret) {
						t.Fatalf("%q shows the secret", s)
					}
				}
			})
		})
	}
}

func TestTurnstileInternalErrorIsUnavailable(t *testing.T) {
	v, _ := providers[0].verifier(t, reply(`{"success":false,"error-codes":["internal-error"]}`), nil)
	wantKind(t, v.Verify(context.Background(), goodToken, ""), failure.Unavailable, CodeUnavailable)
}

func TestHCaptchaSitekeyMismatchIsConfiguration(t *testing.T) {
	v, _ := providers[1].verifier(t, reply(`{"success":false,"error-codes":["sitekey-secret-mismatch"]}`), nil)
	err := v.Verify(context.Background(), goodToken, "")
	if err == nil || failure.IsKind(err, failure.Forbidden) || failure.IsKind(err, failure.Unavailable) {
		t.Fatalf("got %v, want an internal error", err)
	}
	noSecret(t, err)
}

func TestCAPTCHAConfigRefused(t *testing.T) {
	for name, c := range map[string]CAPTCHAConfig{
		"no secret":        {},
		"blank secret":     {Secret: "  "},
		"relative URL":     {Secret: testSecret, BaseURL: "/siteverify"},
		"other scheme":     {Secret: testSecret, BaseURL: "ftp://example.com"},
		"query in URL":     {Secret: testSecret, BaseURL: "https://example.com/?secret=x"},
		"negative timeout": {Secret: testSecret, Timeout: -time.Second},
	} {
		if _, err := NewTurnstile(c); err == nil {
			t.Errorf("%s: NewTurnstile accepted %+v", name, c)
		}
		if _, err := NewHCaptcha(c); err == nil {
			t.Errorf("%s: NewHCaptcha accepted %+v", name, c)
		}
	}
	tv, err := NewTurnstile(CAPTCHAConfig{Secret: testSecret})
	if err != nil || tv.sv.endpoint != "https://challenges.cloudflare.com/turnstile/v0/siteverify" {
		t.Fatalf("Turnstile default endpoint: %v, %v", tv, err)
	}
	hv, err := NewHCaptcha(CAPTCHAConfig{Secret: testSecret})
	if err != nil || hv.sv.endpoint != "https://api.hcaptcha.com/siteverify" {
		t.Fatalf("hCaptcha default endpoint: %v, %v", hv, err)
	}
}

func TestHoneypot(t *testing.T) {
	h := Honeypot{Field: "website"}
	if err := h.Check(""); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"http://spam.example", " ", "0"} {
		err := h.Check(v)
		fe, ok := failure.As(err)
		if !ok || fe.Kind != failure.Forbidden || fe.Code != CodeFailed {
			t.Fatalf("Check(%q) = %v", v, err)
		}
		if strings.Contains(fe.Description, "website") || strings.Contains(fe.Description, "honeypot") {
			t.Fatalf("the description gives the trap away: %q", fe.Description)
		}
	}
}
