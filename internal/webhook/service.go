package webhook

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/auditlog"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Limits of a webhook.
const (
	maxURLLength = 2048
	maxEvents    = 50
	// SecretPrefix starts every signing secret.
	SecretPrefix = "whsec_"
)

// Sealer seals and opens signing secrets (secretbox.Keyring).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}

// Deps are the service's dependencies.
type Deps struct {
	Store  store.Webhooks
	Sealer Sealer
	IDs    *ident.Generator
	Now    func() time.Time
	Rand   io.Reader
	// AllowPrivate lets a webhook's URL name a loopback or private address, as the
	// dispatcher's AllowPrivate lets it connect to one.
	AllowPrivate bool
}

// Service manages webhooks.
type Service struct{ d Deps }

// New returns a Service; nil IDs, Now and Rand take the system's.
func New(d Deps) *Service {
	if d.IDs == nil {
		d.IDs = ident.NewGenerator()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	return &Service{d: d}
}

func (s *Service) clock() time.Time { return s.d.Now().UTC().Truncate(time.Microsecond) }

// Input creates or changes a webhook; nil fields are left as they are (on create: URL and
// Events are required, Enabled defaults to true).
type Input struct {
	URL     *string
	Events  *[]string
	Enabled *bool
}

// WithSecret is a webhook with its signing secret, shown once: when it is made or rotated.
type WithSecret struct {
	Webhook store.Webhook
	Secret  string
}

// Create makes a webhook with a new signing secret.
// Errors: invalid_url (400, url), invalid_events (400, events).
func (s *Service) Create(ctx context.Context, projectID string, in Input) (WithSecret, error) {
	if in.URL == nil {
		return WithSecret{}, failure.InvalidField("invalid_url", "url", "is required")
	}
	if in.Events == nil {
		return WithSecret{}, failure.InvalidField("invalid_events", "events", `is required: ["*"] or a list of event types and prefixes`)
	}
	now := s.clock()
	w := store.Webhook{ID: s.d.IDs.New(), ProjectID: projectID, Enabled: true, CreatedAt: now, UpdatedAt: now}
	if err := apply(&w, in, s.d.AllowPrivate); err != nil {
		return WithSecret{}, err
	}
	secret, err := s.newSecret(&w)
	if err != nil {
		return WithSecret{}, err
	}
	if err := s.d.Store.CreateWebhook(ctx, w); err != nil {
		return WithSecret{}, fmt.Errorf("webhook: create: %w", err)
	}
	return WithSecret{Webhook: w, Secret: secret}, nil
}

// Get returns a webhook. Errors: webhook_not_found (404).
func (s *Service) Get(ctx context.Context, projectID, id string) (store.Webhook, error) {
	if !ident.Valid(id) {
		return store.Webhook{}, notFound()
	}
	w, err := s.d.Store.GetWebhook(ctx, projectID, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Webhook{}, notFound()
	}
	if err != nil {
		return store.Webhook{}, fmt.Errorf("webhook: get: %w", err)
	}
	return w, nil
}

// List returns a page of the project's webhooks, by id.
// Errors: invalid_limit, invalid_cursor (400).
func (s *Service) List(ctx context.Context, projectID, limit, cursor string) ([]store.Webhook, string, error) {
	n, err := auditlog.ParseLimit(limit, 20)
	if err != nil {
		return nil, "", err
	}
	after, err := auditlog.DecodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	ws, err := s.d.Store.ListWebhooks(ctx, projectID, store.Page{Limit: n + 1, After: after})
	if err != nil {
		return nil, "", fmt.Errorf("webhook: list: %w", err)
	}
	if len(ws) > n {
		return ws[:n], auditlog.EncodeCursor(ws[n-1].ID), nil
	}
	return ws, "", nil
}

// Update changes a webhook. Errors: webhook_not_found (404), invalid_url, invalid_events (400).
func (s *Service) Update(ctx context.Context, projectID, id string, in Input) (store.Webhook, error) {
	w, err := s.Get(ctx, projectID, id)
	if err != nil {
		return store.Webhook{}, err
	}
	if err := apply(&w, in, s.d.AllowPrivate); err != nil {
		return store.Webhook{}, err
	}
	w.UpdatedAt = s.clock()
	if err := s.d.Store.UpdateWebhook(ctx, w); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.Webhook{}, notFound()
		}
		return store.Webhook{}, fmt.Errorf("webhook: update: %w", err)
	}
	return w, nil
}

