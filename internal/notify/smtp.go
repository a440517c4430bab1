package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"time"

	mail "github.com/wneessen/go-mail"
)

// TLSMode says how the SMTP connection is protected.
type TLSMode string

// The SMTP TLS modes.
const (
	// TLSNone sends in the clear. It is allowed only to a loopback host (a local relay or a test
	// server) unless SMTPConfig.AllowInsecure says otherwise, because codes, links and the SMTP
	// password would cross the network readable.
	TLSNone TLSMode = "none"
	// TLSStartTLS upgrades a plain connection (port 587 by default) with STARTTLS and fails when
	// the server does not offer it: falling back to plain text would let anyone on the path strip
	// STARTTLS and read the mail.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit speaks TLS from the first byte (port 465 by default).
	TLSImplicit TLSMode = "tls"
)

// SMTPConfig configures an SMTPSender. The zero values of Port, TLS and Timeout mean the
// defaults: starttls, the mode's usual port (25 for none, 587 for starttls, 465 for tls), 15 s.
type SMTPConfig struct {
	Host     string
	Port     int
	TLS      TLSMode
	Username string // empty: no SMTP AUTH
	Password string
	From     string // the From header and envelope sender, e.g. "Acme <no-reply@acme.example>"
	// Timeout bounds connecting and each SMTP command; a context deadline that comes sooner
	// wins.
	Timeout time.Duration
	// HelloName is the name sent with EHLO; empty means this machine's host name.
	HelloName string
	// AllowInsecure permits TLS "none" to a host that is not loopback, e.g. a relay on a private
	// network the operator trusts. Off by default so that a typo cannot send mail in the clear.
	AllowInsecure bool
	// TLSConfig overrides the TLS client settings (e.g. RootCAs for a private relay). Its
	// ServerName defaults to Host; certificates are always verified unless it says otherwise.
	TLSConfig *tls.Config
}

// SMTPSender sends email through one SMTP server with wneessen/go-mail, one connection per
// message: the outbox worker sends rarely and in small batches, and a fresh connection never
// carries state (a half-finished transaction, an expired session) from one message to the next.
type SMTPSender struct {
	cfg  SMTPConfig
	from string
}

