package login_test

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/descope/virtualwebauthn"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/botcheck"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/login/logintest"
	"github.com/latchkey-dev/latchkey/internal/oidcprovider"
	"github.com/latchkey-dev/latchkey/internal/passkey/passkeytest"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

var rp = virtualwebauthn.RelyingParty{ID: "auth.example.com", Name: "Acme", Origin: logintest.Issuer}

// call posts JSON to one of the page's script routes, as login.js does.
func (b *browser) call(path string, body map[string]any) (int, map[string]any) {
	b.t.Helper()
	body["csrf"] = hiddenField(b.last, "csrf")
	raw, err := json.Marshal(body)
	if err != nil {
		b.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, b.s.srv.URL+path+"?"+b.query.Encode(), bytes.NewReader(raw))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		b.t.Fatalf("%s answered %d %q", path, res.StatusCode, out)
	}
	return res.StatusCode, m
}

func TestPasskeyOfferThenPasskeyLogin(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, `{"protect":{"bot_check":"off"}}`)
		u := s.user(t, email)
		b := s.request("pk1", []string{"openid"}, nil)
		b.open("/login")
		b.step("identify", url.Values{"identifier": {email}})
		b.step("send", url.Values{"channel": {"email_otp"}})
		wantScreen(t, b.step("verify_code", url.Values{"code": {s.code(t, email)}}), "passkey_offer")

		// Save a passkey, as the offer's button does.
		status, opts := b.call("/login/passkey/begin", map[string]any{"mode": "register"})
		if status != 200 || opts["publicKey"] == nil || opts["auth_code"] != nil {
			t.Fatalf("begin registration: %d %v", status, opts)
		}
		raw, _ := json.Marshal(opts)
		auth, cred := passkeytest.NewAuthenticator(raw, nil)
		status, done := b.call("/login/passkey/finish", map[string]any{"mode": "register",
			"credential": json.RawMessage(passkeytest.Attest(t, rp, auth, cred, raw))})
		if status != 200 || done["location"] != appCallback+"pk1" {
			t.Fatalf("finish registration: %d %v", status, done)
		}
		for k := range done {
			if k != "location" {
				t.Errorf("the script got %q", k)
			}
		}
		if pks, err := s.passkeys.List(t.Context(), s.p, u.ID); err != nil || len(pks) != 1 {
			t.Fatalf("passkeys %v, %v", pks, err)
		}

		// Next time: the passkey by autofill (no identifier), straight to the approval; no
		// offer, since the user has one.
		for i, conditional := range []bool{true, false} {
			id := []string{"pk2", "pk3"}[i]
			b = s.request(id, []string{"openid"}, nil)
			b.open("/login")
			if !conditional {
				b.step("identify", url.Values{"identifier": {email}})
			}
			status, opts = b.call("/login/passkey/begin", map[string]any{"mode": "login", "conditional": conditional})
			if status != 200 {
				t.Fatalf("begin login: %d %v", status, opts)
			}
			raw, _ = json.Marshal(opts)
			status, done = b.call("/login/passkey/finish", map[string]any{"mode": "login",
				"credential": json.RawMessage(passkeytest.Assert(t, rp, auth, cred, raw))})
			if status != 200 || done["location"] != appCallback+id {
				t.Fatalf("finish login (conditional %v): %d %v", conditional, status, done)
			}
			cred.Counter++
		}
		a := s.provider.approvals()
		if len(a) != 3 || a[1].a.Result.Tokens.Session.ConnectionType != login.Passkey || a[2].a.Result.User.ID != u.ID {
			t.Errorf("approvals %+v", a)
		}

		// Without the page's CSRF token the script's routes refuse.
		b = s.request("pk4", []string{"openid"}, nil)
		b.open("/login")
		b.last = ""
		if status, m := b.call("/login/passkey/begin", map[string]any{"mode": "login"}); status != http.StatusForbidden || m["error_code"] != "csrf" {
			t.Errorf("no CSRF token: %d %v", status, m)
		}
	})
}

