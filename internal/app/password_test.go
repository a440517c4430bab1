package app_test

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testclock"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

const passwordBase = "/api/v1/auth/password/"

// passwordWorld is a flow world whose project signs in with passwords.
type passwordWorld struct {
	*flowWorld
}

func newPasswordWorld(t *testing.T, st *sqlstore.Store, opts ...app.Option) *passwordWorld {
	t.Helper()
	w := &passwordWorld{newFlowWorld(t, st, append([]app.Option{app.WithDev(true)}, opts...)...)}
	w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"login_methods":{"password":true}}}`, w.secret()), 200, "")
	return w
}

func (w *passwordWorld) pw(path, body string) response {
	w.t.Helper()
	return w.call("POST", passwordBase+path, body, w.cid())
}

func (w *passwordWorld) login(email, password string) response {
	w.t.Helper()
	return w.pw("login", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
}

// from sends a request as if from ip, through a trusted proxy.
func (w *passwordWorld) from(ip, path, body string) response {
	w.t.Helper()
	h := w.cid()
	h["X-Forwarded-For"] = ip
	return w.call("POST", passwordBase+path, body, h)
}

var resetLinkRE = regexp.MustCompile(`https://app\.acme\.test/done\?token=[A-Za-z0-9_-]+`)

func TestPasswordSignupLoginResetAndChange(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newPasswordWorld(t, st)
		const email = "ada@example.com"
		good := "correct horse battery staple"

		w.want(w.pw("signup", fmt.Sprintf(`{"email":%q,"password":"short"}`, email)), 400, "password_too_short")
		w.want(w.pw("signup", fmt.Sprintf(`{"email":%q,"password":%q}`, email, strings.Repeat("x", 129))), 400, "password_too_long")
		breached := w.pw("signup", fmt.Sprintf(`{"email":%q,"password":"Password123"}`, email))
		w.want(breached, 400, "password_breached")
		if breached.body["field"] != "password" {
			t.Errorf("breached answer = %s", breached.raw)
		}
		res := w.pw("signup", fmt.Sprintf(`{"email":%q,"password":%q,"first_name":"Ada"}`, email, good))
		w.want(res, 200, "")
		if amr := amrOf(t, res); len(amr) != 1 || amr[0] != "pwd" {
			t.Errorf("amr = %v, want [pwd]", amr)
		}
		if p := res.body["profile"].(map[string]any); p["connection_type"] != "Password" || p["email_verified"] != false {
			t.Errorf("profile = %v", p)
		}
		w.want(w.pw("signup", fmt.Sprintf(`{"email":%q,"password":%q}`, strings.ToUpper(email), good)), 409, "email_exists")

		// Wrong password, unknown email: the same answer.
		w.want(w.login(email, "wrong horse battery staple"), 401, "invalid_credentials")
		w.want(w.login("nobody@example.com", good), 401, "invalid_credentials")
		w.clock.Advance(time.Minute)
		first := w.login(" ADA@example.com", good)
		w.want(first, 200, "")

		// Reset by email: a refused new password does not spend the link; the link works once,
		// verifies the email and signs every session out.
		w.want(w.pw("reset/send", fmt.Sprintf(`{"email":%q,"redirect_url":"https://evil.example/"}`, email)), 400, "invalid_redirect_url")
		w.want(w.pw("reset/send", `{"email":"nobody@example.com","redirect_url":"https://app.acme.test/done"}`), 200, "")
		w.want(w.pw("reset/send", fmt.Sprintf(`{"email":%q,"redirect_url":"https://app.acme.test/done"}`, email)), 200, "")
		if n := len(w.inbox("nobody@example.com")); n != 0 {
			t.Errorf("%d reset emails to an unknown address", n)
		}
		// Two links (a second ask), the newer used: the older one dies with it.
		w.clock.Advance(time.Second)
		w.want(w.pw("reset/send", fmt.Sprintf(`{"email":%q,"redirect_url":"https://app.acme.test/done"}`, email)), 200, "")
		msgs := w.inbox(email)
		tokenOf := func(m map[string]any) string {
			link := resetLinkRE.FindString(m["text"].(string))
			if link == "" {
				t.Fatalf("no reset link in %q", m["text"])
			}
			u, _ := url.Parse(link)
			return u.Query().Get("token")
		}
		tok, older := tokenOf(msgs[0]), tokenOf(msgs[1])
		w.want(w.pw("reset/verify", fmt.Sprintf(`{"token":%q,"password":"qwertyuiop"}`, tok)), 400, "password_breached")
		newer := "a brand new passphrase"
		w.want(w.pw("reset/verify", fmt.Sprintf(`{"token":%q,"password":%q}`, tok, newer)), 200, "")
		w.want(w.pw("reset/verify", fmt.Sprintf(`{"token":%q,"password":%q}`, tok, newer)), 401, "invalid_reset_token")
		w.want(w.pw("reset/verify", fmt.Sprintf(`{"token":%q,"password":"yet another passphrase"}`, older)), 401, "invalid_reset_token")
		w.want(w.call("GET", "/api/v1/auth/status", "", bearer(first.body["access_token"].(string))), 401, "")
		w.want(w.login(email, good), 401, "invalid_credentials")
		w.clock.Advance(time.Minute)
		after := w.login(email, newer)
		w.want(after, 200, "")
		if after.body["profile"].(map[string]any)["email_verified"] != true {
			t.Error("a used reset link did not verify the email")
		}

		// Change, with the current password; other sessions end, this one stays.
		other := w.login(email, newer)
		w.want(other, 200, "")
		access := after.body["access_token"].(string)
		change := func(current, next string) response {
			return w.call("POST", passwordBase+"change", fmt.Sprintf(`{"current_password":%q,"new_password":%q}`, current, next), userJSON(access))
		}
		w.want(change("not it at all", "another fine passphrase"), 401, "invalid_credentials")
		w.clock.Advance(time.Minute)
		w.want(change(newer, "short"), 400, "password_too_short")
		w.want(change(newer, "another fine passphrase"), 200, "")
		// The user hears of it by email, and of the reset before it; never the password itself.
		var notices []string
		for _, m := range w.inbox(email) {
			if m["subject"] == "A change to your Acme account" {
				notices = append(notices, m["text"].(string))
			}
		}
		if len(notices) != 2 || !strings.Contains(notices[0], "Your password was changed.") ||
			!strings.Contains(notices[1], "Your password was reset") || strings.Contains(strings.Join(notices, ""), "passphrase") {
			t.Errorf("notices = %q", notices)
		}
		w.want(w.call("GET", "/api/v1/auth/status", "", bearer(access)), 200, "")
		w.want(w.call("GET", "/api/v1/auth/status", "", bearer(other.body["access_token"].(string))), 401, "")
		w.clock.Advance(10 * time.Minute)
		w.want(change("another fine passphrase", "yet another passphrase"), 403, "reauthentication_required")
	})
}