// NewSMTPSender checks cfg and returns a sender. Errors name the setting at fault.
func NewSMTPSender(cfg SMTPConfig) (*SMTPSender, error) {
	cfg.Host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(cfg.Host), "["), "]")
	if cfg.Host == "" || (strings.ContainsAny(cfg.Host, "/: \t\r\n") && net.ParseIP(cfg.Host) == nil) {
		return nil, fmt.Errorf("smtp host %q: want a host name or IP address", cfg.Host)
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	switch cfg.TLS {
	case TLSNone:
		if !cfg.AllowInsecure && !isLoopbackHost(cfg.Host) {
			return nil, fmt.Errorf("smtp tls %q: only allowed for a loopback host (127.0.0.1, ::1, localhost), not %q", cfg.TLS, cfg.Host)
		}
	case TLSStartTLS, TLSImplicit:
	default:
		return nil, fmt.Errorf("smtp tls %q: want starttls, tls or none", cfg.TLS)
	}
	if cfg.Port == 0 {
		cfg.Port = map[TLSMode]int{TLSNone: 25, TLSStartTLS: 587, TLSImplicit: 465}[cfg.TLS]
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("smtp port %d: want 1 to 65535", cfg.Port)
	}
	if cfg.Password != "" && cfg.Username == "" {
		return nil, errors.New("smtp password is set but the username is empty")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("smtp timeout %s: want a positive duration", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	if strings.ContainsAny(cfg.HelloName, " \t\r\n") {
		return nil, fmt.Errorf("smtp hello name %q: want a host name", cfg.HelloName)
	}
	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("smtp from %q: %w", cfg.From, err)
	}
	s := &SMTPSender{cfg: cfg, from: from.String()}
	// Build one client now so that an option go-mail refuses fails at startup, not at the first
	// message.
	if _, err := s.client(cfg.Timeout, &dialer{}); err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	return s, nil
}

// client returns a go-mail client for one message that dials through d. A client per message
// keeps concurrent sends apart: go-mail's Client caches its chosen auth mechanism without
// locking.
func (s *SMTPSender) client(timeout time.Duration, d *dialer) (*mail.Client, error) {
	cfg := s.cfg
	tc := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
		if tc.ServerName == "" {
			tc.ServerName = cfg.Host
		}
		if tc.MinVersion == 0 {
			tc.MinVersion = tls.VersionTLS12
		}
	}
	d.tls, d.implicitTLS = tc, cfg.TLS == TLSImplicit
	opts := []mail.Option{mail.WithPort(cfg.Port), mail.WithTimeout(timeout), mail.WithTLSConfig(tc),
		mail.WithDialContextFunc(d.dial)}
	if cfg.TLS == TLSStartTLS {
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	} else {
		// none: plain text; tls: our dialer has already wrapped the connection in TLS.
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if cfg.HelloName != "" {
		opts = append(opts, mail.WithHELO(cfg.HelloName))
	}
	if cfg.Username != "" {
		opts = append(opts, mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password))
		// The mechanisms are named rather than discovered: go-mail's discovery does not know a
		// connection from our dialer is TLS and would refuse PLAIN and LOGIN on port 465.
		if cfg.TLS == TLSNone {
			// In the clear, prefer a challenge mechanism that keeps the password off the wire,
			// and only then the plain ones, which the operator accepted by choosing "none"
			// (loopback, or AllowInsecure).
			opts = append(opts, mail.WithOpportunisticSMTPAuth(mail.SMTPAuthSCRAMSHA256, mail.SMTPAuthSCRAMSHA1,
				mail.SMTPAuthCramMD5, mail.SMTPAuthPlainNoEnc, mail.SMTPAuthLoginNoEnc))
		} else {
			// go-mail's own preference under TLS, less NTLM. PLAIN and LOGIN check for themselves
			// that the connection is TLS before they send the password.
			opts = append(opts, mail.WithOpportunisticSMTPAuth(mail.SMTPAuthSCRAMSHA256PLUS, mail.SMTPAuthSCRAMSHA256,
				mail.SMTPAuthSCRAMSHA1PLUS, mail.SMTPAuthSCRAMSHA1, mail.SMTPAuthCramMD5, mail.SMTPAuthPlain, mail.SMTPAuthLogin))
		}
	}
	host := cfg.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // go-mail joins host and port with a plain colon
	}
	return mail.NewClient(host, opts...)
}

// Send sends m as a multipart/alternative email (text and HTML parts; text only when m.HTML is
// empty) with the headers From, To, Subject, Date and Message-ID <m.ID@latchkey>.
//
// SMTP 4xx answers, network errors and timeouts are retryable. A 5xx answer to the message's
// own transaction (MAIL FROM, RCPT TO, DATA: an unknown mailbox, a refused message) is
// Permanent, as is a message that cannot be sent as given (a bad address, a subject with a line
// break). A failure while connecting, greeting, starting TLS or authenticating stays retryable
// even with a 5xx answer: it is about the server or our credentials, not this message, and an
// operator who fixes the setting should find the outbox still waiting rather than emptied.
// Error texts carry the server's answer with the recipient address masked, never the body.
func (s *SMTPSender) Send(ctx context.Context, m Message) error {
	msg, err := s.message(m)
	if err != nil {
		return Permanent(err)
	}
	timeout := s.cfg.Timeout
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return fmt.Errorf("smtp: %w", context.DeadlineExceeded)
		}
		timeout = min(timeout, left)
	}
	d := &dialer{}
	c, err := s.client(timeout, d)
	if err != nil {
		return Permanent(fmt.Errorf("smtp: %w", err))
	}
	// go-mail watches ctx only while dialling; closing the connection when ctx ends stops a
	// send that waits on a slow server, so a worker shuts down promptly. Closing it on return
	// covers go-mail leaving open a connection whose greeting, STARTTLS or AUTH failed.
	stop := context.AfterFunc(ctx, d.close)
	defer stop()
	defer d.close()
	conn, err := c.DialToSMTPClientWithContext(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("smtp connect: %w", ctx.Err())
		}
		return s.wrap("smtp connect", err, m.To)
	}
	if err := c.SendWithSMTPClient(conn, msg); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("smtp send: %w", ctx.Err())
		}
		wrapped := s.wrap("smtp send", err, m.To)
		var se *mail.SendError
		if errors.As(err, &se) && se.ErrorCode() >= 500 {
			return Permanent(wrapped)
		}
		return wrapped
	}
	// The server has taken the message (250 after DATA). A failing QUIT must not turn that into
	// an error, or the outbox would send the message again.
	_ = c.CloseWithSMTPClient(conn)
	return nil
}

