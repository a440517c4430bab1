package app_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// lookalikeVictim is an account and the addresses that must not reach it (lookalikes: other
// mailboxes that display like it or that Unicode case folding maps onto it) or that are the same
// mailbox (variants: ASCII case, the IDNA forms of the domain, a trailing dot).
type lookalikeVictim struct {
	email     string // as signed up
	stored    string // as the account keeps it
	lookalike []string
	variants  []string
}

var lookalikeVictims = []lookalikeVictim{
	{email: "kim@acme.example", stored: "kim@acme.example",
		lookalike: []string{"\u212aim@acme.example", "\u212aIM@acme.example", "\uff4bim@acme.example", "k\u0456m@acme.example",
			"\u03baim@acme.example", "kim@\u0430cme.example"},
		variants: []string{"KIM@acme.example", "Kim@ACME.Example", "kim@acme.example."}},
	{email: "bill@acme.example", stored: "bill@acme.example",
		lookalike: []string{"b\u0130ll@acme.example", "B\u0130LL@acme.example", "b\u0131ll@acme.example", "bi\u217c\u217c@acme.example"},
		variants:  []string{"BILL@acme.example"}},
	{email: "sam.office@acme.example", stored: "sam.office@acme.example",
		lookalike: []string{"\u017fam.office@acme.example", "sam.o\ufb00ice@acme.example", "sam.of\ufb01ce@acme.example",
			"s\u0430m.office@acme.example", "sam.\u03bfffice@acme.example"},
		variants: []string{"Sam.Office@acme.example"}},
	{email: "jan@b\u00fccher.example", stored: "jan@xn--bcher-kva.example",
		lookalike: []string{"j\u0430n@b\u00fccher.example", "\uff4aan@xn--bcher-kva.example"},
		variants:  []string{"jan@xn--bcher-kva.example", "JAN@B\u00dcCHER.example", "jan@bu\u0308cher.example."}},
}

