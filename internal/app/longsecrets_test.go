package app_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// Client secrets and refresh tokens cannot be guessed, but one IP presenting wrong ones is
// throttled for the hour, so that it cannot load the server; other IPs are unaffected.
func TestWrongLongSecretsThrottleTheIP(t *testing.T) {
	w := newPasswordWorld(t, testdb.SQLite(t), app.WithTrustedProxies([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}))
	w.setProtect(`{"ip_failures_per_hour":10}`)
	from := func(ip, secret string) response {
		return w.call("GET", "/api/v1/users", "", map[string]string{"X-Client-Id": w.proj.Project.ClientID,
			"X-Client-Secret": secret, "X-Forwarded-For": ip})
	}
	wrong := "sk_" + "0000000000000000000000000000000000000000000"
	for i := range 10 {
		if r := from("203.0.113.40", wrong); r.status != 401 {
			t.Fatalf("wrong secret %d: %d %s", i, r.status, r.raw)
		}
	}
	w.want(from("203.0.113.40", w.proj.ClientSecret), 429, "ip_throttled")
	w.want(from("198.51.100.40", w.proj.ClientSecret), 200, "")

	refresh := func(ip, tok string) response {
		h := w.cid()
		h["X-Forwarded-For"] = ip
		return w.call("POST", "/api/v1/accesstoken/refresh", fmt.Sprintf(`{"refresh_token":%q}`, tok), h)
	}
	for i := range 10 {
		w.want(refresh("203.0.113.41", fmt.Sprintf("rt_not-a-real-token-%d", i)), 401, "")
	}
	w.want(refresh("203.0.113.41", "rt_another"), 429, "ip_throttled")
	w.want(refresh("198.51.100.41", "rt_another"), 401, "")
}

// An unknown client id is a failed client authentication, in the OAuth shape, like a wrong secret.
func TestUnknownClientIDIsInvalidClient(t *testing.T) {
	w := newPasswordWorld(t, testdb.SQLite(t))
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	r := w.call("POST", "/api/v1/oauth2/token", "grant_type=client_credentials&client_id=cli_nobody&client_secret="+w.proj.ClientSecret, form)
	if r.status != 401 || r.body["error"] != "invalid_client" {
		t.Errorf("unknown client id: %d %s", r.status, r.raw)
	}
	r = w.call("POST", "/api/v1/oauth2/token", "grant_type=client_credentials&client_id="+w.proj.Project.ClientID+"&client_secret=sk_wrong", form)
	if r.status != 401 || r.body["error"] != "invalid_client" {
		t.Errorf("wrong secret: %d %s", r.status, r.raw)
	}
}
