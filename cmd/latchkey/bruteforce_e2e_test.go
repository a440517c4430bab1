package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/mfa/mfatest"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// These tests attack one account through two "latchkey serve" processes sharing PostgreSQL,
// with 500 concurrent wrong secrets: the limits must hold across the instances exactly.

// lockSeconds is far longer than any burst takes on a loaded machine, so that no lock runs out
// mid-burst; the tests move the servers' clock past it to see the cool-down.
const lockSeconds = 3600

// attackWorld is two servers on one database whose project locks quickly, behind a trusted
// proxy (the test) that names each request's client IP.
type attackWorld struct {
	t        *testing.T
	servers  [2]*server
	clock    *testClock
	clientID string
	secret   string
	dbURL    string
	client   *http.Client
}

func newAttackWorld(t *testing.T) *attackWorld {
	t.Helper()
	dbURL := testdb.PostgresURL(t)
	common := append([]string{"--database-url", dbURL, "--public-url", "http://auth.test", "--dev",
		"--trusted-proxies", "127.0.0.1,::1"}, masterKeyArgs(t)...)
	w := &attackWorld{t: t, dbURL: dbURL, clock: newTestClock(t),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}, Timeout: time.Minute}}
	w.servers[0] = startServerEnv(t, w.clock.env(), common...)
	w.clientID, w.secret = w.servers[0].credentials()
	w.servers[1] = startServerEnv(t, w.clock.env(), common...)
	settings := fmt.Sprintf(`{"settings":{"login_methods":{"password":true},"protect":{"bot_check":"off","slow_after":10,"lock_after":10,"account_lock_after":50,"lock_seconds":%d}}}`, lockSeconds)
	if status, body := w.do(0, "PATCH", "/api/v1/project", "", settings, true); status != 200 {
		t.Fatalf("set project settings: %d %s", status, body)
	}
	return w
}

