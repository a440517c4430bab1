package passwordless_test

import (
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/login/logintest"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/passwordless"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

const (
	email = "ada@example.com"
	phone = "+14155550100"
)

var meta = audit.Meta{IPAddress: "192.0.2.10", UserAgent: "test"}

// flows is the service on a real login stack, for a project with every channel on.
type flows struct {
	*logintest.Stack
	svc *passwordless.Service
	p   store.Project
}

func newFlows(t *testing.T, st *sqlstore.Store) *flows {
	t.Helper()
	s := logintest.New(t, st)
	svc := passwordless.New(passwordless.Deps{Store: st, Login: s.Login, Protect: s.Protect, Sealer: s.Ring,
		Settings: s.Projects.Settings, PublicURL: logintest.Issuer, Delivery: logintest.Delivery, Now: s.Clock.Now})
	return &flows{Stack: s, svc: svc, p: s.Project(t, `{"login_methods":{"phone_otp":true}}`)}
}

func (w *flows) send(t *testing.T, ch passwordless.Channel, dest string) string {
	t.Helper()
	state, err := w.svc.Send(t.Context(), w.p, passwordless.SendRequest{Channel: ch, Destination: dest, IP: meta.IPAddress})
	if err != nil {
		t.Fatal(err)
	}
	return state
}

var codeRE = regexp.MustCompile(`\b(\d{6})\b`)

// code is the code in the newest message to dest.
func (w *flows) code(t *testing.T, dest string) string {
	t.Helper()
	msgs := w.Messages(t, dest)
	if len(msgs) == 0 {
		t.Fatalf("no message to %s", dest)
	}
	m := codeRE.FindStringSubmatch(msgs[0].Text)
	if m == nil {
		t.Fatalf("no code in %q", msgs[0].Text)
	}
	return m[1]
}

func TestCodeFlows(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newFlows(t, st)
		ctx := t.Context()
		for _, tc := range []struct {
			ch   passwordless.Channel
			dest string
		}{{passwordless.EmailOTP, email}, {passwordless.PhoneOTP, phone}} {
			state := w.send(t, tc.ch, tc.dest)
			code := w.code(t, tc.dest)
			wrong := "000000"
			if code == wrong {
				wrong = "111111"
			}
			_, err := w.svc.VerifyCode(ctx, w.p, []passwordless.Channel{tc.ch}, state, wrong, meta)
			logintest.WantCode(t, err, "invalid_code", "")
			// A flow is only found through its own channel.
			other := passwordless.PhoneOTP
			if tc.ch == passwordless.PhoneOTP {
				other = passwordless.EmailOTP
			}
			_, err = w.svc.VerifyCode(ctx, w.p, []passwordless.Channel{other}, state, code, meta)
			logintest.WantCode(t, err, "flow_not_found", "")

			res, err := w.svc.VerifyCode(ctx, w.p, []passwordless.Channel{tc.ch}, state, code, meta)
			if err != nil {
				t.Fatalf("%s: %v", tc.ch, err)
			}
			if !res.Authenticated || res.Tokens.AccessToken == "" {
				t.Fatalf("%s: result %+v", tc.ch, res)
			}
			if tc.ch == passwordless.EmailOTP && (!res.User.EmailVerified || res.User.Email != email) {
				t.Errorf("signed-up user %+v, want the verified email", res.User)
			}
			if tc.ch == passwordless.PhoneOTP && (!res.User.PhoneVerified || res.User.Phone != phone) {
				t.Errorf("signed-up user %+v, want the verified phone", res.User)
			}
			// Once only.
			_, err = w.svc.VerifyCode(ctx, w.p, []passwordless.Channel{tc.ch}, state, code, meta)
			logintest.WantCode(t, err, "flow_not_found", "")
		}
		_, err := w.svc.Send(ctx, w.p, passwordless.SendRequest{Channel: passwordless.EmailOTP, Destination: "ada@", IP: meta.IPAddress})
		logintest.WantCode(t, err, "invalid_email", "")
		_, err = w.svc.Send(ctx, w.p, passwordless.SendRequest{Channel: passwordless.PhoneOTP, Destination: "12", IP: meta.IPAddress})
		logintest.WantCode(t, err, "invalid_phone", "")
		_, err = w.svc.VerifyCode(ctx, w.p, []passwordless.Channel{passwordless.EmailOTP}, "not-a-state", "123456", meta)
		logintest.WantCode(t, err, "flow_not_found", "")
	})
}

func TestCodesExpire(t *testing.T) {
	w := newFlows(t, testdb.SQLite(t))
	state := w.send(t, passwordless.EmailOTP, email)
	code := w.code(t, email)
	w.Clock.Advance(5*time.Minute + time.Second)
	_, err := w.svc.VerifyCode(t.Context(), w.p, []passwordless.Channel{passwordless.EmailOTP}, state, code, meta)
	logintest.WantCode(t, err, "flow_not_found", "")
}