func TestBotCheckIsSolvedOrExplained(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, `{"protect":{"bot_check":"always"}}`)
		s.user(t, email)
		b := s.request("bc1", []string{"openid"}, nil)
		b.open("/login")
		p := b.step("identify", url.Values{"identifier": {email}})
		if !strings.Contains(p.body, "<noscript><p class=\"notice\">") {
			t.Errorf("no explanation for browsers without JavaScript:\n%s", p.body)
		}
		methods := b.last
		before := s.outboxSize(t)

		// Without JavaScript: no proof, refused on the screen with the explanation.
		p = b.submit("send", url.Values{"channel": {"email_otp"}})
		if p.status != http.StatusForbidden || screen(p.body) != "methods" || !strings.Contains(p.body, "needs JavaScript") {
			t.Fatalf("no proof: %d\n%s", p.status, p.body)
		}
		// The honeypot filled: refused.
		b.last = methods
		ch, err := s.pow.Challenge()
		if err != nil {
			t.Fatal(err)
		}
		proof, err := botcheck.Solve(ch)
		if err != nil {
			t.Fatal(err)
		}
		if p = b.submit("send", url.Values{"channel": {"email_otp"}, "altcha": {proof}, "website": {"https://spam.test"}}); p.status != http.StatusForbidden {
			t.Errorf("honeypot: %d", p.status)
		}
		if s.outboxSize(t) != before {
			t.Fatal("a refused send queued a message")
		}
		// What the worker does: solve the challenge and send the payload in the form.
		b.last = methods
		ch, _ = s.pow.Challenge()
		proof, _ = botcheck.Solve(ch)
		wantScreen(t, b.step("send", url.Values{"channel": {"email_otp"}, "altcha": {proof}}), "code")
	})
}

// TestCatalogsAgree checks that every locale has every string, and that the script and the
// templates use only strings the catalogs have.
func TestCatalogsAgree(t *testing.T) {
	read := func(name string) map[string]string {
		raw, err := os.ReadFile("catalog/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	en, de := read("en"), read("de")
	for k := range en {
		if de[k] == "" {
			t.Errorf("de lacks %q", k)
		}
		if strings.Count(en[k], "%") != strings.Count(de[k], "%") {
			t.Errorf("%q: en %q and de %q take different arguments", k, en[k], de[k])
		}
	}
	for k := range de {
		if _, ok := en[k]; !ok {
			t.Errorf("de has %q, en does not", k)
		}
	}
	tmpl, err := fs.ReadFile(os.DirFS("."), "templates/page.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range keyRE.FindAllStringSubmatch(string(tmpl), -1) {
		if _, ok := en[m[1]]; !ok {
			t.Errorf("the template uses %q, which no catalog has", m[1])
		}
	}
	for _, screen := range []string{"identifier", "methods", "code", "wait", "password", "signup", "reset_sent", "mfa",
		"mfa_enroll", "passkey_offer", "organization", "consent", "error"} {
		if _, ok := en["title."+screen]; !ok {
			t.Errorf("no title for screen %s", screen)
		}
	}
}

// keyRE finds the catalog keys a template names literally.
var keyRE = regexp.MustCompile(`\.T "([a-z_.]+)"`)

func TestMFAWithAnEmailedCode(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, `{"protect":{"bot_check":"off"},"login_methods":{"password":true,"passkey":false},
			"mfa":{"policy":"required","factors":["email"]}}`)
		u := s.user(t, email)
		const pw = "correct horse battery staple"
		if err := s.passwords.SetByAdmin(t.Context(), s.p, u.ID, pw, "", audit.Meta{}); err != nil {
			t.Fatal(err)
		}
		b := s.request("mf1", []string{"openid"}, nil)
		b.open("/login")
		b.step("identify", url.Values{"identifier": {email}})
		b.step("password_screen", nil)
		p := b.follow(b.submit("password", url.Values{"password": {pw}}))
		wantScreen(t, p, "mfa")
		if !strings.Contains(p.body, `id="mfa-send-email"`) {
			t.Fatalf("no emailed-code factor:\n%s", p.body)
		}
		before := len(s.Messages(t, email))
		wantScreen(t, b.step("mfa_send", url.Values{"channel": {"email"}}), "mfa")
		if len(s.Messages(t, email)) != before+1 {
			t.Fatal("no code was emailed")
		}
		approvedTo(t, b, b.submit("mfa_verify", url.Values{"factor": {"oob"}, "code": {s.code(t, email)}}), "mf1")
		a := s.provider.approvals()
		if len(a) != 1 || a[0].a.Result.User.ID != u.ID || a[0].a.Result.Tokens.Session.ConnectionType != login.Password {
			t.Errorf("approvals %+v", a)
		}
	})
}