// dialer opens the connection for one message and keeps hold of it, so that Send can close it
// whatever go-mail does. It speaks implicit TLS itself, because go-mail applies its own TLS
// only with its own dialer.
type dialer struct {
	tls         *tls.Config
	implicitTLS bool

	mu     sync.Mutex
	conn   net.Conn
	closed bool
}

func (d *dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.conn = c
	closed := d.closed
	d.mu.Unlock()
	if closed { // ctx ended while dialling
		c.Close()
		return nil, net.ErrClosed
	}
	if !d.implicitTLS {
		return c, nil
	}
	tc := tls.Client(c, d.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// close closes the connection, unblocking any read or write on it; it may run more than once
// and concurrently with the send.
func (d *dialer) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.conn != nil {
		_ = d.conn.Close()
	}
}

// message builds the email for m, refusing what must not be sent.
func (s *SMTPSender) message(m Message) (*mail.Msg, error) {
	if m.Channel != Email {
		return nil, fmt.Errorf("smtp: cannot send a %q message", m.Channel)
	}
	if !validMessageID(m.ID) {
		// The id goes into a header; anything but a plain token could break out of it.
		return nil, fmt.Errorf("smtp: message id %q is not a plain token", m.ID)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, errors.New("smtp: subject contains a line break")
	}
	if m.Text == "" {
		return nil, errors.New("smtp: message has no text")
	}
	to, err := netmail.ParseAddress(m.To)
	if err != nil {
		return nil, fmt.Errorf("smtp: recipient %s: %w", maskRecipient(m.To), err)
	}
	// No User-Agent/X-Mailer header: it would tell anyone which library and version we run.
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := msg.From(s.from); err != nil {
		return nil, fmt.Errorf("smtp: from: %w", err)
	}
	if err := msg.To(to.String()); err != nil {
		return nil, fmt.Errorf("smtp: recipient %s: %w", maskRecipient(m.To), err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageIDWithValue(m.ID + "@latchkey")
	// RFC 3834: tells vacation responders and list servers not to answer a machine.
	msg.SetGenHeader(mail.Header("Auto-Submitted"), "auto-generated")
	msg.SetBodyString(mail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// wrap describes err without the recipient's address: SMTP servers often quote it in their
// answers ("550 5.1.1 <bob@example.com>: user unknown") and go-mail lists it too, while the
// outbox stores and logs this text.
func (s *SMTPSender) wrap(op string, err error, to string) error {
	text := err.Error()
	if addr, perr := netmail.ParseAddress(to); perr == nil && addr.Address != "" {
		text = replaceFold(text, addr.Address, maskRecipient(addr.Address))
	}
	if s.cfg.Password != "" {
		// go-mail does not echo the password; this guards against a server that does.
		text = strings.ReplaceAll(text, s.cfg.Password, "[redacted]")
	}
	return &sendError{text: op + ": " + text, err: err}
}

// sendError is an error whose text has been cleaned; errors.As still reaches the cause (e.g.
// *mail.SendError, *net.OpError).
type sendError struct {
	text string
	err  error
}

func (e *sendError) Error() string { return e.text }
func (e *sendError) Unwrap() error { return e.err }

// replaceFold replaces every case-insensitive occurrence of old in s with repl. Email addresses
// are ASCII in practice; for others the byte lengths of the lower-cased forms can differ, and s
// is returned unchanged rather than cut wrongly.
func replaceFold(s, old, repl string) string {
	ls, lo := strings.ToLower(s), strings.ToLower(old)
	if len(ls) != len(s) || len(lo) != len(old) || old == "" {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(ls, lo)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(repl)
		s, ls = s[i+len(old):], ls[i+len(old):]
	}
}

// validMessageID reports whether id can be the left part of a Message-ID as it is: letters,
// digits, '.', '_' and '-', at most 128 characters (outbox ids are 24 hex characters).
func validMessageID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := range len(id) {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// isLoopbackHost reports whether host is a loopback IP address or "localhost". Names are not
// resolved: what DNS says can change after the check.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