func jsonOf(t *testing.T, v map[string]any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mailTo counts the messages of the dev inbox by recipient.
func (w *flowWorld) mailTo() map[string]int {
	w.t.Helper()
	w.deliver()
	r := w.call("GET", "/dev/inbox.json", "", nil)
	out := map[string]int{}
	for _, m := range r.body["messages"].([]any) {
		out[m.(map[string]any)["to"].(string)]++
	}
	return out
}

// TestLookalikeAddressesNeverReachTheVictim runs every flow that finds an account by email with
// Unicode look-alikes and case variants of existing accounts' addresses. A look-alike is another
// mailbox: it gets no code, link or reset link of the account, cannot sign in as it with its
// password, gets no mfa_token for it, cannot be created beside it as a copy (400) and, where a
// project allows such addresses, signs up as an account of its own. A variant is the same
// mailbox: its messages go to the address the account has, never to the spelling typed.
func TestLookalikeAddressesNeverReachTheVictim(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newPasswordWorld(t, st)
		w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"protect":{"sends_per_destination_per_hour":1000}}}`, w.secret()), 200, "")
		const pw = "a victim's long passphrase 7"
		ids := map[string]string{}
		for _, v := range lookalikeVictims {
			r := w.pw("signup", jsonOf(t, map[string]any{"email": v.email, "password": pw}))
			w.want(r, 200, "")
			p := r.body["profile"].(map[string]any)
			if p["email"] != v.stored {
				t.Fatalf("signed up as %v, want %s", p["email"], v.stored)
			}
			ids[v.stored] = p["id"].(string)
		}
		send := func(path, addr string) response {
			body := map[string]any{"email": addr}
			if path == "reset/send" {
				body["redirect_url"] = "https://app.acme.test/done"
				return w.pw(path, jsonOf(t, body))
			}
			return w.post(path, jsonOf(t, body))
		}
		for _, v := range lookalikeVictims {
			for _, l := range v.lookalike {
				before := w.mailTo()
				// Codes and magic links: with sign-up on, the look-alike may not sign up (400);
				// the reset answer is the same as for any unknown address.
				code, link, reset := send("email-otp/send", l), send("magic-link/send", l), send("reset/send", l)
				after := w.mailTo()
				if after[v.stored] != before[v.stored] || len(after) != len(before) {
					t.Errorf("%+q: messages %v, then %v: a look-alike got mail sent", l, before, after)
				}
				w.want(code, 400, "invalid_email")
				w.want(link, 400, "invalid_email")
				w.want(reset, 200, "")
				w.clock.Advance(time.Minute)
				w.want(w.login(l, pw), 401, "invalid_credentials")
				w.want(w.call("POST", "/api/v1/auth/mfa/token", jsonOf(t, map[string]any{"identifier": l}), w.secret()), 404, "user_not_found")
				created := w.call("POST", "/api/v1/users", jsonOf(t, map[string]any{"email": l}), w.secret())
				w.want(created, 400, "invalid_email")
				if created.body["field"] != "email" {
					t.Errorf("%+q: refusal %s does not name the field", l, created.raw)
				}
				w.want(w.pw("signup", jsonOf(t, map[string]any{"email": l, "password": pw})), 400, "invalid_email")
			}
			for _, variant := range v.variants {
				before := w.mailTo()
				w.want(send("email-otp/send", variant), 200, "")
				w.want(send("magic-link/send", variant), 200, "")
				w.want(send("reset/send", variant), 200, "")
				after := w.mailTo()
				if after[v.stored] != before[v.stored]+3 {
					t.Errorf("%+q: %d messages to %s, want 3", variant, after[v.stored]-before[v.stored], v.stored)
				}
				if variant != v.stored && after[variant] != 0 {
					t.Errorf("%+q: %d messages to the address as typed, want them at %s", variant, after[variant], v.stored)
				}
				res := w.login(variant, pw)
				w.want(res, 200, "")
				if id := res.body["profile"].(map[string]any)["id"]; id != ids[v.stored] {
					t.Errorf("%q signed in as %v, want %s", variant, id, ids[v.stored])
				}
				w.want(w.call("POST", "/api/v1/auth/mfa/token", jsonOf(t, map[string]any{"identifier": variant}), w.secret()), 200, "")
				w.want(w.call("POST", "/api/v1/users", jsonOf(t, map[string]any{"email": variant}), w.secret()), 409, "email_exists")
			}
		}

		// A project that allows look-alike addresses signs them up as accounts of their own:
		// the code goes to the look-alike's mailbox and signs in somebody else than the victim.
		w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"emails":{"allow_lookalike_addresses":true}}}`, w.secret()), 200, "")
		for _, v := range lookalikeVictims {
			for _, l := range v.lookalike {
				seen := map[string]bool{}
				for _, m := range w.inboxByKey(l) {
					seen[m["id"].(string)] = true
				}
				r := send("email-otp/send", l)
				w.want(r, 200, "")
				// Two look-alikes in one table may be ASCII case variants of each other: the
				// second reaches the first one's account, at its address.
				var msgs []map[string]any
				for _, m := range w.inboxByKey(l) {
					if !seen[m["id"].(string)] {
						msgs = append(msgs, m)
					}
				}
				if len(msgs) != 1 || store.EmailKey(msgs[0]["to"].(string)) == store.EmailKey(v.stored) {
					t.Fatalf("%+q: new messages %v, want one to the look-alike's own mailbox", l, msgs)
				}
				code := codeRE.FindStringSubmatch(msgs[0]["text"].(string))[1]
				res := w.post("email-otp/verify", jsonOf(t, map[string]any{"state": r.body["state"], "otp": code}))
				w.want(res, 200, "")
				if id := res.body["profile"].(map[string]any)["id"]; id == ids[v.stored] || slices.Contains(mapValues(ids), id.(string)) {
					t.Errorf("%q signed in as a victim (%v)", l, id)
				}
				w.clock.Advance(time.Minute) // past the slow-down of earlier failures of the same key
				w.want(w.login(l, pw), 401, "invalid_credentials")
			}
		}
	})
}