func TestSignUpScreenFirstWhenAsked(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, `{"login_methods":{"password":true}}`)
		b := s.request("su1", []string{"openid"}, func(pl *oidcprovider.PendingLogin) { pl.Prompt = []string{"create"} })
		wantScreen(t, b.open("/login"), "signup")
		b = s.request("su2", []string{"openid"}, func(pl *oidcprovider.PendingLogin) {
			pl.Extensions = map[string]string{"screen_hint": "signup"}
		})
		wantScreen(t, b.open("/login"), "signup")
		// Assets are served with their types; unknown ones are 404 in the API's shape.
		if p := b.open("/login/assets/login.js"); p.status != 200 || p.header.Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Errorf("login.js: %d %s", p.status, p.header.Get("Content-Type"))
		}
		if p := b.open("/login/assets/nope.js"); p.status != 404 || !strings.Contains(p.body, "route_not_found") {
			t.Errorf("nope.js: %d %s", p.status, p.body)
		}
	})
}

func TestResendWaitsItsTurn(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, `{"protect":{"bot_check":"off"},"login_methods":{"passkey":false}}`)
		s.user(t, email)
		b := s.request("rs1", []string{"openid"}, nil)
		b.open("/login")
		b.step("identify", url.Values{"identifier": {email}})
		p := b.step("send", url.Values{"channel": {"email_otp"}})
		if !strings.Contains(p.body, `data-resend-in="30"`) || !strings.Contains(p.body, "You can ask for a new code in 30 seconds.") {
			t.Fatalf("no countdown:\n%s", p.body)
		}
		first := s.code(t, email)
		codeScreen := b.last
		p = b.submit("resend", nil)
		if p.status != http.StatusTooManyRequests || screen(p.body) != "code" || !strings.Contains(p.body, "Wait a little") {
			t.Fatalf("resend too soon: %d\n%s", p.status, p.body)
		}
		s.Clock.Advance(31e9)
		b.last = codeScreen
		wantScreen(t, b.step("resend", nil), "code")
		second := s.code(t, email)
		if len(s.Messages(t, email)) != 2 {
			t.Fatalf("%d messages after the resend", len(s.Messages(t, email)))
		}
		if first != second {
			// The first code no longer works.
			if p = b.submit("verify_code", url.Values{"code": {first}}); p.status != http.StatusUnauthorized {
				t.Errorf("the replaced code: %d", p.status)
			}
		}
		approvedTo(t, b, b.submit("verify_code", url.Values{"code": {second}}), "rs1")
	})
}

func TestBrandingOnEveryScreen(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, `{"protect":{"bot_check":"off"},"branding":{"display_name":"<b>Acme</b> & Co",
			"logo_url":"https://cdn.acme.test/logo.png","primary_color":"#0f766e"}}`)
		b := s.request("br1", []string{"openid"}, nil)
		for i, p := range []page{b.open("/login"), b.step("identify", url.Values{"identifier": {email}}), b.open("/login?authRequest=unknown")} {
			if !strings.Contains(p.body, `<img class="logo" src="https://cdn.acme.test/logo.png" alt="&lt;b&gt;Acme&lt;/b&gt; &amp; Co">`) && i < 2 {
				t.Errorf("page %d without the logo:\n%s", i, p.body)
			}
			if strings.Contains(p.body, "<b>Acme</b>") {
				t.Errorf("page %d: the display name is not escaped", i)
			}
			if i < 2 && !strings.Contains(p.body, ":root{--brand:#0f766e}") {
				t.Errorf("page %d without the colour", i)
			}
			if csp := p.header.Get("Content-Security-Policy"); i < 2 && !strings.Contains(csp, "img-src 'self' data: https://cdn.acme.test;") {
				t.Errorf("page %d: CSP %q", i, csp)
			}
		}
	})
}
