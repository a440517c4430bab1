package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/botcheck"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

func (w *passwordWorld) setProtect(doc string) {
	w.t.Helper()
	w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"protect":`+doc+`}}`, w.secret()), 200, "")
}

// solve fetches a challenge and solves it as the ALTCHA widget would.
func (w *passwordWorld) solve() string {
	w.t.Helper()
	r := w.call("GET", "/api/v1/protect/challenge", "", w.cid())
	w.want(r, 200, "")
	if r.header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		w.t.Errorf("challenge headers: %v", r.header)
	}
	var ch botcheck.Challenge
	if err := json.Unmarshal(r.raw, &ch); err != nil {
		w.t.Fatal(err)
	}
	payload, err := botcheck.Solve(ch)
	if err != nil {
		w.t.Fatal(err)
	}
	return payload
}

func (w *passwordWorld) signupWith(header map[string]string, email string) response {
	w.t.Helper()
	h := w.cid()
	for k, v := range header {
		h[k] = v
	}
	return w.call("POST", passwordBase+"signup", fmt.Sprintf(`{"email":%q,"password":"correct horse battery staple"}`, email), h)
}

func TestProofOfWorkOnSignup(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newPasswordWorld(t, st)
		w.setProtect(`{"bot_check":"always"}`)
		w.want(w.signupWith(nil, "ada@example.com"), 403, "bot_check_required")
		payload := w.solve()
		w.want(w.signupWith(map[string]string{"X-Altcha": payload}, "ada@example.com"), 200, "")
		// A solution is good once, on whatever instance; a forged one never.
		w.want(w.signupWith(map[string]string{"X-Altcha": payload}, "bob@example.com"), 403, "bot_check_failed")
		w.want(w.signupWith(map[string]string{"X-Altcha": "eyJhbGdvcml0aG0iOiJTSEEtMjU2In0="}, "bob@example.com"), 403, "bot_check_failed")
		// The hosted forms' honeypot refuses whatever else the request carries.
		w.want(w.signupWith(map[string]string{"X-Altcha": w.solve(), "X-Latchkey-Honeypot": "ACME Corp"}, "bob@example.com"), 403, "bot_check_failed")
		// A solution older than the challenge's 5 minutes is refused.
		stale := w.solve()
		w.clock.Advance(5*time.Minute + time.Second)
		w.want(w.signupWith(map[string]string{"X-Altcha": stale}, "bob@example.com"), 403, "bot_check_failed")
		w.want(w.signupWith(map[string]string{"X-Altcha": w.solve()}, "bob@example.com"), 200, "")
		// Off: no proof needed.
		w.setProtect(`{"bot_check":"off"}`)
		w.want(w.signupWith(nil, "carol@example.com"), 200, "")
	})
}

// On "risk" (the default) people never see a check; an IP that has been failing must prove
// itself on the routes bots abuse, and other IPs are unaffected.
func TestBotCheckOnRisk(t *testing.T) {
	w := newPasswordWorld(t, testdb.SQLite(t), app.WithTrustedProxies([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}))
	w.setProtect(`{"bot_check":"risk"}`)
	reset := func(ip string, header map[string]string) response {
		h := w.cid()
		h["X-Forwarded-For"] = ip
		for k, v := range header {
			h[k] = v
		}
		return w.call("POST", passwordBase+"reset/send", `{"email":"ada@example.com","redirect_url":"https://app.acme.test/done"}`, h)
	}
	w.want(reset("203.0.113.5", nil), 200, "")
	for i := range 10 {
		w.want(w.from("203.0.113.5", "login", fmt.Sprintf(`{"email":"user%d@example.com","password":"a wrong password"}`, i)), 401, "invalid_credentials")
	}
	w.want(reset("203.0.113.5", nil), 403, "bot_check_required")
	w.want(reset("203.0.113.5", map[string]string{"X-Altcha": w.solve()}), 200, "")
	w.want(reset("198.51.100.5", nil), 200, "")
}

// TestTurnstileOnSignup checks tokens against a local server speaking Turnstile's siteverify.
func TestTurnstileOnSignup(t *testing.T) {
	var secrets []string
	siteverify := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/turnstile/v0/siteverify" || r.ParseForm() != nil {
			http.Error(rw, "bad request", 400)
			return
		}
		secrets = append(secrets, r.PostForm.Get("secret"))
		rw.Header().Set("Content-Type", "application/json")
		if r.PostForm.Get("response") == "a-good-token" && r.PostForm.Get("remoteip") != "" {
			fmt.Fprint(rw, `{"success":true,"error-codes":[],"hostname":"app.acme.test"}`)
			return
		}
		fmt.Fprint(rw, `{"success":false,"error-codes":["invalid-input-response"]}`)
	}))
	defer siteverify.Close()
	ts, err := botcheck.NewTurnstile(botcheck.CAPTCHAConfig{Secret: "0x4AAAAAAAtest-secret", BaseURL: siteverify.URL})
	if err != nil {
		t.Fatal(err)
	}
	w := newPasswordWorld(t, testdb.SQLite(t), app.WithCaptcha("turnstile", ts))
	w.setProtect(`{"bot_check":"always","bot_provider":"turnstile"}`)
	w.want(w.signupWith(nil, "ada@example.com"), 403, "bot_check_required")
	w.want(w.signupWith(map[string]string{"X-Captcha-Token": "a-bad-token"}, "ada@example.com"), 403, "bot_check_failed")
	w.want(w.signupWith(map[string]string{"X-Captcha-Token": "a-good-token"}, "ada@example.com"), 200, "")
	if len(secrets) != 2 || secrets[0] != "0x4AAAAAAAtest-secret" {
		t.Errorf("siteverify got secrets %q", secrets)
	}
	// A provider the server has no secret for is a configuration error, not a pass.
	w.setProtect(`{"bot_provider":"hcaptcha"}`)
	w.want(w.signupWith(map[string]string{"X-Captcha-Token": "a-good-token"}, "bob@example.com"), 503, "bot_check_unavailable")
}
