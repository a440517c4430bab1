package app

import (
	"context"
	"io"
	"log/slog"

	"github.com/latchkey-dev/latchkey/internal/config"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// NewLogger returns the logger cfg asks for, writing to w. cfg must be valid.
func NewLogger(cfg config.Config, w io.Writer) *slog.Logger {
	level, err := cfg.Level()
	if err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
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

// projectLister finds projects for /.well-known/webauthn: by client id through the project
// service, or all of them from the store.
type projectLister struct {
	*project.Service
	st store.Store
}

func (p projectLister) ListProjects(ctx context.Context) ([]store.Project, error) {
	return p.st.ListProjects(ctx)
}
