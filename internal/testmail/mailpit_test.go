package testmail_test

import (
	"net"
	"net/smtp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/testmail"
)

func send(mp *testmail.Mailpit, to, subject, body string) error {
	msg := "From: Test <sender@example.test>\r\n" +
		"To: " + to + "\r\n" +
		"Subject: " + subject + "\r\n" +
		"Message-ID: <" + subject + "@testmail>\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" + body + "\r\n"
	// smtp.SendMail has no timeout; against a TLS-only port it would wait for a greeting forever.
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(mp.SMTPHost(), strconv.Itoa(mp.SMTPPort())), 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	c, err := smtp.NewClient(conn, mp.SMTPHost())
	if err != nil {
		return err
	}
	if err := c.Mail("sender@example.test"); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func TestStartReceiveAndRead(t *testing.T) {
	mp := testmail.Start(t)
	if !strings.HasPrefix(mp.APIURL(), "http://127.0.0.1:") || mp.SMTPHost() != "127.0.0.1" || mp.SMTPPort() == 0 {
		t.Fatalf("addresses: api %s smtp %s:%d", mp.APIURL(), mp.SMTPHost(), mp.SMTPPort())
	}
	if got := mp.Messages(t); len(got) != 0 {
		t.Fatalf("a new mailpit holds %d messages", len(got))
	}
	if err := send(mp, "alice@example.com", "first", "hello alice"); err != nil {
		t.Fatal(err)
	}
	// A substring of another address must not count: the search matches substrings.
	if err := send(mp, "xalice@example.com", "second", "hello xalice"); err != nil {
		t.Fatal(err)
	}
	msgs := mp.WaitFor(t, "alice@example.com", 1, 10*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("WaitFor alice: %d messages, want 1: %+v", len(msgs), msgs)
	}
	m := msgs[0]
	if m.Subject != "first" || m.MessageID != "first@testmail" || len(m.To) != 1 || m.To[0] != "alice@example.com" ||
		m.From != "sender@example.test" {
		t.Fatalf("summary: %+v", m)
	}
	if text := mp.Text(t, m.ID); !strings.Contains(text, "hello alice") {
		t.Fatalf("text: %q", text)
	}
	if html := mp.HTML(t, m.ID); html != "" {
		t.Fatalf("a text-only message has HTML %q", html)
	}
	if h := mp.Headers(t, m.ID); len(h["Subject"]) != 1 || h["Subject"][0] != "first" {
		t.Fatalf("headers: %v", h)
	}
	if raw := mp.Raw(t, m.ID); !strings.Contains(raw, "Message-ID: <first@testmail>") {
		t.Fatalf("raw:\n%s", raw)
	}
	mp.WaitFor(t, "xalice@example.com", 1, 10*time.Second)
	if all := mp.Messages(t); len(all) != 2 {
		t.Fatalf("Messages: %d, want 2", len(all))
	}
}

func TestChaos(t *testing.T) {
	mp := testmail.Start(t)
	mp.SetChaos(t, 451, 100)
	err := send(mp, "bob@example.com", "chaos", "x")
	if err == nil || !strings.Contains(err.Error(), "451") {
		t.Fatalf("send under chaos 451: %v", err)
	}
	mp.SetChaos(t, 0, 0)
	if err := send(mp, "bob@example.com", "calm", "x"); err != nil {
		t.Fatalf("send after clearing chaos: %v", err)
	}
	if msgs := mp.WaitFor(t, "bob@example.com", 1, 10*time.Second); len(msgs) != 1 || msgs[0].Subject != "calm" {
		t.Fatalf("after chaos: %+v", msgs)
	}
}

func TestInstancesAreSeparate(t *testing.T) {
	a, b := testmail.Start(t), testmail.Start(t)
	if a.SMTPPort() == b.SMTPPort() || a.APIURL() == b.APIURL() {
		t.Fatal("two instances share a port")
	}
	if err := send(a, "carol@example.com", "only-a", "x"); err != nil {
		t.Fatal(err)
	}
	a.WaitFor(t, "carol@example.com", 1, 10*time.Second)
	if got := b.Messages(t); len(got) != 0 {
		t.Fatalf("instance b received %d messages sent to a", len(got))
	}
}

func TestStartWithTLS(t *testing.T) {
	for _, mode := range []string{"starttls", "tls"} {
		t.Run(mode, func(t *testing.T) {
			mp := testmail.StartWith(t, testmail.Options{TLS: mode})
			if mp.CertPool() == nil {
				t.Fatal("no CertPool for a TLS mailpit")
			}
			// Plain SMTP is refused: STARTTLS is required, or the port speaks only TLS.
			if err := send(mp, "dave@example.com", "plain", "x"); err == nil {
				t.Fatal("a TLS-only mailpit took a message in the clear")
			}
		})
	}
	if testmail.Start(t).CertPool() != nil {
		t.Fatal("CertPool for a plain mailpit")
	}
}
