package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/botcheck"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// These tests attack an owner's account from many real source addresses (client sockets bound
// to addresses of 127.0.0.0/8, no proxy, no forwarding header) through two "latchkey serve"
// processes on one PostgreSQL: strangers must not be able to lock the owner out (issue 13 §2).
// Locks last an hour, far longer than any burst, so nothing depends on the machine's speed.

// sourceWorld is two servers on one database, and HTTP clients that each send from one
// loopback address.
type sourceWorld struct {
	t        *testing.T
	servers  [2]*server
	clock    *testClock
	clientID string
	secret   string
	dbURL    string
	mu       sync.Mutex
	clients  map[string]*http.Client
}

func newSourceWorld(t *testing.T, protect string) *sourceWorld {
	t.Helper()
	dbURL := testdb.PostgresURL(t)
	common := append([]string{"--database-url", dbURL, "--public-url", "http://auth.test", "--dev"}, masterKeyArgs(t)...)
	w := &sourceWorld{t: t, dbURL: dbURL, clock: newTestClock(t), clients: map[string]*http.Client{}}
	w.servers[0] = startServerEnv(t, w.clock.env(), common...)
	w.clientID, w.secret = w.servers[0].credentials()
	w.servers[1] = startServerEnv(t, w.clock.env(), common...)
	settings := `{"settings":{"login_methods":{"password":true},"redirect_uris":["https://app.acme.test/done"],"protect":` + protect + `}}`
	if status, _, body := w.do(0, "127.0.0.1", "PATCH", "/api/v1/project", settings, map[string]string{"X-Client-Secret": w.secret}); status != 200 {
		t.Fatalf("set project settings: %d %s", status, body)
	}
	return w
}

// client returns an HTTP client whose connections come from source, an address of 127.0.0.0/8.
func (w *sourceWorld) client(source string) *http.Client {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c := w.clients[source]; c != nil {
		return c
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}, Timeout: 30 * time.Second}
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}}
	w.clients[source] = c
	return c
}

