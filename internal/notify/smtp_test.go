package notify_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/testmail"
)

func smtpSender(t *testing.T, mp *testmail.Mailpit, mod func(*notify.SMTPConfig)) *notify.SMTPSender {
	t.Helper()
	cfg := notify.SMTPConfig{Host: mp.SMTPHost(), Port: mp.SMTPPort(), TLS: notify.TLSNone,
		From: "Acme <no-reply@acme.test>", Timeout: 10 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	s, err := notify.NewSMTPSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func email(id, to string) notify.Message {
	return notify.Message{ID: id, ProjectID: "p1", Channel: notify.Email, To: to,
		Subject: "Your Acme sign-in code", Text: "Your code is 314159.", HTML: "<p>Your code is <b>314159</b>.</p>"}
}

func TestSMTPSendsMultipart(t *testing.T) {
	mp := testmail.Start(t)
	s := smtpSender(t, mp, nil)
	m := email("65f1c2a7e9b3d4c6a8e0f1a2", "Jane Doe <jane@example.com>")
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	msgs := mp.WaitFor(t, "jane@example.com", 1, 10*time.Second)
	got := msgs[0]
	if got.MessageID != m.ID+"@latchkey" || got.Subject != m.Subject || got.From != "no-reply@acme.test" {
		t.Fatalf("summary: %+v", got)
	}
	if text := mp.Text(t, got.ID); !strings.Contains(text, "Your code is 314159.") {
		t.Fatalf("text part: %q", text)
	}
	if html := mp.HTML(t, got.ID); !strings.Contains(html, "<b>314159</b>") {
		t.Fatalf("html part: %q", html)
	}
	raw := mp.Raw(t, got.ID)
	for _, want := range []string{"multipart/alternative", "text/plain", "text/html", "Message-ID: <" + m.ID + "@latchkey>",
		"Auto-Submitted: auto-generated"} {
		if !strings.Contains(raw, want) {
			t.Errorf("raw message lacks %q", want)
		}
	}
	h := mp.Headers(t, got.ID)
	if len(h["Date"]) != 1 || h["Date"][0] == "" {
		t.Errorf("Date header: %v", h["Date"])
	}
	if _, ok := h["X-Mailer"]; ok {
		t.Errorf("X-Mailer header present: %v", h["X-Mailer"])
	}
	if _, ok := h["User-Agent"]; ok {
		t.Errorf("User-Agent header present: %v", h["User-Agent"])
	}
}

func TestSMTPTextOnly(t *testing.T) {
	mp := testmail.Start(t)
	s := smtpSender(t, mp, nil)
	m := email("textonly1", "text@example.com")
	m.HTML = ""
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := mp.WaitFor(t, "text@example.com", 1, 10*time.Second)[0]
	if html := mp.HTML(t, got.ID); html != "" {
		t.Fatalf("html part of a text-only email: %q", html)
	}
	if raw := mp.Raw(t, got.ID); strings.Contains(raw, "multipart/") {
		t.Fatalf("a text-only email is multipart:\n%s", raw)
	}
}

func TestSMTPAuthenticates(t *testing.T) {
	mp := testmail.Start(t)
	s := smtpSender(t, mp, func(c *notify.SMTPConfig) { c.Username, c.Password = "latchkey", "s3cret" })
	if err := s.Send(context.Background(), email("auth1", "auth@example.com")); err != nil {
		t.Fatal(err)
	}
	if got := mp.WaitFor(t, "auth@example.com", 1, 10*time.Second)[0]; got.Username != "latchkey" {
		t.Fatalf("mailpit saw SMTP user %q, want latchkey", got.Username)
	}
}

// An SMTP 4xx fails the attempt without losing the message: the error is retryable, and the
// same message goes through once the server recovers, exactly once.
func TestSMTPTemporaryFailureThenDeliveredOnce(t *testing.T) {
	mp := testmail.Start(t)
	s := smtpSender(t, mp, nil)
	m := email("65f1c2a7e9b3d4c6a8e0f1b3", "retry@example.com")

	mp.SetChaos(t, 451, 100)
	err := s.Send(context.Background(), m)
	if err == nil {
		t.Fatal("Send succeeded while the server answers 451")
	}
	t.Logf("451: %v", err)
	if errors.Is(err, notify.ErrPermanent) {
		t.Fatalf("451 is permanent: %v", err)
	}
	if !strings.Contains(err.Error(), "451") {
		t.Errorf("error lacks the SMTP code: %v", err)
	}
	if strings.Contains(err.Error(), "retry@example.com") {
		t.Errorf("error holds the recipient: %v", err)
	}
	if got := mp.Messages(t); len(got) != 0 {
		t.Fatalf("%d messages arrived during the failure", len(got))
	}

	mp.SetChaos(t, 0, 0)
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("Send after recovery: %v", err)
	}
	mp.WaitFor(t, "retry@example.com", 1, 10*time.Second)
	all := mp.Messages(t)
	if len(all) != 1 || all[0].MessageID != m.ID+"@latchkey" {
		t.Fatalf("after recovery: %+v, want the one message", all)
	}
}

func TestSMTPPermanentFailure(t *testing.T) {
	mp := testmail.Start(t)
	s := smtpSender(t, mp, nil)
	mp.SetChaos(t, 550, 100)
	err := s.Send(context.Background(), email("perm1", "gone@example.com"))
	t.Logf("550: %v", err)
	if !errors.Is(err, notify.ErrPermanent) {
		t.Fatalf("550: %v, want a permanent error", err)
	}
	if !strings.Contains(err.Error(), "550") || strings.Contains(err.Error(), "gone@example.com") {
		t.Fatalf("error text: %v", err)
	}
	if got := mp.Messages(t); len(got) != 0 {
		t.Fatalf("%d messages arrived", len(got))
	}
}

// "starttls" is required TLS: a server that does not offer STARTTLS gets nothing, rather than
// the message in the clear.
func TestSMTPStartTLSRequired(t *testing.T) {
	mp := testmail.Start(t)
	s := smtpSender(t, mp, func(c *notify.SMTPConfig) {
		c.TLS = notify.TLSStartTLS
		c.Username, c.Password = "latchkey", "s3cret"
	})
	err := s.Send(context.Background(), email("tls1", "tls@example.com"))
	if err == nil {
		t.Fatal("sent over a server without STARTTLS")
	}
	t.Logf("no STARTTLS: %v", err)
	if errors.Is(err, notify.ErrPermanent) {
		t.Errorf("a server setting is permanent for the message: %v", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error holds the password: %v", err)
	}
	if got := mp.Messages(t); len(got) != 0 {
		t.Fatalf("%d messages arrived", len(got))
	}
}

func TestSMTPNetworkErrorsAreRetryable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	s, err := notify.NewSMTPSender(notify.SMTPConfig{Host: "127.0.0.1", Port: port, TLS: notify.TLSNone, From: "a@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), email("net1", "x@example.com"))
	if err == nil || errors.Is(err, notify.ErrPermanent) {
		t.Fatalf("connection refused: %v, want a retryable error", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = s.Send(ctx, email("net2", "x@example.com"))
	if err == nil || errors.Is(err, notify.ErrPermanent) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v, want a retryable context.Canceled", err)
	}
}

// A message that cannot be sent as given fails for good, before any connection is made.
func TestSMTPRefusesBadMessages(t *testing.T) {
	s, err := notify.NewSMTPSender(notify.SMTPConfig{Host: "127.0.0.1", Port: 1, TLS: notify.TLSNone, From: "a@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*notify.Message){
		"subject with CRLF": func(m *notify.Message) { m.Subject = "Hi\r\nBcc: evil@example.com" },
		"subject with LF":   func(m *notify.Message) { m.Subject = "Hi\nBcc: evil@example.com" },
		"id with a space":   func(m *notify.Message) { m.ID = "a b" },
		"id with brackets":  func(m *notify.Message) { m.ID = "a>\r\nBcc: x" },
		"empty id":          func(m *notify.Message) { m.ID = "" },
		"bad recipient":     func(m *notify.Message) { m.To = "not an address" },
		"two recipients":    func(m *notify.Message) { m.To = "a@example.com, b@example.com" },
		"sms channel":       func(m *notify.Message) { m.Channel = notify.SMS },
		"empty text":        func(m *notify.Message) { m.Text = "" },
	} {
		m := email("bad1", "ok@example.com")
		mod(&m)
		if err := s.Send(context.Background(), m); !errors.Is(err, notify.ErrPermanent) {
			t.Errorf("%s: %v, want a permanent error", name, err)
		}
	}
}

func TestNewSMTPSenderValidates(t *testing.T) {
	ok := notify.SMTPConfig{Host: "smtp.example.com", From: "Acme <no-reply@acme.test>"}
	for name, mod := range map[string]func(*notify.SMTPConfig){
		"plain to a remote host":  func(c *notify.SMTPConfig) { c.TLS = notify.TLSNone },
		"unknown tls mode":        func(c *notify.SMTPConfig) { c.TLS = "ssl" },
		"empty host":              func(c *notify.SMTPConfig) { c.Host = "" },
		"host with port":          func(c *notify.SMTPConfig) { c.Host = "smtp.example.com:25" },
		"host as URL":             func(c *notify.SMTPConfig) { c.Host = "smtp://smtp.example.com" },
		"port too big":            func(c *notify.SMTPConfig) { c.Port = 70000 },
		"negative port":           func(c *notify.SMTPConfig) { c.Port = -1 },
		"bad from":                func(c *notify.SMTPConfig) { c.From = "acme" },
		"empty from":              func(c *notify.SMTPConfig) { c.From = "" },
		"password, no user":       func(c *notify.SMTPConfig) { c.Password = "x" },
		"negative timeout":        func(c *notify.SMTPConfig) { c.Timeout = -time.Second },
		"hello name with a space": func(c *notify.SMTPConfig) { c.HelloName = "a b" },
	} {
		cfg := ok
		mod(&cfg)
		if _, err := notify.NewSMTPSender(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		} else if cfg.Password != "" && strings.Contains(err.Error(), cfg.Password) {
			t.Errorf("%s: error holds the password: %v", name, err)
		}
	}
	for name, mod := range map[string]func(*notify.SMTPConfig){
		"defaults":                 func(*notify.SMTPConfig) {},
		"implicit tls":             func(c *notify.SMTPConfig) { c.TLS = notify.TLSImplicit },
		"plain to 127.0.0.1":       func(c *notify.SMTPConfig) { c.TLS, c.Host = notify.TLSNone, "127.0.0.1" },
		"plain to ::1":             func(c *notify.SMTPConfig) { c.TLS, c.Host = notify.TLSNone, "::1" },
		"plain to localhost":       func(c *notify.SMTPConfig) { c.TLS, c.Host = notify.TLSNone, "localhost" },
		"plain, explicitly":        func(c *notify.SMTPConfig) { c.TLS, c.AllowInsecure = notify.TLSNone, true },
		"auth":                     func(c *notify.SMTPConfig) { c.Username, c.Password = "u", "p" },
		"hello name":               func(c *notify.SMTPConfig) { c.HelloName = "latchkey.example.com" },
		"address without a name":   func(c *notify.SMTPConfig) { c.From = "no-reply@acme.test" },
		"ipv6 literal in brackets": func(c *notify.SMTPConfig) { c.Host = "[2001:db8::1]" },
	} {
		cfg := ok
		mod(&cfg)
		if _, err := notify.NewSMTPSender(cfg); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Both TLS modes deliver to a real server whose certificate they verify, and authenticate over
// the encrypted connection; a certificate from an unknown CA stops the message.
func TestSMTPOverTLS(t *testing.T) {
	for _, mode := range []notify.TLSMode{notify.TLSStartTLS, notify.TLSImplicit} {
		t.Run(string(mode), func(t *testing.T) {
			mp := testmail.StartWith(t, testmail.Options{TLS: string(mode)})
			s := smtpSender(t, mp, func(c *notify.SMTPConfig) {
				c.TLS = mode
				c.Username, c.Password = "latchkey", "s3cret"
				c.TLSConfig = &tls.Config{RootCAs: mp.CertPool()}
			})
			if err := s.Send(context.Background(), email("tls-"+string(mode), "tls@example.com")); err != nil {
				t.Fatal(err)
			}
			if got := mp.WaitFor(t, "tls@example.com", 1, 10*time.Second)[0]; got.Username != "latchkey" {
				t.Fatalf("SMTP user %q, want latchkey", got.Username)
			}

			untrusting := smtpSender(t, mp, func(c *notify.SMTPConfig) { c.TLS = mode })
			err := untrusting.Send(context.Background(), email("untrusted", "untrusted@example.com"))
			t.Logf("unknown CA: %v", err)
			if err == nil || errors.Is(err, notify.ErrPermanent) {
				t.Fatalf("unknown CA: %v, want a retryable error", err)
			}
			if n := len(mp.Messages(t)); n != 1 {
				t.Fatalf("%d messages, want only the first", n)
			}
		})
	}
}

// rawServer accepts one connection and hands it to serve; it stands in for a broken or stalled
// SMTP server, which mailpit cannot be made into.
func rawServer(t *testing.T, serve func(net.Conn)) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c)
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// go-mail leaves a connection open when the greeting fails; Send closes it.
func TestSMTPClosesTheConnectionAfterAFailedGreeting(t *testing.T) {
	closed := make(chan bool, 1)
	port := rawServer(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Write([]byte("220 test ESMTP\r\n"))
		buf := make([]byte, 512)
		if _, err := c.Read(buf); err != nil { // EHLO
			closed <- false
			return
		}
		_, _ = c.Write([]byte("554 5.7.1 go away\r\n"))
		for { // HELO after the failed EHLO, then EOF when the client closes
			if _, err := c.Read(buf); err != nil {
				var ne net.Error
				closed <- !(errors.As(err, &ne) && ne.Timeout())
				return
			}
			_, _ = c.Write([]byte("554 5.7.1 go away\r\n"))
		}
	})
	s, err := notify.NewSMTPSender(notify.SMTPConfig{Host: "127.0.0.1", Port: port, TLS: notify.TLSNone, From: "a@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), email("greet1", "x@example.com"))
	t.Logf("greeting refused: %v", err)
	if err == nil || errors.Is(err, notify.ErrPermanent) {
		t.Fatalf("refused greeting: %v, want a retryable error", err)
	}
	if !<-closed {
		t.Fatal("the connection was left open")
	}
}

// A cancelled context ends a send that waits on a stalled server, well before the timeout.
func TestSMTPCancelStopsAStalledSend(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	port := rawServer(t, func(c net.Conn) {
		_, _ = c.Write([]byte("220 test ESMTP\r\n"))
		buf := make([]byte, 512)
		_, _ = c.Read(buf) // EHLO, never answered
		<-release
	})
	s, err := notify.NewSMTPSender(notify.SMTPConfig{Host: "127.0.0.1", Port: port, TLS: notify.TLSNone,
		From: "a@acme.test", Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(100 * time.Millisecond) // let Send reach the stalled EHLO
		cancel()
	}()
	err = s.Send(ctx, email("stall1", "x@example.com"))
	if !errors.Is(err, context.Canceled) || errors.Is(err, notify.ErrPermanent) {
		t.Fatalf("cancelled send: %v, want a retryable context.Canceled", err)
	}
}
