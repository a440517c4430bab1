package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/botcheck"
	"github.com/latchkey-dev/latchkey/internal/config"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/notice"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// NewLogger returns the logger cfg asks for, writing to w, which adds each request's id and
// project to the lines logged under it (httpserver.LogHandler). cfg must be valid.
func NewLogger(cfg config.Config, w io.Writer) *slog.Logger {
	level, err := cfg.Level()
	if err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	// Every line logged under a request says which request (and project) it belongs to.
	return slog.New(httpserver.LogHandler(h))
}

// idGenerator returns an id generator on the injected clock and randomness, or nil (the
// services' own default) when neither is injected.
func idGenerator(o options) *ident.Generator {
	if o.now == nil && o.rand == nil {
		return nil
	}
	g := ident.NewGenerator()
	if o.now != nil {
		g.Now = o.now
	}
	if o.rand != nil {
		g.Rand = o.rand
	}
	return g
}

// enumerationKey derives the passkey service's stand-in credential key from the master key, so
// every instance shows the same stand-ins for an identifier. A sealer that cannot derive keys
// (none in production) leaves the service to make a per-process key.
func enumerationKey(s sealer) ([]byte, error) {
	d, ok := s.(interface {
		DeriveKey(purpose string) ([]byte, error)
	})
	if !ok {
		return nil, nil
	}
	return d.DeriveKey("passkey stand-in credentials")
}

// derivedKey derives a 32-byte key for purpose from the master key, so that every instance
// shares it; a sealer that cannot derive keys (none in production) gets a per-process key.
func derivedKey(s sealer, purpose string) ([]byte, error) {
	if d, ok := s.(interface {
		DeriveKey(purpose string) ([]byte, error)
	}); ok {
		return d.DeriveKey(purpose)
	}
	key := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return nil, fmt.Errorf("make a key for %s: %w", purpose, err)
	}
	return key, nil
}

// ownerAlerts tells an account's owner by email that a lock started on their account: they
// learn of the attack, and that their known devices still sign in.
type ownerAlerts struct {
	notices *notice.Notifier
	wake    func()
}

func (o *ownerAlerts) wakeWorker() {
	if o.wake != nil {
		o.wake()
	}
}

func (o *ownerAlerts) alert(ctx context.Context, tx store.Store, p store.Project, kind, account string) error {
	if o.notices == nil {
		return nil
	}
	var u store.User
	var err error
	switch {
	case kind == "mfa":
		u, err = tx.GetUser(ctx, p.ID, account)
	case strings.Contains(account, "@"): // a password's or an email code's account is the address
		u, err = tx.GetUserByEmail(ctx, p.ID, account)
	default:
		return nil // an SMS code's account is a number: the notice goes by email only
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find the account's owner: %w", err)
	}
	if !u.Active {
		return nil
	}
	return o.notices.Notify(ctx, tx, p, u, notice.UnderAttack)
}

// projectLister finds projects for /.well-known/webauthn: by client id through the project
// service, or all of them from the store.
type projectLister struct {
	*project.Service
	st store.Store
}

func (p projectLister) ListProjects(ctx context.Context) ([]store.Project, error) {
	return p.st.ListProjects(ctx)
}

// newPoW makes the proof-of-work issuer. Its HMAC key derives from the master key, so that
// every instance verifies every other's challenges; each is spent once in the database.
func newPoW(o options, st store.Store) (*botcheck.PoW, error) {
	var key []byte
	if d, ok := o.sealer.(interface {
		DeriveKey(purpose string) ([]byte, error)
	}); ok {
		var err error
		if key, err = d.DeriveKey("altcha proof of work"); err != nil {
			return nil, err
		}
	} else {
		key = make([]byte, 32)
		if _, err := io.ReadFull(rand.Reader, key); err != nil {
			return nil, fmt.Errorf("make a proof-of-work key: %w", err)
		}
	}
	return botcheck.NewPoW(botcheck.PoWConfig{Key: key, Now: o.now, Rand: o.rand, Spent: spentChallenges{st}})
}

// spentChallenges is the database as the proof of work's Spender.
type spentChallenges struct{ st store.SpentChallenges }

func (s spentChallenges) Spend(ctx context.Context, key string, expires time.Time) (bool, error) {
	return s.st.SpendChallenge(ctx, key, expires)
}
