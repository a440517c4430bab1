package notify

import (
	"context"
	"errors"
	"log/slog"
	"strings"
)

// Channel is the way a message travels.
type Channel string

// The channels a Message can take.
const (
	Email Channel = "email"
	SMS   Channel = "sms"
)

// Message is one email or SMS to deliver. ID is the outbox row id, used as a dedupe id: an email
// carries it as its Message-ID header (<ID@latchkey>), so a receiving system can tell a retried
// delivery from a new message; for SMS, whose providers have no such field, it is kept for logs.
type Message struct {
	ID        string
	ProjectID string
	Channel   Channel
	To        string
	Subject   string // email only
	Text      string
	HTML      string // email only; empty means a text-only email
}

// Sender delivers one message. A returned error is retryable unless errors.Is(err, ErrPermanent):
// the outbox worker retries the first kind with backoff and gives the second up at once, so a
// sender must call an error permanent only when trying again cannot help (an unknown mailbox, an
// invalid number, a message the provider refuses), never for an outage or a timeout.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// ErrPermanent marks a delivery failure that retrying cannot fix. Test with errors.Is.
var ErrPermanent = errors.New("permanent delivery failure")

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds; errors.Is and errors.As still
// reach err itself, and the error text stays err's. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() []error { return []error{e.err, ErrPermanent} }

// LogSender "sends" by logging that a message was sent: its id, project, channel and a masked
// recipient (+1******4567, a***@example.com). It never logs the subject or the body, which hold
// codes and links. It stands in for a real SMS provider in development and self-hosted setups
// that have none; a nil Log means slog.Default().
type LogSender struct {
	Log *slog.Logger
}

// Send logs m's metadata and reports success.
func (s LogSender) Send(ctx context.Context, m Message) error {
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	log.InfoContext(ctx, "notify: message sent (log sender)", "message_id", m.ID, "project_id", m.ProjectID,
		"channel", string(m.Channel), "to", maskRecipient(m.To))
	return nil
}

// maskRecipient hides most of an email address or phone number so that a log line can tell
// messages apart without holding the address: a***@example.com, +1******4567.
func maskRecipient(to string) string {
	if at := strings.LastIndexByte(to, '@'); at >= 0 {
		local, domain := to[:at], to[at+1:]
		if local == "" {
			return "***@" + domain
		}
		// One leading byte is enough to tell test users apart; the fixed "***" hides the length.
		// An address whose first character is multi-byte shows no prefix rather than a broken one.
		if local[0] < 0x80 {
			return local[:1] + "***@" + domain
		}
		return "***@" + domain
	}
	// Phone numbers: keep the leading two characters (+ and the first digit of the country code)
	// and the last four, the way banks show them; short strings are hidden whole.
	if len(to) <= 6 || !isASCII(to) {
		return strings.Repeat("*", min(len(to), 8))
	}
	return to[:2] + strings.Repeat("*", len(to)-6) + to[len(to)-4:]
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
