package app_test

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

var loopbackProxies = app.WithTrustedProxies([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")})

func with(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// Strangers on many IPs lock the account, and its owner is told, once; the owner's device,
// which signed in before, still signs in (issue 13 §2).
func TestDeviceTokenSignsInThroughTheAccountLock(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newPasswordWorld(t, st, loopbackProxies)
		const right = "correct horse battery staple"
		w.want(w.pw("signup", `{"email":"ada@example.com","password":"`+right+`"}`), 200, "")
		first := w.from("198.51.100.1", "login", `{"email":"ada@example.com","password":"`+right+`"}`)
		w.want(first, 200, "")
		device := first.header.Get("Latchkey-Device")
		if !strings.HasPrefix(device, "lkd1.") || !strings.Contains(strings.Join(first.header.Values("Set-Cookie"), "\n"), "__Host-latchkey-device="+device) {
			t.Fatalf("login answered device header %q, cookies %q", device, first.header.Values("Set-Cookie"))
		}
		w.deliver()
		before := len(w.inbox("ada@example.com"))
		for i := range 60 {
			r := w.from(fmt.Sprintf("203.0.%d.%d", i/200, i%200), "login", `{"email":"ada@example.com","password":"a wrong guess"}`)
			if i < 50 {
				w.want(r, 401, "invalid_credentials")
			} else {
				w.want(r, 429, "account_locked")
			}
		}
		// A new device of the owner's waits out the lock; the known one does not.
		w.want(w.from("192.0.2.10", "login", `{"email":"ada@example.com","password":"`+right+`"}`), 429, "account_locked")
		h := with(w.cid(), "X-Forwarded-For", "192.0.2.10", "Latchkey-Device", device)
		w.want(w.call("POST", passwordBase+"login", `{"email":"ada@example.com","password":"`+right+`"}`, h), 200, "")
		// The owner heard of it once, for the one lock.
		notices := 0
		for _, m := range w.inbox("ada@example.com")[:len(w.inbox("ada@example.com"))-before] {
			if strings.Contains(fmt.Sprint(m["text"]), "failed to sign in to your account many times") {
				notices++
			}
		}
		if notices != 1 {
			t.Errorf("%d attack notices, want 1", notices)
		}
	})
}

// A stranger who spends an address's sends cannot stop its owner getting a reset link.
func TestOwnerGetsAResetAfterAStrangerSpentTheAddress(t *testing.T) {
	w := newPasswordWorld(t, testdb.SQLite(t), loopbackProxies)
	w.setProtect(`{"bot_check":"off","sends_per_destination_per_hour":4,"sends_per_requester_per_hour":2}`)
	reset := func(ip string, extra ...string) response {
		return w.call("POST", passwordBase+"reset/send", `{"email":"ada@example.com","redirect_url":"https://app.acme.test/done"}`,
			with(w.cid(), append([]string{"X-Forwarded-For", ip}, extra...)...))
	}
	for i := range 2 {
		for range 2 {
			w.want(reset(fmt.Sprintf("203.0.113.%d", i)), 200, "")
		}
		w.want(reset(fmt.Sprintf("203.0.113.%d", i)), 429, "too_many_sends")
	}
	w.want(reset("198.51.100.1"), 403, "bot_check_required")
	w.want(reset("198.51.100.1", "X-Altcha", w.solve()), 200, "")
	w.want(reset("198.51.100.1", "X-Altcha", w.solve()), 429, "too_many_sends")
}

// Fifty concurrent resends of one flow count the messages sent, not the requests.
func TestConcurrentResendsCountWhatWasSent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newFlowWorld(t, st, app.WithDev(true))
		r := w.post("email-otp/send", `{"email":"ada@example.com"}`)
		w.want(r, 200, "")
		state := r.body["state"].(string)
		w.clock.Advance(31e9)
		var wg sync.WaitGroup
		statuses := make([]int, 50)
		for i := range statuses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = w.post("email-otp/resend", fmt.Sprintf(`{"state":%q}`, state)).status
			}()
		}
		wg.Wait()
		ok := 0
		for _, s := range statuses {
			if s == 200 {
				ok++
			}
		}
		sent := len(w.inbox("ada@example.com"))
		cs, err := st.GetCounters(t.Context(), w.proj.Project.ID, []store.CounterKey{{Scope: "send:email", Key: "ada@example.com"}}, w.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if ok != 1 || sent != 2 || cs[0].Count != sent {
			t.Errorf("%d resends accepted, %d messages sent, %d counted; want 1, 2, 2", ok, sent, cs[0].Count)
		}
	})
}