func TestPasswordsAreComparedAfterNFKC(t *testing.T) {
	w := newPasswordWorld(t, testdb.SQLite(t))
	// U+FB01 (the "fi" ligature) and full-width digits are what NFKC folds.
	w.want(w.pw("signup", `{"email":"ada@example.com","password":"ﬁne ｐａｓｓ 2026"}`), 200, "")
	w.want(w.login("ada@example.com", "fine pass 2026"), 200, "")
	w.clock.Advance(time.Minute)
	w.want(w.login("ada@example.com", "Fine pass 2026"), 401, "invalid_credentials") // case is kept
}

func TestImportedBcryptHashIsUpgradedAtLogin(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newPasswordWorld(t, st)
		u := w.call("POST", "/api/v1/users", `{"email":"legacy@example.com"}`, w.secret())
		w.want(u, 201, "")
		id := u.body["id"].(string)
		legacy, err := bcrypt.GenerateFromPassword([]byte("an old but long password"), 10)
		if err != nil {
			t.Fatal(err)
		}
		w.want(w.call("PUT", "/api/v1/users/"+id+"/password", `{"password_hash":"$1$md5$nope"}`, w.secret()), 400, "invalid_password_hash")
		w.want(w.call("PUT", "/api/v1/users/"+id+"/password", fmt.Sprintf(`{"password_hash":%q}`, legacy), w.secret()), 200, "")
		w.want(w.login("legacy@example.com", "an old but long password"), 200, "")
		stored, err := st.GetPasswordHash(t.Context(), w.proj.Project.ID, id)
		if err != nil || !strings.HasPrefix(stored, "$argon2id$v=19$m=19456,t=2,p=1$") {
			t.Fatalf("hash after login = %q, %v; want argon2id", stored, err)
		}
		w.clock.Advance(time.Minute)
		w.want(w.login("legacy@example.com", "an old but long password"), 200, "")
	})
}

