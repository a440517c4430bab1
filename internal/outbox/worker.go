package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Opener opens sealed outbox payloads (secretbox.Keyring).
type Opener interface {
	Open(ciphertext, aad []byte) ([]byte, error)
}

// Content is an outbox message's sealed content.
type Content struct {
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html"`
}

// AAD binds a sealed payload to its outbox row, so a payload copied onto another row
// does not open.
func AAD(id string) []byte { return []byte("latchkey outbox\x00" + id) }

// Worker delivers the outbox: it claims messages with a lease, sends them, and records the
// outcome, retrying with backoff. Delivery is at least once; the message id travels with every
// attempt as a dedupe id. A message past its expiry is given up unsent: its code or link no
// longer works, and arriving late it would only confuse. Any number of workers may run, on any
// number of instances.
type Worker struct {
	Store   store.Outbox
	Opener  Opener
	Senders map[notify.Channel]notify.Sender
	// KeepPayload keeps delivered content (the development inbox shows it); otherwise it is
	// dropped once sent.
	KeepPayload bool
	Now         func() time.Time
	Log         *slog.Logger
	// Poll is how often the worker looks for messages when not woken (default 1s), Lease how
	// long a claim lasts (default 1m), MaxAttempts after how many tries a message is abandoned
	// (default 12, about an hour and a half of backoff).
	Poll        time.Duration
	Lease       time.Duration
	MaxAttempts int
	// Webhooks, when set, delivers webhook calls (webhook.Dispatcher): RunOnce runs one batch of
	// it after the outbox's, and Run drives it in a loop of its own, so that a slow webhook
	// receiver never holds up a code or a link.
	Webhooks Batch

	wake chan struct{}
}

// Batch is a queue that a worker drains one batch at a time; RunOnce reports how many items it
// took.
type Batch interface {
	RunOnce(ctx context.Context) (int, error)
}

// NewWorker returns w with its defaults filled in.
func NewWorker(w Worker) *Worker {
	if w.Now == nil {
		w.Now = time.Now
	}
	if w.Log == nil {
		w.Log = slog.New(slog.DiscardHandler)
	}
	if w.Poll <= 0 {
		w.Poll = time.Second
	}
	if w.Lease <= 0 {
		w.Lease = time.Minute
	}
	if w.MaxAttempts <= 0 {
		w.MaxAttempts = 12
	}
	w.wake = make(chan struct{}, 1)
	return &w
}

// Wake makes the worker look for messages now, e.g. right after a flow committed one.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, and returns once the webhook loop (if any) has stopped too.
func (w *Worker) Run(ctx context.Context) {
	if w.Webhooks != nil {
		done := make(chan struct{})
		go func() { defer close(done); w.loop(ctx, w.Webhooks.RunOnce, nil) }()
		defer func() { <-done }()
	}
	w.loop(ctx, w.runMessages, w.wake)
}

// loop runs batches until one comes back empty, then waits for the next poll or wake-up.
func (w *Worker) loop(ctx context.Context, runOnce func(context.Context) (int, error), wake <-chan struct{}) {
	t := time.NewTicker(w.Poll)
	defer t.Stop()
	for {
		for {
			n, err := runOnce(ctx)
			if err != nil && ctx.Err() == nil {
				w.Log.ErrorContext(ctx, "outbox: claim failed", "err", err)
			}
			if n == 0 || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
	}
}

// RunOnce claims one batch of messages and tries each once, then does the same for webhook
// deliveries, returning how many it claimed in all.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	n, err := w.runMessages(ctx)
	if w.Webhooks == nil {
		return n, err
	}
	m, werr := w.Webhooks.RunOnce(ctx)
	return n + m, errors.Join(err, werr)
}

// runMessages claims one batch of messages and tries each once, returning how many it claimed.
func (w *Worker) runMessages(ctx context.Context) (int, error) {
	batch, err := w.Store.ClaimMessages(ctx, w.Now(), w.Lease, 20)
	if err != nil {
		return 0, err
	}
	for _, m := range batch {
		w.deliver(ctx, m)
	}
	return len(batch), nil
}

func (w *Worker) deliver(ctx context.Context, m store.OutboxMessage) {
	if now := w.Now(); expired(m, now) {
		w.expire(ctx, m, now)
		return
	}
	err := w.send(ctx, m)
	now := w.Now()
	if err == nil {
		if err := w.Store.MarkMessageSent(ctx, m.ID, now, w.KeepPayload); err != nil {
			// It was sent; when the lease ends it may be sent again, which the dedupe id allows.
			w.Log.ErrorContext(ctx, "outbox: record delivery", "message_id", m.ID, "err", err)
		}
		return
	}
	retryAt := now.Add(retryDelay(m.Attempts))
	// A retry that could only come after the expiry is not worth waiting for.
	giveUp := errors.Is(err, notify.ErrPermanent) || m.Attempts >= w.MaxAttempts || expired(m, retryAt)
	w.Log.WarnContext(ctx, "outbox: delivery failed", "message_id", m.ID, "project_id", m.ProjectID,
		"channel", m.Channel, "attempt", m.Attempts, "give_up", giveUp, "err", err)
	if err := w.Store.MarkMessageFailed(ctx, m.ID, retryAt, clipError(err.Error(), 500), giveUp); err != nil {
		w.Log.ErrorContext(ctx, "outbox: record failure", "message_id", m.ID, "err", err)
	}
}

// expire gives up a message that outlived its secret. It logs at info, not as a failure: the
// outbox worked as meant. The content is never opened, let alone logged.
func (w *Worker) expire(ctx context.Context, m store.OutboxMessage, now time.Time) {
	w.Log.InfoContext(ctx, "outbox: message expired before delivery; given up", "message_id", m.ID,
		"project_id", m.ProjectID, "channel", m.Channel, "attempt", m.Attempts, "expired_at", *m.ExpiresAt)
	if err := w.Store.MarkMessageFailed(ctx, m.ID, now, ExpiredReason, true); err != nil {
		w.Log.ErrorContext(ctx, "outbox: record expiry", "message_id", m.ID, "err", err)
	}
}

// ExpiredReason is the LastError recorded on a message given up because it expired.
const ExpiredReason = "expired before delivery"

// expired reports whether m may no longer be delivered at t.
func expired(m store.OutboxMessage, t time.Time) bool {
	return m.ExpiresAt != nil && !t.Before(*m.ExpiresAt)
}

func (w *Worker) send(ctx context.Context, m store.OutboxMessage) error {
	sender, ok := w.Senders[notify.Channel(m.Channel)]
	if !ok || sender == nil {
		return notify.Permanent(fmt.Errorf("no sender for channel %q", m.Channel))
	}
	raw, err := w.Opener.Open(m.Payload, AAD(m.ID))
	if err != nil {
		return notify.Permanent(fmt.Errorf("open payload: %w", err))
	}
	var c Content
	if err := json.Unmarshal(raw, &c); err != nil {
		return notify.Permanent(fmt.Errorf("decode payload: %w", err))
	}
	return sender.Send(ctx, notify.Message{ID: m.ID, ProjectID: m.ProjectID, Channel: notify.Channel(m.Channel), To: m.Recipient,
		Subject: c.Subject, Text: c.Text, HTML: c.HTML})
}

// retryDelay is the wait after attempt n: 1s, 2s, 4s, ... at most 10 minutes.
func retryDelay(attempts int) time.Duration {
	d := time.Second
	for i := 1; i < attempts && d < 10*time.Minute; i++ {
		d *= 2
	}
	return min(d, 10*time.Minute)
}

func clipError(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