// inboxByKey returns the dev inbox's messages to addresses with the lookup key of addr, newest
// first.
func (w *flowWorld) inboxByKey(addr string) []map[string]any {
	w.t.Helper()
	w.deliver()
	r := w.call("GET", "/dev/inbox.json", "", nil)
	var out []map[string]any
	for _, m := range r.body["messages"].([]any) {
		if mm := m.(map[string]any); store.EmailKey(mm["to"].(string)) == store.EmailKey(addr) {
			out = append(out, mm)
		}
	}
	return out
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestPasskeyOptionsForLookalikesAreStandIns: a look-alike of a user with a passkey gets the
// stand-in credentials of an unknown identifier, never the user's credential ids.
func TestPasskeyOptionsForLookalikesAreStandIns(t *testing.T) {
	w := newPasskeyWorld(t, testdb.SQLite(t))
	// Kim rather than Ada: Unicode case folding maps the KELVIN SIGN onto k.
	w.want(w.call("PUT", "/api/v1/users/"+w.userID, `{"email":"kim@example.com"}`, w.secret()), 200, "")
	opts := w.beginRegistration(w.token)
	auth, cred := newAuthenticator(opts, nil)
	w.want(w.register(w.token, opts, w.rp, auth, cred), 201, "")
	idsOf := func(identifier string) []string {
		r := w.beginLogin(url.QueryEscape(identifier))
		var out []string
		for _, c := range r.body["publicKey"].(map[string]any)["allowCredentials"].([]any) {
			out = append(out, c.(map[string]any)["id"].(string))
		}
		return out
	}
	real := idsOf("kim@example.com")
	if len(real) != 1 {
		t.Fatalf("kim's options list %v", real)
	}
	for _, variant := range []string{"KIM@example.com", "Kim@Example.COM.", "kim@EXAMPLE.com"} {
		if got := idsOf(variant); !slices.Equal(got, real) {
			t.Errorf("%+q: options list %v, want kim's %v", variant, got, real)
		}
	}
	for _, l := range []string{"\u212aim@example.com", "\u212aIM@example.com", "\uff4bim@example.com", "k\u0456m@example.com",
		"\u039aIM@example.com", "k\u0131m@example.com", "kim@ex\u0430mple.com"} {
		if got := idsOf(l); slices.Contains(got, real[0]) {
			t.Errorf("%+q: options list kim's credential %s", l, real[0])
		}
		// Her passkey cannot answer them.
		o := w.beginLogin(url.QueryEscape(l))
		cred.Counter++
		w.want(w.finishLogin(o, assertion(t, w.rp, auth, cred, o)), 401, "passkey_not_registered")
	}
}

// TestPhoneNumbersHaveOneForm: a number is stored and found in E.164 only. Spaces, dashes, dots
// and parentheses are dropped, so grouped spellings reach the account and its codes go to the
// stored number; a "00" prefix, full-width or other non-ASCII digits are refused (400), never
// folded onto someone's number.
func TestPhoneNumbersHaveOneForm(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newFlowWorld(t, st, app.WithDev(true))
		w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"protect":{"sends_per_destination_per_hour":1000}}}`, w.secret()), 200, "")
		const stored = "+14155550100"
		u := w.call("POST", "/api/v1/users", `{"phone_id":"+1 (415) 555-0100"}`, w.secret())
		w.want(u, 201, "")
		if u.body["phone_id"] != stored {
			t.Fatalf("stored phone = %v", u.body["phone_id"])
		}
		for _, variant := range []string{"+1 415 555 0100", "+1-415-555-0100", "+1.415.555.0100", " +14155550100 "} {
			before := w.mailTo()[stored]
			r := w.post("phone-otp/send", jsonOf(t, map[string]any{"phone_id": variant}))
			w.want(r, 200, "")
			after := w.mailTo()
			if after[stored] != before+1 || (variant != stored && after[variant] != 0) {
				t.Errorf("%q: messages %v, want one more to %s", variant, after, stored)
			}
			w.want(w.call("POST", "/api/v1/users", jsonOf(t, map[string]any{"phone_id": variant}), w.secret()), 409, "phone_exists")
			w.want(w.call("POST", "/api/v1/auth/mfa/token", jsonOf(t, map[string]any{"identifier": variant}), w.secret()), 200, "")
		}
		for _, other := range []string{"+\uff11\uff14\uff11\uff15\uff15\uff15\uff15\uff10\uff11\uff10\uff10", "0014155550100",
			"+\u0661\u0664\u0661\u0665\u0665\u0665\u0665\u0660\u0661\u0660\u0660", "+1 415 555 01OO"} {
			before := w.mailTo()
			w.want(w.post("phone-otp/send", jsonOf(t, map[string]any{"phone_id": other})), 400, "invalid_phone")
			w.want(w.call("POST", "/api/v1/users", jsonOf(t, map[string]any{"phone_id": other}), w.secret()), 400, "invalid_phone")
			if after := w.mailTo(); len(after) != len(before) || after[stored] != before[stored] {
				t.Errorf("%+q: messages %v, then %v", other, before, after)
			}
		}
	})
}
