package app

import (
	"io"
	"log/slog"

	"github.com/latchkey-dev/latchkey/internal/config"
	"github.com/latchkey-dev/latchkey/internal/ident"
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