// do sends a request to server i from source and returns the status, headers and body.
func (w *sourceWorld) do(i int, source, method, path, body string, header map[string]string) (int, http.Header, map[string]any) {
	w.t.Helper()
	req, err := http.NewRequest(method, w.servers[i].base+path, strings.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Client-Id", w.clientID)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := w.client(source).Do(req)
	if err != nil {
		w.t.Errorf("%s %s from %s: %v", method, path, source, err)
		return 0, nil, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, resp.Header, out
}

// burst sends n requests at once and tallies the answers by status and error code.
func (w *sourceWorld) burst(n int, send func(i int) (int, http.Header, map[string]any)) map[string]int {
	return burst(n, func(i int) (int, map[string]any) {
		status, _, body := send(i)
		return status, body
	})
}

// store opens the servers' database, for what no route shows (counters, audit events).
func (w *sourceWorld) store() (*sqlstore.Store, store.Project) {
	w.t.Helper()
	st, err := sqlstore.OpenPostgres(w.t.Context(), w.dbURL)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { st.Close() })
	p, err := st.GetProjectByClientID(w.t.Context(), w.clientID)
	if err != nil {
		w.t.Fatal(err)
	}
	return st, p
}

// messages returns the dev inbox's messages to `to`, waiting until `want` of them are delivered.
func (w *sourceWorld) messages(to string, want int) []inboxMessage {
	w.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var out []inboxMessage
		for _, m := range readInbox(w.t, w.servers[1]) {
			if m.To == to && m.SentAt != nil {
				out = append(out, m)
			}
		}
		if len(out) >= want || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}

// proof solves a bot-check challenge as a browser would.
func (w *sourceWorld) proof(source string) string {
	w.t.Helper()
	resp, err := w.client(source).Get(w.servers[0].base + "/api/v1/protect/challenge?client_id=" + w.clientID)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var ch botcheck.Challenge
	if err := json.NewDecoder(resp.Body).Decode(&ch); err != nil {
		w.t.Fatal(err)
	}
	payload, err := botcheck.Solve(ch)
	if err != nil {
		w.t.Fatal(err)
	}
	return payload
}

func TestStrangersCannotLockTheOwnerOut(t *testing.T) {
	const lockSeconds = 3600
	w := newSourceWorld(t, fmt.Sprintf(`{"bot_check":"off","slow_after":10,"lock_after":10,"account_lock_after":100,"lock_seconds":%d}`, lockSeconds))
	const owner, right = "127.0.0.2", "correct horse battery staple"
	login := func(i int, source, pw string, header map[string]string) (int, http.Header, map[string]any) {
		return w.do(i, source, "POST", "/api/v1/auth/password/login", fmt.Sprintf(`{"email":"ada@example.com","password":%q}`, pw), header)
	}
	if status, _, body := w.do(0, owner, "POST", "/api/v1/auth/password/signup", `{"email":"ada@example.com","password":"`+right+`"}`, nil); status != 200 {
		t.Fatalf("signup: %d %v", status, body)
	}
	status, header, body := login(1, owner, right, nil)
	device := header.Get("Latchkey-Device")
	if status != 200 || device == "" {
		t.Fatalf("the owner's first sign-in: %d %v, device token %q", status, body, device)
	}

	// 150 wrong passwords at once from 75 addresses, two each, through both instances.
	attack := w.burst(150, func(i int) (int, http.Header, map[string]any) {
		return login(i%2, fmt.Sprintf("127.0.1.%d", 1+i/2), fmt.Sprintf("wrong guess %d", i), nil)
	})
	if attack["401 invalid_credentials"] != 100 || attack["429 account_locked"] != 50 || len(attack) != 2 {
		t.Errorf("150 spread wrong passwords: %v; want 100 checked and 50 refused", attack)
	}
	// The account is locked for new devices, for lock_seconds: a wait with an end, not for good.
	for i := range 2 {
		status, header, body := login(i, "127.0.0.3", right, nil)
		ra, _ := strconv.Atoi(header.Get("Retry-After"))
		if status != 429 || body["error_code"] != "account_locked" || ra < lockSeconds-120 || ra > lockSeconds {
			t.Errorf("a new device during the lock, instance %d: %d %v, Retry-After %q; want account_locked for about %d s",
				i, status, body, header.Get("Retry-After"), lockSeconds)
		}
	}
	// The owner's device signs in on both instances, from anywhere.
	for i, source := range []string{owner, "127.0.0.4"} {
		if status, _, body := login(i, source, right, map[string]string{"Latchkey-Device": device}); status != 200 || body["authenticated"] != true {
			t.Errorf("the owner's device during the lock, instance %d: %d %v", i, status, body)
		}
	}
	st, p := w.store()
	if events, err := st.ListAuditEvents(t.Context(), p.ID, store.AuditFilter{Type: "protect.hard_locked"}, 10, ""); err != nil || len(events) != 0 {
		t.Errorf("hard locks after spread failures: %+v, %v", events, err)
	}
	// The owner heard of the attack once.
	var notices int
	for _, m := range w.messages("ada@example.com", 1) {
		if strings.Contains(m.Text, "failed to sign in to your account many times") {
			notices++
		}
	}
	if notices != 1 {
		t.Errorf("%d attack notices to the owner, want 1", notices)
	}
}

func TestStrangersCannotSpendTheOwnersMessages(t *testing.T) {
	w := newSourceWorld(t, `{"bot_check":"off","sends_per_destination_per_hour":5,"sends_per_requester_per_hour":2}`)
	reset := func(i int, source string, header map[string]string) (int, map[string]any) {
		status, _, body := w.do(i, source, "POST", "/api/v1/auth/password/reset/send",
			`{"email":"ada@example.com","redirect_url":"https://app.acme.test/done"}`, header)
		return status, body
	}
	if status, _, body := w.do(0, "127.0.0.2", "POST", "/api/v1/auth/password/signup", `{"email":"ada@example.com","password":"correct horse battery staple"}`, nil); status != 200 {
		t.Fatalf("signup: %d %v", status, body)
	}
	// Strangers from three addresses spend the address's hour: five messages, then no more.
	for s := range 3 {
		source := fmt.Sprintf("127.0.2.%d", s+1)
		for n := range 3 {
			status, body := reset((s+n)%2, source, nil)
			want := 200
			if n == 2 || (s == 2 && n == 1) {
				want = 429
			}
			if status != want {
				t.Fatalf("stranger %d's reset %d: %d %v, want %d", s, n, status, body, want)
			}
		}
	}
	// The owner, who has not asked yet, still gets one link: with a solved bot check.
	if status, body := reset(0, "127.0.0.2", nil); status != 403 || body["error_code"] != "bot_check_required" {
		t.Errorf("the owner past the ceiling without a proof: %d %v", status, body)
	}
	if status, body := reset(1, "127.0.0.2", map[string]string{"X-Altcha": w.proof("127.0.0.2")}); status != 200 {
		t.Errorf("the owner past the ceiling with a proof: %d %v", status, body)
	}
	if msgs := w.messages("ada@example.com", 6); len(msgs) != 6 {
		t.Errorf("%d reset messages to the owner's address, want 6 (5 strangers' and the owner's)", len(msgs))
	}

	// Fifty resends of one flow at once, through both instances: each answer refused or sent,
	// and the counter counts exactly the messages sent.
	status, _, sent := w.do(0, "127.0.3.1", "POST", "/api/v1/auth/passwordless/email-otp/send", `{"email":"bob@example.com"}`, nil)
	if status != 200 {
		t.Fatalf("send: %d %v", status, sent)
	}
	st, p := w.store()
	sentSoFar := 1
	resendBurst := func(round int) (accepted int) {
		resends := w.burst(50, func(i int) (int, http.Header, map[string]any) {
			return w.do(i%2, fmt.Sprintf("127.0.%d.%d", 4+round, 1+i), "POST", "/api/v1/auth/passwordless/email-otp/resend",
				fmt.Sprintf(`{"state":%q}`, sent["state"]), nil)
		})
		cs, err := st.GetCounters(context.Background(), p.ID, []store.CounterKey{{Scope: "send:email", Key: "bob@example.com"}}, w.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		sentSoFar += resends["200 "]
		msgs := w.messages("bob@example.com", sentSoFar)
		if resends["200 "]+resends["429 resend_too_soon"] != 50 || cs[0].Count != len(msgs) || len(msgs) != sentSoFar {
			t.Errorf("round %d of 50 concurrent resends: %v; %d messages sent, %d counted", round, resends, len(msgs), cs[0].Count)
		}
		return resends["200 "]
	}
	// At once, every resend is too soon: none sends, none counts. (Should the burst itself
	// outlast the 30-second interval on a crawling machine, one may send: never more.)
	if n := resendBurst(0); n > 1 {
		t.Errorf("%d resends accepted within the resend interval", n)
	}
	// After the interval, exactly one of fifty wins and counts: the servers' clock moves past
	// passwordless.ResendInterval (30 s) since any earlier send.
	w.clock.Advance(31 * time.Second)
	if n := resendBurst(1); n != 1 {
		t.Errorf("%d resends accepted after the interval, want 1", n)
	}
}
