package outbox_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/outbox"
	"github.com/latchkey-dev/latchkey/internal/secretbox"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// world is a worker on a real store with a recording sender, an injected clock and a log the
// test reads.
type world struct {
	t      *testing.T
	st     store.Store
	ring   *secretbox.Keyring
	ids    *ident.Generator
	pid    string
	now    time.Time
	sender *recorder
	log    bytes.Buffer
	w      *outbox.Worker
}

func newWorld(t *testing.T, st *sqlstore.Store) *world {
	t.Helper()
	key, err := secretbox.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secretbox.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, st: st, ring: ring, ids: ident.NewGenerator(), now: time.Now().UTC().Truncate(time.Second), sender: &recorder{}}
	p := store.Project{ID: w.ids.New(), Name: "Outbox", Settings: []byte(`{}`), CreatedAt: w.now, UpdatedAt: w.now}
	p.ClientID = "cli_" + p.ID
	if err := st.CreateProject(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	w.pid = p.ID
	w.w = outbox.NewWorker(outbox.Worker{Store: st, Opener: ring, Senders: map[notify.Channel]notify.Sender{notify.Email: w.sender},
		Now: func() time.Time { return w.now }, Log: slog.New(slog.NewTextHandler(&w.log, nil))})
	return w
}

// enqueue writes a sealed message whose text is text, expiring at expires (nil: never).
func (w *world) enqueue(text string, expires *time.Time) string {
	w.t.Helper()
	id := w.ids.New()
	raw, err := json.Marshal(outbox.Content{Subject: "Your code", Text: text})
	if err != nil {
		w.t.Fatal(err)
	}
	sealed, err := w.ring.Seal(raw, outbox.AAD(id))
	if err != nil {
		w.t.Fatal(err)
	}
	m := store.OutboxMessage{ID: id, ProjectID: w.pid, Channel: string(notify.Email), Recipient: "ann@example.com",
		Payload: sealed, CreatedAt: w.now, AvailableAt: w.now, ExpiresAt: expires}
	if err := w.st.EnqueueMessage(w.t.Context(), m); err != nil {
		w.t.Fatal(err)
	}
	return id
}

// drain runs the worker until it claims nothing at the current time.
func (w *world) drain() {
	w.t.Helper()
	for {
		n, err := w.w.RunOnce(context.Background())
		if err != nil {
			w.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

func (w *world) message(id string) store.OutboxMessage {
	w.t.Helper()
	all, err := w.st.ListOutbox(w.t.Context(), 100)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, m := range all {
		if m.ID == id {
			return m
		}
	}
	w.t.Fatalf("message %s is not in the outbox", id)
	return store.OutboxMessage{}
}

// recorder is a sender that records what it sends, and fails (retryably) while failing is set.
type recorder struct {
	mu      sync.Mutex
	sent    []notify.Message
	failing bool
}

func (r *recorder) Send(_ context.Context, m notify.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failing {
		return errors.New("451 4.3.0 try again later")
	}
	r.sent = append(r.sent, m)
	return nil
}

func (r *recorder) texts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.sent {
		out = append(out, m.Text)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// TestExpiredMessagesAreNeverSent claims, at one time, a fresh message, one without an expiry
// and one whose code expired while it waited: the first two go out, the third is given up
// without being sent, and the log says so without its content.
func TestExpiredMessagesAreNeverSent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newWorld(t, st)
		stale := w.enqueue("stale code 111111", ptr(w.now.Add(5*time.Minute)))
		w.now = w.now.Add(90 * time.Minute) // the worker was down, say
		fresh := w.enqueue("fresh code 222222", ptr(w.now.Add(5*time.Minute)))
		forever := w.enqueue("no expiry 333333", nil)
		w.drain()

		got := w.sender.texts()
		slices.Sort(got)
		if want := []string{"fresh code 222222", "no expiry 333333"}; !slices.Equal(got, want) {
			t.Fatalf("sent %q, want %q", got, want)
		}
		for _, id := range []string{fresh, forever} {
			if m := w.message(id); m.SentAt == nil || m.FailedAt != nil {
				t.Errorf("message %s: sent %v failed %v, want sent", id, m.SentAt, m.FailedAt)
			}
		}
		m := w.message(stale)
		if m.SentAt != nil || m.FailedAt == nil || m.LastError != outbox.ExpiredReason {
			t.Errorf("expired message: sent %v failed %v last error %q, want given up as %q", m.SentAt, m.FailedAt, m.LastError, outbox.ExpiredReason)
		}

		log := w.log.String()
		line := ""
		for l := range strings.Lines(log) {
			if strings.Contains(l, stale) {
				line = l
			}
		}
		if !strings.Contains(line, "level=INFO") || !strings.Contains(line, "expired before delivery") {
			t.Errorf("no info line about the expired message:\n%s", log)
		}
		for _, secret := range []string{"111111", "ann@example.com", "Your code"} {
			if strings.Contains(log, secret) {
				t.Errorf("the log holds %q:\n%s", secret, log)
			}
		}

		// Given up is final: much later, nothing more is claimed or sent.
		w.now = w.now.Add(24 * time.Hour)
		w.drain()
		if got := w.sender.texts(); len(got) != 2 {
			t.Errorf("after a day %d messages were sent, want still 2", len(got))
		}
	})
}

// TestRetriesStopAtTheExpiry: a mail server refuses for longer than a code lives. The code's
// message is given up once it expires and is never delivered when the server recovers; a
// message without an expiry, failing alongside, is.
func TestRetriesStopAtTheExpiry(t *testing.T) {
	w := newWorld(t, testdb.SQLite(t))
	w.sender.failing = true
	code := w.enqueue("code 444444", ptr(w.now.Add(5*time.Minute)))
	other := w.enqueue("no expiry", nil)
	start := w.now
	for i := range 10 { // ten minutes, one worker pass a minute
		if i == 7 {
			w.sender.failing = false
		}
		w.now = start.Add(time.Duration(i) * time.Minute)
		w.drain()
	}
	if got := w.sender.texts(); len(got) != 1 || got[0] != "no expiry" {
		t.Fatalf("sent %q, want only the message without an expiry", got)
	}
	if m := w.message(code); m.SentAt != nil || m.FailedAt == nil || m.LastError != outbox.ExpiredReason {
		t.Errorf("code message: sent %v failed %v last error %q, want given up as expired", m.SentAt, m.FailedAt, m.LastError)
	}
	if m := w.message(other); m.SentAt == nil {
		t.Errorf("the message without an expiry was not delivered: %+v", m)
	}
}

// TestNoRetryPastTheExpiry: when the next try could only come after the expiry, a failed
// message is given up at once rather than kept for a retry that cannot happen.
func TestNoRetryPastTheExpiry(t *testing.T) {
	w := newWorld(t, testdb.SQLite(t))
	w.sender.failing = true
	id := w.enqueue("code 555555", ptr(w.now.Add(500*time.Millisecond))) // the first retry waits 1s
	w.drain()
	m := w.message(id)
	if m.FailedAt == nil || !strings.HasPrefix(m.LastError, "451") {
		t.Errorf("after one failure: failed %v last error %q, want given up with the sender's error", m.FailedAt, m.LastError)
	}
}