func TestResend(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newFlows(t, st)
		ctx := t.Context()
		chans := []passwordless.Channel{passwordless.EmailOTP}
		state := w.send(t, passwordless.EmailOTP, email)
		first := w.code(t, email)
		logintest.WantCode(t, w.svc.Resend(ctx, w.p, chans, state, meta.IPAddress), "resend_too_soon", "")
		for range passwordless.MaxResends {
			w.Clock.Advance(passwordless.ResendInterval + time.Second)
			if err := w.svc.Resend(ctx, w.p, chans, state, meta.IPAddress); err != nil {
				t.Fatal(err)
			}
		}
		w.Clock.Advance(passwordless.ResendInterval + time.Second)
		logintest.WantCode(t, w.svc.Resend(ctx, w.p, chans, state, meta.IPAddress), "resend_limit", "")
		logintest.WantCode(t, w.svc.Resend(ctx, w.p, chans, "6b1300000000000000000000", meta.IPAddress), "flow_not_found", "")
		if n := len(w.Messages(t, email)); n != 1+passwordless.MaxResends {
			t.Errorf("%d messages, want %d", n, 1+passwordless.MaxResends)
		}
		// Each resend voids the code before it.
		last := w.code(t, email)
		if first != last {
			_, err := w.svc.VerifyCode(ctx, w.p, chans, state, first, meta)
			logintest.WantCode(t, err, "invalid_code", "")
		}
		if _, err := w.svc.VerifyCode(ctx, w.p, chans, state, last, meta); err != nil {
			t.Fatalf("the last code: %v", err)
		}
	})
}

var linkRE = regexp.MustCompile(`https://auth\.example\.com/api/v1/auth/passwordless/magic-link/verify\?[^\s"<]+`)

func TestMagicLink(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newFlows(t, st)
		ctx := t.Context()
		_, err := w.svc.Send(ctx, w.p, passwordless.SendRequest{Channel: passwordless.MagicLink, Destination: email,
			RedirectURL: "https://evil.example/", IP: meta.IPAddress})
		logintest.WantCode(t, err, "invalid_redirect_url", "")

		state := w.send(t, passwordless.MagicLink, email)
		if res, err := w.svc.Status(ctx, w.p, state, meta); err != nil || res.Authenticated {
			t.Fatalf("status before the click: %+v, %v", res, err)
		}
		msgs := w.Messages(t, email)
		link, err := url.Parse(linkRE.FindString(msgs[0].Text))
		if err != nil || link.Query().Get("state") != state || link.Query().Get("client_id") != w.p.ClientID {
			t.Fatalf("link %v in %q: %v", link, msgs[0].Text, err)
		}
		secret := link.Query().Get("magictext")
		_, err = w.svc.VerifyLink(ctx, w.p, state, secret+"x", meta)
		logintest.WantCode(t, err, "invalid_code", "")
		to, err := w.svc.VerifyLink(ctx, w.p, state, secret, meta)
		if err != nil || to != "" {
			t.Fatalf("VerifyLink = %q, %v; want the confirmation page", to, err)
		}
		res, err := w.svc.Status(ctx, w.p, state, meta)
		if err != nil || !res.Authenticated || res.Tokens.RefreshToken == "" {
			t.Fatalf("status after the click: %+v, %v", res, err)
		}
		// The result is handed out once, and the link does not work again.
		_, err = w.svc.Status(ctx, w.p, state, meta)
		logintest.WantCode(t, err, "flow_not_found", "")
		_, err = w.svc.VerifyLink(ctx, w.p, state, secret, meta)
		logintest.WantCode(t, err, "flow_not_found", "")

		// With a registered redirect URL, the browser goes there with the state.
		state, err = w.svc.Send(ctx, w.p, passwordless.SendRequest{Channel: passwordless.MagicLink, Destination: "bob@example.com",
			RedirectURL: "https://app.acme.test/done", IP: meta.IPAddress})
		if err != nil {
			t.Fatal(err)
		}
		link, _ = url.Parse(linkRE.FindString(w.Messages(t, "bob@example.com")[0].Text))
		to, err = w.svc.VerifyLink(ctx, w.p, state, link.Query().Get("magictext"), meta)
		if err != nil || to != "https://app.acme.test/done?state="+state {
			t.Fatalf("VerifyLink = %q, %v", to, err)
		}
	})
}

func TestChannelsNeedTheirSetting(t *testing.T) {
	st := testdb.SQLite(t)
	w := newFlows(t, st)
	off := w.Project(t, `{"login_methods":{"email_otp":false}}`)
	_, err := w.svc.Send(t.Context(), off, passwordless.SendRequest{Channel: passwordless.EmailOTP, Destination: email, IP: meta.IPAddress})
	logintest.WantCode(t, err, "login_method_disabled", "")
	// Phone codes are off by default.
	_, err = w.svc.Send(t.Context(), w.Project(t, ""), passwordless.SendRequest{Channel: passwordless.PhoneOTP, Destination: phone, IP: meta.IPAddress})
	logintest.WantCode(t, err, "login_method_disabled", "")

	noSMS := passwordless.New(passwordless.Deps{Store: st, Login: w.Login, Protect: w.Protect, Sealer: w.Ring,
		Settings: w.Projects.Settings, PublicURL: logintest.Issuer, Now: w.Clock.Now,
		Delivery: func(ch notify.Channel) bool { return ch == notify.Email }})
	_, err = noSMS.Send(t.Context(), w.p, passwordless.SendRequest{Channel: passwordless.PhoneOTP, Destination: phone, IP: meta.IPAddress})
	logintest.WantCode(t, err, "delivery_not_configured", "")
}