// RotateSecret replaces the webhook's signing secret at once: deliveries from now on are signed
// with the new one. Errors: webhook_not_found (404).
func (s *Service) RotateSecret(ctx context.Context, projectID, id string) (WithSecret, error) {
	w, err := s.Get(ctx, projectID, id)
	if err != nil {
		return WithSecret{}, err
	}
	secret, err := s.newSecret(&w)
	if err != nil {
		return WithSecret{}, err
	}
	w.UpdatedAt = s.clock()
	if err := s.d.Store.UpdateWebhook(ctx, w); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return WithSecret{}, notFound()
		}
		return WithSecret{}, fmt.Errorf("webhook: rotate secret: %w", err)
	}
	return WithSecret{Webhook: w, Secret: secret}, nil
}

// Delete removes a webhook and its deliveries. Errors: webhook_not_found (404).
func (s *Service) Delete(ctx context.Context, projectID, id string) error {
	if !ident.Valid(id) {
		return notFound()
	}
	err := s.d.Store.DeleteWebhook(ctx, projectID, id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound()
	}
	if err != nil {
		return fmt.Errorf("webhook: delete: %w", err)
	}
	return nil
}

// Deliveries returns a page of the webhook's delivery log, newest event first.
// Errors: webhook_not_found (404), invalid_limit, invalid_cursor (400).
func (s *Service) Deliveries(ctx context.Context, projectID, id, limit, cursor string) ([]store.WebhookDelivery, string, error) {
	n, err := auditlog.ParseLimit(limit, auditlog.DefaultLimit)
	if err != nil {
		return nil, "", err
	}
	before, err := auditlog.DecodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	if _, err := s.Get(ctx, projectID, id); err != nil {
		return nil, "", err
	}
	ds, err := s.d.Store.ListWebhookDeliveries(ctx, projectID, id, n+1, before)
	if err != nil {
		return nil, "", fmt.Errorf("webhook: list deliveries: %w", err)
	}
	if len(ds) > n {
		return ds[:n], auditlog.EncodeCursor(ds[n-1].EventID), nil
	}
	return ds, "", nil
}

// newSecret makes a signing secret, seals it into w and returns it.
func (s *Service) newSecret(w *store.Webhook) (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(s.d.Rand, b[:]); err != nil {
		return "", fmt.Errorf("webhook: make secret: %w", err)
	}
	secret := SecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	sealed, err := s.d.Sealer.Seal([]byte(secret), sealAAD(w.ProjectID, w.ID))
	if err != nil {
		return "", fmt.Errorf("webhook: seal secret: %w", err)
	}
	w.Secret = sealed
	return secret, nil
}

// sealAAD binds a sealed secret to its webhook, so a secret copied onto another row does not open.
func sealAAD(projectID, webhookID string) []byte {
	return []byte("latchkey webhook secret\x00" + projectID + "\x00" + webhookID)
}

func notFound() error {
	return failure.New(failure.NotFound, "webhook_not_found", "no such webhook in this project")
}

// apply checks in's fields and sets them on w.
func apply(w *store.Webhook, in Input, allowPrivate bool) error {
	if in.URL != nil {
		u, err := CheckURL(*in.URL)
		if err != nil {
			return err
		}
		if err := checkHost(u, allowPrivate); err != nil {
			return err
		}
		w.URL = u
	}
	if in.Events != nil {
		ev, err := checkEvents(*in.Events)
		if err != nil {
			return err
		}
		w.Events = ev
	}
	if in.Enabled != nil {
		w.Enabled = *in.Enabled
	}
	return nil
}

// CheckURL returns the URL a webhook may post to: https, or http to a loopback host
// (127.0.0.1, [::1], localhost) for development; no user info, no fragment.
func CheckURL(raw string) (string, error) {
	bad := func(reason string) error { return failure.InvalidField("invalid_url", "url", reason) }
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > maxURLLength {
		return "", bad(fmt.Sprintf("must be an https URL of at most %d characters", maxURLLength))
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", bad("must be an absolute https URL")
	}
	if u.User != nil {
		return "", bad("must not hold a user name or password")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "", bad("must not have a fragment")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !loopbackHost(u.Hostname()) {
			return "", bad("must use https (http is allowed only to 127.0.0.1, [::1] or localhost)")
		}
	default:
		return "", bad("must use https")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	return u.String(), nil
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// checkEvents returns the patterns sorted and unique; "*" with anything else is just "*".
func checkEvents(in []string) ([]string, error) {
	if len(in) == 0 || len(in) > maxEvents {
		return nil, failure.InvalidField("invalid_events", "events",
			fmt.Sprintf(`must list from 1 to %d event types or prefixes, or be ["*"]`, maxEvents))
	}
	out := make([]string, 0, len(in))
	for i, e := range in {
		e = strings.TrimSpace(e)
		if e == "*" {
			return []string{"*"}, nil
		}
		if !auditlog.ValidPattern(e) {
			return nil, failure.InvalidField("invalid_events", fmt.Sprintf("events[%d]", i),
				`must be "*", an event type such as "session.revoked_all", or a prefix ending in "." such as "mfa."`)
		}
		out = append(out, e)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