// TestPasswordGuessingLocksThePair guesses one account's password from one IP: quicker
// guesses wait, ten lock that IP out for 15 minutes (the right password too), while the owner
// signs in from elsewhere; after the lock the right password works.
func TestPasswordGuessingLocksThePair(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newPasswordWorld(t, st, app.WithTrustedProxies([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}))
		const right = "correct horse battery staple"
		w.want(w.pw("signup", `{"email":"ada@example.com","password":"`+right+`"}`), 200, "")
		guess := func(pw string) response {
			return w.from("203.0.113.7", "login", fmt.Sprintf(`{"email":"ada@example.com","password":%q}`, pw))
		}
		for i := range 10 {
			r := guess(fmt.Sprintf("wrong guess number %d", i))
			if r.status == 429 {
				t.Fatalf("guess %d refused early: %s", i, r.raw)
			}
			w.want(r, 401, "invalid_credentials")
			if i == 3 {
				// The fourth came at once after the third: the fifth must wait.
				fast := guess("one more at once")
				w.want(fast, 429, "too_many_attempts")
				if fast.header.Get("Retry-After") == "" {
					t.Error("no Retry-After")
				}
			}
			w.clock.Advance(30 * time.Second)
		}
		locked := guess(right)
		w.want(locked, 429, "account_locked")
		if ra := atoi(locked.header.Get("Retry-After")); ra < 600 || ra > 900 {
			t.Errorf("Retry-After = %q", locked.header.Get("Retry-After"))
		}
		w.want(w.from("198.51.100.1", "login", `{"email":"ada@example.com","password":"`+right+`"}`), 200, "")
		w.clock.Advance(15 * time.Minute)
		w.want(guess(right), 200, "")
	})
}

// TestCredentialStuffingThrottlesTheIP tries 200 accounts from one IP: after 100 failures in
// the hour the IP is throttled, while others sign in as usual.
func TestCredentialStuffingThrottlesTheIP(t *testing.T) {
	w := newPasswordWorld(t, testdb.SQLite(t), app.WithTrustedProxies([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}))
	w.want(w.pw("signup", `{"email":"ada@example.com","password":"correct horse battery staple"}`), 200, "")
	throttled := 0
	for i := range 200 {
		r := w.from("203.0.113.9", "login", fmt.Sprintf(`{"email":"victim%d@example.com","password":"leaked password %d"}`, i, i))
		switch {
		case r.status == 401 && i < 100:
		case r.status == 429 && r.body["error_code"] == "ip_throttled" && i >= 100:
			throttled++
		default:
			t.Fatalf("attempt %d: %d %s", i, r.status, r.raw)
		}
	}
	if throttled != 100 {
		t.Errorf("%d of the last 100 attempts throttled, want all", throttled)
	}
	w.want(w.from("198.51.100.20", "login", `{"email":"ada@example.com","password":"correct horse battery staple"}`), 200, "")
	w.want(w.from("203.0.113.9", "login", `{"email":"ada@example.com","password":"correct horse battery staple"}`), 429, "ip_throttled")
}

// TestHIBPRefusesAPwnedPassword runs the sign-up against a local server speaking the Pwned
// Passwords range API.
func TestHIBPRefusesAPwnedPassword(t *testing.T) {
	const pwned = "a leaked but long passphrase"
	sum := sha1.Sum([]byte(pwned))
	full := strings.ToUpper(hex.EncodeToString(sum[:]))
	var asked []string
	hibp := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.Path)
		if r.Header.Get("Add-Padding") != "true" {
			http.Error(rw, "padding", 400)
			return
		}
		body := "0000000000000000000000000000000000A:0\r\n"
		if r.URL.Path == "/range/"+full[:5] {
			body += full[5:] + ":42\r\n"
		}
		fmt.Fprint(rw, body)
	}))
	defer hibp.Close()
	w := newPasswordWorld(t, testdb.SQLite(t), app.WithHIBP(hibp.URL))
	w.want(w.pw("signup", fmt.Sprintf(`{"email":"ada@example.com","password":%q}`, pwned)), 400, "password_breached")
	w.want(w.pw("signup", `{"email":"ada@example.com","password":"never seen anywhere before 7"}`), 200, "")
	for _, p := range asked {
		if len(p) != len("/range/")+5 {
			t.Errorf("asked %q: only a 5-character prefix may leave the server", p)
		}
	}
	if len(asked) != 2 {
		t.Errorf("HIBP asked %d times, want 2", len(asked))
	}
}

