package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/latchkey-dev/latchkey/internal/auditlog"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Delivery limits.
const (
	// Timeout bounds one attempt, from dialling to the end of the response.
	Timeout = 10 * time.Second
	// MaxAge is how long after its event a delivery is retried; then it is given up.
	MaxAge = 24 * time.Hour
	// maxResponse is how much of a response is read (and thrown away) so the connection can
	// be reused; the rest is never read.
	maxResponse = 64 << 10
	batchSize   = 20
)

// RetryDelay is the wait after attempt n fails: 30s, 1m, 2m, ... doubling up to 1h, then hourly,
// so an endpoint that is down for a day gets about 30 attempts. The outbox's schedule (capped at
// 10 minutes) suits codes that expire in minutes; a receiver's outage lasts longer.
func RetryDelay(attempts int) time.Duration {
	d := 30 * time.Second
	for i := 1; i < attempts && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// Queue is where deliveries wait (store.Webhooks).
type Queue interface {
	ClaimWebhookDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.WebhookCall, error)
	RecordWebhookAttempt(ctx context.Context, projectID, webhookID, eventID string, a store.WebhookAttempt) error
}

// Opener opens sealed signing secrets (secretbox.Keyring).
type Opener interface {
	Open(ciphertext, aad []byte) ([]byte, error)
}

// Dispatcher delivers queued webhook calls: it claims a batch with a lease, posts each (the
// batch at once, so one slow endpoint does not hold up the others), and records every attempt.
// Delivery is at least once: the event id travels in Latchkey-Event-Id for receivers to dedupe.
type Dispatcher struct {
	Queue  Queue
	Opener Opener
	// Client posts; NewDispatcher makes one that follows no redirects, uses no proxy, times
	// out after Timeout and, unless AllowPrivate, connects only to public addresses.
	Client *http.Client
	// AllowPrivate lets webhooks reach loopback, private and link-local addresses: for
	// development and for receivers on the server's own network. Off, a webhook cannot be used
	// to probe the network the server runs in.
	AllowPrivate bool
	Now          func() time.Time
	Log          *slog.Logger
	// Lease is how long a claim lasts (default 2 minutes, well over Timeout).
	Lease time.Duration
}

// NewDispatcher returns d with its defaults filled in.
func NewDispatcher(d Dispatcher) *Dispatcher {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Lease <= 0 {
		d.Lease = 2 * time.Minute
	}
	if d.Client == nil {
		d.Client = newClient(d.AllowPrivate)
	}
	return &d
}

// RunOnce claims one batch and tries each delivery once, returning how many it claimed.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	calls, err := d.Queue.ClaimWebhookDeliveries(ctx, d.Now(), d.Lease, batchSize)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Go(func() { d.deliver(ctx, c) })
	}
	wg.Wait()
	return len(calls), nil
}

// Payload is the body of a webhook request.
type Payload struct {
	ID        string         `json:"id"` // the event id, also in Latchkey-Event-Id
	Type      string         `json:"type"`
	CreatedAt string         `json:"created_at"`
	Data      auditlog.Event `json:"data"`
}

func (d *Dispatcher) deliver(ctx context.Context, c store.WebhookCall) {
	dl := c.Delivery
	status, err := d.post(ctx, c)
	now := d.Now()
	a := store.WebhookAttempt{StatusCode: status, At: now}
	if err != nil {
		a.Error = clip(err.Error(), 500)
		if retryAt := now.Add(RetryDelay(dl.Attempts)); retryAt.Before(dl.CreatedAt.Add(MaxAge)) {
			a.RetryAt = &retryAt
		}
		d.Log.WarnContext(ctx, "webhook: delivery failed", "project_id", dl.ProjectID, "webhook_id", dl.WebhookID,
			"event_id", dl.EventID, "attempt", dl.Attempts, "status", status, "give_up", a.RetryAt == nil, "err", err)
	}
	if err := d.Queue.RecordWebhookAttempt(ctx, dl.ProjectID, dl.WebhookID, dl.EventID, a); err != nil &&
		!errors.Is(err, store.ErrNotFound) { // deleted meanwhile: nothing to record
		d.Log.ErrorContext(ctx, "webhook: record attempt", "webhook_id", dl.WebhookID, "event_id", dl.EventID, "err", err)
	}
}

// post makes one attempt and returns the response's status (0 without one).
func (d *Dispatcher) post(ctx context.Context, c store.WebhookCall) (int, error) {
	secret, err := d.Opener.Open(c.Webhook.Secret, sealAAD(c.Webhook.ProjectID, c.Webhook.ID))
	if err != nil {
		return 0, fmt.Errorf("open signing secret: %w", err)
	}
	body, err := json.Marshal(Payload{ID: c.Event.ID, Type: c.Event.Type, CreatedAt: auditlog.Time(c.Event.CreatedAt),
		Data: auditlog.View(c.Event)})
	if err != nil {
		return 0, fmt.Errorf("encode payload: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Webhook.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Latchkey-Webhooks/1")
	req.Header.Set(EventIDHeader, c.Event.ID)
	req.Header.Set(SignatureHeader, Sign(string(secret), d.Now(), body))
	resp, err := d.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// errNotPublic refuses a connection to an address a webhook may not reach.
var errNotPublic = errors.New("webhook: refusing to connect to a non-public address")

func newClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: Timeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		// Checked on the address actually dialled, after DNS, so a name that resolves (or is
		// rebound) to an internal address is refused too.
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !public(ap.Addr()) {
				return fmt.Errorf("%w %s", errNotPublic, address)
			}
			return nil
		}
	}
	return &http.Client{
		Timeout: Timeout,
		Transport: &http.Transport{
			Proxy:                  nil, // a proxy would be what the address check sees
			DialContext:            dialer.DialContext,
			ForceAttemptHTTP2:      true,
			TLSHandshakeTimeout:    Timeout,
			ResponseHeaderTimeout:  Timeout,
			MaxResponseHeaderBytes: maxResponse,
			MaxIdleConns:           50,
			IdleConnTimeout:        90 * time.Second,
		},
		// A redirect is an answer, not a delivery: 3xx counts as a failure.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
