package httpserver

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// requestLog is what the log knows of the request being served. Wrap puts it in the request's
// context; the router fills in the project once it has resolved it, so that the access log line,
// written by Wrap on the context Wrap made, carries the project too.
type requestLog struct {
	projectID atomic.Pointer[string]
}

type requestLogKey struct{}

func withRequestLog(ctx context.Context) context.Context {
	return context.WithValue(ctx, requestLogKey{}, &requestLog{})
}

// noteProject records the request's project for its log lines.
func noteProject(ctx context.Context, projectID string) {
	if l, ok := ctx.Value(requestLogKey{}).(*requestLog); ok {
		l.projectID.Store(&projectID)
	}
}

// LogHandler returns h adding, to every record logged with the context of a request (the
// ...Context variants of slog), the request's request_id and, once the request is
// authenticated, its project_id, unless the record names them itself. Domain code then logs
// with its context and needs no HTTP code to say which request a line belongs to. Both are
// ids, never credentials.
func LogHandler(h slog.Handler) slog.Handler { return requestHandler{h} }

type requestHandler struct{ next slog.Handler }

func (h requestHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h requestHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil {
		return h.next.Handle(ctx, r)
	}
	id := RequestID(ctx)
	var projectID string
	if p, ok := ctx.Value(projectKey{}).(store.Project); ok {
		projectID = p.ID
	} else if l, ok := ctx.Value(requestLogKey{}).(*requestLog); ok {
		if p := l.projectID.Load(); p != nil {
			projectID = *p
		}
	}
	if id == "" && projectID == "" {
		return h.next.Handle(ctx, r)
	}
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "request_id":
			id = ""
		case "project_id":
			projectID = ""
		}
		return true
	})
	// A clone: the record's attributes may share storage with the caller's.
	r = r.Clone()
	if id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if projectID != "" {
		r.AddAttrs(slog.String("project_id", projectID))
	}
	return h.next.Handle(ctx, r)
}

func (h requestHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestHandler{h.next.WithAttrs(attrs)}
}

func (h requestHandler) WithGroup(name string) slog.Handler {
	return requestHandler{h.next.WithGroup(name)}
}