// BenchmarkPasswordLogin measures a password login over HTTP on SQLite with EdDSA tokens:
// attack protection's check and reset (two short transactions), one argon2id verification at
// the default parameters (19 MiB, t=2, p=1) and the login (login log, session, tokens).
//
//	go test -run '^$' -bench PasswordLogin -benchmem ./internal/app
func BenchmarkPasswordLogin(b *testing.B) {
	a, p := newBenchApp(b, `{"login_methods":{"password":true},"tokens":{"signing_algorithm":"EdDSA"},"protect":{"bot_check":"off"}}`)
	h := a.Handler()
	post := func(path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", passwordBase+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Client-Id", p.ClientID)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := post("signup", `{"email":"bench@example.com","password":"correct horse battery staple"}`); rec.Code != http.StatusOK {
		b.Fatalf("signup: %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		if rec := post("login", `{"email":"bench@example.com","password":"correct horse battery staple"}`); rec.Code != http.StatusOK {
			b.Fatalf("login: %d %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkResetSend measures reset/send for an address with an account and for one without:
// the two must cost the same, or the time of the answer tells whether an account exists. The
// clock moves an hour per send so that the per-address send limit never answers instead.
func BenchmarkResetSend(b *testing.B) {
	clock := testclock.New(time.Now().UTC().Truncate(time.Second))
	a, p := newBenchApp(b, `{"login_methods":{"password":true},"redirect_uris":["https://app.acme.test/done"],"protect":{"bot_check":"off"}}`,
		app.WithClock(clock.Now), app.WithDev(true))
	h := a.Handler()
	post := func(path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", passwordBase+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Client-Id", p.ClientID)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := post("signup", `{"email":"known@example.com","password":"correct horse battery staple"}`); rec.Code != http.StatusOK {
		b.Fatalf("signup: %d %s", rec.Code, rec.Body)
	}
	// Known and unknown alternate within each iteration, so that the load of a shared machine
	// weighs on both alike; each is reported as its own metric.
	var spent [2]time.Duration
	b.ReportAllocs()
	for b.Loop() {
		for i, email := range []string{"known@example.com", "stranger@example.com"} {
			clock.Advance(time.Hour + time.Minute)
			body := `{"email":"` + email + `","redirect_url":"https://app.acme.test/done"}`
			start := time.Now()
			rec := post("reset/send", body)
			spent[i] += time.Since(start)
			if rec.Code != http.StatusOK {
				b.Fatalf("reset/send: %d %s", rec.Code, rec.Body)
			}
		}
	}
	b.ReportMetric(float64(spent[0].Nanoseconds())/float64(b.N), "known-ns/op")
	b.ReportMetric(float64(spent[1].Nanoseconds())/float64(b.N), "unknown-ns/op")
	b.ReportMetric(float64(spent[0])/float64(spent[1]), "known/unknown")
}

// BenchmarkLoginImportedBcrypt measures wrong-password logins for users on imported bcrypt-12
// hashes, for users on argon2id and for emails without an account, in a project where three
// users in four are still on their imported hash. An unknown email imitates the hash of a user
// drawn from that mix, so unknown emails cost what known ones do on average (about three
// quarters of them bcrypt's time) instead of always argon2id's. Each iteration moves the clock
// an hour so that attack protection never answers instead; users are rotated so none locks.
func BenchmarkLoginImportedBcrypt(b *testing.B) {
	clock := testclock.New(time.Now().UTC().Truncate(time.Second))
	a, p := newBenchApp(b, `{"login_methods":{"password":true},"protect":{"bot_check":"off"}}`, app.WithClock(clock.Now))
	h := a.Handler()
	call := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Client-Id", p.ClientID)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	imported, err := bcrypt.GenerateFromPassword([]byte("an imported password"), 12)
	if err != nil {
		b.Fatal(err)
	}
	const bcryptUsers, argonUsers = 30, 10
	for i := range bcryptUsers {
		email := fmt.Sprintf("imported-%d@example.com", i)
		u, err := a.Directory().CreateUser(b.Context(), audit.Actor{Kind: audit.ActorCLI}, p.ID, directory.UserInput{Email: &email})
		if err != nil {
			b.Fatal(err)
		}
		// As PUT /api/v1/users/{id}/password with password_hash stores it.
		if err := a.Store().SetPasswordHash(b.Context(), p.ID, u.ID, string(imported), clock.Now()); err != nil {
			b.Fatal(err)
		}
	}
	for i := range argonUsers {
		body := fmt.Sprintf(`{"email":"native-%d@example.com","password":"correct horse battery staple"}`, i)
		if rec := call("POST", passwordBase+"signup", body); rec.Code != http.StatusOK {
			b.Fatalf("signup: %d %s", rec.Code, rec.Body)
		}
	}
	var spent [3]time.Duration
	n := 0
	for b.Loop() {
		for k, email := range []string{fmt.Sprintf("imported-%d@example.com", n%bcryptUsers),
			fmt.Sprintf("native-%d@example.com", n%argonUsers), fmt.Sprintf("stranger-%d@example.com", n)} {
			clock.Advance(time.Hour + time.Minute)
			start := time.Now()
			rec := call("POST", passwordBase+"login", `{"email":"`+email+`","password":"not the password at all"}`)
			spent[k] += time.Since(start)
			if rec.Code != http.StatusUnauthorized {
				b.Fatalf("login %s: %d %s", email, rec.Code, rec.Body)
			}
		}
		n++
	}
	b.ReportMetric(float64(spent[0].Nanoseconds())/float64(b.N), "bcrypt-user-ns/op")
	b.ReportMetric(float64(spent[1].Nanoseconds())/float64(b.N), "argon2-user-ns/op")
	b.ReportMetric(float64(spent[2].Nanoseconds())/float64(b.N), "unknown-ns/op")
}