// Calls with the project secret come from the project's own server, for all its users from
// one IP: they skip the risk-based bot check, and the end user's IP they name is the one
// limits count, never without the secret.
func TestServerSideCallsWithTheSecret(t *testing.T) {
	w := newPasswordWorld(t, testdb.SQLite(t))
	w.setProtect(`{"bot_check":"risk"}`)
	const right = "correct horse battery staple"
	w.want(w.pw("signup", `{"email":"ada@example.com","password":"`+right+`"}`), 200, "")
	server := with(w.secret(), "Content-Type", "application/json")
	for i := range 15 {
		w.want(w.call("POST", "/api/v1/auth/passwordless/email-otp/send", fmt.Sprintf(`{"email":"user%d@example.com"}`, i), server), 200, "")
	}
	// The same from a browser on that IP has to prove itself.
	w.want(w.call("POST", "/api/v1/auth/passwordless/email-otp/send", `{"email":"eve@example.com"}`, w.cid()), 403, "bot_check_required")
	// A wrong secret is refused, not ignored.
	w.want(w.call("POST", "/api/v1/auth/passwordless/email-otp/send", `{"email":"eve@example.com"}`,
		with(w.cid(), "X-Client-Secret", "sk_wrong")), 401, "invalid_client")
	// Ten wrong passwords from one end user lock that user's IP, not the server's other users.
	login := func(h map[string]string, pw string) response {
		return w.call("POST", passwordBase+"login", fmt.Sprintf(`{"email":"ada@example.com","password":%q}`, pw), h)
	}
	for i := range 10 {
		w.want(login(with(server, "Latchkey-Forwarded-For", "203.0.113.66"), fmt.Sprintf("wrong %d", i)), 401, "invalid_credentials")
		w.clock.Advance(31e9)
	}
	w.want(login(with(server, "Latchkey-Forwarded-For", "203.0.113.66"), right), 429, "account_locked")
	w.want(login(with(server, "Auth0-Forwarded-For", "198.51.100.20"), right), 200, "")
	w.want(login(with(server, "Latchkey-Forwarded-For", "not an ip"), right), 400, "invalid_request")
	// Without the secret the header is the client's own say-so, and ignored.
	w.want(login(with(w.cid(), "Latchkey-Forwarded-For", "203.0.113.66"), right), 200, "")
}

// Allow-listed addresses skip the bot check, even when the project checks always.
func TestAllowListedAddressesSkipTheBotCheck(t *testing.T) {
	w := newPasswordWorld(t, testdb.SQLite(t))
	w.setProtect(`{"bot_check":"always","allow_cidrs":["127.0.0.0/8","::1/128"]}`)
	w.want(w.signupWith(nil, "ada@example.com"), 200, "")
	w.setProtect(`{"allow_cidrs":[]}`)
	w.want(w.signupWith(nil, "bob@example.com"), 403, "bot_check_required")
}

// TestDeviceTokenSignsInWithACodeThroughTheAccountLock: strangers start flows to the owner's
// address from many IPs and fail their codes until the address's account-wide lock for codes
// starts. A new device of the owner's waits it out; the device the owner signed in from with a
// code before is not subject to it.
func TestDeviceTokenSignsInWithACodeThroughTheAccountLock(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newFlowWorld(t, st, app.WithDev(true), loopbackProxies)
		w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"protect":{"bot_check":"off","slow_after":3,"lock_after":3,"account_lock_after":3}}}`, w.secret()), 200, "")
		const owner, to = "198.51.100.1", "ada@example.com"
		from := func(ip, path, body string, kv ...string) response {
			w.t.Helper()
			return w.call("POST", "/api/v1/auth/passwordless/"+path, body, with(w.cid(), append([]string{"X-Forwarded-For", ip}, kv...)...))
		}
		signIn := func(ip string, kv ...string) response {
			w.t.Helper()
			// Later than every message before it, so that its code is the newest in the inbox.
			w.clock.Advance(time.Second)
			sent := from(ip, "email-otp/send", `{"email":"`+to+`"}`)
			w.want(sent, 200, "")
			return from(ip, "email-otp/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, sent.body["state"], w.lastCode(to)), kv...)
		}
		first := signIn(owner)
		w.want(first, 200, "")
		device := first.header.Get("Latchkey-Device")
		if !strings.HasPrefix(device, "lkd1.") || !strings.Contains(strings.Join(first.header.Values("Set-Cookie"), "\n"), "__Host-latchkey-device="+device) {
			t.Fatalf("code login answered device header %q, cookies %q", device, first.header.Values("Set-Cookie"))
		}

		// Three strangers each start a flow to the address and fail its code once: the
		// address is locked for codes, from every IP.
		for i := range 3 {
			ip := fmt.Sprintf("203.0.113.%d", i+1)
			sent := from(ip, "email-otp/send", `{"email":"`+to+`"}`)
			w.want(sent, 200, "")
			w.want(from(ip, "email-otp/verify", fmt.Sprintf(`{"state":%q,"otp":"000000"}`, sent.body["state"])), 401, "invalid_code")
		}
		w.want(signIn("192.0.2.10"), 429, "account_locked")
		// The owner's known device signs in, and gets a fresh token.
		again := signIn("192.0.2.10", "Latchkey-Device", device)
		w.want(again, 200, "")
		if again.header.Get("Latchkey-Device") == "" {
			t.Error("the second code login answered no device token")
		}
		// A token of another address does not help.
		w.want(w.call("POST", "/api/v1/users", `{"email":"bob@example.com"}`, w.secret()), 201, "")
		w.clock.Advance(time.Second)
		sent := from("192.0.2.11", "email-otp/send", `{"email":"bob@example.com"}`)
		w.want(sent, 200, "")
		bob := from("192.0.2.11", "email-otp/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, sent.body["state"], w.lastCode("bob@example.com")))
		w.want(bob, 200, "")
		w.want(signIn("192.0.2.11", "Latchkey-Device", bob.header.Get("Latchkey-Device")), 429, "account_locked")
	})
}