// do sends a request to server i as if from ip; withSecret adds the project secret.
func (w *attackWorld) do(i int, method, path, ip, body string, withSecret bool) (int, map[string]any) {
	w.t.Helper()
	req, err := http.NewRequest(method, w.servers[i].base+path, strings.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Client-Id", w.clientID)
	if withSecret {
		req.Header.Set("X-Client-Secret", w.secret)
	}
	if ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		w.t.Errorf("%s %s: %v", method, path, err)
		return 0, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// counter reads an attack-protection counter straight from the database.
func (w *attackWorld) counter(scope, key string) int {
	w.t.Helper()
	st, err := sqlstore.OpenPostgres(w.t.Context(), w.dbURL)
	if err != nil {
		w.t.Fatal(err)
	}
	defer st.Close()
	p, err := st.GetProjectByClientID(w.t.Context(), w.clientID)
	if err != nil {
		w.t.Fatal(err)
	}
	cs, err := st.TakeCounters(w.t.Context(), p.ID, []store.CounterKey{{Scope: scope, Key: key}}, w.clock.Now())
	if err != nil {
		w.t.Fatal(err)
	}
	return cs[0].Count
}

// burst sends n requests at once and tallies the answers by status and error code.
func (w *attackWorld) burst(n int, send func(i int) (int, map[string]any)) map[string]int {
	return burst(n, send)
}

// burst sends n requests at once (send(i) makes the i-th) and tallies the answers by status
// and error code, such as "429 account_locked".
func burst(n int, send func(i int) (int, map[string]any)) map[string]int {
	var mu sync.Mutex
	var wg sync.WaitGroup
	tally := map[string]int{}
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			status, body := send(i)
			code, _ := body["error_code"].(string)
			mu.Lock()
			tally[fmt.Sprintf("%d %s", status, code)]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return tally
}

func TestPasswordBruteForceAcrossTwoInstances(t *testing.T) {
	w := newAttackWorld(t)
	const attacker, right = "203.0.113.66", "correct horse battery staple"
	signup := func(email string) {
		if status, body := w.do(0, "POST", "/api/v1/auth/password/signup", "198.51.100.200",
			fmt.Sprintf(`{"email":%q,"password":%q}`, email, right), false); status != 200 {
			t.Fatalf("signup %s: %d %v", email, status, body)
		}
	}
	signup("ada@example.com")
	for i := range 20 {
		signup(fmt.Sprintf("user%d@example.com", i))
	}

	// 500 wrong passwords at once from one IP, and 20 real users signing in at the same time
	// from their own IPs.
	var valid map[string]int
	var wg sync.WaitGroup
	wg.Go(func() {
		valid = w.burst(20, func(i int) (int, map[string]any) {
			return w.do(i%2, "POST", "/api/v1/auth/password/login", fmt.Sprintf("198.51.100.%d", i+1),
				fmt.Sprintf(`{"email":"user%d@example.com","password":%q}`, i, right), false)
		})
	})
	attack := w.burst(500, func(i int) (int, map[string]any) {
		return w.do(i%2, "POST", "/api/v1/auth/password/login", attacker,
			fmt.Sprintf(`{"email":"ada@example.com","password":"wrong guess %d"}`, i), false)
	})
	wg.Wait()
	if attack["401 invalid_credentials"] != 10 || attack["429 account_locked"] != 490 || len(attack) != 2 {
		t.Errorf("500 wrong passwords through two instances: %v; want exactly 10 checked (401) and 490 refused (429)", attack)
	}
	if valid["200 "] != 20 {
		t.Errorf("20 concurrent valid logins of other users: %v", valid)
	}
	if n := w.counter("password:pair", "ada@example.com|"+attacker); n != 10 {
		t.Errorf("failure count in the database = %d, want exactly 10", n)
	}

	// The right password is refused while locked, on both instances, and accepted after.
	for i := range 2 {
		status, body := w.do(i, "POST", "/api/v1/auth/password/login", attacker, `{"email":"ada@example.com","password":"`+right+`"}`, false)
		if status != 429 || body["error_code"] != "account_locked" {
			t.Errorf("the right password while locked, instance %d: %d %v", i, status, body)
		}
	}
	w.clock.Advance(lockSeconds*time.Second + time.Second)
	status, body := w.do(1, "POST", "/api/v1/auth/password/login", attacker, `{"email":"ada@example.com","password":"`+right+`"}`, false)
	if status != 200 || body["authenticated"] != true {
		t.Errorf("the right password after the cool-down: %d %v", status, body)
	}
}

func TestEmailCodeBruteForceAcrossTwoInstances(t *testing.T) {
	w := newAttackWorld(t)
	const attacker = "203.0.113.77"
	status, sent := w.do(0, "POST", "/api/v1/auth/passwordless/email-otp/send", attacker, `{"email":"ada@example.com"}`, false)
	if status != 200 {
		t.Fatalf("send: %d %v", status, sent)
	}
	state := sent["state"].(string)
	code := sixDigits.FindStringSubmatch(waitForInbox(t, w.servers[1], "ada@example.com").Text)[1]

	attack := w.burst(500, func(i int) (int, map[string]any) {
		wrong := fmt.Sprintf("%06d", i)
		if wrong == code {
			wrong = "999999"
		}
		return w.do(i%2, "POST", "/api/v1/auth/passwordless/email-otp/verify", attacker,
			fmt.Sprintf(`{"state":%q,"otp":%q}`, state, wrong), false)
	})
	// The flow's own five tries kill it (4 wrong, 1 killing); guesses that find it dead are
	// refused before anything is checked; attack protection lets exactly ten check a code
	// across both instances and refuses the rest.
	if attack["401 invalid_code"] != 4 || attack["401 flow_dead"] != 1 ||
		attack["404 flow_not_found"]+attack["429 account_locked"] != 495 || attack["200 "] != 0 {
		t.Errorf("500 wrong codes through two instances: %v", attack)
	}
	if n := w.counter("code:pair", "ada@example.com|"+attacker); n != 10 {
		t.Errorf("failure count in the database = %d, want exactly 10", n)
	}

	// A new flow's right code is refused from the attacker's IP while locked, and works for
	// the owner from theirs.
	status, sent = w.do(1, "POST", "/api/v1/auth/passwordless/email-otp/send", "198.51.100.9", `{"email":"ada@example.com"}`, false)
	if status != 200 {
		t.Fatalf("send: %d %v", status, sent)
	}
	fresh := waitForNewCode(t, w.servers[0], "ada@example.com", code)
	verify := func(i int, ip string) (int, map[string]any) {
		return w.do(i, "POST", "/api/v1/auth/passwordless/email-otp/verify", ip,
			fmt.Sprintf(`{"state":%q,"otp":%q}`, sent["state"], fresh), false)
	}
	if status, body := verify(0, attacker); status != 429 || body["error_code"] != "account_locked" {
		t.Errorf("the right code from the attacker's IP while locked: %d %v", status, body)
	}
	if status, body := verify(1, "198.51.100.9"); status != 200 || body["authenticated"] != true {
		t.Errorf("the right code from the owner's IP: %d %v", status, body)
	}
}

// waitForNewCode waits for a delivered message to `to` whose code is not old.
func waitForNewCode(t *testing.T, s *server, to, old string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if m := sixDigits.FindStringSubmatch(waitForInbox(t, s, to).Text); m != nil && m[1] != old {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new code to %s", to)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}

func TestTOTPBruteForceAcrossTwoInstances(t *testing.T) {
	w := newAttackWorld(t)
	if status, body := w.do(0, "PATCH", "/api/v1/project", "", `{"settings":{"mfa":{"policy":"required","factors":["otp"]}}}`, true); status != 200 {
		t.Fatalf("require MFA: %d %v", status, body)
	}
	// Ada signs in by email code, enrolls an authenticator app with the mfa_token, confirms it.
	const owner = "198.51.100.9"
	status, sent := w.do(0, "POST", "/api/v1/auth/passwordless/email-otp/send", owner, `{"email":"ada@example.com"}`, false)
	if status != 200 {
		t.Fatalf("send: %d %v", status, sent)
	}
	code := sixDigits.FindStringSubmatch(waitForInbox(t, w.servers[0], "ada@example.com").Text)[1]
	status, first := w.do(1, "POST", "/api/v1/auth/passwordless/email-otp/verify", owner, fmt.Sprintf(`{"state":%q,"otp":%q}`, sent["state"], code), false)
	mfaToken, _ := first["mfa_token"].(string)
	if status != 200 || mfaToken == "" {
		t.Fatalf("first factor: %d %v", status, first)
	}
	status, enr := w.do(0, "POST", "/api/v1/auth/mfa/enroll", owner, fmt.Sprintf(`{"authenticator_types":["otp"],"mfa_token":%q}`, mfaToken), false)
	secret, _ := enr["secret"].(string)
	if status != 200 || secret == "" {
		t.Fatalf("enroll: %d %v", status, enr)
	}
	if status, res := w.do(1, "POST", "/api/v1/auth/mfa/validate", owner,
		fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, mfaToken, mfatest.Code(t, secret, w.clock.Now())), false); status != 200 || res["authenticated"] != true {
		t.Fatalf("confirm by validating: %d %v", status, res)
	}

	// 500 wrong codes at once on a fresh mfa_token, through both instances.
	status, started := w.do(0, "POST", "/api/v1/auth/mfa/token", "", `{"identifier":"ada@example.com"}`, true)
	tok, _ := started["mfa_token"].(string)
	if status != 200 || tok == "" {
		t.Fatalf("mfa/token: %d %v", status, started)
	}
	right := mfatest.Code(t, secret, w.clock.Now())
	attack := w.burst(500, func(i int) (int, map[string]any) {
		wrong := fmt.Sprintf("%06d", i)
		if wrong == right {
			wrong = "999999"
		}
		return w.do(i%2, "POST", "/api/v1/auth/mfa/validate", "203.0.113.88", fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, tok, wrong), false)
	})
	if attack["200 "] != 0 || attack["401 invalid_otp"] > 4 {
		t.Errorf("500 wrong codes: %v; want none accepted and at most 4 answered as wrong", attack)
	}
	// The token's five wrong answers are counted exactly, and lock the user's step.
	st, err := sqlstore.OpenPostgres(t.Context(), w.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, err := st.GetProjectByClientID(t.Context(), w.clientID)
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.GetUserByEmail(t.Context(), p.ID, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if n, _, err := st.CountMFAFailures(t.Context(), p.ID, u.ID, w.clock.Now().Add(-time.Hour)); err != nil || n != 5 {
		t.Errorf("wrong answers counted = %d, %v; want exactly 5", n, err)
	}
	// The right code is refused now, on that token and on a new one, on both instances.
	status, again := w.do(1, "POST", "/api/v1/auth/mfa/token", "", `{"identifier":"ada@example.com"}`, true)
	if status != 200 {
		t.Fatalf("mfa/token: %d %v", status, again)
	}
	for i, tk := range []string{tok, again["mfa_token"].(string)} {
		if status, body := w.do(i, "POST", "/api/v1/auth/mfa/validate", owner, fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, tk, right), false); status != 429 {
			t.Errorf("the right code while locked (token %d): %d %v", i, status, body)
		}
	}
}
