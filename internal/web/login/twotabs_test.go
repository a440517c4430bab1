package login_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/oidcprovider"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestTwoRequestsInOneBrowser: one browser (one cookie jar) holding the binding cookies of two
// pending requests, as two tabs do, signs in on both pages, interleaved; the page reads each
// request's own binding cookie, so each approval carries its request's binding.
func TestTwoRequestsInOneBrowser(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := newSite(t, st, `{"protect":{"bot_check":"off"},"login_methods":{"passkey":false}}`)
		s.user(t, email)
		// Ids as the provider makes them: lowercase hex, so each names its own cookie.
		const id1, id2 = "0a1b2c3d4e5f60718293a4b5c6d7e8f9", "f9e8d7c6b5a4938271605f4e3d2c1b0a"
		if oidcprovider.BindingCookieName(id1) == oidcprovider.BindingCookieName(id2) {
			t.Fatal("two request ids share a binding cookie name")
		}
		tab1 := s.request(id1, []string{"openid"}, nil)
		tab2 := s.request(id2, []string{"openid"}, nil)
		tab2.client = tab1.client // the same browser
		tab1.setCookie(oidcprovider.BindingCookieName(id2), "binding-"+id2)

		wantScreen(t, tab1.open("/login"), "identifier")
		wantScreen(t, tab2.open("/login"), "identifier")
		wantScreen(t, tab1.step("identify", url.Values{"identifier": {email}}), "methods")
		wantScreen(t, tab2.step("identify", url.Values{"identifier": {email}}), "methods")
		wantScreen(t, tab1.step("send", url.Values{"channel": {"email_otp"}}), "code")
		approvedTo(t, tab1, tab1.submit("verify_code", url.Values{"code": {s.code(t, email)}}), id1)
		// A minute on, so that the second code is the newest message (and no resend wait applies).
		s.Clock.Advance(time.Minute)
		wantScreen(t, tab2.step("send", url.Values{"channel": {"email_otp"}}), "code")
		approvedTo(t, tab2, tab2.submit("verify_code", url.Values{"code": {s.code(t, email)}}), id2)

		got := s.provider.approvals()
		if len(got) != 2 || got[0].id != id1 || got[0].binding != "binding-"+id1 || got[1].id != id2 || got[1].binding != "binding-"+id2 {
			t.Fatalf("approvals %+v, want each request with its own binding", got)
		}
	})
}
