package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDevInboxEmailCode runs "latchkey serve --dev" on SQLite with no mail server: an email
// code is sent, the served worker delivers it to the dev inbox, the code read from
// /dev/inbox.json signs the user in, and /dev/inbox shows the message as a page.
func TestDevInboxEmailCode(t *testing.T) {
	s := startServer(t, "--data-dir", t.TempDir(), "--dev")
	clientID, _ := s.credentials()

	status, sent := postClient(t, s.base+"/api/v1/auth/passwordless/email-otp/send", clientID, `{"email":"ada@example.com"}`)
	state, _ := sent["state"].(string)
	if status != http.StatusOK || state == "" {
		t.Fatalf("send: %d %v", status, sent)
	}
	msg := waitForInbox(t, s, "ada@example.com")
	code := sixDigits.FindStringSubmatch(msg.Text)
	if code == nil {
		t.Fatalf("no code in the dev inbox message %q", msg.Text)
	}

	status, res := postClient(t, s.base+"/api/v1/auth/passwordless/email-otp/verify", clientID,
		fmt.Sprintf(`{"state":%q,"otp":%q}`, state, code[1]))
	token, _ := res["access_token"].(string)
	if status != http.StatusOK || res["authenticated"] != true || token == "" {
		t.Fatalf("verify: %d %v", status, res)
	}
	if got := getWithBearer(t, s.base+"/api/v1/auth/status", token); got != http.StatusOK {
		t.Errorf("GET /api/v1/auth/status with the new access token: %d", got)
	}

	resp, err := http.Get(s.base + "/dev/inbox")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(page), "ada@example.com") {
		t.Errorf("/dev/inbox: %d %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), page)
	}
	if codeIn(s.stderr.String(), code[1]) {
		t.Errorf("the code %s is in the server's log:\n%s", code[1], s.stderr.String())
	}
}

// TestSMSLogProvider runs serve with LATCHKEY_SMS_PROVIDER=log: an SMS code "goes out" as one
// log line with ids and a masked number, never the code or the number in full. With --dev the
// code can still be read (the dev inbox keeps the message) and it signs the user in; without
// --dev it is nowhere but in the flow's hash.
func TestSMSLogProvider(t *testing.T) {
	const phone = "+14155550100"
	env := []string{"LATCHKEY_SMS_PROVIDER=log"}
	for _, dev := range []bool{true, false} {
		t.Run(fmt.Sprintf("dev=%v", dev), func(t *testing.T) {
			args := []string{"--data-dir", t.TempDir()}
			if dev {
				args = append(args, "--dev")
			}
			s := startServerEnv(t, env, args...)
			clientID, secret := s.credentials()
			if status, body, err := request(t, http.DefaultClient, "PATCH", s.base+"/api/v1/project", secret,
				`{"settings":{"login_methods":{"phone_otp":true}}}`); err != nil || status != http.StatusOK {
				t.Fatalf("enable phone_otp: %d %s %v", status, body, err)
			}
			status, sent := postClient(t, s.base+"/api/v1/auth/passwordless/phone-otp/send", clientID, `{"phone_id":"`+phone+`"}`)
			state, _ := sent["state"].(string)
			if status != http.StatusOK || state == "" || sent["state_id"] != state {
				t.Fatalf("send: %d %v", status, sent)
			}

			line := waitForLogLine(t, s, "notify: message sent (log sender)")
			attrs := logAttrs(line)
			if attrs["channel"] != "sms" || attrs["to"] != "+1******0100" || attrs["message_id"] == "" || attrs["project_id"] == "" {
				t.Errorf("log sender line %q: want channel, a masked number and the ids", line)
			}
			for k := range attrs {
				switch k {
				case "time", "level", "msg", "message_id", "project_id", "channel", "to":
				default:
					t.Errorf("log sender line has %s=%q; it logs ids and a masked number only", k, attrs[k])
				}
			}
			if strings.Contains(s.stderr.String(), phone) {
				t.Errorf("the full phone number is in the log:\n%s", s.stderr.String())
			}

			if !dev {
				resp, err := http.Get(s.base + "/dev/inbox.json")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("/dev/inbox.json without --dev: %d, want 404", resp.StatusCode)
				}
				return
			}
			code := sixDigits.FindStringSubmatch(waitForInbox(t, s, phone).Text)
			if code == nil {
				t.Fatal("no code in the dev inbox")
			}
			if codeIn(s.stderr.String(), code[1]) {
				t.Errorf("the code %s is in the server's log:\n%s", code[1], s.stderr.String())
			}
			status, res := postClient(t, s.base+"/api/v1/auth/passwordless/phone-otp/verify", clientID,
				fmt.Sprintf(`{"state":%q,"otp":%q}`, state, code[1]))
			if status != http.StatusOK || res["access_token"] == nil {
				t.Fatalf("verify: %d %v", status, res)
			}
		})
	}
}

var sixDigits = regexp.MustCompile(`\b(\d{6})\b`)

// codeIn reports whether code stands alone in log (not inside a longer number or a decimal).
func codeIn(log, code string) bool {
	return regexp.MustCompile(`(^|[^0-9.])` + code + `([^0-9]|$)`).MatchString(log)
}

type inboxMessage struct {
	To     string     `json:"to"`
	Text   string     `json:"text"`
	SentAt *time.Time `json:"sent_at"`
}

// readInbox returns what s's /dev/inbox.json lists now, newest first.
func readInbox(t *testing.T, s *server) []inboxMessage {
	t.Helper()
	return readInboxAt(t, s.base)
}

// readInboxAt is readInbox for the server at base (scheme://host), for helpers that know only
// the page's origin.
func readInboxAt(t *testing.T, base string) []inboxMessage {
	t.Helper()
	resp, err := http.Get(base + "/dev/inbox.json")
	if err != nil {
		t.Fatal(err)
	}
	var inbox struct{ Messages []inboxMessage }
	err = json.NewDecoder(resp.Body).Decode(&inbox)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("/dev/inbox.json: %d %v", resp.StatusCode, err)
	}
	return inbox.Messages
}

// waitForInbox polls /dev/inbox.json until the served outbox worker has delivered a message to
// `to`, and returns the newest.
func waitForInbox(t *testing.T, s *server, to string) inboxMessage {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		messages := readInbox(t, s)
		for _, m := range messages {
			if m.To == to && m.SentAt != nil {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivered message to %s in the dev inbox after 15s: %+v", to, messages)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}

// waitForLogLine waits until the server's log has a line whose msg is msg, and returns it.
func waitForLogLine(t *testing.T, s *server, msg string) string {
	t.Helper()
	want := `msg="` + msg + `"`
	deadline := time.Now().Add(15 * time.Second)
	for {
		for l := range strings.Lines(s.stderr.String()) {
			if strings.Contains(l, want) {
				return strings.TrimSpace(l)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s line in the log after 15s:\n%s", want, s.stderr.String())
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}

var logAttrRE = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S+)`)

// logAttrs splits a text-format slog line into its keys and (unquoted) values.
func logAttrs(line string) map[string]string {
	out := map[string]string{}
	for _, m := range logAttrRE.FindAllStringSubmatch(line, -1) {
		out[m[1]] = strings.Trim(m[2], `"`)
	}
	return out
}

// postClient posts a JSON body with the project's client id, as a browser or app would.
func postClient(t *testing.T, url, clientID, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Client-Id", clientID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST %s: %d %q is not JSON", url, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}
