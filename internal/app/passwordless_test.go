package app_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/outbox"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/secretbox"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testclock"
	"github.com/latchkey-dev/latchkey/internal/testdb"
	"github.com/latchkey-dev/latchkey/internal/testmail"
)

// flowWorld is a server whose outbox worker the test drives (RunOnce), on an injected clock.
type flowWorld struct {
	*tokenWorld
}

func newFlowWorld(t *testing.T, st *sqlstore.Store, opts ...app.Option) *flowWorld {
	t.Helper()
	w := &tokenWorld{t: t, clock: testclock.New(time.Now().UTC().Truncate(time.Second))}
	var err error
	w.a, err = app.NewWithStore(st, append([]app.Option{app.WithPublicURL("http://auth.test"), app.WithClock(w.clock.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	w.srv = httptest.NewServer(w.a.Handler())
	checkAgainstOpenAPI(t, w.srv)
	t.Cleanup(w.srv.Close)
	if w.proj, err = w.a.Projects().Create(t.Context(), project.NewProject{Name: "Acme", RedirectURIs: []string{"https://app.acme.test/done"}}); err != nil {
		t.Fatal(err)
	}
	// Every request comes from one IP here: the bot check's own tests turn it on.
	w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"login_methods":{"phone_otp":true},"protect":{"bot_check":"off"}}}`, w.secret()), 200, "")
	return &flowWorld{w}
}

func (w *flowWorld) cid() map[string]string {
	return map[string]string{"X-Client-Id": w.proj.Project.ClientID, "Content-Type": "application/json"}
}

// post calls a passwordless endpoint with the client id.
func (w *flowWorld) post(path, body string) response {
	w.t.Helper()
	return w.call("POST", "/api/v1/auth/passwordless/"+path, body, w.cid())
}

// deliver runs the outbox worker until it has nothing left to do now.
func (w *flowWorld) deliver() {
	w.t.Helper()
	for {
		n, err := w.a.Worker().RunOnce(context.Background())
		if err != nil {
			w.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// inbox returns the dev inbox's messages to `to`, newest first.
func (w *flowWorld) inbox(to string) []map[string]any {
	w.t.Helper()
	w.deliver()
	r := w.call("GET", "/dev/inbox.json", "", nil)
	if r.status != 200 {
		w.t.Fatalf("dev inbox: %d %s", r.status, r.raw)
	}
	var out []map[string]any
	for _, m := range r.body["messages"].([]any) {
		if mm := m.(map[string]any); mm["to"] == to {
			out = append(out, mm)
		}
	}
	return out
}

var codeRE = regexp.MustCompile(`\b(\d{6})\b`)
var linkRE = regexp.MustCompile(`http://auth\.test/api/v1/auth/passwordless/magic-link/verify\?[^\s"<]+`)

func (w *flowWorld) lastCode(to string) string {
	w.t.Helper()
	msgs := w.inbox(to)
	if len(msgs) == 0 {
		w.t.Fatalf("no message to %s", to)
	}
	m := codeRE.FindStringSubmatch(msgs[0]["text"].(string))
	if m == nil {
		w.t.Fatalf("no code in %q", msgs[0]["text"])
	}
	return m[1]
}

func TestEmailCodeFlow(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newFlowWorld(t, st, app.WithDev(true))
		r := w.post("email-otp/send", `{"email":"Ada@Example.com"}`)
		w.want(r, 200, "")
		state := r.body["state"].(string)
		// The alias starts the same kind of flow.
		w.want(w.post("magic-otp/send", `{"email":"other@example.com"}`), 200, "")

		code := w.lastCode("Ada@example.com")
		res := w.post("email-otp/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, state, code))
		if res.status != 200 || res.body["authenticated"] != true || res.body["access_token"] == nil {
			t.Fatalf("verify: %d %s", res.status, res.raw)
		}
		profile := res.body["profile"].(map[string]any)
		if profile["email"] != "Ada@example.com" || profile["email_verified"] != true || profile["connection_type"] != "EmailOTP" {
			t.Errorf("profile = %v", profile)
		}
		// Used: the same code or any other answer is refused.
		w.want(w.post("email-otp/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, state, code)), 404, "flow_not_found")
		// The login is an audit event, written with it.
		events, err := st.ListAuditEvents(t.Context(), w.proj.Project.ID, store.AuditFilter{Type: "login.succeeded"}, 10, "")
		if err != nil || len(events) != 1 || events[0].UserID != profile["id"] || events[0].Detail["connection_type"] != "EmailOTP" ||
			events[0].IPAddress == "" {
			t.Errorf("login.succeeded events = %+v, %v", events, err)
		}
		w.want(w.call("GET", "/api/v1/auth/status", "", bearer(res.body["access_token"].(string))), 200, "")
	})
}

func TestMagicLinkFlow(t *testing.T) {
	w := newFlowWorld(t, testdb.SQLite(t), app.WithDev(true))
	w.want(w.post("magic-link/send", `{"email":"ada@example.com","redirect_url":"https://evil.test/"}`), 400, "invalid_redirect_url")
	r := w.post("magic-link/send", `{"email":"ada@example.com"}`)
	w.want(r, 200, "")
	state := r.body["state"].(string)
	status := func() response {
		return w.call("GET", "/api/v1/auth/passwordless/magic-link/status?client_id="+w.proj.Project.ClientID+"&state="+state, "", nil)
	}
	if s := status(); s.status != 200 || s.body["authenticated"] != false || len(s.body) != 1 {
		t.Fatalf("status before the click: %d %s", s.status, s.raw)
	}
	msgs := w.inbox("ada@example.com")
	link := linkRE.FindString(msgs[0]["text"].(string))
	if link == "" {
		t.Fatalf("no link in %q", msgs[0]["text"])
	}
	// Another device opens the link: a plain client with no cookies and no client header.
	other := &http.Client{}
	resp, err := other.Get(strings.Replace(link, "http://auth.test", w.srv.URL, 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("verify page: %d %v", resp.StatusCode, resp.Header)
	}
	s := status()
	if s.status != 200 || s.body["authenticated"] != true || s.body["refresh_token"] == nil {
		t.Fatalf("status after the click: %d %s", s.status, s.raw)
	}
	w.want(status(), 404, "flow_not_found") // the result is handed out once
	resp, err = other.Get(strings.Replace(link, "http://auth.test", w.srv.URL, 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("reopened link: %d, want 404", resp.StatusCode)
	}

	// With a registered redirect URL, the link sends the browser there with the state. (A
	// second later, so that the inbox's newest-first order is not a tie.)
	w.clock.Advance(time.Second)
	r = w.post("magic-link/send", `{"email":"ada@example.com","redirect_url":"https://app.acme.test/done"}`)
	w.want(r, 200, "")
	link = linkRE.FindString(w.inbox("ada@example.com")[0]["text"].(string))
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Get(strings.Replace(link, "http://auth.test", w.srv.URL, 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "https://app.acme.test/done?state="+r.body["state"].(string) {
		t.Errorf("redirecting link: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestCodeAbuse(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newFlowWorld(t, st, app.WithDev(true))
		send := func(email string) string {
			r := w.post("email-otp/send", `{"email":"`+email+`"}`)
			w.want(r, 200, "")
			return r.body["state"].(string)
		}
		verify := func(state, code string) response {
			return w.post("email-otp/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, state, code))
		}

		// Five wrong codes kill the flow; the right one is then refused too.
		state := send("five@example.com")
		code := w.lastCode("five@example.com")
		wrong := fmt.Sprintf("%06d", (atoi(code)+1)%1000000)
		// At a person's pace: attack protection slows down quicker guesses (TestCodeGuessesAreSlowedDown).
		for i := 1; i <= 4; i++ {
			r := verify(state, wrong)
			if r.status != 401 || r.body["error_code"] != "invalid_code" {
				t.Fatalf("wrong code %d: %d %s", i, r.status, r.raw)
			}
			w.clock.Advance(30 * time.Second)
		}
		w.want(verify(state, wrong), 401, "flow_dead")
		w.want(verify(state, code), 404, "flow_not_found") // a dead flow is refused before any wait

		// 50 concurrent verifies of the right code: exactly one logs in.
		state = send("race@example.com")
		code = w.lastCode("race@example.com")
		var wg sync.WaitGroup
		statuses := make([]int, 50)
		start := make(chan struct{})
		for i := range statuses {
			wg.Go(func() {
				<-start
				statuses[i] = verify(state, code).status
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, s := range statuses {
			if s == 200 {
				ok++
			}
		}
		if ok != 1 {
			t.Fatalf("%d of 50 concurrent verifies of one code succeeded, want 1: %v", ok, statuses)
		}

		// Expired: five minutes by default.
		state = send("late@example.com")
		code = w.lastCode("late@example.com")
		w.clock.Advance(5*time.Minute + time.Second)
		w.want(verify(state, code), 404, "flow_not_found")

		// Resend: not within 30 s, at most 3 times; each voids the previous code.
		state = send("resend@example.com")
		first := w.lastCode("resend@example.com")
		w.want(w.post("email-otp/resend", `{"state":"`+state+`"}`), 429, "resend_too_soon")
		var last string
		for i := 1; i <= 3; i++ {
			w.clock.Advance(31 * time.Second)
			w.want(w.post("email-otp/resend", `{"state":"`+state+`"}`), 200, "")
			last = w.lastCode("resend@example.com")
		}
		if n := len(w.inbox("resend@example.com")); n != 4 {
			t.Errorf("%d messages after three resends, want 4", n)
		}
		w.clock.Advance(31 * time.Second)
		w.want(w.post("email-otp/resend", `{"state":"`+state+`"}`), 429, "resend_limit")
		if first != last {
			r := verify(state, first)
			if r.status != 401 || r.body["error_code"] != "invalid_code" {
				t.Errorf("a code voided by a resend: %d %s", r.status, r.raw)
			}
		}
		w.want(verify(state, last), 200, "")

		w.want(w.post("email-otp/verify", `{"state":"ffffffffffffffffffffffff","otp":"123456"}`), 404, "flow_not_found")
		w.want(w.post("email-otp/verify", `{"state":"`+state+`"}`), 400, "invalid_request")
		w.want(w.post("email-otp/send", `{"email":"not-an-email"}`), 400, "invalid_email")
		w.want(w.call("POST", "/api/v1/auth/passwordless/email-otp/send", `{"email":"a@example.com"}`, map[string]string{"Content-Type": "application/json"}), 400, "missing_client_id")
	})
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestUnknownEmailsLookTheSame(t *testing.T) {
	w := newFlowWorld(t, testdb.SQLite(t), app.WithDev(true))
	w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"allow_signup":false}}`, w.secret()), 200, "")
	known := "known@example.com"
	w.want(w.call("POST", "/api/v1/users", `{"email":"`+known+`"}`, w.secret()), 201, "")
	shape := func(r response) string {
		keys := []string{}
		for k, v := range r.body {
			keys = append(keys, fmt.Sprintf("%s:%T:%d", k, v, len(fmt.Sprint(v))))
		}
		return fmt.Sprint(r.status, keys, r.header.Get("Content-Type"))
	}
	for _, path := range []string{"email-otp/send", "magic-link/send"} {
		a := w.post(path, `{"email":"`+known+`"}`)
		b := w.post(path, `{"email":"stranger@example.com"}`)
		if shape(a) != shape(b) {
			t.Errorf("%s answers differ for a known and an unknown email:\n%s\n%s", path, a.raw, b.raw)
		}
		// A resend of the stranger's flow answers the same as the known one's, too.
		w.clock.Advance(31 * time.Second)
		ra := w.post(strings.Replace(path, "send", "resend", 1), `{"state":"`+a.body["state"].(string)+`"}`)
		rb := w.post(strings.Replace(path, "send", "resend", 1), `{"state":"`+b.body["state"].(string)+`"}`)
		if ra.status != rb.status || string(ra.raw) != string(rb.raw) {
			t.Errorf("%s resend answers differ: %s / %s", path, ra.raw, rb.raw)
		}
	}
	if n := len(w.inbox("stranger@example.com")); n != 0 {
		t.Errorf("%d messages went to an email that may not sign up", n)
	}
	if n := len(w.inbox(known)); n != 4 {
		t.Errorf("%d messages to the known user, want 4", n)
	}
}

// countingSealer counts the payloads it seals.
type countingSealer struct {
	*secretbox.Keyring
	n atomic.Int64
}

func (c *countingSealer) Seal(plaintext, aad []byte) ([]byte, error) {
	c.n.Add(1)
	return c.Keyring.Seal(plaintext, aad)
}

// TestUnknownEmailsCostTheSame: with sign-up off, a send or resend to an unknown email
// composes and seals its message like one to a user (then drops it), so that the time of the
// answer does not tell the two apart. BenchmarkSendSignupOff measures what is left.
func TestUnknownEmailsCostTheSame(t *testing.T) {
	key, err := secretbox.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secretbox.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	sealer := &countingSealer{Keyring: ring}
	w := newFlowWorld(t, testdb.SQLite(t), app.WithDev(true), app.WithSealer(sealer))
	w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"allow_signup":false}}`, w.secret()), 200, "")
	w.want(w.call("POST", "/api/v1/users", `{"email":"known@example.com"}`, w.secret()), 201, "")
	seals := func(path, body string) int64 {
		before := sealer.n.Load()
		w.want(w.post(path, body), 200, "")
		return sealer.n.Load() - before
	}
	for _, path := range []string{"email-otp/send", "magic-link/send"} {
		known, unknown := w.post(path, `{"email":"known@example.com"}`), w.post(path, `{"email":"stranger@example.com"}`)
		w.want(known, 200, "")
		w.want(unknown, 200, "")
		if k, u := seals(path, `{"email":"known@example.com"}`), seals(path, `{"email":"stranger@example.com"}`); k != 1 || u != 1 {
			t.Errorf("%s sealed %d payloads for a user and %d for a stranger, want 1 and 1", path, k, u)
		}
		w.clock.Advance(31 * time.Second)
		resend := strings.Replace(path, "send", "resend", 1)
		k := seals(resend, `{"state":"`+known.body["state"].(string)+`"}`)
		u := seals(resend, `{"state":"`+unknown.body["state"].(string)+`"}`)
		if k != 1 || u != 1 {
			t.Errorf("%s sealed %d payloads for a user and %d for a stranger, want 1 and 1", resend, k, u)
		}
	}
	if n := len(w.inbox("stranger@example.com")); n != 0 {
		t.Errorf("%d messages went to an email that may not sign up", n)
	}
}

func TestSendWithoutASender(t *testing.T) {
	w := newFlowWorld(t, testdb.SQLite(t))
	w.want(w.post("email-otp/send", `{"email":"a@example.com"}`), 503, "delivery_not_configured")
	w.want(w.post("phone-otp/send", `{"phone_id":"+14155550100"}`), 503, "delivery_not_configured")
	if r := w.call("GET", "/dev/inbox", "", nil); r.status != 404 {
		t.Errorf("/dev/inbox without --dev: %d", r.status)
	}
}

func TestTemplates(t *testing.T) {
	w := newFlowWorld(t, testdb.SQLite(t), app.WithDev(true))
	r := w.call("GET", "/api/v1/templates/email_otp", "", w.secret())
	if r.status != 200 || r.body["is_default"] != true || !strings.Contains(r.body["text"].(string), "{{.code}}") {
		t.Fatalf("default template: %d %s", r.status, r.raw)
	}
	w.want(w.call("GET", "/api/v1/templates/welcome", "", w.secret()), 404, "template_not_found")
	w.want(w.call("PUT", "/api/v1/templates/email_otp", `{"subject":"Code","text":"{{.code","html":""}`, w.secret()), 400, "invalid_template")
	w.want(w.call("PUT", "/api/v1/templates/email_otp", `{"subject":"Code","text":"{{.code | nosuchfunc}}","html":""}`, w.secret()), 400, "invalid_template")
	w.want(w.call("PUT", "/api/v1/templates/email_otp", `{"subject":"Your {{.brand}} code","text":"Use {{.code}} within {{.expiry}}.","html":"<p>Use <b>{{.code}}</b></p>"}`, w.secret()), 200, "")
	w.want(w.post("email-otp/send", `{"email":"tpl@example.com"}`), 200, "")
	m := w.inbox("tpl@example.com")[0]
	if m["subject"] != "Your Acme code" || !strings.HasPrefix(m["text"].(string), "Use ") || !strings.Contains(m["text"].(string), "within 5 minutes.") {
		t.Errorf("message from the custom template = %v", m)
	}
	r = w.call("DELETE", "/api/v1/templates/email_otp", "", w.secret())
	if r.status != 200 || r.body["is_default"] != true {
		t.Errorf("reset: %d %s", r.status, r.raw)
	}
	w.want(w.call("GET", "/api/v1/templates/email_otp", "", map[string]string{"X-Client-Id": w.proj.Project.ClientID}), 401, "missing_credentials")
}

// TestMailpitDelivery sends a magic link and an email code through a real SMTP server.
func TestMailpitDelivery(t *testing.T) {
	mp := testmail.Start(t)
	smtp, err := notify.NewSMTPSender(notify.SMTPConfig{Host: mp.SMTPHost(), Port: mp.SMTPPort(), TLS: "none", From: "Acme <no-reply@acme.test>"})
	if err != nil {
		t.Fatal(err)
	}
	w := newFlowWorld(t, testdb.SQLite(t), app.WithSenders(map[notify.Channel]notify.Sender{notify.Email: smtp}))

	r := w.post("magic-link/send", `{"email":"link@example.com"}`)
	w.want(r, 200, "")
	w.deliver()
	msgs := mp.WaitFor(t, "link@example.com", 1, 10*time.Second)
	link := linkRE.FindString(mp.Text(t, msgs[0].ID))
	if link == "" || !strings.Contains(mp.HTML(t, msgs[0].ID), "magic-link/verify") {
		t.Fatalf("the email holds no link:\n%s", mp.Text(t, msgs[0].ID))
	}
	resp, err := http.Get(strings.Replace(link, "http://auth.test", w.srv.URL, 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s := w.call("GET", "/api/v1/auth/passwordless/magic-link/status?client_id="+w.proj.Project.ClientID+"&state="+r.body["state"].(string), "", nil)
	if s.status != 200 || s.body["access_token"] == nil {
		t.Fatalf("status after the link: %d %s", s.status, s.raw)
	}

	r = w.post("email-otp/send", `{"email":"code@example.com"}`)
	w.want(r, 200, "")
	w.deliver()
	msgs = mp.WaitFor(t, "code@example.com", 1, 10*time.Second)
	code := codeRE.FindStringSubmatch(mp.Text(t, msgs[0].ID))
	if code == nil {
		t.Fatalf("no code in the email")
	}
	w.want(w.post("email-otp/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, r.body["state"], code[1])), 200, "")
}

// TestOutboxRetriesThroughSMTPFailures makes mailpit refuse recipients with 451, then lets
// them through: the message arrives exactly once and its code works.
func TestOutboxRetriesThroughSMTPFailures(t *testing.T) {
	mp := testmail.Start(t)
	smtp, err := notify.NewSMTPSender(notify.SMTPConfig{Host: mp.SMTPHost(), Port: mp.SMTPPort(), TLS: "none", From: "Acme <no-reply@acme.test>"})
	if err != nil {
		t.Fatal(err)
	}
	w := newFlowWorld(t, testdb.SQLite(t), app.WithSenders(map[notify.Channel]notify.Sender{notify.Email: smtp}))
	mp.SetChaos(t, 451, 100)
	r := w.post("email-otp/send", `{"email":"retry@example.com"}`)
	w.want(r, 200, "")
	for range 3 {
		w.deliver()
		w.clock.Advance(10 * time.Second) // past the backoff (1s, 2s, 4s)
	}
	if got := mp.Messages(t); len(got) != 0 {
		t.Fatalf("%d messages arrived while the server refused them", len(got))
	}
	mp.SetChaos(t, 0, 0)
	w.clock.Advance(10 * time.Second)
	w.deliver()
	w.clock.Advance(time.Minute)
	w.deliver() // nothing left: it was delivered once
	msgs := mp.WaitFor(t, "retry@example.com", 1, 10*time.Second)
	time.Sleep(200 * time.Millisecond) // let a duplicate, if one were sent, arrive
	if all := mp.Messages(t); len(all) != 1 {
		t.Fatalf("%d messages after recovery, want exactly 1", len(all))
	}
	code := codeRE.FindStringSubmatch(mp.Text(t, msgs[0].ID))
	if code == nil {
		t.Fatal("no code in the email")
	}
	w.want(w.post("email-otp/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, r.body["state"], code[1])), 200, "")
}

// twilioFake is an HTTP server that checks requests the way Twilio's Messages API does and
// records each message.
type twilioFake struct {
	mu       sync.Mutex
	messages []url.Values
	srv      *httptest.Server
}

func newTwilioFake(t *testing.T, sid, tok string) *twilioFake {
	f := &twilioFake{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if r.Method != "POST" || r.URL.Path != "/2010-04-01/Accounts/"+sid+"/Messages.json" {
			http.Error(w, `{"code":20404,"message":"not found"}`, 404)
			return
		}
		if !ok || user != sid || pass != tok {
			http.Error(w, `{"code":20003,"message":"Authenticate"}`, http.StatusUnauthorized)
			return
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
			http.Error(w, `{"code":20001,"message":"bad content type"}`, 400)
			return
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("To") == "" || r.PostForm.Get("From") == "" || r.PostForm.Get("Body") == "" {
			http.Error(w, `{"code":21602,"message":"Message body is required."}`, 400)
			return
		}
		f.mu.Lock()
		f.messages = append(f.messages, r.PostForm)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		_ = json.NewEncoder(w).Encode(map[string]any{"sid": "SM" + strings.Repeat("0", 32), "status": "queued"})
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *twilioFake) last() url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.messages) == 0 {
		return nil
	}
	return f.messages[len(f.messages)-1]
}

func TestSMSCodeThroughATwilioCompatibleAPI(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		twilio := newTwilioFake(t, "AC0123", "secret-token")
		sms, err := notify.NewTwilioSender(notify.TwilioConfig{BaseURL: twilio.srv.URL, AccountSID: "AC0123", AuthToken: "secret-token", From: "+15005550006"})
		if err != nil {
			t.Fatal(err)
		}
		w := newFlowWorld(t, st, app.WithSenders(map[notify.Channel]notify.Sender{notify.SMS: sms}))
		r := w.post("phone-otp/send", `{"phone_id":"+1 (415) 555-0100"}`)
		if r.status != 200 || r.body["state"] == nil || r.body["state"] != r.body["state_id"] {
			t.Fatalf("send: %d %s", r.status, r.raw)
		}
		w.deliver()
		msg := twilio.last()
		if msg == nil || msg.Get("To") != "+14155550100" || msg.Get("From") != "+15005550006" {
			t.Fatalf("twilio got %v", msg)
		}
		code := codeRE.FindStringSubmatch(msg.Get("Body"))
		if code == nil {
			t.Fatalf("no code in %q", msg.Get("Body"))
		}
		res := w.post("phone-otp/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, r.body["state"], code[1]))
		if res.status != 200 {
			t.Fatalf("verify: %d %s", res.status, res.raw)
		}
		profile := res.body["profile"].(map[string]any)
		if profile["phone_id"] != "+14155550100" || profile["phone_verified"] != true || profile["connection_type"] != "PhoneOTP" {
			t.Errorf("profile = %v", profile)
		}
		// The same number again finds the same user.
		r = w.post("phone-otp/send", `{"phone":"+14155550100"}`)
		w.want(r, 200, "")
		w.deliver()
		code = codeRE.FindStringSubmatch(twilio.last().Get("Body"))
		again := w.post("phone-otp/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, r.body["state"], code[1]))
		w.want(again, 200, "")
		if again.body["profile"].(map[string]any)["id"] != profile["id"] {
			t.Error("a second login by the same phone created another user")
		}
		w.want(w.post("phone-otp/send", `{"phone_id":"555-0100"}`), 400, "invalid_phone")
	})
}

// recordingSender keeps what it is asked to send.
type recordingSender struct {
	mu   sync.Mutex
	sent []notify.Message
}

func (s *recordingSender) Send(_ context.Context, m notify.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, m)
	return nil
}

func (s *recordingSender) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent)
}

// TestCodeMessagesExpireWithTheirFlow: a code's outbox message carries the flow's expiry, a
// resend's the new one, and a worker that gets to it only after the code expired never
// sends it.
func TestCodeMessagesExpireWithTheirFlow(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		sender := &recordingSender{}
		w := newFlowWorld(t, st, app.WithSenders(map[notify.Channel]notify.Sender{notify.Email: sender}))
		ctx := t.Context()
		pid := w.proj.Project.ID
		outboxTo := func(to string) []store.OutboxMessage {
			all, err := w.a.Store().ListOutbox(ctx, 100)
			if err != nil {
				t.Fatal(err)
			}
			var out []store.OutboxMessage
			for _, m := range all {
				if m.Recipient == to {
					out = append(out, m)
				}
			}
			return out
		}

		r := w.post("email-otp/send", `{"email":"late@example.com"}`)
		w.want(r, 200, "")
		f, err := w.a.Store().GetFlow(ctx, pid, r.body["state"].(string))
		if err != nil {
			t.Fatal(err)
		}
		msgs := outboxTo("late@example.com")
		if len(msgs) != 1 || msgs[0].ExpiresAt == nil || !msgs[0].ExpiresAt.Equal(f.ExpiresAt) || !f.ExpiresAt.Equal(w.clock.Now().Add(5*time.Minute)) {
			t.Fatalf("message expiry %v, flow expiry %v: want both 5 minutes from now", msgs[0].ExpiresAt, f.ExpiresAt)
		}

		// The worker gets to it only once the code has expired: it is given up, not sent.
		w.clock.Advance(5 * time.Minute)
		w.deliver()
		if n := sender.count(); n != 0 {
			t.Fatalf("%d messages were sent after the code expired", n)
		}
		if m := outboxTo("late@example.com")[0]; m.SentAt != nil || m.FailedAt == nil || m.LastError != outbox.ExpiredReason {
			t.Errorf("expired message: sent %v failed %v last error %q", m.SentAt, m.FailedAt, m.LastError)
		}

		// A fresh code is sent; its resend's message expires with the renewed flow.
		r = w.post("email-otp/send", `{"email":"prompt@example.com"}`)
		w.want(r, 200, "")
		w.deliver()
		w.clock.Advance(31 * time.Second)
		w.want(w.post("email-otp/resend", `{"state":"`+r.body["state"].(string)+`"}`), 200, "")
		w.deliver()
		if n := sender.count(); n != 2 {
			t.Errorf("%d messages sent, want the code and its resend", n)
		}
		f, err = w.a.Store().GetFlow(ctx, pid, r.body["state"].(string))
		if err != nil {
			t.Fatal(err)
		}
		msgs = outboxTo("prompt@example.com")
		if len(msgs) != 2 || msgs[0].ExpiresAt == nil || msgs[1].ExpiresAt == nil ||
			!msgs[0].ExpiresAt.Equal(f.ExpiresAt) || !msgs[1].ExpiresAt.Before(f.ExpiresAt) {
			t.Fatalf("messages %+v, flow expiry %v: want the resend's message to expire with the renewed flow", msgs, f.ExpiresAt)
		}
	})
}

// Guesses at a person's pace go through; quicker ones wait, across flows: a guesser gets no
// fresh tries by starting new flows to the same address.
func TestCodeGuessesAreSlowedDown(t *testing.T) {
	w := newFlowWorld(t, testdb.SQLite(t), app.WithDev(true))
	start := func() (string, string) {
		w.clock.Advance(time.Second) // new messages sort after old ones in the dev inbox
		r := w.post("email-otp/send", `{"email":"ada@example.com"}`)
		w.want(r, 200, "")
		code := w.lastCode("ada@example.com")
		return r.body["state"].(string), fmt.Sprintf("%06d", (atoi(code)+1)%1000000)
	}
	guess := func(state, wrong string) response {
		return w.post("email-otp/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, state, wrong))
	}
	state, wrong := start()
	for range 3 {
		w.want(guess(state, wrong), 401, "invalid_code")
	}
	slow := guess(state, wrong)
	w.want(slow, 429, "too_many_attempts")
	if slow.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q, want 1", slow.header.Get("Retry-After"))
	}
	// Each wrong code is an audit event; the refused guess, which checked nothing, is not.
	events, err := w.a.Store().ListAuditEvents(t.Context(), w.proj.Project.ID, store.AuditFilter{Type: "login.failed"}, 10, "")
	if err != nil || len(events) != 3 || events[0].Detail["reason"] != "invalid_code" || events[0].Detail["connection_type"] != "EmailOTP" {
		t.Errorf("login.failed events = %+v, %v", events, err)
	}
	// A refused guess is not a try of the flow's: after a second, the flow still answers.
	state2, wrong2 := start()
	w.want(guess(state2, wrong2), 401, "invalid_code")
	w.want(guess(state, wrong), 429, "too_many_attempts") // the next wait is 2 s, on either flow
	w.clock.Advance(2 * time.Second)
	r := guess(state, wrong)
	if r.status != 401 || !strings.Contains(r.body["error_description"].(string), "1 tries left") {
		t.Errorf("the first flow after waiting: %d %s", r.status, r.raw)
	}
}
